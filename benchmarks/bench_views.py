"""Subscriptions to views: per-transaction cost of keeping S subscribers' view results up to date.

    python benchmarks/bench_views.py [SUBSCRIBERS] [ROWS]

An `item` table (ROWS rows, an index on `owner`) and a per-sender view `my_items` (the caller's items through
that index).  S identities each subscribe to `SELECT * FROM my_items`; the baseline is the same rows as a
table query, `SELECT * FROM item WHERE owner = :sender` (incremental delta, no module code).  Measured per
transaction: one inserting an item for one subscriber (every view re-runs: each read `item`), and one
touching only an unrelated table (no view re-runs: they did not read it).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.host import Database  # noqa: E402
from harness.sql import QueryCache  # noqa: E402
from module_sdk.build import build  # noqa: E402
from spacetime_core.sats import Identity  # noqa: E402

MODULE = '''
from module_sdk import Identity, Query, ReducerContext, ViewContext, index, primary_key, reducer, table, u32, view


@table(public=True)
class Item:
    id: u32 = primary_key(auto_inc=True)
    owner: Identity = index()
    name: str


@table(public=True)
class Other:
    id: u32 = primary_key(auto_inc=True)


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.item.insert(Item(id=0, owner=ctx.sender, name=name))


@reducer
def poke(ctx: ReducerContext) -> None:
    ctx.db.other.insert(Other(id=0))


@view
def my_items(ctx: ViewContext) -> list[Item]:
    return list(ctx.db.item.owner.filter(ctx.sender))


@view
def my_items_q(ctx: ViewContext) -> Query[Item]:
    return ctx.from_.item.where(lambda i: i.owner == ctx.sender)
'''
OWNER = Identity.from_bytes(bytes(range(32)))


def timed(db, cache, reducer, args, who, repeat=5) -> float:
    best = float("inf")
    for _ in range(repeat):
        out = db.call_reducer(reducer, args, sender=who)
        t0 = time.perf_counter()
        with db.datastore.read() as rt:
            cache.evaluate(out.txdata, rt)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    subs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "views_bench.py").write_text(MODULE)
        wasm = build(Path(d) / "views_bench.py", Path(d) / "m.wasm").output.read_bytes()
    db = Database.create(wasm, owner=OWNER)
    people = [Identity.from_bytes(i.to_bytes(32, "little")) for i in range(1, subs + 1)]
    tx = db.datastore.begin()
    tid = db.table_id("item")
    for i in range(rows):
        tx.insert_values(tid, (0, people[i % subs], f"item{i}"))  # 0: the id sequence assigns one
    tx.commit()
    print(f"item: {rows} rows, {subs} subscribers (one identity each, {rows // subs} items each)")
    results = {}
    for label, sql in (("table query", "SELECT * FROM item WHERE owner = :sender"), ("view", "SELECT * FROM my_items"),
                       ("query view", "SELECT * FROM my_items_q")):
        cache = QueryCache(db)
        plans = [cache.subscribe(sql, p) for p in people]
        with db.datastore.read() as rt:
            for plan in plans:
                plan.initial(rt)
        results[label] = (timed(db, cache, "add", ["x"], people[0]), timed(db, cache, "poke", [], people[0]))
    print(f"{'transaction':<38} {'table query':>12} {'view':>17} {'Query[Row] view':>17}")
    for i, what in enumerate(("insert an item (all views re-run)", "unrelated table (no view re-runs)")):
        base, v, q = (results[k][i] for k in ("table query", "view", "query view"))
        cells = "".join(f" {x * 1e6:>9.1f}µs {x / base:>5.0f}×" for x in (v, q))
        print(f"{what:<38} {base * 1e6:>10.1f}µs{cells}")
    db.close()


if __name__ == "__main__":
    main()
