"""One TCP connection to one broker: ApiVersions negotiation, pipelined requests, responses routed by id.

Threading model: a reader thread per connection, not an event loop. The work the client does per request is
dominated by calls that release the GIL — ``sendall``/``recv_into`` on blocking sockets, and the codec's C loops —
so plain threads overlap I/O to several brokers with batch building in the caller, without an event loop's
per-callback overhead in the interpreter, and every public call stays an ordinary blocking call with a timeout.
Callers send from any thread (``_send_lock`` keeps frames and correlation ids in order); the reader thread reads
frames, decodes them and completes the waiting ``Response`` or runs its callback. The reader also enforces request
deadlines: it polls with a short tick, and a request past its deadline closes the connection (as Kafka's clients
do), failing everything in flight with ``RequestTimedOutError``.
"""
import select
import socket
import threading
import time

from .. import protocol
from ..protocol import ProtocolError
from .errors import BrokerUnavailableError, ConnectionLostError, RequestTimedOutError

# Highest versions the client uses. Produce/Fetch: later ones name topics by id only, which would need a second
# code path. Group APIs: their last versions before the flexible encoding — nothing the suite needs came later,
# and librdkafka's mock advertises flexible group versions it cannot read (it drops the connection on JoinGroup v6
# and SyncGroup v4). LeaveGroup: v0-2 name the one leaving member, all a member leaving needs (librdkafka sends v1);
# the mock advertises v3-4 but reads every version as v0-2, so a v3 leave is refused as an unknown member and the
# member stays in the group until its session times out.
VERSION_CAPS = {"Produce": 12, "Fetch": 12, "JoinGroup": 5, "SyncGroup": 3, "Heartbeat": 3, "LeaveGroup": 2,
                "OffsetCommit": 7, "OffsetFetch": 5}
MAX_FRAME = 512 << 20        # a larger size prefix is treated as corrupt, never allocated
_FIRST_CHUNK = 1 << 20       # a frame's first allocation; the rest of a larger frame is allocated as its bytes arrive
_MAX_SILENT = 4096           # remembered ids of unanswered requests; Kafka never answers them, Tansu does
_TICK = 0.2                  # how often the reader looks at request deadlines when no data arrives


class Response:
    """The answer to one request: ``result(timeout)`` returns the decoded body or raises the request's error."""

    __slots__ = ("api", "version", "zero_copy", "callback", "deadline", "sent_ns", "_event", "_body", "_error")

    def __init__(self, api, version, zero_copy, callback, deadline):
        self.api, self.version, self.zero_copy, self.callback, self.deadline = api, version, zero_copy, callback, deadline
        self.sent_ns = 0
        self._event = threading.Event()
        self._body = self._error = None

    def _finish(self, body, error):
        self._body, self._error = body, error
        self._event.set()
        if self.callback is not None:
            try:
                self.callback(body, error, self)
            except Exception:  # a callback's bug must not kill the reader thread
                import traceback
                traceback.print_exc()

    def done(self):
        return self._event.is_set()

    def result(self, timeout):
        """The decoded body; raises RequestTimedOutError after ``timeout`` seconds, or the request's error."""
        if not self._event.wait(timeout):
            raise RequestTimedOutError(f"{self.api}: no answer within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._body


class Connection:
    """A connection to ``host:port`` with up to ``max_in_flight`` requests awaiting answers."""

    def __init__(self, host, port, *, node_id=-1, client_id="chronik-perf", max_in_flight=5,
                 connect_timeout=10.0, request_timeout=30.0):
        self.host, self.port, self.node_id, self.client_id = host, int(port), node_id, client_id
        self.request_timeout = request_timeout
        self._window = threading.BoundedSemaphore(max_in_flight)
        self._send_lock = threading.Lock()
        self._pending = {}
        self._silent = set()         # correlation ids of requests sent expecting no answer (Produce acks=0)
        self._next_id = 1
        self._closed = None          # the error that closed the connection, once closed
        self._versions = {}
        try:
            self._sock = socket.create_connection((host, self.port), timeout=connect_timeout)
        except OSError as exc:
            raise BrokerUnavailableError(f"cannot connect to {host}:{port}: {exc}") from exc
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = threading.Thread(target=self._read_loop, name=f"kafka-reader-{host}:{port}", daemon=True)
        self._reader.start()
        try:
            # v0 first: every broker answers it, and its api_keys list is all negotiation needs.
            self.api_versions = self.call("ApiVersions", {}, version=0, timeout=connect_timeout)
        except Exception:
            self.close()
            raise

    def __repr__(self):
        return f"Connection({self.host}:{self.port}, node {self.node_id}{', closed' if self._closed else ''})"

    @property
    def closed(self):
        return self._closed is not None

    def version(self, api):
        """The version of ``api`` to use with this broker (highest both support, capped by VERSION_CAPS)."""
        v = self._versions.get(api)
        if v is None:
            v = protocol.pick_version(api, self.api_versions)
            v = self._versions[api] = min(v, VERSION_CAPS.get(api, v))
        return v

    def supports(self, api):
        try:
            self.version(api)
            return True
        except ProtocolError:
            return False

    def reserve(self):
        """Take a free slot of the in-flight window without waiting (True), or False when all are taken; the next
        ``send(..., reserved=True)`` uses it. A slot frees before the callback of the answer that freed it runs."""
        return self._window.acquire(blocking=False)

    def send(self, api, body, *, version=None, expect_response=True, callback=None, timeout=None,
             zero_copy=False, reserved=False):
        """Send a request without waiting for its answer; returns its ``Response`` (None when none is expected).

        Blocks while ``max_in_flight`` requests await answers (at most ``timeout``), unless ``reserved`` says the
        caller holds a slot from ``reserve()``. ``callback(body, error, response)`` runs in the reader thread when
        the answer arrives or the request fails."""
        timeout = self.request_timeout if timeout is None else timeout
        if version is None:
            version = self.version(api)
        if self._closed is not None:
            if reserved:
                self._window.release()
            raise self._closed
        if expect_response and not reserved and not self._window.acquire(timeout=timeout):
            raise RequestTimedOutError(f"{api}: {self}: in-flight window still full after {timeout:g} s")
        response = Response(api, version, zero_copy, callback, time.monotonic() + timeout) if expect_response else None
        cid = None
        try:
            with self._send_lock:
                if self._closed is not None:
                    raise self._closed
                cid = self._next_id
                self._next_id = cid + 1 if cid < 0x7FFFFFFF else 1
                frame = protocol.encode_request(api, version, body, correlation_id=cid, client_id=self.client_id)
                if response is not None:
                    response.sent_ns = time.monotonic_ns()
                    self._pending[cid] = response
                elif len(self._silent) < _MAX_SILENT:
                    self._silent.add(cid)
                self._sock.sendall(frame)
        except OSError as exc:
            error = ConnectionLostError(f"{self}: send failed: {exc}")
            self.close(error)            # fails every pending request, this one included, exactly once
            if response is None:
                raise error from exc
            return response
        except BaseException:
            if response is not None and (cid is None or self._pending.pop(cid, None) is not None):
                self._window.release()
            raise
        return response

    def call(self, api, body, *, version=None, timeout=None, zero_copy=False):
        """Send a request and wait for its decoded answer."""
        timeout = self.request_timeout if timeout is None else timeout
        return self.send(api, body, version=version, timeout=timeout, zero_copy=zero_copy).result(timeout + 1.0)

    def close(self, error=None):
        """Close the socket and fail every request in flight with ``error`` (ConnectionLostError by default)."""
        with self._send_lock:
            if self._closed is not None:
                return
            self._closed = error or ConnectionLostError(f"{self}: closed")
            pending, self._pending = self._pending, {}
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for response in pending.values():
            self._window.release()
            response._finish(None, self._closed)

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self):
        head = bytearray(4)
        try:
            while self._closed is None:
                if not self._recv_exact(memoryview(head)):
                    return
                size = int.from_bytes(head, "big", signed=True)
                if not 4 <= size <= MAX_FRAME:
                    raise ProtocolError(f"{self}: response size {size} out of range")
                frame = self._recv_frame(head, size)
                if frame is None:
                    return
                cid = int.from_bytes(frame[4:8], "big", signed=True)
                with self._send_lock:
                    response = self._pending.pop(cid, None)
                    if response is None and cid in self._silent:
                        self._silent.discard(cid)        # an answer to acks=0 (Tansu sends them): dropped
                        continue
                if response is None:
                    raise ProtocolError(f"{self}: answer with unknown correlation id {cid}")
                self._window.release()
                try:
                    _, body = protocol.decode_response(response.api, response.version,
                                                       frame if response.zero_copy else bytes(frame),
                                                       zero_copy=response.zero_copy)
                except ProtocolError as exc:
                    response._finish(None, exc)
                    raise
                response._finish(body, None)
        except (ProtocolError, ConnectionLostError) as exc:
            self.close(exc)
        except OSError as exc:
            self.close(ConnectionLostError(f"{self}: {exc}"))
        except Exception as exc:  # never leave requests waiting on a dead reader
            self.close(ConnectionLostError(f"{self}: reader failed: {exc!r}"))
            raise

    def _recv_frame(self, head, size):
        """The frame whose size prefix is ``head``, or None once closed by us. Memory follows the bytes that
        arrive: after the first chunk, each allocation is at most what has been received, so a forged size prefix
        costs no more than the bytes actually sent."""
        frame = bytearray(4 + min(size, _FIRST_CHUNK))
        frame[:4] = head
        if not self._recv_exact(memoryview(frame)[4:]):
            return None
        got, parts = len(frame) - 4, [frame]
        while got < size:
            part = bytearray(min(size - got, got))
            if not self._recv_exact(memoryview(part)):
                return None
            parts.append(part)
            got += len(part)
        return frame if len(parts) == 1 else bytearray().join(parts)

    def _recv_exact(self, view):
        """Fill ``view`` from the socket; False once the connection is closed by us. Checks deadlines while idle."""
        sock, got, n = self._sock, 0, len(view)
        while got < n:
            try:
                k = sock.recv_into(view[got:], n - got, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if self._closed is not None:
                    return False
                select.select((sock,), (), (), _TICK)
                self._check_deadlines()
                continue
            if k == 0:
                if self._closed is not None:
                    return False
                raise ConnectionLostError(f"{self}: broker closed the connection")
            got += k
        return True

    def _check_deadlines(self):
        if not self._pending:
            return
        now = time.monotonic()
        with self._send_lock:
            late = [r for r in self._pending.values() if r.deadline < now]
        if late:
            self.close(RequestTimedOutError(f"{self}: {late[0].api} got no answer within its timeout"))
