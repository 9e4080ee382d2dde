"""Durable commit log of the host: segmented append-only log of transactions, plus snapshots.

See log.py for the durability policy and recovery rules, segment.py / snapshot.py / record.py for the
byte formats, and README.md for a summary.
"""

from .errors import CommitLogCorrupted, CommitLogError, RecordDecodeError
from .log import DEFAULT_SEGMENT_SIZE, CommitLog, Durability, Recovery
from .record import TxRecord, decode_tx, encode_tx
from .snapshot import SnapshotStore

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "CommitLog",
    "CommitLogCorrupted",
    "CommitLogError",
    "Durability",
    "RecordDecodeError",
    "Recovery",
    "SnapshotStore",
    "TxRecord",
    "decode_tx",
    "encode_tx",
]
