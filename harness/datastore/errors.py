"""Datastore exceptions.

Each ABI-visible condition has its own class whose ``errno`` is the number the
ABI layer returns to the module (module-abi.md §3). Classes with ``errno = None``
are host bugs or host-internal conditions: the ABI layer should trap on them.
"""

from __future__ import annotations

from typing import Any


class DatastoreError(Exception):
    """Base class of every datastore error."""

    errno: int | None = None


class NotInTransaction(DatastoreError):
    """The transaction was already committed or rolled back."""

    errno = 2


class BsatnDecodeError(DatastoreError, ValueError):
    """A row, key or bound did not decode (or has the wrong arity) at the expected type."""

    errno = 3


class NoSuchTable(DatastoreError, LookupError):
    """Unknown table id or name."""

    errno = 4


class NoSuchIndex(DatastoreError, LookupError):
    """Unknown index id or name, or an index that does not belong to the given table."""

    errno = 5


class WrongIndexAlgo(DatastoreError):
    """A range scan/delete on a hash index (upstream traps; the ABI layer may choose to)."""

    errno = 10


class UniqueAlreadyExists(DatastoreError):
    """An insert/update/new index would put two rows with one key into a unique index."""

    errno = 12

    def __init__(
        self,
        table_id: int,
        table_name: str,
        index_id: int,
        index_name: str,
        columns: tuple[str, ...],
        value: tuple[Any, ...],
    ) -> None:
        self.table_id = table_id
        self.table_name = table_name
        self.index_id = index_id
        self.index_name = index_name
        self.columns = columns
        self.value = value
        cols = ", ".join(repr(c) for c in columns)
        super().__init__(
            f"Unique constraint violation {index_name!r} in table {table_name!r}: column(s): {cols} value: {value!r}"
        )


class ScheduleAtDelayTooLong(DatastoreError):
    """A scheduled row asks for a delay >= 2^36-1 ms (raised by the caller's ``row_check``)."""

    errno = 13


class IndexNotUnique(DatastoreError):
    """``update`` was given a non-unique index."""

    errno = 14


class NoSuchRow(DatastoreError, LookupError):
    """``update`` found no row with the new row's key."""

    errno = 15


class TxAlreadyOpen(DatastoreError):
    """This thread already holds the write transaction (a second ``begin`` would deadlock)."""


class SchemaError(DatastoreError, ValueError):
    """An invalid table/index/sequence definition or a duplicate name."""


class ReplayError(DatastoreError):
    """``apply``/``restore_state`` data does not match the current committed state."""
