"""Kafka's segment indexes: OffsetIndex (.index) and TimeIndex (.timeindex), implemented in the native core."""
from ._core import CorruptLogError, OffsetIndex, TimeIndex

__all__ = ["OffsetIndex", "TimeIndex", "CorruptLogError"]
