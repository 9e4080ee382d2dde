"""Throughput of harness.datastore vs a plain dict/list doing the same work in the same run.

Run: python benchmarks/bench_datastore.py [--quick]
Table: person(id u64 pk auto_inc, name str unique, age u32 btree, city str hash), rows ~30 bytes.
Baselines decode the row too (the datastore must), but keep one dict and no transaction.
"""

from __future__ import annotations

import bisect
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.datastore import (  # noqa: E402
    Datastore,
    Excluded,
    Included,
    IndexAlgo,
    IndexSchema,
    SequenceSchema,
    TableSchema,
)


def encode(v: tuple) -> bytes:
    name, city = v[1].encode(), v[3].encode()
    return struct.pack(f"<QI{len(name)}sII{len(city)}s", v[0], len(name), name, v[2], len(city), city)


def decode(b: bytes) -> tuple:
    try:
        id_, n = struct.unpack_from("<QI", b, 0)
        name = b[12 : 12 + n].decode()
        age, m = struct.unpack_from("<II", b, 12 + n)
        city = b[20 + n : 20 + n + m].decode()
    except (struct.error, UnicodeDecodeError) as e:
        raise ValueError(str(e)) from e
    if 20 + n + m != len(b):
        raise ValueError("trailing bytes")
    return (id_, name, age, city)


def make() -> tuple[Datastore, int, int, int]:
    ds = Datastore()
    tid = ds.create_table(
        TableSchema(
            "person",
            ("id", "name", "age", "city"),
            decode,
            encode,
            indexes=(
                IndexSchema("person_id_idx_btree", (0,)),
                IndexSchema("person_name_idx_btree", (1,)),
                IndexSchema("person_age_idx_btree", (2,)),
                IndexSchema("person_city_idx_hash", (3,), algo=IndexAlgo.HASH),
            ),
            unique_constraints=((0,), (1,)),
            sequences=(SequenceSchema(0),),
            primary_key=0,
        )
    )
    return ds, tid, ds.index_id("person_id_idx_btree"), ds.index_id("person_age_idx_btree")


def rate(fn: Callable[[], object], ops_per_call: int, seconds: float) -> float:
    """Operations per second of ``fn`` (each call does ``ops_per_call`` operations)."""
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            fn()
        n += 10
        now = time.perf_counter()
        if now >= deadline:
            return n * ops_per_call / (now - start)


def main() -> None:
    seconds = 0.3 if "--quick" in sys.argv else 1.0
    results: list[tuple[str, float, float]] = []

    # 1. one insert per transaction
    ds, tid, pk, by_age = make()
    counter = iter(range(1, 10**9))
    plain: dict[int, tuple] = {}

    def one_tx() -> None:
        tx = ds.begin()
        tx.insert(tid, encode((0, f"p{next(counter)}", 30, "x")))
        tx.commit()

    def one_plain() -> None:
        i = next(counter)
        v = decode(encode((i, f"p{i}", 30, "x")))
        plain[v[0]] = v

    results.append(("1 insert / tx", rate(one_tx, 1, seconds), rate(one_plain, 1, seconds)))

    # 2. 100 inserts in one transaction (rows/s)
    ds, tid, pk, by_age = make()

    def hundred_tx() -> None:
        tx = ds.begin()
        for _ in range(100):
            tx.insert(tid, encode((0, f"p{next(counter)}", 30, "x")))
        tx.commit()

    def hundred_plain() -> None:
        for _ in range(100):
            i = next(counter)
            v = decode(encode((i, f"p{i}", 30, "x")))
            plain[v[0]] = v

    results.append(("100 inserts / tx (rows/s)", rate(hundred_tx, 100, seconds), rate(hundred_plain, 100, seconds)))

    # populated table for point/range work: 10_000 rows, ages 0..99 (100 rows per age)
    ds, tid, pk, by_age = make()
    tx = ds.begin()
    for i in range(10_000):
        tx.insert(tid, encode((0, f"n{i}", i % 100, "x")))
    tx.commit()
    base = {v[0]: (encode(v), v) for v in ((i + 1, f"n{i}", i % 100, "x") for i in range(10_000))}
    ids = iter(range(10**9))

    # 3. find by pk + update by pk, one per transaction
    def find_update_tx() -> None:
        k = next(ids) % 10_000 + 1
        tx = ds.begin()
        (row,) = tx.index_point_bsatn(pk, (k,))
        v = decode(row)
        tx.update(tid, pk, encode((k, v[1], v[2], "y" if v[3] == "x" else "x")))
        tx.commit()

    def find_update_plain() -> None:
        k = next(ids) % 10_000 + 1
        row, _ = base[k]
        v = decode(row)
        new = encode((k, v[1], v[2], "y" if v[3] == "x" else "x"))
        base[k] = (new, decode(new))

    results.append(("find + update by pk / tx", rate(find_update_tx, 1, seconds), rate(find_update_plain, 1, seconds)))

    # 4. range scan returning 100 rows (one age value out of 100) through a read view
    ordered = sorted((v[2], v[0], b) for b, v in base.values())
    ages = [a for a, _, _ in ordered]

    def range_ds() -> None:
        a = next(ids) % 100
        with ds.read() as r:
            assert len(r.index_range_bsatn(by_age, (), Included(a), Excluded(a + 1))) == 100

    def range_plain() -> None:
        a = next(ids) % 100
        lo, hi = bisect.bisect_left(ages, a), bisect.bisect_left(ages, a + 1)
        assert len([b for _, _, b in ordered[lo:hi]]) == 100

    results.append(("range scan of 100 rows", rate(range_ds, 1, seconds), rate(range_plain, 1, seconds)))

    print(f"{'operation':28} {'datastore ops/s':>16} {'plain ops/s':>14} {'slowdown':>9}")
    for name, got, baseline in results:
        print(f"{name:28} {got:16,.0f} {baseline:14,.0f} {baseline / got:8.1f}x")


if __name__ == "__main__":
    main()
