"""Views as read-only tables for SQL, one-off queries and subscriptions.

Upstream materializes every view into a table named after it (internal `arg_hash` column hidden from
clients) and re-evaluates it when a table it read changes.  Here a view is a virtual table: `ViewInfo` gives
it the view's row columns and a synthetic negative table id, and each evaluation of a query that names a
view first calls the view (`Database.call_view`, read-only, as the query's sender) and serves its rows
through `ViewReadTx`, a read view that answers scans of those ids from the call's result and everything
else from the datastore.  Non-anonymous views return per-sender rows, so queries over them are
sender-dependent.  A view that returns a query (ViewResultHeader::RawSql) is evaluated as that query.

Subscriptions over views are kept up to date by re-evaluating after a commit that changed a table the views
read in their last evaluation (recorded by `Database.call_view(reads=...)`; a query-builder view reads its
query's tables) and diffing against the previous result (`SubscriptionPlan` does that).
"""

from __future__ import annotations

from spacetime_core.module_def import source_column_names, view_row
from spacetime_core.sats import ArrayType, resolve

from .check import TableInfo, column_index
from .errors import SqlError

QUERY_TAG = "__query__"  # a query-builder view's return type is the product {__query__: T}


def view_row_type(vdef, typespace):
    """The row product type of a view returning `Vec<T>`, `Option<T>` or `Query<T>` (None if not a product)."""
    ty = resolve(vdef.return_type, typespace)
    if isinstance(ty, ArrayType):
        ty = ty.elem
    elif getattr(ty, "is_option", lambda: False)():
        ty = ty.elements[0][1]
    elif is_query_type(ty):
        ty = ty.elements[0][1]
    ty = resolve(ty, typespace)
    return ty if getattr(ty, "is_product", lambda: False)() else None


def is_query_type(ty) -> bool:
    return (getattr(ty, "is_product", lambda: False)() and len(ty.elements) == 1
            and ty.elements[0][0] == QUERY_TAG)


class ViewInfo(TableInfo):
    """A view seen as a table: its row columns, no indexes, a synthetic id (never a datastore table id).

    `index_columns`: upstream materializes a view with a primary key with an index on (caller, key), so a
    subscription may join on the key; here such a join is evaluated by hashing the view's rows."""

    is_view = True

    def __init__(self, db, vdef, vid: int):  # noqa: D107 - TableInfo's attributes, from the view's row type
        ts = db.mdef.typespace
        row = view_row_type(vdef, ts)
        if row is None:
            raise SqlError(f"view `{vdef.name}` does not return rows of a product type")
        self.name = vdef.name
        self.tdef = None
        self.view = vdef
        self.id = vid
        self.public = vdef.public
        self.is_event = False
        self.sender_dependent = not vdef.is_anonymous
        self.has_params = bool(vdef.params.elements)
        self.columns = tuple(n if n is not None else str(i) for i, (n, _) in enumerate(row.elements))
        self.declared_types = tuple(ty for _, ty in row.elements)
        self.types = tuple(ts.resolve(ty) if ty.is_ref() else ty for ty in self.declared_types)
        ref = view_row(vdef, ts)[0]
        self.col_index = column_index(self.columns, source_column_names(db.mdef.source_typespace, ref))
        self.lookup = {}
        self.index_columns = ((vdef.primary_key,),) if vdef.primary_key is not None else ()


def views_of(cqs) -> dict[int, ViewInfo]:
    """The views the conjunctive queries read, by synthetic id."""
    return {r.table.id: r.table for q in cqs for r in q.rels if getattr(r.table, "is_view", False)}


class ViewReadTx:
    """A read view whose scans of view ids return the materialized rows; everything else is `rt`'s."""

    def __init__(self, rt, rows: dict[int, list[tuple[bytes, tuple]]]):
        self._rt = rt
        self._rows = rows

    def scan_items(self, table_id: int) -> list[tuple[bytes, tuple]]:
        rows = self._rows.get(table_id)
        return rows if rows is not None else self._rt.scan_items(table_id)

    def row_count(self, table_id: int) -> int:
        rows = self._rows.get(table_id)
        return len(rows) if rows is not None else self._rt.row_count(table_id)

    def __getattr__(self, name):
        return getattr(self._rt, name)


def materialize(db, views: dict[int, ViewInfo], sender,
                reads: set[int] | None = None) -> dict[int, list[tuple[bytes, tuple]]]:
    """Call each view as `sender` -> {view id: [(row bsatn, row values)]}.  Raises SqlError if one fails.
    `reads` receives the ids of the tables the views read (their results depend on nothing else)."""
    out = {}
    for vid, v in views.items():
        res = db.call_view(v.view.name, sender=None if v.view.is_anonymous else sender, reads=reads)
        if res.raw_sql is not None:
            out[vid] = _query_rows(db, v, res.raw_sql, sender, reads)
        elif not res.ok:
            raise SqlError(f"view `{v.name}` failed: {res.error}")
        else:
            out[vid] = [(b, tuple(r)) for b, r in zip(res.rows_bsatn, res.rows, strict=True)]
    return out


def _query_rows(db, v: ViewInfo, sql: str, sender, reads: set[int] | None) -> list[tuple[bytes, tuple]]:
    """Rows of a query-builder view: its SQL, run with the module's own visibility (no row-level security),
    reading tables only (as upstream: no views on views)."""
    from .subscription import compile_subscription

    if not sql.strip():
        return []
    try:
        plan = compile_subscription(db, sql, sender, owner=True)
    except SqlError as e:
        raise SqlError(f"view `{v.name}` returned an invalid query {sql!r}: {e}") from None
    if plan.views:
        raise SqlError(f"view `{v.name}`: a view definition cannot read from other views")
    if plan.table.declared_types != v.declared_types:
        raise SqlError(f"view `{v.name}` returned a query over `{plan.table_name}`, whose rows are not its return type")
    if reads is not None:
        reads.update(plan.table_ids)
    rows: list[tuple[bytes, tuple]] = []
    with db.datastore.read() as rt:
        for f in plan.fragments:
            for b, env, w in f.run(rt):
                rows.extend([(b, tuple(env[f.ret]))] * w)
    return rows


def placeholder(rt, views: dict[int, ViewInfo]) -> ViewReadTx:
    """`rt` with every view empty: for planning and row-limit estimates without calling the views."""
    return ViewReadTx(rt, {vid: [] for vid in views})
