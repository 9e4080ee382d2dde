"""CommitLog: the durable, append-only log of committed transactions of one database.

Layout of a database directory ``<dir>``::

    <dir>/commitlog/<first tx offset:020d>.log   segments (format in segment.py)
    <dir>/commitlog/.lock                         flock: one process owns the log at a time
    <dir>/snapshots/<tx offset:020d>.snap         snapshots (format in snapshot.py)

A record is one committed transaction as an opaque ``bytes`` payload; the log assigns tx offsets
0, 1, 2, ... (see record.py for the TxRecord codec the host uses for payloads).

Durability policy (``durability=``). Every append first ``os.write``s the whole frame, so a returned append
survives the death of the process (SIGKILL) under every policy; what differs is when it survives the
machine (power loss), i.e. when the data is fsynced:

* ``"every"``: ``append`` fsyncs before returning; ``append_many`` fsyncs once for the whole batch.
  When either returns, its records are durable.
* ``"group"`` (group commit): ``append`` only writes; ``commit_barrier()`` fsyncs once and returns the
  highest durable offset, so every record at or below it may be acknowledged. ``append_many`` writes a
  batch and fsyncs it once before returning. ``append`` from one thread and ``commit_barrier`` from
  another may run concurrently: the barrier fsyncs a dup of the active segment's fd outside the writer
  lock, so the writer keeps appending the next batch during the fsync.
* ``"none"``: never fsyncs (tests, benchmarks); ``commit_barrier`` returns the last written offset.

Segments roll over when the next frame would push the active one past ``max_segment_size`` (a single
larger record gets a segment of its own). On rollover the old segment is fsynced and the new file and its
directory entry are fsynced (unless ``"none"``), so a barrier only ever needs to fsync the active segment.

Unless ``"none"``, the active segment's file runs ahead of its last record with zeros (segment.py,
"Zero-filled tail"), so that an fsync flushes the records without committing a new file length.

Recovery (``open``) validates every record (checksum, consecutive offsets, contiguous segments). Zeros from
the last record of the last segment to its end are that tail: the log ends there, nothing is lost and
nothing is reported. At any other first bad byte it looks for any valid record after it: if there is none
the damage is a torn tail (usually a write cut short by a crash; it cannot tell whether the lost records
were acknowledged, and the warning says so) and it is truncated away with a warning
(``recovery_warnings`` and the ``logging`` module); if valid records follow, the damage is in the middle
of acknowledged data and ``CommitLogCorrupted`` (file, byte offset) is raised instead of dropping data.
Caveat: after a power loss, a filesystem may persist later pages of an unfsynced batch but not earlier
ones; that also reads as middle corruption and is refused, conservatively, for an operator to inspect.

Any I/O error while writing or fsyncing leaves the log failed: later calls raise ``CommitLogError`` and the
caller must reopen it (after a failed fsync the page cache can no longer be trusted, so retrying is wrong).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from .errors import CommitLogCorrupted, CommitLogError
from .segment import (
    FRAME_SIZE,
    HEADER_SIZE,
    ScanResult,
    SegmentWriter,
    datasync,
    encode_frame,
    encode_header,
    find_valid_frame,
    fsync_dir,
    header_problem,
    iter_valid_records,
    parse_segment_name,
    scan_records,
    zero_tail,
)
from .snapshot import SnapshotStore

log = logging.getLogger(__name__)

Durability = Literal["every", "group", "none"]
DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024
_POLICIES = ("every", "group", "none")


@dataclass(frozen=True)
class Recovery:
    """What a restarting host needs: the newest valid snapshot (if any) and the records after it."""

    snapshot_offset: int | None
    snapshot: bytes | None
    records: Iterator[tuple[int, bytes]]


class CommitLog:
    """Append-only, checksummed, segmented log with snapshots. See the module docstring for the policy."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        durability: Durability = "group",
        max_segment_size: int = DEFAULT_SEGMENT_SIZE,
        keep_snapshots: int = 2,
    ) -> None:
        if durability not in _POLICIES:
            raise ValueError(f"durability must be one of {_POLICIES}, not {durability!r}")
        if max_segment_size < HEADER_SIZE + FRAME_SIZE:
            raise ValueError("max_segment_size is too small")
        self.directory = Path(directory)
        self.log_dir = self.directory / "commitlog"
        self.durability: Durability = durability
        self.max_segment_size = max_segment_size
        self.recovery_warnings: list[str] = []
        self._durable_io = durability != "none"
        self._prewrite = max_segment_size if self._durable_io else 0  # zero-filled tail (segment.py) up to this
        self._lock = threading.Lock()  # writer state: active segment, offsets, sealed list
        self._sync_lock = threading.Lock()  # one barrier at a time
        self._failed: BaseException | None = None
        self._closed = False
        self._sealed: list[tuple[int, Path]] = []  # (base, path) of full segments, ascending
        self._active: SegmentWriter
        self._next_offset = 0
        self._durable_offset = -1

        new_dirs = not self.log_dir.exists()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if new_dirs and self._durable_io:
            fsync_dir(self.directory)
        self._lock_fd = os.open(self.log_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CommitLogError(f"{self.log_dir} is already open (locked by another CommitLog)") from None
            self.snapshots = SnapshotStore(self.directory / "snapshots", keep=keep_snapshots)
            self._recover()
            self._check_snapshots_not_ahead()
        except BaseException:
            if hasattr(self, "_active"):
                self._active.close()
            os.close(self._lock_fd)
            raise

    @classmethod
    def open(cls, directory: str | os.PathLike[str], **kwargs: object) -> CommitLog:
        """Open (creating if needed) and recover the log under ``directory``; same arguments as the constructor."""
        return cls(directory, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ recovery

    def _warn(self, msg: str) -> None:
        self.recovery_warnings.append(msg)
        log.warning("%s", msg)

    def _list_segments(self) -> list[tuple[int, Path]]:
        segs = []
        for p in self.log_dir.iterdir():
            base = parse_segment_name(p.name)
            if base is not None:
                segs.append((base, p))
        return sorted(segs)

    def _recover(self) -> None:
        segs = self._list_segments()
        if not segs:
            self._active = SegmentWriter.create(self.log_dir, 0, durable=self._durable_io, prewrite=self._prewrite)
            return
        expected = segs[0][0]
        for i, (base, path) in enumerate(segs):
            is_last = i == len(segs) - 1
            data = path.read_bytes()
            if base != expected:
                raise CommitLogCorrupted(path, 0, f"segment starts at tx {base} but tx {expected} was expected")
            problem = header_problem(data, base)
            if problem is not None:
                if is_last and not any(data):
                    # Created by a rollover that crashed before its header reached the disk: holds nothing.
                    self._warn(f"{path}: empty or zeroed new segment ({problem}); rewriting its header")
                    self._rewrite_empty(path, base)
                    self._active = SegmentWriter(path, base, HEADER_SIZE, 0, prewrite=self._prewrite)
                    break
                self._handle_damage(segs, i, data, 0, problem, base)
                # Only returns for a tail: the segment now holds a fresh header and nothing else.
                self._active = SegmentWriter(path, base, HEADER_SIZE, 0, prewrite=self._prewrite)
                break
            scan = scan_records(data, HEADER_SIZE, base)
            if scan.problem is not None and is_last and zero_tail(data, scan.end):
                scan = ScanResult(scan.end, scan.count, scan.next_offset, None)  # the pre-written tail
            if scan.problem is not None:
                self._handle_damage(segs, i, data, scan.end, scan.problem, scan.next_offset)
                self._active = SegmentWriter(path, base, scan.end, scan.count, prewrite=self._prewrite)
                break
            if is_last:
                self._active = SegmentWriter(path, base, scan.end, scan.count, prewrite=self._prewrite)
            else:
                self._sealed.append((base, path))
            expected = scan.next_offset
        self._next_offset = self._active.base + self._active.count
        if self._durable_io:
            # Records found on disk may have been only in the page cache of a process that died.
            for _, path in [*self._sealed, (self._active.base, self._active.path)]:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            fsync_dir(self.log_dir)
        self._durable_offset = self._next_offset - 1

    def _handle_damage(
        self, segs: list[tuple[int, Path]], i: int, data: bytes, pos: int, problem: str, expected: int
    ) -> None:
        """Truncate a torn tail, or raise CommitLogCorrupted if any valid record follows the damage."""
        path = segs[i][1]
        remaining = len(data) - pos + sum(p.stat().st_size for _, p in segs[i + 1 :])
        max_offset = expected + remaining // FRAME_SIZE + 1
        q = find_valid_frame(data, pos + 1, expected, max_offset)
        if q is not None:
            raise CommitLogCorrupted(path, pos, f"{problem}; a valid record follows at byte {q}")
        for _, later in segs[i + 1 :]:
            q = find_valid_frame(later.read_bytes(), 0, expected, max_offset)
            if q is not None:
                raise CommitLogCorrupted(path, pos, f"{problem}; valid records follow in {later.name}")
        self._warn(
            f"{path}: torn tail at byte {pos} ({problem}); truncating {len(data) - pos} bytes that hold no "
            f"complete valid record (the log now ends before tx {expected}). This is usually a write cut short "
            f"by a crash, but it may also be damage to the last records; if tx {expected} or later was "
            f"reported committed, it is lost"
        )
        if pos < HEADER_SIZE:
            self._rewrite_empty(path, segs[i][0])
        else:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, pos)
                os.fsync(fd)
            finally:
                os.close(fd)
        for _, later in segs[i + 1 :]:
            self._warn(f"{later}: removing segment after the torn tail (it holds no valid record)")
            later.unlink()
        fsync_dir(self.log_dir)

    def _rewrite_empty(self, path: Path, base: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, encode_header(base))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check_snapshots_not_ahead(self) -> None:
        """A snapshot past the log's end means acknowledged records were lost; reusing their offsets is wrong."""
        for offset in reversed(self.snapshots.offsets()):
            if offset < self._next_offset:
                return
            if self.snapshots.read(offset) is not None:
                raise CommitLogCorrupted(
                    self.snapshots.path(offset),
                    0,
                    f"snapshot at tx {offset} is ahead of the log end (tx {self._next_offset})",
                )

    # ------------------------------------------------------------------ writing

    def _check_usable(self) -> None:
        if self._closed:
            raise CommitLogError("commit log is closed")
        if self._failed is not None:
            raise CommitLogError(f"commit log failed earlier ({self._failed!r}); reopen it") from self._failed

    def _fail(self, exc: BaseException) -> CommitLogError:
        self._failed = exc
        return CommitLogError(f"commit log I/O failed: {exc}")

    def append(self, payload: bytes | bytearray | memoryview) -> int:
        """Write one record and return its tx offset (fsynced first under ``"every"``)."""
        with self._lock:  # same logic as _write for one record, minus the batching (the hot path)
            if self._closed or self._failed is not None:
                self._check_usable()
            offset = self._next_offset
            frame = encode_frame(offset, payload)
            try:
                seg = self._active
                if seg.count and seg.size + len(frame) > self.max_segment_size:
                    seg = self._roll(offset)
                seg.write(frame)
                seg.count += 1
                self._next_offset = offset + 1
                if self.durability == "every":
                    seg.datasync()
                    self._durable_offset = offset
            except OSError as exc:
                raise self._fail(exc) from exc
            return offset

    def append_many(self, payloads: Iterable[bytes | bytearray | memoryview]) -> list[int]:
        """Write a batch with one write per segment and (unless ``"none"``) one fsync; return the offsets."""
        payloads = list(payloads)
        with self._lock:
            self._check_usable()
            first = self._next_offset
            frames = [encode_frame(first + k, p) for k, p in enumerate(payloads)]  # may raise: nothing written yet
            try:
                seg = self._active
                pending: list[bytes] = []
                pending_size = 0
                for k, frame in enumerate(frames):
                    if seg.count + len(pending) > 0 and seg.size + pending_size + len(frame) > self.max_segment_size:
                        if pending:
                            seg.write(b"".join(pending))
                            seg.count += len(pending)
                            self._next_offset += len(pending)
                            pending, pending_size = [], 0
                        seg = self._roll(first + k)
                    pending.append(frame)
                    pending_size += len(frame)
                if pending:
                    seg.write(b"".join(pending) if len(pending) > 1 else pending[0])
                    seg.count += len(pending)
                    self._next_offset += len(pending)
                if self._durable_io and frames:
                    seg.datasync()
                    self._durable_offset = max(self._durable_offset, self._next_offset - 1)
            except OSError as exc:
                raise self._fail(exc) from exc
            return list(range(first, first + len(frames)))

    def _roll(self, base: int) -> SegmentWriter:
        """Seal the active segment (fsync unless "none") and start a new one at tx ``base``."""
        old = self._active
        old.trim()
        if self._durable_io:
            old.fsync()
        old.close()
        self._sealed.append((old.base, old.path))
        self._active = SegmentWriter.create(self.log_dir, base, durable=self._durable_io, prewrite=self._prewrite)
        return self._active

    def commit_barrier(self) -> int:
        """Fsync everything appended so far; return the highest durable tx offset (-1 if the log is empty).

        Safe to call from another thread than the appender: the fsync runs outside the writer lock.
        Under ``"none"`` nothing is fsynced and the last written offset is returned.
        """
        with self._sync_lock:
            with self._lock:
                self._check_usable()
                target = self._next_offset - 1
                if not self._durable_io:
                    return target
                if target <= self._durable_offset:
                    return self._durable_offset
                # Records up to target are in the active segment or in sealed ones (fsynced when sealed).
                fd = os.dup(self._active.fd)
            try:
                datasync(fd)  # the records and, when it grew, the file length (segment.py, "Zero-filled tail")
            except OSError as exc:
                with self._lock:
                    raise self._fail(exc) from exc
            finally:
                os.close(fd)
            with self._lock:
                self._durable_offset = max(self._durable_offset, target)
                return self._durable_offset

    def sync(self) -> int:
        """Alias of ``commit_barrier``."""
        return self.commit_barrier()

    # ------------------------------------------------------------------ reading

    @property
    def next_offset(self) -> int:
        """Tx offset the next append will get."""
        return self._next_offset

    @property
    def last_offset(self) -> int:
        """Tx offset of the last written record (-1 if none)."""
        return self._next_offset - 1

    @property
    def durable_offset(self) -> int:
        """Highest tx offset known to be fsynced (under "none": recovered records only)."""
        return self._durable_offset

    @property
    def first_offset(self) -> int:
        """Oldest tx offset still in the log (raised by ``compact``)."""
        with self._lock:
            return self._sealed[0][0] if self._sealed else self._active.base

    def replay(self, from_offset: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (tx offset, payload) for every record >= ``from_offset`` written before this call.

        Raises CommitLogError at once if records before ``from_offset`` were compacted away, and
        CommitLogCorrupted while iterating if a file changed since open.
        """
        with self._lock:
            self._check_usable()
            segs = [*self._sealed, (self._active.base, self._active.path)]
            active_size = self._active.size
            end_offset = self._next_offset
        if from_offset < segs[0][0]:
            raise CommitLogError(f"records before tx {segs[0][0]} were compacted; cannot replay from {from_offset}")
        return self._replay(segs, active_size, end_offset, max(from_offset, 0))

    def _replay(
        self, segs: list[tuple[int, Path]], active_size: int, end_offset: int, from_offset: int
    ) -> Iterator[tuple[int, bytes]]:
        for i, (base, path) in enumerate(segs):
            is_last = i == len(segs) - 1
            if not is_last and segs[i + 1][0] <= from_offset:
                continue
            with open(path, "rb") as f:
                data = f.read(active_size) if is_last else f.read()
            problem = header_problem(data, base)
            if problem is not None:
                raise CommitLogCorrupted(path, 0, problem)
            expected = base
            for offset, payload in iter_valid_records(data, HEADER_SIZE, len(data), base, path):
                expected = offset + 1
                if offset >= end_offset:
                    return
                if offset >= from_offset:
                    yield offset, payload
            if not is_last and expected != segs[i + 1][0]:
                raise CommitLogCorrupted(path, len(data), f"segment ends before tx {segs[i + 1][0]}")

    # ------------------------------------------------------------------ snapshots

    def write_snapshot(self, tx_offset: int, state: bytes) -> Path:
        """Atomically store ``state`` = committed state after tx ``tx_offset``; prune to ``keep_snapshots``.

        The log is made durable up to ``tx_offset`` first, so a snapshot is never ahead of the log.
        """
        if not 0 <= tx_offset < self._next_offset:
            raise ValueError(f"tx_offset {tx_offset} is not a written record (log ends before {self._next_offset})")
        if self._durable_io and tx_offset > self._durable_offset:
            self.commit_barrier()
        return self.snapshots.write(tx_offset, state)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """(tx offset, state) of the newest valid snapshot, skipping corrupt ones; None if there is none."""
        return self.snapshots.latest()

    def recover(self) -> Recovery:
        """Newest valid snapshot plus an iterator over the records after it (all records if no snapshot)."""
        snap = self.latest_snapshot()
        if snap is None:
            return Recovery(None, None, self.replay(0))
        offset, state = snap
        return Recovery(offset, state, self.replay(offset + 1))

    def compact(self, before_offset: int | None = None) -> list[Path]:
        """Delete sealed segments whose records are all < ``before_offset`` and covered by a snapshot.

        The default bound is the oldest retained snapshot, so that falling back to an older snapshot
        (when the newest is corrupt) still finds its records; an explicit bound is capped by the newest
        valid snapshot. The active segment is never deleted. Returns the deleted paths.
        """
        latest = self.latest_snapshot()
        if latest is None:
            return []
        cap = self.snapshots.offsets()[0] + 1 if before_offset is None else before_offset
        bound = min(latest[0] + 1, cap)
        deleted: list[Path] = []
        with self._lock:
            self._check_usable()
            while self._sealed:
                next_base = self._sealed[1][0] if len(self._sealed) > 1 else self._active.base
                if next_base > bound:
                    break
                _, path = self._sealed.pop(0)
                path.unlink()
                deleted.append(path)
            if deleted and self._durable_io:
                fsync_dir(self.log_dir)
        return deleted

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Fsync (unless "none") and release the files and the directory lock. Idempotent."""
        with self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._failed is None:
                    self._active.trim()
                if self._durable_io and self._failed is None:
                    self._active.fsync()
                    self._durable_offset = self._next_offset - 1
            finally:
                self._active.close()
                os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
