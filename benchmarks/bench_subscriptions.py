"""Subscription evaluation: incremental delta vs full re-evaluation for a one-row transaction.

    python benchmarks/bench_subscriptions.py [N_ROWS]

A 10k-row `player` table (tests/data/sqlmod).  For each query, one transaction updates a single row;
the baseline is what a naive host does (evaluate the query before and after and diff the two bags),
the measured figure is `SubscriptionPlan.delta` on the transaction's changed rows.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.host import Database  # noqa: E402
from harness.sql import QueryCache, compile_subscription  # noqa: E402
from module_sdk.build import build  # noqa: E402
from spacetime_core.sats import Identity  # noqa: E402

OWNER = Identity.from_bytes(bytes(range(32)))
QUERIES = [
    "SELECT * FROM player WHERE age > 50 AND name <> 'p7'",
    "SELECT p.* FROM player p JOIN guild g ON p.guild_id = g.id WHERE g.rank > 1",
]


def best(fn, repeat=30):
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as d:
        wasm = build(str(Path(__file__).resolve().parents[1] / "tests/data/sqlmod"), Path(d) / "m.wasm")
        db = Database.create(wasm.output.read_bytes(), owner=OWNER)
    tx = db.datastore.begin()
    pid, gid = db.table_id("player"), db.table_id("guild")
    pk = db.datastore.index_id("player_id_idx_btree")
    for g in range(100):
        tx.insert_values(gid, (g, f"g{g}", g % 4))
    for i in range(n):
        tx.insert_values(pid, (i, f"p{i}", i % 100, OWNER, i % 100, None, b"", 0.0, True, 0, 0))
    tx.commit()
    print(f"player: {n} rows, guild: 100 rows; one transaction updating one player row")
    print(f"{'query':<72} {'full re-eval':>12} {'delta':>10} {'ratio':>8}")
    for sql in QUERIES:
        plan = compile_subscription(db, sql, OWNER)
        old = (7, "p7", 7, OWNER, 7, None, b"", 0.0, True, 0, 0)
        new = (7, "p7", 77, OWNER, 7, None, b"", 0.0, True, 0, 0)
        state = [old, new]

        def one_tx(state=state):
            tx = db.datastore.begin()
            tx.delete_by_point(pk, (7,))
            tx.insert_values(pid, state[1])
            state.reverse()
            return tx.commit()

        txs = [one_tx() for _ in range(2)]  # old->new, new->old
        with db.datastore.read() as rt:
            before = Counter(plan.initial(rt))

        def full(plan=plan, before=before):
            with db.datastore.read() as rt:
                after = Counter(plan.initial(rt))
            d = Counter(after)
            d.subtract(before)
            return d

        def incremental(plan=plan, txs=txs):
            plan._memo = None
            with db.datastore.read() as rt:
                return plan.delta(txs[1], rt)

        t_full = best(full, 10)
        t_inc = best(incremental, 200)
        print(f"{sql:<72} {t_full * 1e3:>9.2f} ms {t_inc * 1e6:>7.1f} us {t_full / t_inc:>7.0f}x")
    cache = QueryCache(db)
    plans = [cache.subscribe(QUERIES[0], Identity.from_u256(i + 1)) for i in range(100)]
    txd = txs[1]

    def fanout():
        for p in plans:
            p._memo = None
        with db.datastore.read() as rt:
            cache.evaluate(txd, rt)
            for p in plans:
                p.delta(txd, rt)

    print(f"100 subscribers of one query through QueryCache: {best(fanout, 50) * 1e6:.1f} us per transaction "
          f"({len(cache)} plan)")


if __name__ == "__main__":
    main()
