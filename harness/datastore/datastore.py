"""The datastore: table catalogue, locks, transactions, snapshots and replay.

Locking: one write transaction at a time (``_write_lock``, taken by ``begin``
and held until commit/rollback). Committed state changes only under
``_commit_lock`` (an RLock): a commit, a schema change, a restore. A read view
(``read()``) holds ``_commit_lock`` for its lifetime, so it sees one committed
state and only delays commits, never the writer's work. The writer itself reads
committed state without the lock: it is the only thread that can change it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from threading import get_ident
from typing import Any

from .errors import NoSuchIndex, NoSuchTable, ReplayError, SchemaError, TxAlreadyOpen
from .index import Index
from .schema import IndexSchema, TableSchema
from .table import Table
from .transaction import ReadTx, Tx
from .txdata import TableDelta, TxData


class Datastore:
    """An in-memory transactional store of BSATN rows. Ids are allocated upward from the given firsts."""

    def __init__(self, *, first_table_id: int = 4096, first_index_id: int = 4096) -> None:
        self._tables: dict[int, Table] = {}
        self._index_tables: dict[int, Table] = {}
        self._table_names: dict[str, int] = {}
        self._index_names: dict[str, int] = {}
        self._next_table_id = first_table_id
        self._next_index_id = first_index_id
        self._write_lock = threading.Lock()
        self._writer: int | None = None
        self._commit_lock = threading.RLock()

    # -- transactions -----------------------------------------------------------------------------
    def _acquire_writer(self) -> None:
        me = threading.get_ident()
        if self._writer == me:
            raise TxAlreadyOpen("this thread already has the write transaction open")
        self._write_lock.acquire()
        self._writer = me

    def _release_writer(self) -> None:
        self._writer = None
        self._write_lock.release()

    def begin(self) -> Tx:
        """Open the write transaction; blocks while another thread has one open."""
        me = get_ident()  # _acquire_writer(), inlined: once per reducer call
        if self._writer == me:
            raise TxAlreadyOpen("this thread already has the write transaction open")
        self._write_lock.acquire()
        self._writer = me
        return Tx(self, self._release_writer)

    def read(self) -> ReadTx:
        """A consistent read-only view of committed state; close it (or use ``with``) promptly."""
        self._commit_lock.acquire()
        return ReadTx(self, self._commit_lock.release)

    @property
    def in_write_tx(self) -> bool:
        return self._writer is not None

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """No write transaction open, no readers: for schema changes, restore and replay."""
        self._acquire_writer()
        try:
            with self._commit_lock:
                yield
        finally:
            self._release_writer()

    # -- catalogue --------------------------------------------------------------------------------
    def table_id(self, name: str) -> int:
        """Table id by canonical name or alias."""
        tid = self._table_names.get(name)
        if tid is None:
            raise NoSuchTable(f"no table named {name!r}")
        return tid

    def index_id(self, name: str) -> int:
        """Index id by canonical name or alias."""
        iid = self._index_names.get(name)
        if iid is None:
            raise NoSuchIndex(f"no index named {name!r}")
        return iid

    def table_ids(self) -> list[int]:
        return list(self._tables)

    def schema(self, table_id: int) -> TableSchema:
        """The table's schema with all ids assigned and unique constraints folded into ``IndexSchema.unique``."""
        t = self._tables.get(table_id)
        if t is None:
            raise NoSuchTable(f"no table with id {table_id}")
        return t.schema

    def index_schema(self, index_id: int) -> tuple[int, IndexSchema]:
        """(table_id, schema) of an index."""
        t = self._index_tables.get(index_id)
        if t is None:
            raise NoSuchIndex(f"no index with id {index_id}")
        return t.table_id, t.indexes[t.index_pos[index_id]].schema

    def _check_index(self, table: TableSchema, ix: IndexSchema, taken: dict[str, Any]) -> IndexSchema:
        """Validate ``ix`` and give it an id; ``taken`` collects names within the same schema change."""
        ncol = len(table.columns)
        if not ix.columns:
            raise SchemaError(f"index {ix.name!r} has no columns")
        if len(set(ix.columns)) != len(ix.columns) or not all(0 <= c < ncol for c in ix.columns):
            raise SchemaError(f"index {ix.name!r} has bad columns {ix.columns}")
        if ix.key_fns is not None and len(ix.key_fns) != len(ix.columns):
            raise SchemaError(f"index {ix.name!r}: key_fns must have one entry per column")
        iid = ix.index_id
        if iid is None:
            while self._next_index_id in self._index_tables or self._next_index_id in taken.values():
                self._next_index_id += 1
            iid = self._next_index_id
            self._next_index_id += 1
        elif iid in self._index_tables or iid in taken.values():
            raise SchemaError(f"index id {iid} already in use")
        for name in {ix.name, *ix.aliases}:
            if name in self._index_names or name in taken:
                raise SchemaError(f"index name {name!r} already in use")
            taken[name] = iid
        return replace(ix, index_id=iid)

    def create_table(self, schema: TableSchema) -> int:
        """Add an empty table; returns its id. Validates columns, names, unique/primary-key/sequence defs."""
        with self._exclusive():
            ncol = len(schema.columns)
            tid = schema.table_id
            if tid is None:
                while self._next_table_id in self._tables:
                    self._next_table_id += 1
                tid = self._next_table_id
                self._next_table_id += 1
            elif tid in self._tables:
                raise SchemaError(f"table id {tid} already in use")
            names = {schema.name, *schema.aliases}
            for name in names:
                if not name or name in self._table_names:
                    raise SchemaError(f"table name {name!r} empty or already in use")
            unique_sets = [frozenset(c) for c in schema.unique_constraints]
            taken: dict[str, int] = {}
            indexes = []
            for ix in schema.indexes:
                if frozenset(ix.columns) in unique_sets and not ix.unique:
                    ix = replace(ix, unique=True)
                indexes.append(self._check_index(schema, ix, taken))
            for cols in unique_sets:
                if not any(frozenset(ix.columns) == cols for ix in indexes):
                    raise SchemaError(f"unique constraint on {sorted(cols)} has no index over the same columns")
            pk = schema.primary_key
            if pk is not None and not any(ix.unique and ix.columns == (pk,) for ix in indexes):
                raise SchemaError(f"primary key column {pk} needs a unique index on exactly that column")
            seq_cols = [s.column for s in schema.sequences]
            if len(set(seq_cols)) != len(seq_cols) or not all(0 <= c < ncol for c in seq_cols):
                raise SchemaError(f"bad sequence columns {seq_cols}")
            resolved = replace(schema, table_id=tid, indexes=tuple(indexes))
            table = Table(resolved)  # validates sequences
            self._tables[tid] = table
            for name in names:
                self._table_names[name] = tid
            for ix in indexes:
                self._index_tables[ix.index_id] = table
            self._index_names.update(taken)
            return tid

    def drop_table(self, table_id: int) -> None:
        with self._exclusive():
            t = self._tables.pop(table_id, None)
            if t is None:
                raise NoSuchTable(f"no table with id {table_id}")
            self._table_names = {n: i for n, i in self._table_names.items() if i != table_id}
            for ix in t.indexes:
                del self._index_tables[ix.index_id]
            self._index_names = {n: i for n, i in self._index_names.items() if i in self._index_tables}

    def add_index(self, table_id: int, index: IndexSchema) -> int:
        """Build a new index over the committed rows; ``UniqueAlreadyExists`` (and no change) if it is violated."""
        with self._exclusive():
            t = self._tables.get(table_id)
            if t is None:
                raise NoSuchTable(f"no table with id {table_id}")
            taken: dict[str, int] = {}
            ix = self._check_index(t.schema, index, taken)
            t.add_index(Index(ix, ix.index_id))
            t.schema = replace(t.schema, indexes=t.schema.indexes + (ix,))
            self._index_tables[ix.index_id] = t
            self._index_names.update(taken)
            return ix.index_id

    def drop_index(self, index_id: int) -> None:
        with self._exclusive():
            t = self._index_tables.get(index_id)
            if t is None:
                raise NoSuchIndex(f"no index with id {index_id}")
            ix = t.indexes[t.index_pos[index_id]]
            pk = t.schema.primary_key
            is_pk = pk is not None and ix.unique and ix.columns == (pk,)
            if is_pk and sum(1 for i in t.indexes if i.unique and i.columns == (pk,)) == 1:
                raise SchemaError("cannot drop the primary key's only unique index")
            t.drop_index(index_id)
            t.schema = replace(t.schema, indexes=tuple(i for i in t.schema.indexes if i.index_id != index_id))
            del self._index_tables[index_id]
            self._index_names = {n: i for n, i in self._index_names.items() if i != index_id}

    # -- persistence ------------------------------------------------------------------------------
    def snapshot_state(self) -> dict[str, Any]:
        """Committed rows and sequence states as plain lists of bytes and ints.

        ``{"tables": [[table_id, [row_bsatn, ...]], ...], "sequences": [[table_id, column, next_value], ...]}``
        """
        with self._commit_lock:
            return {
                "tables": [[tid, list(t.rows)] for tid, t in self._tables.items() if not t.is_event],
                "sequences": [[tid, s.column, s.value] for tid, t in self._tables.items() for s in t.seq_list],
            }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Replace all committed rows and sequence values by a ``snapshot_state`` result (tables must exist).

        Tables/sequences missing from ``state`` become empty/reset to start. Atomic: on error nothing changes.
        """
        with self._exclusive():
            rows_by_table: dict[int, list[bytes]] = {}
            for tid, rows in state.get("tables", []):
                if tid not in self._tables:
                    raise NoSuchTable(f"snapshot has rows for unknown table id {tid}")
                rows_by_table[tid] = rows
            seq_values = {(t.table_id, s.column): s.start for t in self._tables.values() for s in t.seq_list}
            for tid, col, value in state.get("sequences", []):
                self._check_sequence(tid, col, value)
                seq_values[(tid, col)] = value
            staged = [(t, t.prepare_load(rows_by_table.get(tid, ()))) for tid, t in self._tables.items()]
            for t, contents in staged:
                t.install(contents)
            for (tid, col), value in seq_values.items():
                self._tables[tid].sequences[col].value = value

    def _check_sequence(self, tid: int, col: int, value: int) -> None:
        t = self._tables.get(tid)
        if t is None:
            raise NoSuchTable(f"sequence state for unknown table id {tid}")
        seq = t.sequences.get(col)
        if seq is None or not seq.min_value <= value <= seq.max_value:
            raise ReplayError(f"bad sequence state {value} for table {tid} column {col}")

    def txdata_from_plain(self, plain: dict[str, Any]) -> TxData:
        """Rebuild a ``TxData`` from ``TxData.to_plain()`` output, decoding the rows."""
        tables: dict[int, TableDelta] = {}
        for tid, inserts, deletes in plain.get("tables", []):
            t = self._tables.get(tid)
            if t is None:
                raise NoSuchTable(f"tx data for unknown table id {tid}")
            tables[tid] = TableDelta(
                tid,
                t.name,
                {bytes(r): t.decode_row(bytes(r)) for r in inserts},
                {bytes(r): t.decode_row(bytes(r)) for r in deletes},
            )
        seqs = {(tid, col): value for tid, col, value in plain.get("sequences", [])}
        return TxData(tables, seqs)

    def apply(self, txdata: TxData) -> None:
        """Replay a committed transaction (recovery): deletes must exist, inserts must be new.

        Constraints are checked; sequences do not fire (values are replayed as
        stored) and ``row_check`` is skipped. Atomic: ``ReplayError`` or a
        constraint error leaves committed state unchanged.
        """
        for (tid, col), value in txdata.sequences.items():
            self._check_sequence(tid, col, value)
        tx = self.begin()
        try:
            for tid, delta in txdata.tables.items():
                t = tx._table(tid)
                st = tx._state(t)
                for row in delta.deletes:
                    if not tx._delete_row(t, st, row):
                        raise ReplayError(f"replayed delete of a row not in table {t.name!r}")
                if t.is_event:
                    continue
                for row, values in delta.inserts.items():
                    if row in st.inserted or (row in t.rows and row not in st.deleted):
                        raise ReplayError(f"replayed insert of a row already in table {t.name!r}")
                    tx._insert(t, row, values if values is not None else t.decode_row(row), fire=False, check=False)
        except BaseException:
            tx.rollback()
            raise
        tx.commit()
        for (tid, col), value in txdata.sequences.items():
            self._tables[tid].sequences[col].value = value
