"""Exceptions of the commit log.

Kept in their own module so that callers (the host, tests) can import them without pulling in the
I/O machinery, and so that every layer raises the same types.
"""

from __future__ import annotations

from pathlib import Path


class CommitLogError(Exception):
    """Any failure of the commit log (I/O, misuse, a log left unusable by an earlier I/O error)."""


class CommitLogCorrupted(CommitLogError):
    """Acknowledged data is damaged: recovery refuses to guess rather than silently drop it.

    ``path`` and ``byte_offset`` locate the first bad byte range (the start of the bad record or
    header) so that an operator can inspect or salvage the file.
    """

    def __init__(self, path: str | Path, byte_offset: int, reason: str) -> None:
        self.path = Path(path)
        self.byte_offset = byte_offset
        self.reason = reason
        super().__init__(f"{self.path}: corrupt at byte {byte_offset}: {reason}")


class RecordDecodeError(ValueError):
    """A ``TxRecord`` payload is malformed (truncated, trailing bytes, bad UTF-8, unknown version)."""
