"""Per-call limits match a real server's (crates/core/src/host/wasmtime/): wasmtime's default 512 KiB native
stack, a fresh fuel budget per call, and a Python recursion limit low enough that deep recursion in a
built module raises RecursionError instead of overflowing that stack."""

from __future__ import annotations

import pytest
import wasmtime as wt

from harness.host import Database, Limits
from harness.host.wasm import DEFAULT_FUEL
from module_sdk.build import build
from spacetime_core.sats import Identity
from tests.test_host_wat import MODULE_DEF, wat_string

OWNER = Identity.from_bytes(bytes(range(32)))

DEEP = """
  (func $deep (export "deep") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $deep (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
"""

# insert_counter(id, n) here means: recurse `id` calls deep, then loop `n` times; nothing is inserted.
LIMITS_WAT = f"""
(module
  (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "bytes_source_read" (func $source_read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "{wat_string(MODULE_DEF)}")
  {DEEP}
  (func (export "__describe_module__") (param $sink i32)
    (i32.store (i32.const 64) (i32.const {len(MODULE_DEF)}))
    (drop (call $sink_write (local.get $sink) (i32.const 4096) (i32.const 64))))
  (func (export "__call_reducer__") (param $id i32) (param i64 i64 i64 i64 i64 i64 i64)
        (param $args i32) (param $err i32) (result i32) (local $i i64)
    (if (i32.eq (local.get $id) (i32.const 2)) (then (loop $forever (br $forever))))
    (i32.store (i32.const 68) (i32.const 12))
    (drop (call $source_read (local.get $args) (i32.const 2048) (i32.const 68)))
    (drop (call $deep (i32.load (i32.const 2048))))
    (local.set $i (i64.load (i32.const 2052)))
    (block $done (loop $more
      (br_if $done (i64.eqz (local.get $i)))
      (local.set $i (i64.sub (local.get $i) (i64.const 1)))
      (br $more)))
    (i32.const 0)))
"""


def _max_depth(ok, hi: int = 1 << 17) -> int:
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _plain_wasmtime_depth(max_wasm_stack: int | None) -> int:
    """Deepest `deep` recursion on a wasmtime configured like upstream (defaults + fuel)."""
    cfg = wt.Config()
    cfg.consume_fuel = True
    if max_wasm_stack is not None:
        cfg.max_wasm_stack = max_wasm_stack
    engine = wt.Engine(cfg)
    module = wt.Module(engine, wt.wat2wasm(f"(module {DEEP})"))

    def ok(n):
        store = wt.Store(engine)
        store.set_fuel(DEFAULT_FUEL)
        try:
            wt.Instance(store, module, []).exports(store)["deep"](store, n)
            return True
        except wt.Trap:
            return False

    return _max_depth(ok)


def test_native_stack_is_wasmtimes_default_like_upstream():
    db = Database.create(wt.wat2wasm(LIMITS_WAT), owner=OWNER)
    ours = _max_depth(lambda n: db.call_reducer("insert_counter", [n, 0]).committed)
    upstream = _plain_wasmtime_depth(None)  # upstream never sets max_wasm_stack
    assert abs(ours - upstream) <= upstream * 0.05, (ours, upstream)
    assert ours < 0.6 * _plain_wasmtime_depth(1 << 20)  # not the 1 MiB we used to allow
    out = db.call_reducer("insert_counter", [ours + ours // 10, 0])
    assert out.status == "trapped" and out.trap_kind == "stack_overflow"


def test_fuel_is_a_fresh_budget_per_call_and_running_out_traps():
    db = Database.create(wt.wat2wasm(LIMITS_WAT), owner=OWNER, limits=Limits(fuel=2_000_000))
    for _ in range(3):  # ~1.2M units each: fits a budget that is refilled per call, never a shared one
        assert db.call_reducer("insert_counter", [0, 200_000]).committed
    out = db.call_reducer("spin")
    assert out.status == "trapped" and out.trap_kind == "out_of_fuel"
    assert "energy" in out.error
    assert db.call_reducer("insert_counter", [0, 10]).committed  # a fresh instance serves the next call


def test_defaults_are_upstreams():
    limits = Limits()
    assert limits.fuel == 2_000_000_000 * 60  # FunctionBudget::DEFAULT_BUDGET
    assert limits.timeout_s is None and limits.memory_bytes is None  # upstream only logs; no memory limiter


RECURSION_MODULE = '''
import sys

from module_sdk import ReducerContext, log, reducer, u32


def through_map(n):
    return 0 if n == 0 else list(map(through_map, [n - 1]))[0]


class Attr:
    def __getattr__(self, name):
        return getattr(Attr(), name)


class Prop:
    @property
    def x(self):
        return Prop().x


class Init:
    def __init__(self):
        self.child = Init()


class Rep:
    def __repr__(self):
        return repr(Rep())


def plain(n):
    return 0 if n == 0 else plain(n - 1) + 1


PATTERNS = {
    "map": lambda: through_map(100_000), "getattr": lambda: Attr().x, "property": lambda: Prop().x,
    "init": lambda: Init(), "repr": lambda: repr(Rep()), "plain": lambda: plain(100_000),
}


@reducer
def recurse(ctx: ReducerContext, pattern: str):
    PATTERNS[pattern]()


@reducer
def bounded(ctx: ReducerContext, depth: u32):
    log.info(f"limit={sys.getrecursionlimit()} map={through_map(depth)} plain={plain(2 * depth)}")
'''


@pytest.fixture(scope="module")
def recursion_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    (tmp / "rec.py").write_text(RECURSION_MODULE)
    wasm = build(tmp / "rec.py", tmp / "rec.wasm").output.read_bytes()
    return Database.create(wasm, owner=OWNER)


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["map", "getattr", "property", "init", "repr", "plain"])
def test_deep_python_recursion_is_a_recursion_error_not_a_trap(recursion_db, pattern):
    before = recursion_db.instances_created
    out = recursion_db.call_reducer("recurse", [pattern])
    assert out.status == "failed" and "RecursionError" in out.error, out
    assert recursion_db.instances_created == before  # an ordinary failure: the instance is kept


@pytest.mark.slow
def test_recursion_below_the_limit_works(recursion_db):
    out = recursion_db.call_reducer("bounded", [80])  # map costs ~2 counted levels per call
    assert out.committed, out.error
    assert recursion_db.logs()[-1].message == "limit=200 map=0 plain=160"
