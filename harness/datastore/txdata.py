"""What a committed transaction changed: input for the commit log, subscriptions and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TableDelta:
    """Rows one transaction inserted into / deleted from one table, BSATN -> decoded tuple, in order.

    A row both inserted and deleted by the same transaction appears in neither;
    for an event table ``inserts`` holds the rows that never reached committed state.
    """

    table_id: int
    table_name: str
    inserts: dict[bytes, tuple] = field(default_factory=dict)
    deletes: dict[bytes, tuple] = field(default_factory=dict)


@dataclass
class TxData:
    """Per-table deltas plus the sequences' next values after the transaction ((table_id, column) -> value)."""

    tables: dict[int, TableDelta] = field(default_factory=dict)
    sequences: dict[tuple[int, int], int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True if no row changed (sequence advances alone do not count)."""
        return not self.tables

    def to_plain(self) -> dict[str, Any]:
        """Plain lists of bytes and ints for a commit log; ``Datastore.txdata_from_plain`` reverses it."""
        return {
            "tables": [[d.table_id, list(d.inserts), list(d.deletes)] for d in self.tables.values()],
            "sequences": [[tid, col, v] for (tid, col), v in self.sequences.items()],
        }
