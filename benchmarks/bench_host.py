"""Cost of one reducer call in the harness host, against the same Python reducer run natively (no wasm)
against the same kind of datastore, measured in the same run.

    python benchmarks/bench_host.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.host import Database  # noqa: E402
from harness.host.native import call_native, load_native  # noqa: E402
from module_sdk.build import build  # noqa: E402
from spacetime_core.sats import Identity, encode  # noqa: E402

MODULE = ROOT / "benchmarks" / "bench_module"
OWNER = Identity.from_bytes(bytes(range(32)))


def per_call(fn, n):
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def main() -> None:
    wasm = build(MODULE, Path(tempfile.mkdtemp()) / "bench.wasm").output.read_bytes()
    in_wasm = Database.create(wasm, owner=OWNER)
    native_db = Database.create(wasm, owner=OWNER)
    dispatch, door = load_native(native_db, MODULE)
    sender = OWNER.to_bytes()

    def args(db, name, *values):
        return encode(db.mdef.reducer(name).params, tuple(values))

    for db in (in_wasm,):
        db.call_reducer("insert_many", [1000])
    call_native(native_db, dispatch, door, "insert_many", args(native_db, "insert_many", 1000), sender)
    cases = [("no-op", "noop", (), 2000), ("1 insert", "insert_one", (5,), 2000),
             ("100 inserts", "insert_many", (100,), 50), ("find + update by pk", "find_update", (500,), 2000)]
    print(f"{'reducer':22} {'wasm host':>12} {'native':>12} {'ratio':>7}")
    for label, name, values, n in cases:
        a_w, a_n = args(in_wasm, name, *values), args(native_db, name, *values)
        w = per_call(lambda name=name, a=a_w: in_wasm.call_reducer(name, a), n)
        nat = per_call(lambda name=name, a=a_n: call_native(native_db, dispatch, door, name, a, sender), n)
        print(f"{label:22} {w * 1e6:10.1f}µs {nat * 1e6:10.1f}µs {w / nat:6.2f}x")


if __name__ == "__main__":
    main()
