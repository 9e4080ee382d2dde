"""The /sql endpoint: SELECT, INSERT, UPDATE, DELETE, SET, SHOW (shared/spec/sql-subset.md §3)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from harness.limits import LIMITS
from spacetime_core.sats import U64, AlgebraicType, Identity, Timestamp

from .check import CQ, Binder, catalog, expand_rls, parse_literal
from .engine import Fragment
from .errors import SqlError
from .parser import Count, Delete, Insert, ProjCol, Select, SetVar, ShowVar, Star, TableRef, Update, parse_sql
from .subscription import SubscriptionPlan
from .vars import VARIABLES, get_var, row_limit, set_var
from .views import ViewReadTx, materialize, views_of

DML_LABEL = "__sql_dml__"


@dataclass
class QueryResult:
    """One statement's result.  SELECT/SHOW: `columns` (name, declared type; types may contain Refs into
    `db.mdef.typespace`) and `rows` (tuples of Python values).  DML/SET: empty columns and rows,
    `affected` = rows touched, `stats` as in the HTTP response, `txdata` what the commit changed (feed it
    to subscriptions exactly like a reducer's txdata)."""

    columns: list[tuple[str, AlgebraicType]]
    rows: list[tuple]
    affected: int | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"rows_inserted": 0, "rows_deleted": 0,
                                                           "rows_updated": 0})
    txdata: object = None
    tx_offset: int | None = None
    duration_us: float = 0.0


def execute(db, sql: str, sender: Identity, *, owner: bool) -> list[QueryResult]:
    """Run one /sql statement as `sender`.  Raises SqlError with the message for the HTTP 400 body."""
    t0 = time.perf_counter()
    stmt = parse_sql(sql)
    if isinstance(stmt, Select):
        res = _select(db, stmt, sender, owner)
    elif isinstance(stmt, ShowVar):
        res = _show(db, stmt)
    else:
        if not owner:
            raise SqlError(f"Caller {sender.to_hex()} is not authorized to run SQL DML statements")
        if isinstance(stmt, SetVar):
            res = _set(db, stmt)
        else:
            res = _dml(db, stmt, sender)
    res.duration_us = (time.perf_counter() - t0) * 1e6
    return [res]


# ---------------------------------------------------------------------------------------------------- SELECT


def _select(db, sel: Select, sender: Identity, owner: bool) -> QueryResult:
    cat = catalog(db)
    tables = sel.tables
    joined = len(tables) > 1
    proj = sel.proj
    if isinstance(proj, Star) and proj.table is None and joined:
        raise SqlError("SELECT * is not supported for joins")
    b = Binder(cat, tables, owner=owner, sender=sender, joined=joined)
    columns: list[tuple[str, AlgebraicType]] = []
    picks: list[tuple[int, int]] = []
    ret = 0
    if isinstance(proj, Star):
        if proj.table is not None:
            if proj.table not in b.vars:
                raise SqlError(f"`{proj.table}` is not in scope")
            ret = b.vars[proj.table]
        t = b.rels[ret].table
        columns = list(zip(t.columns, t.declared_types))
    elif isinstance(proj, Count):
        columns = [(proj.alias, U64)]
    else:
        seen: set[str] = set()
        for item in proj:
            assert isinstance(item, ProjCol)
            slot, col = b.col(item.col)
            name = item.alias or item.col.name
            if name in seen:
                raise SqlError(f"Duplicate name `{name}`")
            seen.add(name)
            picks.append((slot, col))
            columns.append((name, b.rels[slot].table.declared_types[col]))
    q = b.cq(sel)
    q.ret = ret
    cqs = [q] if owner else expand_rls(cat, q, sender)[0]
    frags = [Fragment(c) for c in cqs]
    limit = sel.limit
    views = views_of(cqs)
    with db.datastore.read() as rt:
        lim = row_limit(db)
        if lim is not None and not owner:
            est = SubscriptionPlan(sel, (), b.rels[ret].table, frags, False, views=views, db=db).estimate(rt)
            if est > lim:
                raise SqlError(f"Estimated cardinality ({est} rows) exceeds limit ({lim} rows)")
        if views:
            rt = ViewReadTx(rt, materialize(db, views, sender))
        if isinstance(proj, Count):
            n = sum(w for f in frags for _b, _env, w in f.run(rt))
            rows = [(n,)]
            return QueryResult(columns, rows[: limit if limit is not None else 1])
        rows: list[tuple] = []
        max_rows = LIMITS.sql_result_rows
        for f in frags:
            for _b, env, w in f.run(rt):
                row = env[ret] if isinstance(proj, Star) else tuple(env[s][c] for s, c in picks)
                for _ in range(w):
                    if limit is not None and len(rows) >= limit:
                        return QueryResult(columns, rows)
                    if len(rows) >= max_rows:
                        raise SqlError(f"the query produces more than {max_rows} rows (limit sql_result_rows): "
                                       "add a LIMIT or a WHERE clause")
                    rows.append(row)
    return QueryResult(columns, rows)


# ---------------------------------------------------------------------------------------------------- SET / SHOW


def _check_var(name: str) -> None:
    if name not in VARIABLES:
        raise SqlError(f"{name} is not a valid system variable")


def _set(db, stmt: SetVar) -> QueryResult:
    _check_var(stmt.name)
    value = parse_literal(stmt.value, U64, dml=True)
    set_var(db, stmt.name, value)
    return QueryResult([], [], 0)


def _show(db, stmt: ShowVar) -> QueryResult:
    _check_var(stmt.name)
    v = get_var(db, stmt.name)
    return QueryResult([("value", U64)], [] if v is None else [(v,)])


# ---------------------------------------------------------------------------------------------------- DML


def _dml_table(cat, name: str):
    if name in cat._view_defs and name not in cat.tables:
        raise SqlError(f"`{name}` is a view; DML on views is not supported")
    return cat.table(name, True)


def _dml(db, stmt, sender: Identity) -> QueryResult:
    cat = catalog(db)
    t = _dml_table(cat, stmt.table)
    stats = {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0}
    if isinstance(stmt, Insert):
        ncols = len(t.columns)
        if len(stmt.columns) != ncols:
            raise SqlError(f"The number of fields ({len(stmt.columns)}) in the INSERT does not match the number "
                           f"of columns ({ncols}) of the table `{t.name}`")
        for c in stmt.columns:
            t.column(c)
        rows = []
        for r in stmt.rows:
            if len(r) != ncols:
                raise SqlError(f"Inserting a row with {len(r)} values into `{t.name}` which has {ncols} fields")
            rows.append(tuple(parse_literal(lit, ty, dml=True) for lit, ty in zip(r, t.types, strict=True)))

        def work(tx):
            for vals in rows:
                tx.insert_values(t.id, vals)
            stats["rows_inserted"] = len(rows)
            return len(rows)
    else:
        b = Binder(cat, (TableRef(t.name),), owner=True, sender=sender, joined=False)
        frag = Fragment(CQ(list(b.rels), [], b.where(stmt.where), 0))
        if isinstance(stmt, Update):
            assigns = []
            for name, lit in stmt.assigns:
                c = t.column(name)
                assigns.append((c, parse_literal(lit, t.types[c], dml=True)))

            def work(tx):
                matches = [(bb, tuple(env[0])) for bb, env, _w in frag.run(tx)]
                if not matches:
                    return 0
                tx.delete_all_by_eq(t.id, [bb for bb, _ in matches])
                for _bb, vals in matches:
                    new = list(vals)
                    for c, v in assigns:
                        new[c] = v
                    tx.insert_values(t.id, new)
                stats["rows_updated"] = len(matches)
                return len(matches)
        else:
            assert isinstance(stmt, Delete)

            def work(tx):
                matches = [bb for bb, _env, _w in frag.run(tx)]
                n = tx.delete_all_by_eq(t.id, matches) if matches else 0
                stats["rows_deleted"] = n
                return n
    n, txdata, offset = _run_tx(db, work)
    return QueryResult([], [], n, stats, txdata, offset)


def _run_tx(db, work):
    """Run `work(tx)` in one write transaction and commit it through the database's commit path."""
    lock = getattr(db, "_lock", None) or contextlib.nullcontext()
    with lock:
        tx = db.datastore.begin()
        try:
            n = work(tx)
        except SqlError:
            tx.rollback()
            raise
        except Exception as e:  # constraint violations etc. from the datastore
            tx.rollback()
            raise SqlError(str(e)) from None
        commit_external = getattr(db, "commit_external", None)
        if commit_external is not None:
            r = commit_external(tx, DML_LABEL)
            txdata = r if hasattr(r, "tables") else getattr(r, "txdata", None)
            return n, txdata, getattr(r, "tx_offset", None)
        ts = Timestamp(int(time.time() * 1e6))
        internal = getattr(db, "_commit", None)
        if internal is not None:  # the reducers' commit path: durable, scheduler, commit listeners
            out = internal(DML_LABEL, ts, tx, time.perf_counter())
            return n, out.txdata, out.tx_offset
        # Older Database without `_commit`: the same steps by hand.
        txdata = tx.commit()
        offset = db._persist(DML_LABEL, ts, txdata) if hasattr(db, "_persist") else None
        sched = getattr(db, "scheduler", None)
        if sched is not None:
            sched.on_commit(txdata, ts.micros)
        return n, txdata, offset
