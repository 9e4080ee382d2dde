"""A database's module log: JSON lines in `<data_dir>/module_logs.jsonl` (or in memory without a data dir).

One object per line: {"level": "info", "target": ..., "filename": ..., "line": ..., "time": <µs since the
Unix epoch>, "function": ..., "message": ...}.  Lines are flushed (not fsynced) as they are written: logs
survive a process crash, not necessarily a power loss.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path

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


class LogStore:
    def __init__(self, data_dir: Path | None):
        self.path = data_dir / FILE_NAME if data_dir else None
        self._mem: list[LogRecord] = []
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8") if self.path else None  # noqa: SIM115

    def append(self, rec: LogRecord) -> None:
        with self._lock:
            if self._file is None:
                if self.path is None:
                    self._mem.append(rec)
                return
            self._file.write(to_json(rec) + "\n")
            self._file.flush()

    def read(self, num_lines: int | None = None) -> list[LogRecord]:
        """The newest `num_lines` records (all when None), oldest first."""
        with self._lock:
            if self.path is None:
                return list(self._mem if num_lines is None else self._mem[-num_lines:] if num_lines > 0 else [])
            if not self.path.exists():
                return []
            with open(self.path, encoding="utf-8") as f:
                lines = deque(f, maxlen=num_lines) if num_lines is not None else list(f)
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
