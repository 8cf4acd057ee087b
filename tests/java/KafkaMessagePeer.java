import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.ParameterizedType;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.common.protocol.types.BoundField;
import org.apache.kafka.common.protocol.types.Field;
import org.apache.kafka.common.protocol.types.Schema;
import org.apache.kafka.common.protocol.types.TaggedFields;
import org.apache.kafka.common.protocol.types.Type;
import org.apache.kafka.common.record.internal.MemoryRecords;

/**
 * Kafka's generated message classes (org.apache.kafka.common.message) behind a binary stdin/stdout protocol, the
 * peer of chronik-perf's codec tests. Each request: op byte, class name (writeUTF), int16 version, then
 * 'C' (check): int32 length and a body, which Kafka reads (all of it must be consumed) and writes back;
 * 'G' (generate): int64 seed, from which Kafka fills a message of that version at random and writes it.
 * Each answer: byte 0, int32 length and the bytes Kafka wrote; or byte 1 and the error (writeUTF).
 */
public class KafkaMessagePeer {
    public static void main(String[] args) throws IOException {
        DataInputStream in = new DataInputStream(new BufferedInputStream(System.in));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(System.out));
        int op;
        while ((op = in.read()) >= 0) {
            String className = in.readUTF();
            short version = in.readShort();
            byte[] body = null;
            long seed = 0;
            if (op == 'C') {
                body = new byte[in.readInt()];
                in.readFully(body);
            } else {
                seed = in.readLong();
            }
            try {
                Message message = (Message) Class.forName(className).getConstructor().newInstance();
                if (op == 'C') {
                    ByteBuffer buffer = ByteBuffer.wrap(body);
                    message.read(new ByteBufferAccessor(buffer), version);
                    if (buffer.hasRemaining()) {
                        throw new IllegalStateException(buffer.remaining() + " bytes left unread");
                    }
                } else {
                    fill(message, version, new Random(seed));
                }
                ByteBuffer written = MessageUtil.toByteBufferAccessor(message, version).buffer();
                byte[] result = new byte[written.remaining()];
                written.get(result);
                out.writeByte(0);
                out.writeInt(result.length);
                out.write(result);
            } catch (Throwable e) {
                out.writeByte(1);
                out.writeUTF(String.valueOf(e.getCause() != null ? e.getCause() : e));
            }
            out.flush();
        }
    }

    /** Sets each field of struct's schema at version to a random value, except about one in four left default. */
    static void fill(Object struct, short version, Random rnd) throws Exception {
        Schema schema = ((Schema[]) struct.getClass().getField("SCHEMAS").get(null))[version];
        Map<String, Method> setters = new HashMap<>();
        for (Method m : struct.getClass().getMethods()) {
            if (m.getName().startsWith("set") && m.getParameterCount() == 1) {
                setters.put(m.getName().substring(3).toLowerCase(), m);
            }
        }
        List<Field> fields = new ArrayList<>();
        for (BoundField bound : schema.fields()) {
            if (bound.def.type instanceof TaggedFields) {
                fields.addAll(((TaggedFields) bound.def.type).fields().values());
            } else {
                fields.add(bound.def);
            }
        }
        for (Field field : fields) {
            if (rnd.nextInt(4) == 0) {
                continue;
            }
            Method setter = setters.get(field.name.replace("_", "").toLowerCase());
            if (setter == null) {
                throw new IllegalStateException("no setter for " + field.name + " in " + struct.getClass());
            }
            setter.invoke(struct, random(setter.getParameterTypes()[0], setter.getGenericParameterTypes()[0],
                                         field.type, version, rnd));
        }
    }

    @SuppressWarnings("unchecked")
    static Object random(Class<?> cls, java.lang.reflect.Type generic, Type type, short version, Random rnd)
            throws Exception {
        if (type != null && type.isNullable() && rnd.nextInt(4) == 0) {
            return null;
        }
        if (cls == boolean.class) return rnd.nextBoolean();
        if (cls == byte.class) return (byte) rnd.nextInt();
        if (cls == short.class) return (short) rnd.nextInt();
        if (cls == int.class || cls == Integer.class) return type == Type.UINT16 ? rnd.nextInt(1 << 16) : rnd.nextInt();
        if (cls == long.class || cls == Long.class) return type == Type.UNSIGNED_INT32 ? rnd.nextLong() & 0xFFFFFFFFL : rnd.nextLong();
        if (cls == double.class) return rnd.nextDouble() * 1e6 - 5e5;
        if (cls == String.class) return randomString(rnd);
        if (cls == Uuid.class) return new Uuid(rnd.nextLong(), rnd.nextLong());
        if (cls == byte[].class) return randomBytes(rnd);
        if (cls == ByteBuffer.class) return ByteBuffer.wrap(randomBytes(rnd));
        if (cls.getName().startsWith("org.apache.kafka.common.record.")) {
            return MemoryRecords.readableRecords(ByteBuffer.wrap(randomBytes(rnd)));
        }
        if (Collection.class.isAssignableFrom(cls)) {
            Class<?> element;
            java.lang.reflect.Type elementGeneric;
            Collection<Object> items;
            if (cls == List.class) {
                elementGeneric = ((ParameterizedType) generic).getActualTypeArguments()[0];
                element = (Class<?>) elementGeneric;
                items = new ArrayList<>();
            } else {  // a generated collection of structs keyed by a field
                elementGeneric = ((ParameterizedType) cls.getGenericSuperclass()).getActualTypeArguments()[0];
                element = (Class<?>) elementGeneric;
                items = (Collection<Object>) cls.getConstructor().newInstance();
            }
            int n = rnd.nextInt(4);
            for (int i = 0; i < n; i++) {
                items.add(random(element, elementGeneric, null, version, rnd));
            }
            return items;
        }
        Object struct = cls.getConstructor().newInstance();
        fill(struct, version, rnd);
        return struct;
    }

    static String randomString(Random rnd) {
        StringBuilder s = new StringBuilder();
        int n = rnd.nextInt(10);
        for (int i = 0; i < n; i++) {
            s.append(rnd.nextInt(3) == 0 ? (char) (0x100 + rnd.nextInt(0xD000)) : (char) (0x20 + rnd.nextInt(0x5F)));
        }
        return s.toString();
    }

    static byte[] randomBytes(Random rnd) {
        byte[] b = new byte[rnd.nextInt(24)];
        rnd.nextBytes(b);
        return b;
    }
}
