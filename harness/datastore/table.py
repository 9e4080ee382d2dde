"""Committed state of one table.

Rows live in ``rows: dict[bytes, tuple]`` keyed by their BSATN: the bytes are
what scans hand back without re-encoding, the dict gives set semantics
(byte-identical rows are one row) and a stable insertion order for table
scans, and the tuple feeds the indexes. Only a committing transaction (or a
schema/restore operation under the datastore's locks) mutates this object.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import BsatnDecodeError, UniqueAlreadyExists
from .index import Index
from .schema import TableSchema
from .sequence import Sequence


class Table:
    """Rows, indexes and sequences of one table (schema must have its ids assigned)."""

    __slots__ = (
        "decode",
        "encode",
        "index_pos",
        "indexes",
        "is_event",
        "name",
        "row_check",
        "rows",
        "schema",
        "seq_list",
        "sequences",
        "table_id",
        "unique_pos",
    )

    def __init__(self, schema: TableSchema) -> None:
        assert schema.table_id is not None
        self.schema = schema
        self.table_id: int = schema.table_id
        self.name = schema.name
        self.decode = schema.decode
        self.encode = schema.encode
        self.is_event = schema.is_event
        self.row_check = schema.row_check
        self.rows: dict[bytes, tuple] = {}
        self.indexes: list[Index] = []
        self.index_pos: dict[int, int] = {}
        self.unique_pos: tuple[int, ...] = ()
        for ix in schema.indexes:
            assert ix.index_id is not None
            self._attach(Index(ix, ix.index_id))
        self.sequences: dict[int, Sequence] = {s.column: Sequence(s) for s in schema.sequences}
        self.seq_list: tuple[Sequence, ...] = tuple(self.sequences[c] for c in sorted(self.sequences))

    def _attach(self, index: Index) -> None:
        self.indexes.append(index)
        self._reindex()

    def _reindex(self) -> None:
        self.index_pos = {ix.index_id: i for i, ix in enumerate(self.indexes)}
        self.unique_pos = tuple(i for i, ix in enumerate(self.indexes) if ix.unique)

    # -- helpers ----------------------------------------------------------------------------------
    def decode_row(self, row: bytes) -> tuple:
        """Decode with the caller's codec, mapping its ValueError to ``BsatnDecodeError``."""
        try:
            return self.decode(row)
        except BsatnDecodeError:
            raise
        except ValueError as e:
            raise BsatnDecodeError(f"row of table {self.name!r} does not decode: {e}") from e

    def unique_error(self, index: Index, values: tuple) -> UniqueAlreadyExists:
        cols = self.schema.columns
        return UniqueAlreadyExists(
            self.table_id,
            self.name,
            index.index_id,
            index.schema.name,
            tuple(cols[c] if c < len(cols) else str(c) for c in index.columns),
            tuple(values[c] for c in index.columns),
        )

    # -- committed writes (no constraint checks: the transaction already made them) ---------------
    def add(self, row: bytes, values: tuple) -> None:
        self.rows[row] = values
        for ix in self.indexes:
            ix.add(ix.key_of(values), row)

    def remove(self, row: bytes, values: tuple) -> None:
        del self.rows[row]
        for ix in self.indexes:
            ix.remove(ix.key_of(values), row)

    # -- bulk operations (schema changes, restore) -----------------------------------------------
    def _build(self, index: Index, items: Iterable[tuple[bytes, tuple]]) -> None:
        """Fill an empty ``index``; raises ``UniqueAlreadyExists`` on the first duplicate key."""
        for row, values in items:
            if index.add(index.key_of(values), row) is not None:
                raise self.unique_error(index, values)

    def add_index(self, index: Index) -> None:
        """Build ``index`` over the committed rows, then attach it; nothing changes on failure."""
        self._build(index, self.rows.items())
        self._attach(index)

    def drop_index(self, index_id: int) -> None:
        del self.indexes[self.index_pos[index_id]]
        self._reindex()

    def clear_rows(self) -> None:
        self.rows = {}
        for ix in self.indexes:
            ix.clear()

    def prepare_load(self, rows: Iterable[bytes]) -> tuple[dict[bytes, tuple], list[Index]]:
        """Decode ``rows`` and build fresh indexes over them without touching this table.

        Raises ``BsatnDecodeError``/``UniqueAlreadyExists``; ``install`` the result to swap it in.
        """
        new_rows: dict[bytes, tuple] = {}
        for row in rows:
            row = bytes(row)
            if row not in new_rows:
                new_rows[row] = self.decode_row(row)
        new_indexes = [ix.empty_like() for ix in self.indexes]
        for ix in new_indexes:
            self._build(ix, new_rows.items())
        return new_rows, new_indexes

    def install(self, contents: tuple[dict[bytes, tuple], list[Index]]) -> None:
        self.rows, self.indexes = contents
        self._reindex()
