"""Segment files: the on-disk framing of the commit log.

A segment is an append-only file ``<base>.log`` (``base`` = tx offset of its first record, 20 zero-padded
digits so that names sort like numbers). Layout, all integers little-endian::

    header  (24 bytes)  magic b"STDBPYCL" | u16 version=1 | u16 checksum=1 (CRC-32, zlib) | u32 reserved=0
                        | u64 base tx offset
    record  (16 + n)    u32 n (payload length) | u32 crc | u64 tx_offset | payload (n bytes)

``crc`` is CRC-32 over ``u32 n | u64 tx_offset | payload`` (the frame minus the crc itself). Covering the
length and offset, not only the payload, means that a zero-filled region (what a power loss typically
leaves after the last fsync) never parses as a valid empty record, and a flipped bit in any field is caught.

Zero-filled tail.  When the log fsyncs (``prewrite``), the active segment's file runs up to ``PREWRITE_BYTES``
past its last record, that region written with zeros once, and records overwrite it in place.  The fsync of
a record then only flushes data pages: appending to the end of a file also changes its size and allocates
blocks, metadata that each fsync must commit to the filesystem journal (~30 µs more per fsync on this
project's ext4 VM disk, a quarter of the fsync).  A sealed segment, or one closed cleanly, is cut back to
its last record; the zeros after the last record of the active one are what recovery expects to find there.

This module only frames and scans bytes; policy (what to fsync, what corruption to tolerate) is in log.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import CommitLogCorrupted

MAGIC = b"STDBPYCL"
VERSION = 1
CHECKSUM_CRC32 = 1
HEADER = struct.Struct("<8sHHIQ")
HEADER_SIZE = HEADER.size  # 24
FRAME = struct.Struct("<IIQ")
FRAME_SIZE = FRAME.size  # 16
_CRC_PREFIX = struct.Struct("<IQ")
MAX_PAYLOAD = 0xFFFFFFFF
PREWRITE_BYTES = 1 << 20  # zeros written ahead of the active segment's last record (when fsyncing)

_NAME_RE = re.compile(r"^(\d{20})\.log$")


def segment_name(base: int) -> str:
    return f"{base:020d}.log"


def parse_segment_name(name: str) -> int | None:
    m = _NAME_RE.match(name)
    return int(m.group(1)) if m else None


def encode_header(base: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, CHECKSUM_CRC32, 0, base)


def header_problem(buf: bytes | memoryview, base: int) -> str | None:
    """Why ``buf`` does not start with a valid header for a segment named ``base`` (None if it does)."""
    if len(buf) < HEADER_SIZE:
        return f"segment header truncated ({len(buf)} of {HEADER_SIZE} bytes)"
    magic, version, checksum, _reserved, hdr_base = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        return f"bad segment magic {bytes(magic)!r}"
    if version != VERSION or checksum != CHECKSUM_CRC32:
        return f"unsupported segment version {version} / checksum kind {checksum}"
    if hdr_base != base:
        return f"header says base tx {hdr_base} but file name says {base}"
    return None


def frame_crc(length: int, tx_offset: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(_CRC_PREFIX.pack(length, tx_offset)))


def encode_frame(tx_offset: int, payload: bytes | bytearray | memoryview) -> bytes:
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"payload of {n} bytes exceeds the u32 frame limit")
    return FRAME.pack(n, frame_crc(n, tx_offset, payload), tx_offset) + bytes(payload)


@dataclass(frozen=True)
class ScanResult:
    """Outcome of validating records sequentially: everything before ``end`` is good."""

    end: int  # byte position just past the last valid record
    count: int  # number of valid records
    next_offset: int  # tx offset the next record must carry
    problem: str | None  # why the scan stopped before the end of the buffer, None if it reached it


def scan_records(buf: bytes | memoryview, start: int, expected_offset: int, limit: int | None = None) -> ScanResult:
    """Validate records from ``start`` until ``limit`` (default: end of buffer) or the first bad one."""
    mv = memoryview(buf)
    n = len(mv) if limit is None else limit
    pos, count, expected = start, 0, expected_offset
    unpack = FRAME.unpack_from
    while pos < n:
        if n - pos < FRAME_SIZE:
            return ScanResult(pos, count, expected, f"truncated record header ({n - pos} bytes)")
        length, crc, tx_offset = unpack(mv, pos)
        end = pos + FRAME_SIZE + length
        if end > n:
            return ScanResult(
                pos, count, expected, f"record length {length} runs past end of data ({n - pos} bytes left)"
            )
        if frame_crc(length, tx_offset, mv[pos + FRAME_SIZE : end]) != crc:
            return ScanResult(pos, count, expected, f"checksum mismatch in record (expected tx {expected})")
        if tx_offset != expected:
            return ScanResult(pos, count, expected, f"record carries tx {tx_offset}, expected tx {expected}")
        pos, count, expected = end, count + 1, expected + 1
    return ScanResult(pos, count, expected, None)


def iter_valid_records(
    buf: bytes | memoryview, start: int, limit: int, expected_offset: int, path: Path
) -> Iterator[tuple[int, bytes]]:
    """Yield (tx_offset, payload) of ``buf[start:limit]``, raising CommitLogCorrupted on any bad record.

    Replay re-checks what open() already validated because files may have changed since (disk rot,
    an operator's edit): replay must never hand out a payload whose checksum does not match.
    """
    mv = memoryview(buf)
    pos, expected = start, expected_offset
    unpack = FRAME.unpack_from
    while pos < limit:
        if limit - pos < FRAME_SIZE:
            raise CommitLogCorrupted(path, pos, "truncated record header")
        length, crc, tx_offset = unpack(mv, pos)
        end = pos + FRAME_SIZE + length
        if end > limit:
            raise CommitLogCorrupted(path, pos, f"record length {length} runs past end of data")
        payload = mv[pos + FRAME_SIZE : end]
        if frame_crc(length, tx_offset, payload) != crc:
            raise CommitLogCorrupted(path, pos, f"checksum mismatch in record (expected tx {expected})")
        if tx_offset != expected:
            raise CommitLogCorrupted(path, pos, f"record carries tx {tx_offset}, expected tx {expected}")
        yield tx_offset, bytes(payload)
        pos, expected = end, expected + 1


def find_valid_frame(buf: bytes | memoryview, start: int, min_offset: int, max_offset: int) -> int | None:
    """Byte position of the first checksum-valid frame at or after ``start`` with a plausible tx offset.

    Used only after a bad record, to tell a torn tail (nothing valid follows) from corruption in the
    middle (valid, hence possibly acknowledged, records follow). Byte-by-byte, but the cost is bounded by
    the damaged region: in the middle case the next good frame is usually one record away.
    """
    mv = memoryview(buf)
    n = len(mv)
    unpack = FRAME.unpack_from
    for q in range(start, n - FRAME_SIZE + 1):
        length, crc, tx_offset = unpack(mv, q)
        if (
            min_offset <= tx_offset <= max_offset
            and q + FRAME_SIZE + length <= n
            and frame_crc(length, tx_offset, mv[q + FRAME_SIZE : q + FRAME_SIZE + length]) == crc
        ):
            return q
    return None


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created/renamed/deleted files) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentWriter:
    """The single open (active) segment. Not thread-safe by itself: CommitLog holds its lock around it."""

    def __init__(self, path: Path, base: int, size: int, count: int, *, prewrite: int = 0) -> None:
        self.path = path
        self.base = base
        self.size = size  # bytes of valid data; records are written at this position
        self.count = count  # records in this segment
        self.prewrite = prewrite  # >0: zeros ahead of `size`, up to this file length (see the module docstring)
        self.fd: int = os.open(path, os.O_WRONLY)
        self.allocated = os.fstat(self.fd).st_size  # the file's length: valid data, then zeros

    @classmethod
    def create(cls, directory: Path, base: int, *, durable: bool, prewrite: int = 0) -> SegmentWriter:
        path = directory / segment_name(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _pwrite_all(fd, encode_header(base), 0)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if durable:
            fsync_dir(directory)  # the new name must survive, or the records in it are unreachable
        return cls(path, base, HEADER_SIZE, 0, prewrite=prewrite)

    def write(self, data: bytes) -> None:
        """Write all of ``data`` after the last record; on error cut the file back so no partial frame stays
        behind."""
        end = self.size + len(data)
        try:
            if self.prewrite and end > self.allocated:
                to = min(end + PREWRITE_BYTES, max(self.prewrite, end))
                if to > end:
                    _pwrite_all(self.fd, bytes(to - self.allocated), self.allocated)
                    self.allocated = to
            _pwrite_all(self.fd, data, self.size)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
                self.allocated = self.size
            raise
        self.size = end
        if end > self.allocated:
            self.allocated = end

    def trim(self) -> None:
        """Cut the zero-filled tail off (sealing or closing the segment): the file ends at its last record."""
        if self.allocated > self.size:
            os.ftruncate(self.fd, self.size)
            self.allocated = self.size

    def fsync(self) -> None:
        os.fsync(self.fd)

    def datasync(self) -> None:
        """Flush the records (and the file length when it changed), not the timestamps."""
        datasync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pwrite_all(fd: int, data: bytes, pos: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, pos)
        view = view[written:]
        pos += written


def datasync(fd: int) -> None:
    """fdatasync (fsync where there is none, as on macOS): the data and the file length, not the timestamps."""
    getattr(os, "fdatasync", os.fsync)(fd)


def zero_tail(buf: bytes, pos: int) -> bool:
    """True when everything from ``pos`` to the end of ``buf`` is zero: the active segment's pre-written tail,
    which is where the log ends, not damage."""
    return buf.count(0, pos) == len(buf) - pos
