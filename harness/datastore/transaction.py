"""Transactions: a read view of committed state and the single write transaction.

A write transaction never touches committed state before ``commit``: per table
it keeps an overlay of inserted rows (with its own small indexes, so index
scans and unique checks over its own writes stay logarithmic) and of deleted
committed rows. Every read merges overlay and committed state, so the
transaction sees its own writes, while other threads reading committed state
(through ``Datastore.read()``) never see a half-done transaction. ``commit``
applies the overlays under the commit lock; ``rollback`` just drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from .errors import (
    IndexNotUnique,
    NoSuchIndex,
    NoSuchRow,
    NoSuchTable,
    NotInTransaction,
)
from .index import Bound, Index
from .table import Table
from .txdata import TableDelta, TxData

if TYPE_CHECKING:
    from .datastore import Datastore


class InsertResult(NamedTuple):
    """Outcome of an insert/update: the stored row and the sequence values filled in.

    ``generated`` holds (column, value) for every sequence that fired, in column
    order: exactly what the ABI writes back into the module's buffer.
    """

    row: bytes
    values: tuple
    generated: tuple[tuple[int, int], ...]


class _TxTable:
    """One table's overlay inside a write transaction."""

    __slots__ = ("deleted", "indexes", "inserted", "table")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.inserted: dict[bytes, tuple] = {}
        self.deleted: dict[bytes, tuple] = {}  # committed rows deleted by this transaction
        self.indexes: list[Index] | None = None  # over ``inserted``, aligned with table.indexes; built lazily


class ReadTx:
    """Reads of committed state, merged with this transaction's overlay (empty for a read view).

    Keys are tuples of column values in index-column order (the ABI decodes the
    BSATN key/prefix/bounds at the index's column types). ``*_bsatn`` methods
    return row bytes in upstream's order (module-abi.md §8); the others decoded tuples.
    """

    def __init__(self, ds: Datastore, release: Callable[[], None]) -> None:
        self._ds = ds
        self._tables = ds._tables
        self._index_tables = ds._index_tables
        self._states: dict[int, _TxTable] = {}
        self._release = release
        self._open = True
        # (Tx) sequences this transaction advanced.  Set here so that Tx needs no __init__ of its own: one
        # constructor call per reducer call, no super() chain.
        self._seq_touched: set[tuple[int, int]] = set()

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        """End a read view (releases the commit lock). A write transaction must commit or roll back."""
        if self._open:
            self._open = False
            self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups ----------------------------------------------------------------------------------
    def _table(self, table_id: int) -> Table:
        if not self._open:
            raise NotInTransaction("transaction is closed")
        t = self._tables.get(table_id)
        if t is None:
            raise NoSuchTable(f"no table with id {table_id}")
        return t

    def _index(self, index_id: int) -> tuple[Table, int]:
        if not self._open:
            raise NotInTransaction("transaction is closed")
        t = self._index_tables.get(index_id)
        if t is None:
            raise NoSuchIndex(f"no index with id {index_id}")
        return t, t.index_pos[index_id]

    def table_id(self, name: str) -> int:
        """Table id by canonical name or alias (``NoSuchTable``)."""
        return self._ds.table_id(name)

    def index_id(self, name: str) -> int:
        """Index id by canonical name or alias (``NoSuchIndex``)."""
        return self._ds.index_id(name)

    # -- internals shared with writes ------------------------------------------------------------
    def _visible(self, t: Table) -> list[bytes]:
        st = self._states.get(t.table_id)
        if st is None:
            return list(t.rows)
        d = st.deleted
        out = [r for r in t.rows if r not in d] if d else list(t.rows)
        out.extend(st.inserted)
        return out

    def _seek(self, t: Table, pos: int, spec: tuple[str, Any]) -> list[bytes]:
        committed = t.indexes[pos].seek(spec)
        st = self._states.get(t.table_id)
        if st is None:
            return committed
        d = st.deleted
        if d and committed:
            committed = [r for r in committed if r not in d]
        if st.inserted and st.indexes is not None:
            return st.indexes[pos].seek(spec) + committed
        return committed

    def _point(self, index_id: int, key: Sequence[Any]) -> tuple[Table, list[bytes]]:
        t, pos = self._index(index_id)
        return t, self._seek(t, pos, ("point", t.indexes[pos].make_key(key)))

    def _range(self, index_id: int, prefix: Sequence[Any], start: Bound, end: Bound) -> tuple[Table, list[bytes]]:
        t, pos = self._index(index_id)
        return t, self._seek(t, pos, t.indexes[pos].range_spec(prefix, start, end))

    def _values(self, t: Table, rows: list[bytes]) -> list[tuple]:
        committed = t.rows
        st = self._states.get(t.table_id)
        if st is None:
            return [committed[r] for r in rows]
        ins = st.inserted
        return [ins[r] if r in ins else committed[r] for r in rows]

    # -- public reads -----------------------------------------------------------------------------
    def row_count(self, table_id: int) -> int:
        t = self._table(table_id)
        st = self._states.get(table_id)
        if st is None:
            return len(t.rows)
        return len(t.rows) - len(st.deleted) + len(st.inserted)

    def scan_bsatn(self, table_id: int) -> list[bytes]:
        """All visible rows: committed (minus deleted) then this transaction's inserts."""
        return self._visible(self._table(table_id))

    def scan(self, table_id: int) -> list[tuple]:
        t = self._table(table_id)
        return self._values(t, self._visible(t))

    def scan_items(self, table_id: int) -> list[tuple[bytes, tuple]]:
        """(BSATN, tuple) pairs in scan order, for SQL/subscriptions that filter on values and send bytes."""
        t = self._table(table_id)
        rows = self._visible(t)
        return list(zip(rows, self._values(t, rows), strict=True))

    def index_point_bsatn(self, index_id: int, key: Sequence[Any]) -> list[bytes]:
        """Rows whose index key equals ``key`` (all index columns); any index algorithm."""
        return self._point(index_id, key)[1]

    def index_range_bsatn(self, index_id: int, prefix: Sequence[Any], start: Bound, end: Bound) -> list[bytes]:
        """Rows whose first ``len(prefix)`` key columns equal ``prefix`` and whose next column is within bounds.

        Order: this transaction's matches, then committed ones, each in key order.
        Raises ``WrongIndexAlgo`` on a hash index.
        """
        return self._range(index_id, prefix, start, end)[1]

    def index_point(self, index_id: int, key: Sequence[Any]) -> list[tuple]:
        t, rows = self._point(index_id, key)
        return self._values(t, rows)

    def index_range(self, index_id: int, prefix: Sequence[Any], start: Bound, end: Bound) -> list[tuple]:
        t, rows = self._range(index_id, prefix, start, end)
        return self._values(t, rows)


class Tx(ReadTx):
    """The write transaction (at most one at a time per datastore)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        """Roll back unless committed: a write transaction commits only explicitly."""
        if self._open:
            self.rollback()

    def close(self) -> None:
        """Same as ``rollback`` if still open (a write transaction commits only explicitly)."""
        if self._open:
            self.rollback()

    # -- internals --------------------------------------------------------------------------------
    def _state(self, t: Table) -> _TxTable:
        st = self._states.get(t.table_id)
        if st is None:
            st = self._states[t.table_id] = _TxTable(t)
        return st

    def _fire(self, t: Table, values: tuple) -> tuple[tuple, tuple[tuple[int, int], ...]]:
        """Fill every sequence column whose value is 0."""
        lst: list | None = None
        gen = []
        for seq in t.seq_list:
            c = seq.column
            if values[c] == 0:
                if lst is None:
                    lst = list(values)
                v = seq.next()
                lst[c] = v
                gen.append((c, v))
                self._seq_touched.add((t.table_id, c))
        if lst is None:
            return values, ()
        return tuple(lst), tuple(gen)

    def _check_unique(self, t: Table, st: _TxTable, keys: list[tuple], values: tuple, ignore: bytes | None) -> None:
        tix = st.indexes
        deleted = st.deleted
        for i in t.unique_pos:
            key = keys[i]
            if tix is not None:
                hit = tix[i].get_unique(key)
                if hit is not None and hit != ignore:
                    raise t.unique_error(t.indexes[i], values)
            hit = t.indexes[i].get_unique(key)
            if hit is not None and hit != ignore and hit not in deleted:
                raise t.unique_error(t.indexes[i], values)

    def _put(self, t: Table, st: _TxTable, row: bytes, values: tuple, keys: list[tuple]) -> None:
        """Make a checked, currently invisible row visible."""
        if row in t.rows:
            del st.deleted[row]  # re-inserting a committed row this tx deleted: undo the delete
            return
        st.inserted[row] = values
        tix = st.indexes
        if tix is None:
            tix = st.indexes = [ix.empty_like(lazy_order=True) for ix in t.indexes]
        for ix, key in zip(tix, keys, strict=True):
            ix.add(key, row)

    def _insert(self, t: Table, row: bytes, values: tuple, fire: bool = True, check: bool = True) -> InsertResult:
        generated: tuple[tuple[int, int], ...] = ()
        if fire and t.seq_list:
            values, generated = self._fire(t, values)
            if generated:
                row = t.encode(values)
        if check and t.row_check is not None:
            t.row_check(values)
        st = self._states.get(t.table_id)
        if st is None:
            st = self._states[t.table_id] = _TxTable(t)
        if row in st.inserted or (row in t.rows and row not in st.deleted):
            return InsertResult(row, values, generated)  # set semantics: already there
        keys = [ix.key_of(values) for ix in t.indexes]
        if t.unique_pos:
            self._check_unique(t, st, keys, values, None)
        self._put(t, st, row, values, keys)
        return InsertResult(row, values, generated)

    def _delete_row(self, t: Table, st: _TxTable, row: bytes) -> bool:
        vals = st.inserted.pop(row, None)
        if vals is not None:
            for ix in st.indexes or ():
                ix.remove(ix.key_of(vals), row)
            return True
        vals = t.rows.get(row)
        if vals is None or row in st.deleted:
            return False
        st.deleted[row] = vals
        return True

    def _delete_rows(self, t: Table, rows: Iterable[bytes]) -> int:
        st = self._state(t)
        n = 0
        for row in rows:
            if self._delete_row(t, st, row):
                n += 1
        return n

    # -- writes -----------------------------------------------------------------------------------
    def insert(self, table_id: int, row: bytes) -> InsertResult:
        """Insert one BSATN row; sequences fire on zero values. Raises ``UniqueAlreadyExists`` leaving no trace."""
        t = self._table(table_id)
        return self._insert(t, row, t.decode_row(row))

    def insert_values(self, table_id: int, values: Sequence[Any]) -> InsertResult:
        """Python-level insert (host/system tables, SQL DML): encodes ``values`` with the table's codec."""
        t = self._table(table_id)
        values = tuple(values)
        return self._insert(t, t.encode(values), values)

    def update(self, table_id: int, index_id: int, row: bytes) -> InsertResult:
        """Replace the row whose key on the unique index ``index_id`` equals the new row's key."""
        t = self._table(table_id)
        return self._update(t, index_id, row, t.decode_row(row))

    def update_values(self, table_id: int, index_id: int, values: Sequence[Any]) -> InsertResult:
        t = self._table(table_id)
        values = tuple(values)
        return self._update(t, index_id, t.encode(values), values)

    def _update(self, t: Table, index_id: int, row: bytes, values: tuple) -> InsertResult:
        pos = t.index_pos.get(index_id)
        if pos is None:
            raise NoSuchIndex(f"no index with id {index_id} on table {t.name!r}")
        ix = t.indexes[pos]
        if not ix.unique:
            raise IndexNotUnique(f"index {ix.schema.name!r} is not unique")
        generated: tuple[tuple[int, int], ...] = ()
        if t.seq_list:
            values, generated = self._fire(t, values)
            if generated:
                row = t.encode(values)
        if t.row_check is not None:
            t.row_check(values)
        st = self._state(t)
        keys = [i.key_of(values) for i in t.indexes]
        key = keys[pos]
        old = st.indexes[pos].get_unique(key) if st.indexes is not None else None
        if old is None:
            old = ix.get_unique(key)
            if old is not None and old in st.deleted:
                old = None
        if old is None:
            raise NoSuchRow(f"no row in {t.name!r} with {ix.schema.name!r} = {tuple(values[c] for c in ix.columns)!r}")
        if old != row:
            self._check_unique(t, st, keys, values, old)
            self._delete_row(t, st, old)
            self._put(t, st, row, values, keys)
        return InsertResult(row, values, generated)

    def delete_by_point(self, index_id: int, key: Sequence[Any]) -> int:
        """Delete the rows ``index_point_bsatn`` would return; returns how many."""
        t, rows = self._point(index_id, key)
        return self._delete_rows(t, rows)

    def delete_by_range(self, index_id: int, prefix: Sequence[Any], start: Bound, end: Bound) -> int:
        """Delete the rows ``index_range_bsatn`` would return; returns how many."""
        t, rows = self._range(index_id, prefix, start, end)
        return self._delete_rows(t, rows)

    def delete_all_by_eq(self, table_id: int, rows: Iterable[bytes]) -> int:
        """Delete every visible row byte-equal to one of ``rows``; returns how many."""
        t = self._table(table_id)
        return self._delete_rows(t, (bytes(r) for r in rows))

    def clear(self, table_id: int) -> int:
        """Delete all visible rows of the table; returns how many."""
        t = self._table(table_id)
        st = self._state(t)
        n = len(t.rows) - len(st.deleted) + len(st.inserted)
        st.inserted = {}
        st.indexes = None
        st.deleted = dict(t.rows)
        return n

    # -- end --------------------------------------------------------------------------------------
    def commit(self) -> TxData:
        """Apply the overlays to committed state and return what changed."""
        if not self._open:
            raise NotInTransaction("transaction is closed")
        if not self._states and not self._seq_touched:  # wrote nothing (a read-only reducer): nothing to apply
            self._open = False  # _end(), inlined: _states is already empty
            self._release()
            return TxData({}, {})
        tables: dict[int, TableDelta] = {}
        with self._ds._commit_lock:
            for tid, st in self._states.items():
                ins, dels = st.inserted, st.deleted
                if not ins and not dels:
                    continue
                t = st.table
                if dels:
                    if len(dels) == len(t.rows):  # deleted is a subset of rows: all of them
                        t.clear_rows()
                    else:
                        for row, vals in dels.items():
                            t.remove(row, vals)
                if ins and not t.is_event:
                    for row, vals in ins.items():
                        t.add(row, vals)
                tables[tid] = TableDelta(tid, t.name, ins, dels)
            seqs = {(tid, col): self._tables[tid].sequences[col].value for tid, col in self._seq_touched}
        self._end()
        return TxData(tables, seqs)

    def rollback(self) -> None:
        """Drop the overlays; committed state is untouched. Sequence values handed out stay used."""
        if not self._open:
            raise NotInTransaction("transaction is closed")
        self._end()

    def _end(self) -> None:
        self._open = False
        self._states = {}
        self._release()
