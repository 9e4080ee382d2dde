"""Cost of one reducer call in the harness host, against the same Python reducer run natively (no wasm)
against the same kind of datastore, measured in the same run.

    python benchmarks/bench_host.py                       # this checkout
    python benchmarks/bench_host.py --root /work/main     # the same measurement of another checkout's host/SDK

Each figure is the fastest of many short batches (wasm and native batches alternate), which estimates the CPU
cost of a call even on a shared, loaded machine where a mean or median mostly measures the other jobs.
"""

from __future__ import annotations

import argparse
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=HERE, help="checkout whose harness/module_sdk to measure")
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--only", choices=["bench", "keynote"], help=argparse.SUPPRESS)
    opts = ap.parse_args()
    root = opts.root.resolve()
    if opts.only is None:  # one module per process: the native run imports the module's Python once
        print(f"measuring {root}")
        print(f"{'reducer':22} {'wasm host':>12} {'native':>12} {'ratio':>7}", flush=True)
        for only in ("bench", "keynote"):
            subprocess.run([sys.executable, __file__, "--root", str(root), "--batches", str(opts.batches),
                            "--only", only], check=True)
        return
    sys.path.insert(0, str(root))
    from harness.host import Database
    from harness.host.native import call_native, load_native
    from module_sdk.build import build
    try:
        from spacetime_core.sats import Identity, encode
    except ImportError:  # --root: a checkout from before the core moved out of module_sdk
        from module_sdk.sats import Identity, encode

    owner = Identity.from_bytes(bytes(range(32)))
    sender = owner.to_bytes()
    # the module sources come from this checkout, so both roots run the same reducers
    modules = {"bench": HERE / "benchmarks" / "bench_module", "keynote": HERE / "examples" / "keynote"}
    dbs = {}
    for key, path in modules.items():
        if key != opts.only:
            continue
        wasm = build(path, Path(tempfile.mkdtemp()) / f"{key}.wasm").output.read_bytes()
        in_wasm = Database.create(wasm, owner=owner)
        native_db = Database.create(wasm, owner=owner)
        dispatch, door = load_native(native_db, path)
        dbs[key] = (in_wasm, native_db, dispatch, door)

    def args(db, name, *values):
        return encode(db.mdef.reducer(name).params, tuple(values), db.mdef.typespace)

    def both(key, name, a):
        in_wasm, native_db, dispatch, door = dbs[key]
        in_wasm.call_reducer(name, a)
        call_native(native_db, dispatch, door, name, a, sender)

    if opts.only == "bench":
        both("bench", "insert_many", args(dbs["bench"][0], "insert_many", 1000))
    else:
        both("keynote", "seed", args(dbs["keynote"][0], "seed", 10_000, 10**12))
    rnd = random.Random(1)
    pairs = [(x, y) for x, y in ((rnd.randrange(10_000), rnd.randrange(10_000)) for _ in range(500)) if x != y]
    transfers = [struct.pack("<IIq", x, y, 1) for x, y in pairs]
    cases = [("no-op", "bench", "noop", (), 200), ("1 insert", "bench", "insert_one", (5,), 200),
             ("100 inserts", "bench", "insert_many", (100,), 5),
             ("find + update by pk", "bench", "find_update", (500,), 200),
             ("keynote transfer", "keynote", "transfer", None, len(transfers))]
    for label, key, name, values, n in cases:
        if key != opts.only:
            continue
        in_wasm, native_db, dispatch, door = dbs[key]
        # a different transfer each call; the other reducers repeat one argument tuple
        calls = transfers if values is None else [args(in_wasm, name, *values)]
        w, nat = compare(lambda a, db=in_wasm, name=name: db.call_reducer(name, a),
                         lambda a, db=native_db, d=dispatch, door=door, name=name: call_native(db, d, door, name, a,
                                                                                            sender),
                         calls, n, opts.batches)
        print(f"{label:22} {w * 1e6:10.1f}µs {nat * 1e6:10.1f}µs {w / nat:6.2f}x", flush=True)


def compare(wasm_call, native_call, calls: list[bytes], n: int, batches: int) -> tuple[float, float]:
    """Fastest per-call time of `n` calls cycling through `calls`, batches of wasm and native alternating."""
    seq = [calls[i % len(calls)] for i in range(n)]
    w = nat = float("inf")
    for _ in range(batches):
        for fn, is_wasm in ((wasm_call, True), (native_call, False)):
            t0 = time.perf_counter()
            for a in seq:
                fn(a)
            t = (time.perf_counter() - t0) / n
            if is_wasm:
                w = min(w, t)
            else:
                nat = min(nat, t)
    return w, nat

if __name__ == "__main__":
    main()
