"""Build benchmarks (issue: build): cold and warm build time, module size, compile and instantiate time.

Each figure is printed beside a baseline measured in the same run:
- build time vs. the host CPython compiling + importing the same sources natively (a fresh process);
- instantiate vs. instantiating a minimal hand-written module in the same engine;
- an instance's first call (which unpacks the compressed snapshot heap) vs. its second call.

    python benchmarks/bench_build.py [MODULE_PATH] [--cold]

--cold builds once with an empty cache directory (zig compiles the runtime, Binaryen optimizes it: ~15 s idle).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wasmtime as wt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.host.wasm import Instance, compile_module, engine  # noqa: E402
from module_sdk.build import build  # noqa: E402


def timed(fn, n=5):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(args[0]) if args else ROOT / "examples" / "quickstart"
    out = Path(tempfile.mkdtemp()) / "bench.wasm"
    rows = []
    if "--cold" in sys.argv:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, SPACETIME_PY_CACHE=cache)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "harness.cli", "build", "-q", str(target), "-o", str(out)],
                           check=True, env=env, cwd=ROOT, capture_output=True)
            rows.append(("cold build (runtime compiled, empty caches)", time.perf_counter() - t0, None))
    build(target, out)  # warm the caches
    warm = timed(lambda: build(target, out))
    root = target.parent if target.is_dir() else target.parent
    name = target.name if target.is_dir() else target.stem
    native = timed(lambda: subprocess.run([sys.executable, "-B", "-c", f"import {name}"], cwd=root, check=True,
                                          env=dict(os.environ, PYTHONPATH=str(ROOT))), n=3)
    rows.append(("warm build (runtime + code cached)", warm, native))
    size = out.stat().st_size
    data = out.read_bytes()
    eng = engine()
    t0 = time.perf_counter()
    wt.Module(eng, data)
    compile_s = time.perf_counter() - t0
    compile_module(data)  # fills the on-disk cache
    cached_load = timed(lambda: compile_module(data))
    module = compile_module(data)
    tiny = wt.Module(eng, wt.wat2wasm('(module (memory (export "memory") 1))'))

    def inst(m):
        Instance(m, {(i.module, i.name): (lambda p: None) for i in m.imports})

    instantiate = timed(lambda: inst(module), n=20)
    instantiate_base = timed(lambda: inst(tiny), n=20)

    def first_and_second_call() -> tuple[float, float]:
        """`__describe_module__` twice on a fresh instance: the first call also unpacks the snapshot heap
        (runtime/unpack.c), the second is the call alone."""
        i = Instance(module, {(imp.module, imp.name): (lambda p: None) for imp in module.imports})
        describe = i.exports["__describe_module__"]
        t0 = time.perf_counter()
        describe(i.store, 1)
        t1 = time.perf_counter()
        describe(i.store, 1)
        return t1 - t0, time.perf_counter() - t1

    calls = [first_and_second_call() for _ in range(11)]
    first = statistics.median(c[0] for c in calls)
    second = statistics.median(c[1] for c in calls)
    print(f"module: {target}  size: {size / 1e6:.2f} MB (target <= 4 MB)")
    print(f"{'measure':48} {'value':>12} {'baseline':>12} {'ratio':>8}")
    for label, v, base in rows:
        print(f"{label:48} {v:11.3f}s {'' if base is None else f'{base:11.3f}s':>12} "
              f"{'' if base is None else f'{v / base:7.1f}x':>8}")
    print(f"{'Cranelift compile (uncached)':48} {compile_s:11.3f}s")
    print(f"{'load compiled module from disk cache':48} {cached_load * 1e3:10.2f}ms")
    print(f"{'instantiate (from cached compiled module)':48} {instantiate * 1e3:10.3f}ms "
          f"{instantiate_base * 1e3:10.3f}ms {instantiate / instantiate_base:7.1f}x")
    print(f"{'first call, fresh instance (describe + unpack)':48} {first * 1e3:10.3f}ms "
          f"{second * 1e3:10.3f}ms {first / second:7.1f}x   (baseline: the same instance's second describe)")


if __name__ == "__main__":
    main()
