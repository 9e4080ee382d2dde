"""Snapshots: a checksummed copy of the whole committed state as of one tx offset.

File ``<dir>/snapshots/<offset:020d>.snap``, little-endian::

    magic b"STDBSNAP" | u32 version=1 | u32 crc | u64 tx_offset | u64 n | state (n bytes)

``crc`` is CRC-32 over ``u64 tx_offset | u64 n | state``. Writes are atomic: a hidden temp file is written,
fsynced, renamed over the final name, then the directory is fsynced, so a crash leaves either the old set
of snapshots or the new one, never a half-written ``.snap``. A snapshot that fails its checks (disk rot,
a crash on a filesystem that lies about fsync) is skipped in favour of the next older one, which is why
more than one is kept.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from pathlib import Path

from .segment import fsync_dir

log = logging.getLogger(__name__)

SNAP_MAGIC = b"STDBSNAP"
SNAP_VERSION = 1
SNAP_HEADER = struct.Struct("<8sIIQQ")
_CRC_PREFIX = struct.Struct("<QQ")
_NAME_RE = re.compile(r"^(\d{20})\.snap$")
_TMP_PREFIX = ".tmp-"


def snapshot_name(tx_offset: int) -> str:
    return f"{tx_offset:020d}.snap"


def _crc(tx_offset: int, state: bytes | memoryview) -> int:
    return zlib.crc32(state, zlib.crc32(_CRC_PREFIX.pack(tx_offset, len(state))))


def encode_snapshot(tx_offset: int, state: bytes) -> bytes:
    return SNAP_HEADER.pack(SNAP_MAGIC, SNAP_VERSION, _crc(tx_offset, state), tx_offset, len(state)) + state


def decode_snapshot(data: bytes, tx_offset: int) -> bytes | None:
    """The state stored in ``data`` if it is a valid snapshot of ``tx_offset``, else None."""
    if len(data) < SNAP_HEADER.size:
        return None
    magic, version, crc, offset, n = SNAP_HEADER.unpack_from(data, 0)
    if magic != SNAP_MAGIC or version != SNAP_VERSION or offset != tx_offset:
        return None
    if len(data) != SNAP_HEADER.size + n:
        return None
    state = memoryview(data)[SNAP_HEADER.size :]
    if _crc(offset, state) != crc:
        return None
    return bytes(state)


class SnapshotStore:
    """The ``snapshots/`` directory of one database; keeps the newest ``keep`` snapshots."""

    def __init__(self, directory: Path, *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.directory = directory
        self.keep = keep
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for p in directory.iterdir():  # leftovers of a crash mid-write; the caller holds the dir lock
            if p.name.startswith(_TMP_PREFIX):
                p.unlink(missing_ok=True)

    def offsets(self) -> list[int]:
        """Offsets of all snapshot files, ascending, valid or not (names only, nothing is read)."""
        out = []
        for p in self.directory.iterdir():
            m = _NAME_RE.match(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def path(self, tx_offset: int) -> Path:
        return self.directory / snapshot_name(tx_offset)

    def read(self, tx_offset: int) -> bytes | None:
        """The state of snapshot ``tx_offset``, or None if it is missing or fails validation."""
        try:
            data = self.path(tx_offset).read_bytes()
        except FileNotFoundError:
            return None
        return decode_snapshot(data, tx_offset)

    def write(self, tx_offset: int, state: bytes) -> Path:
        if tx_offset < 0:
            raise ValueError("tx_offset must be >= 0")
        final = self.path(tx_offset)
        tmp = self.directory / f"{_TMP_PREFIX}{final.name}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(encode_snapshot(tx_offset, bytes(state)))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        with self._lock:
            os.replace(tmp, final)
            fsync_dir(self.directory)
            self._prune()
        return final

    def latest(self) -> tuple[int, bytes] | None:
        """(offset, state) of the newest snapshot that validates; corrupt newer ones are logged and skipped."""
        for offset in reversed(self.offsets()):
            state = self.read(offset)
            if state is not None:
                return offset, state
            log.warning("snapshot %s is corrupt; falling back to an older one", self.path(offset))
        return None

    def _prune(self) -> None:
        offsets = self.offsets()
        doomed = offsets[: max(0, len(offsets) - self.keep)]
        for offset in doomed:
            self.path(offset).unlink(missing_ok=True)
        if doomed:
            fsync_dir(self.directory)
