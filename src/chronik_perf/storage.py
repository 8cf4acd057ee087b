"""Kafka's on-disk log: LogSegment (.log + .index + .timeindex) and Log (a partition directory of segments)."""
from ._core import CorruptLogError, Log, LogSegment, segment_file_name

__all__ = ["LogSegment", "Log", "CorruptLogError", "segment_file_name"]
