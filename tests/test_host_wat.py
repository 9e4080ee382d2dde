"""The host runs a hand-written core module that uses the ABI the way a Rust-built module does
(no Python inside), so the host is not tested only against our own SDK."""

from __future__ import annotations

import struct
import sys
import threading
import time

import pytest
import wasmtime as wt

from harness.host import Database, Limits, ModuleLoadError
from harness.host import wasm as wasm_mod
from spacetime_core.sats import Identity


def s(text: str) -> bytes:
    b = text.encode()
    return struct.pack("<I", len(b)) + b


def some(b: bytes) -> bytes:
    return b"\x00" + b


def vec(*items: bytes) -> bytes:
    return struct.pack("<I", len(items)) + b"".join(items)


def product(*elements: tuple[str, bytes]) -> bytes:
    return vec(*[some(s(n)) + t for n, t in elements])


U32, U64, STRING = b"\x0b", b"\x0d", b"\x04"
UNIT = b"\x02" + vec()

# RawModuleDef::V10 with one table `counter {id: u32 pk, n: u64}` and reducers written by hand.
MODULE_DEF = b"\x02" + vec(
    b"\x00" + vec(b"\x02" + product(("id", U32), ("n", U64))),  # typespace
    b"\x01" + vec(vec() + s("Counter") + struct.pack("<I", 0) + b"\x01"),  # types
    b"\x02" + vec(  # tables
        s("counter") + struct.pack("<I", 0) + vec(struct.pack("<H", 0))
        + vec(some(s("counter_id_idx_btree")) + some(s("id")) + b"\x00" + vec(struct.pack("<H", 0)))
        + vec(b"\x01" + b"\x00" + vec(struct.pack("<H", 0)))
        + vec() + b"\x01" + b"\x00" + vec() + b"\x00"
    ),
    b"\x03" + vec(  # reducers: ids 0..3
        s("insert_counter") + product(("id", U32), ("n", U64)) + b"\x01" + UNIT + STRING,
        s("fail") + vec() + b"\x01" + UNIT + STRING,
        s("spin") + vec() + b"\x01" + UNIT + STRING,
        s("crash") + vec() + b"\x01" + UNIT + STRING,
        s("hog_memory") + vec() + b"\x01" + UNIT + STRING,
        s("recurse") + vec() + b"\x01" + UNIT + STRING,
    ),
)


def wat_string(b: bytes) -> str:
    return "".join(f"\\{x:02x}" for x in b)


WAT = f"""
(module
  (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "bytes_source_read" (func $source_read (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "table_id_from_name" (func $table_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_insert_bsatn" (func $insert (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "console_log" (func $log (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "{wat_string(MODULE_DEF)}")
  (data (i32.const 256) "counter")
  (data (i32.const 300) "nope")
  (data (i32.const 320) "insert failed")
  (data (i32.const 400) "inserted")
  (func $write (param $sink i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 64) (local.get $len))
    (drop (call $sink_write (local.get $sink) (local.get $ptr) (i32.const 64))))
  (func (export "__describe_module__") (param $sink i32)
    (call $write (local.get $sink) (i32.const 4096) (i32.const {len(MODULE_DEF)})))
  (func $recurse (param $n i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "__call_reducer__") (param $id i32) (param i64 i64 i64 i64 i64 i64 i64)
        (param $args i32) (param $err i32) (result i32)
    (block $not0
      (br_if $not0 (i32.ne (local.get $id) (i32.const 0)))
      ;; read the 12-byte args (u32 id, u64 n) into 2048
      (i32.store (i32.const 68) (i32.const 64))
      (drop (call $source_read (local.get $args) (i32.const 2048) (i32.const 68)))
      (drop (call $table_id (i32.const 256) (i32.const 7) (i32.const 72)))
      (if (call $insert (i32.load (i32.const 72)) (i32.const 2048) (i32.const 68))
        (then (call $write (local.get $err) (i32.const 320) (i32.const 13)) (return (i32.const 1))))
      (call $log (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)
                 (i32.const 400) (i32.const 8))
      (return (i32.const 0)))
    (block $not1
      (br_if $not1 (i32.ne (local.get $id) (i32.const 1)))
      (call $write (local.get $err) (i32.const 300) (i32.const 4))
      (return (i32.const 1)))
    (block $not2
      (br_if $not2 (i32.ne (local.get $id) (i32.const 2)))
      (loop $forever (br $forever)))
    (block $not4
      (br_if $not4 (i32.ne (local.get $id) (i32.const 4)))
      (loop $more  ;; grow until the host's memory cap refuses, then give up like an allocator would
        (br_if $more (i32.ne (memory.grow (i32.const 256)) (i32.const -1))))
      unreachable)
    (block $not5
      (br_if $not5 (i32.ne (local.get $id) (i32.const 5)))
      (return (call $recurse (i32.const 0))))
    unreachable))
"""


@pytest.fixture()
def db():
    wasm = wt.wat2wasm(WAT)
    limits = Limits(timeout_s=0.3, memory_bytes=64 << 20)
    return Database.create(wasm, owner=Identity.from_bytes(bytes(range(32))), limits=limits)


def test_describe_is_decoded_into_tables_and_reducers(db):
    assert [t.name for t in db.mdef.tables] == ["counter"]
    assert [r.name for r in db.mdef.reducers] == ["insert_counter", "fail", "spin", "crash", "hog_memory", "recurse"]
    table = db.mdef.table("counter")
    assert table.primary_key == 0 and table.public
    assert table.indexes[0].name == "counter_id_idx_btree"


def test_insert_commits_and_unique_violation_rolls_back(db):
    out = db.call_reducer("insert_counter", [7, 70])
    assert out.committed, out.error
    assert db.rows("counter") == [(7, 70)]
    assert [r.message for r in db.logs()] == ["inserted"]
    dup = db.call_reducer("insert_counter", [7, 71])  # same primary key: errno 12, module reports failure
    assert dup.status == "failed" and dup.error == "insert failed"
    assert db.rows("counter") == [(7, 70)]


def test_user_error_message_reaches_caller(db):
    out = db.call_reducer("fail")
    assert out.status == "failed" and out.error == "nope"


def test_infinite_loop_times_out_rolls_back_and_next_call_is_served(db):
    out = db.call_reducer("spin")
    assert out.status == "trapped" and out.trap_kind == "timeout"
    assert db.call_reducer("insert_counter", [1, 10]).committed
    assert db.rows("counter") == [(1, 10)]
    assert db.instances_created == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the native epoch ticker is Linux-only")
def test_a_runaway_call_holding_the_gil_is_interrupted_and_shares_the_gil(monkeypatch):
    """With SPACETIME_PY_WASM_GIL=hold short calls hold the GIL (harness/host/wasm.py), so the epoch must advance
    without Python, and a long call must still let other threads run Python: a counting thread keeps going while
    `spin` loops, with no gap longer than a few ticks."""
    monkeypatch.setattr(wasm_mod, "HOLD_GIL", wasm_mod.HOLD_GIL)  # restored afterwards
    assert wasm_mod.enable_held_calls() and wasm_mod.NATIVE_TICKER
    db = Database.create(wt.wat2wasm(WAT), owner=Identity.from_bytes(bytes(range(32))),
                         limits=Limits(timeout_s=0.3, memory_bytes=64 << 20))
    held = []
    monkeypatch.setattr(wasm_mod, "_call_held", lambda *a, _f=wasm_mod._call_held: held.append(1) or _f(*a))
    stamps: list[float] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            stamps.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        t0 = time.monotonic()
        out = db.call_reducer("spin")  # the 0.3 s limit of the fixture
        spun = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
    assert out.status == "trapped" and out.trap_kind == "timeout", out
    assert 0.29 < spun < 3, spun
    during = [x for x in stamps if t0 + 0.05 < x < t0 + spun - 0.05]
    assert len(during) > 10, len(during)  # the other thread ran during the call, not only around it
    gaps = [b - a for a, b in zip(during, during[1:])]
    assert max(gaps) < 0.1, max(gaps)
    assert db.call_reducer("insert_counter", [3, 30]).committed
    assert held, "the calls did not hold the GIL"


LOOP_WAT = """(module (func (export "count") (param i32) (result i32)
  (loop $l (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br_if $l (local.get 0))) (local.get 0)))"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the native epoch ticker is Linux-only")
def test_after_a_long_call_an_instance_releases_the_gil_for_a_while(monkeypatch):
    from harness.host.wasm import Instance, compile_module

    monkeypatch.setattr(wasm_mod, "HOLD_GIL", wasm_mod.HOLD_GIL)
    assert wasm_mod.enable_held_calls()
    inst = Instance(compile_module(wt.wat2wasm(LOOP_WAT)), {})
    count = inst.export("count")
    assert count(1000) == 0 and inst._release_until == 0.0  # short: held, nothing changes
    t0 = time.monotonic()
    n = 1000
    while time.monotonic() - t0 < 2:  # grow the loop until one call runs past HOLD_LIMIT_S and a tick
        n *= 4
        assert count(n) == 0
        if inst._release_until:
            break
    assert inst._release_until > time.monotonic(), "a long held call did not switch the instance to releasing"


def test_trap_replaces_the_instance(db):
    out = db.call_reducer("crash")
    assert out.status == "trapped"
    assert db.call_reducer("insert_counter", [2, 20]).committed
    assert db.instances_created == 2


@pytest.mark.parametrize("reducer, kind", [("hog_memory", "trap"), ("recurse", "stack_overflow")])
def test_runaway_memory_and_stack_overflow_trap_and_the_next_call_works(db, reducer, kind):
    out = db.call_reducer(reducer)
    assert out.status == "trapped" and out.trap_kind == kind, out
    assert db.call_reducer("insert_counter", [3, 30]).committed
    assert db.rows("counter") == [(3, 30)]


def test_unknown_import_is_refused_with_a_clear_message():
    wasm = wt.wat2wasm(WAT.replace('"spacetime_10.0" "console_log"', '"env" "console_log"'))
    with pytest.raises(ModuleLoadError, match="env.console_log"):
        Database.create(wasm, owner=Identity.from_bytes(bytes(32)))


def test_garbage_is_refused():
    with pytest.raises(ModuleLoadError):
        Database.create(b"\0asm garbage", owner=Identity.from_bytes(bytes(32)))


# A module using the wasm 2.0 features Rust toolchains emit (bulk memory, multi-value, saturating
# float-to-int, a funcref table driven by reference-types instructions).  A real server's wasmtime accepts
# it, so our host and server must too; our own build output is held to MVP (strict check).
FEATURES_WAT = f"""
(module
  (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "bytes_source_read" (func $source_read (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "table_id_from_name" (func $table_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_insert_bsatn" (func $insert (param i32 i32 i32) (result i32)))
  (type $pair_t (func (param i32) (result i32 i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (elem declare func $pair)
  (data (i32.const 4096) "{wat_string(MODULE_DEF)}")
  (data (i32.const 256) "counter")
  (func $pair (type $pair_t) (local.get 0) (i32.const 7))
  (func (export "__describe_module__") (param $sink i32)
    (i32.store (i32.const 64) (i32.const {len(MODULE_DEF)}))
    (drop (call $sink_write (local.get $sink) (i32.const 4096) (i32.const 64))))
  (func (export "__call_reducer__") (param $id i32) (param i64 i64 i64 i64 i64 i64 i64)
        (param $args i32) (param $err i32) (result i32)
    (if (i32.ne (local.get $id) (i32.const 0)) (then unreachable))
    (memory.fill (i32.const 2048) (i32.const 0xff) (i32.const 32))
    (i32.store (i32.const 68) (i32.const 12))
    (drop (call $source_read (local.get $args) (i32.const 2048) (i32.const 68)))
    (memory.copy (i32.const 3000) (i32.const 2048) (i32.const 12))  ;; row = args ...
    (table.set $t (i32.const 0) (ref.func $pair))
    (i32.const 3000)
    (call_indirect $t (type $pair_t) (i32.load (i32.const 3000)) (i32.const 0))
    i32.add
    i32.store  ;; ... with id + 7 (multi-value through call_indirect)
    (i64.store (i32.const 3004)   ;; ... and n + saturated u32 of 1e20
      (i64.add (i64.load (i32.const 3004))
               (i64.extend_i32_u (i32.trunc_sat_f32_u (f32.const 1e20)))))
    (drop (call $table_id (i32.const 256) (i32.const 7) (i32.const 72)))
    (drop (call $insert (i32.load (i32.const 72)) (i32.const 3000) (i32.const 68)))
    (i32.const 0)))
"""


def test_module_using_wasm2_features_publishes_and_runs():
    from harness.server.registry import check_module_bytes
    from module_sdk.build import InvalidModule, validate_module

    wasm = wt.wat2wasm(FEATURES_WAT)
    check_module_bytes(wasm)  # the server's publish check accepts it
    db = Database.create(wasm, owner=Identity.from_bytes(bytes(32)))
    out = db.call_reducer("insert_counter", [5, 10])
    assert out.committed, out.error
    assert db.rows("counter") == [(12, 10 + 0xFFFFFFFF)]
    with pytest.raises(InvalidModule, match="beyond MVP"):
        validate_module(wasm, strict=True)  # our build output is held to MVP


@pytest.mark.parametrize("decl, what", [("(table 1 externref)", "gc types"),
                                        ("(memory $m2 1 1 shared)", "threads"),
                                        ("(tag)", "exceptions")])
def test_features_a_real_server_lacks_are_refused(decl, what):
    from harness.server.registry import RegistryError, check_module_bytes

    wasm = wt.wat2wasm(FEATURES_WAT.replace("(table $t 1 funcref)", f"(table $t 1 funcref) {decl}"))
    with pytest.raises(RegistryError, match=what):
        check_module_bytes(wasm)
    with pytest.raises(ModuleLoadError):
        Database.create(wasm, owner=Identity.from_bytes(bytes(32)))


# Procedures "bad" (writes a message to the result sink and returns 1) and "good" (returns 0, unit result).
PROC_DEF = b"\x02" + vec(
    b"\x00" + vec(),
    b"\x04" + vec(s("bad") + vec() + UNIT + b"\x01", s("good") + vec() + UNIT + b"\x01"),  # public
)
PROC_WAT = f"""
(module
  (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "{wat_string(PROC_DEF)}")
  (data (i32.const 300) "secret reason")
  (func $write (param $sink i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 64) (local.get $len))
    (drop (call $sink_write (local.get $sink) (local.get $ptr) (i32.const 64))))
  (func (export "__describe_module__") (param $sink i32)
    (call $write (local.get $sink) (i32.const 4096) (i32.const {len(PROC_DEF)})))
  (func (export "__call_reducer__") (param i32 i64 i64 i64 i64 i64 i64 i64 i32 i32) (result i32) unreachable)
  (func (export "__call_procedure__") (param $id i32) (param i64 i64 i64 i64 i64 i64 i64)
        (param $args i32) (param $sink i32) (result i32)
    (if (i32.eqz (local.get $id))
      (then (call $write (local.get $sink) (i32.const 300) (i32.const 13)) (return (i32.const 1))))
    (i32.const 0)))
"""


def test_procedure_return_code_other_than_zero_is_an_error_like_upstream():
    """Upstream accepts 0 or a trap: any other code is "unexpected", the sink is ignored, the instance dropped."""
    db = Database.create(wt.wat2wasm(PROC_WAT), owner=Identity.from_bytes(bytes(32)))
    assert db.call_procedure("good").ok
    created = db.instances_created
    out = db.call_procedure("bad")
    assert out.status == "trapped" and out.trap_kind == "bad_return"
    assert out.error == "__call_procedure__ returned unexpected code 1. Procedures should return code 0 or trap."
    assert "secret" not in out.error
    assert db.call_procedure("good").ok
    assert db.instances_created == created + 1  # the procedure instance was replaced
