"""Kafka's on-disk log: LogSegment (.log + .index + .timeindex) and Log (a partition directory of segments)."""
import os
from bisect import bisect_right

from ._core import (DEFAULT_INDEX_INTERVAL_BYTES, DEFAULT_SEGMENT_BYTES, CorruptLogError, LogSegment,
                    segment_file_name)

__all__ = ["LogSegment", "Log", "CorruptLogError", "segment_file_name"]


class Log:
    """A Kafka partition directory: segments named by base offset, rolled at segment_bytes, last one active."""

    def __init__(self, directory, *, segment_bytes=DEFAULT_SEGMENT_BYTES,
                 index_interval_bytes=DEFAULT_INDEX_INTERVAL_BYTES, create=False):
        self.directory = os.fspath(directory)
        self.segment_bytes = segment_bytes
        self.index_interval_bytes = index_interval_bytes
        if create:
            os.makedirs(self.directory, exist_ok=True)
        bases = sorted(int(name[:-4]) for name in os.listdir(self.directory)
                       if name.endswith(".log") and len(name) == 24 and name[:20].isdigit())
        self.segments = [self._segment(base, False) for base in bases]
        for before, after in zip(self.segments, self.segments[1:]):
            if before.next_offset > after.base_offset:
                raise CorruptLogError(f"{before.log_path} runs to offset {before.next_offset - 1}, "
                                      f"past the next segment's base offset {after.base_offset}")

    def _segment(self, base, create):
        return LogSegment(self.directory, base, index_interval_bytes=self.index_interval_bytes,
                          max_bytes=self.segment_bytes, create=create)

    @property
    def log_start_offset(self):
        """Base offset of the first segment (0 for an empty log)."""
        return self.segments[0].base_offset if self.segments else 0

    @property
    def log_end_offset(self):
        """The offset the next appended record gets."""
        return self.segments[-1].next_offset if self.segments else 0

    def append(self, batch):
        """Append one v2 record batch, rolling a new segment when the active one is full; (first, last) offsets."""
        if not self.segments:
            self.segments.append(self._segment(0, True))
        if not self.segments[-1].can_append(batch):
            active = self.segments[-1]
            active.close()
            self.segments[-1] = self._segment(active.base_offset, False)
            self.segments.append(self._segment(active.next_offset, True))
        return self.segments[-1].append(batch)

    def _segment_index(self, offset):
        return max(bisect_right([s.base_offset for s in self.segments], offset) - 1, 0)

    def read(self, offset, max_bytes=1048576):
        """Whole batches from the one holding `offset`, crossing into later segments when one has none."""
        for segment in self.segments[self._segment_index(offset):]:
            data = segment.read(offset, max_bytes)
            if data:
                return data
        return b""

    def find_offset_for_timestamp(self, timestamp):
        """Offset of the first record whose timestamp is >= timestamp, or None."""
        for segment in self.segments:
            if segment.max_timestamp >= timestamp:
                found = segment.find_offset_for_timestamp(timestamp)
                if found is not None:
                    return found
        return None

    def recover(self):
        """recover() every segment; after a segment that lost bytes, later segments are deleted as Kafka does.

        Returns the total number of bytes removed."""
        removed = 0
        for i, segment in enumerate(self.segments):
            truncated = segment.recover()
            removed += truncated
            if truncated and i + 1 < len(self.segments):
                for later in self.segments[i + 1:]:
                    removed += later.size
                    later.close()
                    for path in (later.log_path, later.offset_index_path, later.time_index_path):
                        os.remove(path)
                del self.segments[i + 1:]
                break
        return removed

    def flush(self):
        """Flush every segment to disk."""
        for segment in self.segments:
            segment.flush()

    def close(self):
        """Close every segment (the active one gets its final time index entry and trimmed indexes)."""
        for segment in self.segments:
            segment.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
