# Byte layout of a Kafka record batch, magic v2 (the log and the wire share it).
#
#   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 |
#   crc uint32 (CRC32C of everything after it) | attributes int16 | lastOffsetDelta int32 |
#   baseTimestamp int64 | maxTimestamp int64 | producerId int64 | producerEpoch int16 |
#   baseSequence int32 | recordCount int32 | records...
# batchLength counts the bytes after the batchLength field itself.

cdef enum:
    BATCH_BASE_OFFSET = 0
    BATCH_LENGTH = 8
    BATCH_PARTITION_LEADER_EPOCH = 12
    BATCH_MAGIC = 16
    BATCH_CRC = 17
    BATCH_ATTRIBUTES = 21
    BATCH_LAST_OFFSET_DELTA = 23
    BATCH_BASE_TIMESTAMP = 27
    BATCH_MAX_TIMESTAMP = 35
    BATCH_PRODUCER_ID = 43
    BATCH_PRODUCER_EPOCH = 51
    BATCH_BASE_SEQUENCE = 53
    BATCH_RECORD_COUNT = 57
    BATCH_HEADER_SIZE = 61
    LOG_OVERHEAD = 12            # baseOffset + batchLength: bytes before batchLength's count starts
    BATCH_MIN_LENGTH = 49        # BATCH_HEADER_SIZE - LOG_OVERHEAD
    CURRENT_MAGIC = 2

    ATTR_COMPRESSION_MASK = 0x07
    ATTR_TIMESTAMP_TYPE = 0x08
    ATTR_TRANSACTIONAL = 0x10
    ATTR_CONTROL = 0x20
    ATTR_DELETE_HORIZON = 0x40
