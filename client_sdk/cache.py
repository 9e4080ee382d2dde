"""The client cache: the rows a connection's subscriptions match, with row callbacks.

Semantics follow client-protocol.md §9:

* a row's identity is its primary key when the table has one, else its exact BSATN bytes;
* every insert delivered (one per matching query, so overlapping subscriptions deliver duplicates)
  increments the row's count and every delete decrements it; `on_insert` fires on 0 -> n and
  `on_delete` on n -> 0;
* on a primary-key table, a delete and an insert of the same key in one message are one
  `on_update(old, new)`;
* event-table rows are never stored: each fires `on_insert` only;
* a message is applied to every table first, then the callbacks run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .module import IndexSpec, ModuleSpec, TableSpec

log = logging.getLogger("client_sdk")

Row = TypeVar("Row")
Key = TypeVar("Key")


@dataclass
class TableDelta:
    """Raw rows for one table from one message (already merged across query sets or not; both work)."""

    table: str
    inserts: list[bytes] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)
    event: bool = False  # EventTable rows: inserts only, not stored


@dataclass
class RowEvent:
    kind: str  # "insert" | "delete" | "update"
    table: TableHandle
    old: Any = None
    new: Any = None


class _Entry:
    __slots__ = ("row", "count")

    def __init__(self, row: Any, count: int):
        self.row = row
        self.count = count


class UniqueIndex(Generic[Row, Key]):
    """`conn.db.<table>.<accessor>.find(value)`: the cached row with that value, or None."""

    def __init__(self, table: TableHandle, spec: IndexSpec):
        self._table = table
        self._spec = spec

    def find(self, *value: Any) -> Row | None:
        keys = self._table._index_lookup(self._spec, value)
        for k in keys:
            return self._table._rows[k].row
        return None


class BTreeIndex(Generic[Row, Key]):
    """`conn.db.<table>.<accessor>.filter(value)`: cached rows whose indexed columns equal `value`
    (for a multi-column index, a prefix of the columns may be given)."""

    def __init__(self, table: TableHandle, spec: IndexSpec):
        self._table = table
        self._spec = spec

    def filter(self, *value: Any) -> Iterator[Row]:
        rows = self._table._rows
        return iter([rows[k].row for k in self._table._index_lookup(self._spec, value)])


Callback = Callable[..., Any]


class TableHandle(Generic[Row]):
    """`conn.db.<table>`: iterate the cached rows, look them up by index, register row callbacks."""

    def __init__(self, spec: TableSpec):
        self.spec = spec
        self._rows: dict[Any, _Entry] = {}
        self._indexes: dict[str, dict[Any, dict[Any, None]]] = {ix.accessor: {} for ix in spec.indexes}
        self._on_insert: list[Callback] = []
        self._on_delete: list[Callback] = []
        self._on_update: list[Callback] = []
        taken: set[str] = set()
        for ix in spec.indexes:
            attr = index_attr(ix.accessor)
            while attr in taken:  # `x` suffixed to `x_index` and another index named `x_index`
                attr += "_"
            taken.add(attr)
            setattr(self, attr, (UniqueIndex if ix.unique else BTreeIndex)(self, ix))
            if attr != ix.accessor and callable(getattr(self, ix.accessor, None)):
                setattr(self, ix.accessor, _HandleMethod(getattr(self, ix.accessor), ix.accessor, attr, spec.name))

    # ------------------------------------------------------------------ reading
    @property
    def table_name(self) -> str:
        """The table's name in the module (not `name`: a column named `name` keeps its index accessor)."""
        return self.spec.name

    def count(self) -> int:
        return len(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def iter(self) -> Iterator[Row]:
        return iter([e.row for e in self._rows.values()])

    def __iter__(self) -> Iterator[Row]:
        return self.iter()

    def find_by_pk(self, value: Any) -> Row | None:
        if self.spec.primary_key is None:
            raise TypeError(f"table {self.table_name!r} has no primary key")
        e = self._rows.get(self.spec.value_key(self.spec.primary_key, value))
        return e.row if e else None

    def ref_count(self, row: Any) -> int:
        """How many subscribed queries currently deliver `row` (0 if it is not cached)."""
        e = self._rows.get(self._row_key(row, None))
        return e.count if e else 0

    # ------------------------------------------------------------------ callbacks
    def on_insert(self, cb: Callable[[Any, Row], Any]) -> Callable[[Any, Row], Any]:
        """`cb(ctx, row)` when a row enters the cache (or an event-table row arrives). Returns `cb`."""
        self._on_insert.append(cb)
        return cb

    def on_delete(self, cb: Callable[[Any, Row], Any]) -> Callable[[Any, Row], Any]:
        """`cb(ctx, row)` when a row leaves the cache. Returns `cb`."""
        self._on_delete.append(cb)
        return cb

    def on_update(self, cb: Callable[[Any, Row, Row], Any]) -> Callable[[Any, Row, Row], Any]:
        """`cb(ctx, old, new)` when a primary-key row is replaced in one transaction. Returns `cb`."""
        if self.spec.primary_key is None:
            raise TypeError(f"table {self.table_name!r} has no primary key, so its rows are never updated")
        self._on_update.append(cb)
        return cb

    def remove_on_insert(self, cb: Callback) -> None:
        self._on_insert.remove(cb)

    def remove_on_delete(self, cb: Callback) -> None:
        self._on_delete.remove(cb)

    def remove_on_update(self, cb: Callback) -> None:
        self._on_update.remove(cb)

    # ------------------------------------------------------------------ internals
    def _row_key(self, row: Any, raw: bytes | None) -> Any:
        if self.spec.primary_key is not None:
            return self.spec.pk_key(row)
        return raw if raw is not None else self.spec.encode_row(row)

    def _ix_key(self, ix: IndexSpec, row: Any) -> tuple:
        return tuple(self.spec.column_key(row, c) for c in ix.columns)

    def _index_lookup(self, ix: IndexSpec, value: tuple) -> list[Any]:
        if len(value) == 1 and isinstance(value[0], tuple) and len(ix.columns) > 1:
            value = value[0]
        if not value or len(value) > len(ix.columns):
            raise TypeError(f"index {ix.accessor!r} takes 1 to {len(ix.columns)} values, got {len(value)}")
        key = tuple(self.spec.value_key(c, v) for c, v in zip(ix.columns, value))
        idx = self._indexes[ix.accessor]
        if len(key) == len(ix.columns):
            return list(idx.get(key, ()))
        n = len(key)
        return [rk for k, rks in idx.items() if k[:n] == key for rk in rks]

    def _store(self, key: Any, row: Any, count: int) -> None:
        old = self._rows.get(key)
        if old is not None:
            self._unindex(key, old.row)
        self._rows[key] = _Entry(row, count)
        for ix in self.spec.indexes:
            self._indexes[ix.accessor].setdefault(self._ix_key(ix, row), {})[key] = None

    def _remove(self, key: Any) -> None:
        e = self._rows.pop(key)
        self._unindex(key, e.row)

    def _unindex(self, key: Any, row: Any) -> None:
        for ix in self.spec.indexes:
            idx = self._indexes[ix.accessor]
            k = self._ix_key(ix, row)
            bucket = idx.get(k)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del idx[k]

    def _clear(self) -> dict[Any, _Entry]:
        rows = self._rows
        self._rows = {}
        self._indexes = {ix.accessor: {} for ix in self.spec.indexes}
        return rows

    def _apply(self, inserts: list[bytes], deletes: list[bytes], event: bool) -> list[RowEvent]:
        spec = self.spec
        if event or spec.is_event:
            return [RowEvent("insert", self, new=spec.decode_row(b)) for b in inserts]
        # key -> [n_ins, n_del, new_row]
        plan: dict[Any, list] = {}
        if spec.primary_key is None:
            for b in deletes:
                plan.setdefault(bytes(b), [0, 0, None])[1] += 1
            for b in inserts:
                p = plan.setdefault(bytes(b), [0, 0, None])
                p[0] += 1
                if p[2] is None:
                    p[2] = spec.decode_row(b)
        else:
            for b in deletes:
                plan.setdefault(spec.pk_key(spec.decode_row(b)), [0, 0, None])[1] += 1
            for b in inserts:
                row = spec.decode_row(b)
                p = plan.setdefault(spec.pk_key(row), [0, 0, None])
                p[0] += 1
                p[2] = row
        out: list[RowEvent] = []
        for key, (n_ins, n_del, new) in plan.items():
            e = self._rows.get(key)
            old_count = e.count if e else 0
            if n_del > old_count:
                log.debug("table %s: %d deletes of a row cached %d times", self.table_name, n_del, old_count)
            count = max(0, old_count - n_del) + n_ins
            if old_count == 0:
                if count:
                    self._store(key, new, count)
                    out.append(RowEvent("insert", self, new=new))
            elif count == 0:
                self._remove(key)
                out.append(RowEvent("delete", self, old=e.row))
            elif n_ins and n_del and spec.primary_key is not None:
                old = e.row
                self._store(key, new, count)
                out.append(RowEvent("update", self, old=old, new=new))
            else:
                e.count = count
        return out


class _HandleMethod:
    """A table-handle method whose name is also an index accessor (a column `count`): calling it is the method,
    but `.find` / `.filter` on it raise, naming the attribute the index really lives at, instead of silently
    doing something else."""

    __slots__ = ("_fn", "_accessor", "_attr", "_table")

    def __init__(self, fn: Callable[..., Any], accessor: str, attr: str, table: str):
        self._fn, self._accessor, self._attr, self._table = fn, accessor, attr, table

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"`{self._table}.{self._accessor}` is the table handle's method; the index "
                             f"{self._accessor!r} is `{self._table}.{self._attr}` (use .{self._attr}.{name})")


# Attributes a TableHandle sets on itself; an index accessor with one of these names (or any TableHandle class
# attribute, or a leading underscore) is exposed as `<accessor>_index`.
_INSTANCE_ATTRS = frozenset({"spec"})


def index_attr(accessor: str) -> str:
    """The attribute of a table handle holding index `accessor`: the accessor itself, or `<accessor>_index`
    where it would hide one of the handle's own attributes (`count`, `iter`, `on_insert`, `spec`, ...)."""
    if accessor.startswith("_") or accessor in _INSTANCE_ATTRS or hasattr(TableHandle, accessor):
        return f"{accessor}_index"
    return accessor


class ClientCache:
    """All tables of one connection. `apply` changes rows and returns the events; `fire` runs callbacks."""

    def __init__(self, module: ModuleSpec, handle_classes: dict[str, type[TableHandle]] | None = None):
        self.module = module
        classes = handle_classes or {}
        self.tables: dict[str, TableHandle] = {
            name: classes.get(name, TableHandle)(spec) for name, spec in module.tables.items()
        }
        self._stale: dict[str, dict[Any, _Entry]] | None = None

    def table(self, name: str) -> TableHandle:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r} in this module's bindings") from None

    def apply(self, deltas: Iterable[TableDelta]) -> list[RowEvent]:
        """Apply one message's rows: merged per table, then applied table by table."""
        merged: dict[str, TableDelta] = {}
        for d in deltas:
            m = merged.get(d.table)
            if m is None:
                m = merged[d.table] = TableDelta(d.table, [], [], d.event)
            m.inserts.extend(d.inserts)
            m.deletes.extend(d.deletes)
            m.event = m.event or d.event
        events: list[RowEvent] = []
        for name, d in merged.items():
            t = self.tables.get(name)
            if t is None:
                log.warning("rows for table %r, which the bindings do not know; ignored", name)
                continue
            events.extend(t._apply(d.inserts, d.deletes, d.event))
        if self._stale is not None:
            return [e for e in events if e.kind == "insert" and (e.table.spec.is_event)]
        return events

    # -- resynchronisation after a reconnect: rebuild from fresh subscriptions, then diff
    @property
    def resyncing(self) -> bool:
        return self._stale is not None

    def begin_resync(self) -> None:
        """Forget the counts (the new server session re-sends every row) but remember the rows."""
        if self._stale is None:
            self._stale = {name: t._clear() for name, t in self.tables.items()}
        else:  # a reconnect during a resync: keep the original snapshot
            for t in self.tables.values():
                t._clear()

    def end_resync(self) -> list[RowEvent]:
        """The events that turn the pre-disconnect cache into the current one."""
        stale, self._stale = self._stale, None
        if stale is None:
            return []
        events: list[RowEvent] = []
        for name, t in self.tables.items():
            before = stale.get(name, {})
            now = t._rows
            pk = t.spec.primary_key is not None
            for key, e in before.items():
                cur = now.get(key)
                if cur is None:
                    events.append(RowEvent("delete", t, old=e.row))
                elif pk and t.spec.encode_row(cur.row) != t.spec.encode_row(e.row):
                    events.append(RowEvent("update", t, old=e.row, new=cur.row))
            for key, e in now.items():
                if key not in before:
                    events.append(RowEvent("insert", t, new=e.row))
        return events

    def clear(self) -> list[RowEvent]:
        """Drop every row (e.g. on a final disconnect); returns no events."""
        self._stale = None
        for t in self.tables.values():
            t._clear()
        return []

    @staticmethod
    def fire(events: Iterable[RowEvent], ctx: Any) -> None:
        for ev in events:
            t = ev.table
            if ev.kind == "insert":
                cbs, args = t._on_insert, (ctx, ev.new)
            elif ev.kind == "delete":
                cbs, args = t._on_delete, (ctx, ev.old)
            else:
                cbs, args = t._on_update, (ctx, ev.old, ev.new)
            for cb in list(cbs):
                try:
                    cb(*args)
                except Exception:
                    log.exception("%s callback on table %s raised", ev.kind, t.table_name)
