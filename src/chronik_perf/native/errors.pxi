# Named errors raised by the core; the public modules re-export them.


class CorruptRecordError(ValueError):
    """A record batch (or a varint inside one) is malformed."""


class ProtocolError(ValueError):
    """A Kafka protocol frame is malformed or names an unknown api/version."""


class CorruptLogError(ValueError):
    """A log segment or index file on disk is malformed."""
