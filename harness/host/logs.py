"""A database's module log: JSON lines in `<data_dir>/module_logs.jsonl` (or in memory without a data dir).

One object per line: {"level": "info", "target": ..., "filename": ..., "line": ..., "time": <µs since the
Unix epoch>, "function": ..., "message": ...}.  Lines are flushed (not fsynced) as they are written: logs
survive a process crash, not necessarily a power loss.  A module can log without end, so a log file is rotated
(`LogFile`): at most about twice `LIMITS.log_file_bytes` of it stays on disk.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from pathlib import Path

from harness.limits import LIMITS

from .abi import LogRecord

LEVEL_NUMBERS = {name: num for num, name in LogRecord.LEVELS.items()}
FILE_NAME = "module_logs.jsonl"


def to_json(rec: LogRecord) -> str:
    return json.dumps({"level": rec.level_name, "target": rec.target, "filename": rec.filename, "line": rec.line,
                       "time": rec.ts_us, "function": rec.function, "message": rec.message}, ensure_ascii=False)


def from_json(line: str) -> LogRecord:
    d = json.loads(line)
    return LogRecord(LEVEL_NUMBERS.get(d.get("level"), 3), d.get("target"), d.get("filename"), d.get("line"),
                     d.get("message", ""), int(d.get("time") or 0), d.get("function"))


class LogFile:
    """An append-only log of text lines that keeps at most about `2 * LIMITS.log_file_bytes` on disk: a line that
    would take the file past the limit first turns it into `<name>.1` (replacing the previous one).  Readers see
    `<name>.1` then `<name>` as one log.  Not thread-safe: callers hold their own lock."""

    def __init__(self, path: Path):
        self.path = path
        self.old = path.with_name(path.name + ".1")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._size = self._file.tell()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, line: str) -> None:
        data = line.encode("utf-8", "replace") + b"\n"
        if self._size and self._size + len(data) > LIMITS.log_file_bytes:
            self._file.close()
            os.replace(self.path, self.old)
            self._file = open(self.path, "ab")  # noqa: SIM115
            self._size = 0
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def lines(self, num_lines: int | None = None) -> list[str]:
        return read_lines(self.path, num_lines)

    def tail(self, max_bytes: int) -> list[str]:
        """The whole lines among the last `max_bytes` bytes of the log (it may be far larger than memory)."""
        want = max_bytes + 1  # one byte more tells whether the first line read starts at a line boundary
        chunks: list[bytes] = []
        for p in (self.path, self.old):
            try:
                with open(p, "rb") as f:
                    size = f.seek(0, 2)
                    f.seek(max(0, size - want))
                    chunks.insert(0, f.read())
            except FileNotFoundError:
                continue
            want -= size
            if want <= 0:
                break
        data = b"".join(chunks)
        if len(data) > max_bytes:  # cut: drop what precedes the first whole line
            data = data[data.index(b"\n") + 1:] if b"\n" in data else b""
        return data.decode("utf-8", "replace").splitlines()

    def close(self) -> None:
        self._file.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.old.unlink(missing_ok=True)


def read_lines(path: Path, num_lines: int | None = None) -> list[str]:
    """The newest `num_lines` lines (all when None) of the rotated log at `path`, oldest first, no newlines."""
    out: deque[str] = deque(maxlen=num_lines)
    for p in (path.with_name(path.name + ".1"), path):
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                out.extend(line.rstrip("\n") for line in f)
        except FileNotFoundError:
            continue
    return list(out)


class LogStore:
    def __init__(self, data_dir: Path | None):
        self.path = data_dir / FILE_NAME if data_dir else None
        self._mem: list[LogRecord] = []
        self._lock = threading.Lock()
        self._file = LogFile(self.path) if self.path else None

    def append(self, rec: LogRecord) -> None:
        with self._lock:
            if self._file is None:
                if self.path is None:
                    self._mem.append(rec)
                return
            self._file.write(to_json(rec))

    def read(self, num_lines: int | None = None) -> list[LogRecord]:
        """The newest `num_lines` records (all when None), oldest first."""
        with self._lock:
            if self.path is None:
                return list(self._mem if num_lines is None else self._mem[-num_lines:] if num_lines > 0 else [])
            if num_lines is not None and num_lines <= 0:
                return []
            lines = read_lines(self.path, num_lines)
        out = []
        for line in lines:
            try:
                out.append(from_json(line))
            except (ValueError, TypeError):  # a torn last line after a crash
                continue
        return out

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
