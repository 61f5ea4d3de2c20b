"""Bounded reading of landing objects: gzip decompressed as a stream, under caps.

Anyone who can write to the landing zone can write a small object that expands to gigabytes
(a "gzip bomb"), or one line of a gigabyte. Objects are therefore decompressed chunk by chunk
and split into lines as they go; an object that goes over a cap stops being read *at* the cap
and is reported whole (its key, its size and the cap), never its bytes. The work, and the
memory, of one object is bounded by its caps whatever the object holds.

Caps (``ObjectLimits``, configured on the landing zone resource):

* ``max_bytes``: decompressed bytes per object. Kinesis Data Firehose buffers at most 128 MiB
  before it writes an object, so the default (256 MiB) leaves room for any real producer; a
  compressed object already larger than the cap is over it without being read. The memory
  one object can take while it is read is about this cap (a single line must be held whole).
* ``max_lines``: lines per object (10 million by default: a 128 MiB object of 13-byte lines);
  a bomb of newlines hits this cap after a few megabytes.
* ``max_stored_bytes``: how much of an unreadable (not gzip) object the quarantine keeps.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CHUNK_BYTES = 2 << 20
"""Decompressed bytes handled at a time."""

_NEWLINE = 10
_CR = 13

UNREADABLE = "unreadable_object"
"""Quarantine reason of an object that is not a complete, valid gzip stream."""
OVER_CAP = "object_over_cap"
"""Quarantine reason of an object over one of its caps."""


@dataclass(frozen=True)
class ObjectLimits:
    """Caps on what one landing object may cost (see the module docstring)."""

    max_bytes: int = 256 << 20
    max_lines: int = 10_000_000
    max_stored_bytes: int = 64 << 10

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_lines, self.max_stored_bytes) < 1:
            raise ValueError("object limits must be positive")


DEFAULT_LIMITS = ObjectLimits()


class NotGzip(ValueError):
    """The object is not a complete, valid gzip stream (empty, truncated, bad CRC, ...)."""


class OverCap(ValueError):
    """An object went over one of its caps; reading stopped there."""

    def __init__(self, cap: str, limit: int, bytes_read: int, lines_read: int) -> None:
        super().__init__(f"over the {cap} cap of {limit:,}")
        self.cap = cap
        self.limit = limit
        self.bytes_read = bytes_read
        self.lines_read = lines_read

    def note(self, compressed_size: int) -> bytes:
        """What is kept of the object instead of its bytes: which cap, and how far it got."""
        return json.dumps(
            {
                "cap": self.cap,
                "limit": self.limit,
                "compressed_bytes": compressed_size,
                "decompressed_bytes_read": self.bytes_read,
                "lines_read": self.lines_read,
            },
            sort_keys=True,
        ).encode()


def gunzip_chunks(raw: bytes, max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The decompressed payload of ``raw`` in chunks (``gzip.decompress`` semantics: several
    members and zero padding allowed). Raises NotGzip, or OverCap past ``max_bytes``."""
    if not raw:
        raise NotGzip("zero-byte object")
    if len(raw) > max_bytes:
        raise OverCap("bytes", max_bytes, 0, 0)
    total = 0
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
        while True:
            try:
                chunk = stream.read(min(chunk_bytes, max_bytes - total + 1))
            except (OSError, EOFError, zlib.error) as error:
                raise NotGzip(str(error)) from error
            if not chunk:
                return
            total += len(chunk)
            if total > max_bytes:
                raise OverCap("bytes", max_bytes, total, 0)
            yield chunk


def capped_chunks(
    raw: bytes, limits: ObjectLimits = DEFAULT_LIMITS, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """``gunzip_chunks`` under both caps. Lines are counted as ``split_lines`` splits them
    (a last piece without a final newline is a line), one chunk at a time, so the line cap
    is hit before any per-line work. Raises NotGzip or OverCap."""
    lines = 0
    size = 0
    open_line = False
    for chunk in gunzip_chunks(raw, limits.max_bytes, chunk_bytes):
        size += len(chunk)
        lines += chunk.count(b"\n")
        if lines > limits.max_lines:
            raise OverCap("lines", limits.max_lines, size, lines)
        open_line = chunk[-1] != _NEWLINE
        yield chunk
    if open_line and lines + 1 > limits.max_lines:
        raise OverCap("lines", limits.max_lines, size, lines + 1)


def gunzip_bounded(raw: bytes, limits: ObjectLimits = DEFAULT_LIMITS) -> bytes:
    """The whole payload of a small object (a billing part), under both caps."""
    return b"".join(capped_chunks(raw, limits))


def listed_over_cap(size: int | None, limits: ObjectLimits = DEFAULT_LIMITS) -> bytes | None:
    """The over-cap note of an object whose listed (compressed) size is already over the byte
    cap, which is therefore never fetched; None when it may be read."""
    if size is None or size <= limits.max_bytes:
        return None
    return OverCap("bytes", limits.max_bytes, 0, 0).note(size)


def not_read(
    raw: bytes, error: NotGzip | OverCap, limits: ObjectLimits = DEFAULT_LIMITS
) -> tuple[str, bytes]:
    """The quarantine reason and stored bytes of an object that could not be read: the
    first ``max_stored_bytes`` of a non-gzip object, a note (never the bytes) of an over-cap
    one."""
    if isinstance(error, OverCap):
        return OVER_CAP, error.note(len(raw))
    return UNREADABLE, raw[: limits.max_stored_bytes]


def object_problem(raw: bytes, limits: ObjectLimits = DEFAULT_LIMITS) -> tuple[str, bytes] | None:
    """Why ``raw`` cannot be read under ``limits`` (as ``not_read``), or None when it can.

    Decompresses as a stream and keeps nothing but counts: memory is one chunk whatever the
    object holds. For engines that read objects elsewhere (Spark) and must first leave out
    the ones the embedded engine would not read."""
    try:
        for _ in capped_chunks(raw, limits):
            pass
    except (NotGzip, OverCap) as error:
        return not_read(raw, error, limits)
    return None


@dataclass
class SplitLines:
    """Lines of one object as Arrow-ready buffers: the line bytes back to back, and lengths."""

    data: np.ndarray  # uint8
    lengths: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.lengths)


def split_lines(
    raw: bytes, limits: ObjectLimits = DEFAULT_LIMITS, chunk_bytes: int = CHUNK_BYTES
) -> SplitLines:
    """Newline-delimited lines of a gzip object, without one Python object per line.

    A line ends at ``\\n``; one ``\\r`` before it (or at the very end) is part of the
    terminator; the empty piece after a final newline is not a line. Raises NotGzip or
    OverCap (bytes or lines), having held at most the capped amount.
    """
    data_parts: list[np.ndarray] = []
    length_parts: list[np.ndarray] = []
    carry: list[bytes] = []
    for chunk in capped_chunks(raw, limits, chunk_bytes):
        if chunk.find(b"\n") < 0:
            carry.append(chunk)
            continue
        buf = b"".join([*carry, chunk]) if carry else chunk
        arr = np.frombuffer(buf, dtype=np.uint8)
        newlines = np.flatnonzero(arr == _NEWLINE)
        last = int(newlines[-1])
        carry = [buf[last + 1 :]] if last + 1 < len(buf) else []
        starts = np.empty(len(newlines), dtype=np.int64)
        starts[0] = 0
        starts[1:] = newlines[:-1] + 1
        ends = newlines.astype(np.int64)
        has_cr = ends > starts
        has_cr[has_cr] = arr[ends[has_cr] - 1] == _CR
        ends = ends - has_cr
        keep = np.ones(last + 1, dtype=bool)
        keep[newlines] = False
        keep[ends[has_cr]] = False
        data_parts.append(arr[: last + 1][keep])
        length_parts.append(ends - starts)
    if carry:
        tail = b"".join(carry)
        if tail.endswith(b"\r"):
            tail = tail[:-1]
        data_parts.append(np.frombuffer(tail, dtype=np.uint8))
        length_parts.append(np.asarray([len(tail)], dtype=np.int64))
    if not length_parts:
        return SplitLines(np.empty(0, dtype=np.uint8), np.empty(0, dtype=np.int64))
    return SplitLines(
        np.concatenate(data_parts) if len(data_parts) > 1 else data_parts[0],
        np.concatenate(length_parts) if len(length_parts) > 1 else length_parts[0],
    )
