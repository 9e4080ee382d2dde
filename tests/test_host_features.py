"""harness.host with a built Python module: procedures (transactions, sleep, outbound HTTP), views,
schedule_immediate, JWTs, every spacetime_10.x import at least once, and faults inside Python code."""

from __future__ import annotations

import http.server
import struct
import threading
from collections import Counter

import pytest
import wasmtime as wt

from harness.host import Database, Limits
from harness.host.abi import AbiEnv
from module_sdk.build import build
from module_sdk.build.wasm import module_info
from spacetime_core.sats import ConnectionId, Identity, Timestamp
from tests.test_host_wat import STRING, U32, U64, UNIT, product, s, some, vec, wat_string

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))
ALICE = Identity.from_bytes(bytes([7] * 32))
CONN = ConnectionId.from_bytes(bytes([3] * 16))

MODULE = '''
import _spacetime
from module_sdk import (
    AnonymousViewContext, Err, HttpError, Ok, Option, ProcedureContext, Range, ReducerContext, SenderError,
    TimeDuration, TxContext, ViewContext, anonymous_view, btree, index, log, primary_key, procedure, reducer,
    schedule_immediate, table, u32, u64, unique, view,
)
from module_sdk import _abi


@table(public=True)
class Item:
    id: u64 = primary_key(auto_inc=True)
    name: str = unique()
    qty: u32 = index()
    tag: str = index("hash")
    owner: str


@reducer
def add(ctx: ReducerContext, name: str, qty: u32, tag: str):
    ctx.db.item.insert(Item(name=name, qty=qty, tag=tag, owner=str(ctx.sender)))


@reducer
def big_args(ctx: ReducerContext, blob: str):
    log.info(f"blob={len(blob)}")


@reducer
def exercise(ctx: ReducerContext):
    with log.timer("exercise"):
        items = ctx.db.item
        log.info(f"count={items.count()} scan={sorted(i.name for i in items)}")
        log.info(f"range={sorted(i.name for i in items.qty.filter(range(0, 10)))}")
        log.info(f"hash={sorted(i.name for i in items.tag.filter('x'))}")
        a = items.name.find("a")
        a.qty = 99
        items.id.update(a)
        log.info(f"deleted_range={items.qty.delete(Range(50, 60))}")
        log.info(f"deleted_point={items.tag.delete('z')}")
        b = items.name.find("b")
        log.info(f"deleted_row={items.delete(b)}")
        it = _spacetime.datastore_table_scan_bsatn(_abi.table_id("item"))
        _spacetime.row_iter_bsatn_close(it)
        jwt = ctx.sender_auth.jwt
        log.info(f"me={ctx.identity == ctx.database_identity} jwt={jwt and (jwt.subject, jwt.raw_payload)}")
        schedule_immediate(follow_up, "later")


@reducer
def follow_up(ctx: ReducerContext, name: str):
    ctx.db.item.insert(Item(name=name, qty=1, tag="f", owner=str(ctx.sender)))


@reducer
def wipe(ctx: ReducerContext):
    log.info(f"cleared={ctx.db.item.clear()} door_has_clear={hasattr(_spacetime, 'datastore_clear')}")


@reducer
def queue_then_fail(ctx: ReducerContext):
    schedule_immediate(follow_up, "queued-by-failure")
    raise SenderError("failed after queueing")


@reducer
def boom(ctx: ReducerContext):
    ctx.db.item.insert(Item(name="partial", qty=1, tag="p", owner=""))
    raise ValueError("boom")


@reducer
def trap(ctx: ReducerContext):
    ctx.db.item.insert(Item(name="partial", qty=1, tag="p", owner=""))
    _spacetime.procedure_sleep_until(0)  # procedure-only import: traps in a reducer


@reducer
def spin(ctx: ReducerContext):
    ctx.db.item.insert(Item(name="partial", qty=1, tag="p", owner=""))
    n = 0
    while True:
        n += 1


@reducer
def hog(ctx: ReducerContext):
    ctx.db.item.insert(Item(name="partial", qty=1, tag="p", owner=""))
    keep = []
    while True:
        keep.append(bytearray(1 << 20))


def _down(n):
    return _down(n + 1) + 1


@reducer
def deep(ctx: ReducerContext):
    ctx.db.item.insert(Item(name="partial", qty=1, tag="p", owner=""))
    _down(0)


@reducer
def reducer_tx_calls(ctx: ReducerContext):
    out = []
    for f in (_abi.start_mut_tx, _abi.commit_mut_tx, _abi.abort_mut_tx):
        try:
            f()
        except Exception as e:
            out.append(e.errno)
    log.info(f"reducer_tx={out}")


@procedure
def fetch(ctx: ProcedureContext, url: str) -> str:
    try:
        resp = ctx.http.get(url, headers={"x-test": "1"}, timeout=TimeDuration.from_seconds(5))
    except HttpError as e:
        return f"error: {e}"
    def save(tx: TxContext):
        tx.db.item.insert(Item(name=resp.text(), qty=resp.status, tag="http", owner=str(tx.sender)))
    ctx.with_tx(save)
    return f"{resp.status} {resp.header('x-echo')} {resp.text()}"


@procedure
def tx_dance(ctx: ProcedureContext, name: str) -> u32:
    ctx.with_tx(lambda tx: tx.db.item.insert(Item(name=name, qty=5, tag="p", owner="")))
    ctx.try_with_tx(lambda tx: (tx.db.item.insert(Item(name="aborted", qty=5, tag="p", owner="")), Err("no"))[1])
    try:
        ctx.with_tx(lambda tx: (tx.db.item.insert(Item(name="raised", qty=5, tag="p", owner="")), 1 / 0))
    except ZeroDivisionError:
        pass
    before = ctx.timestamp
    ctx.sleep_until(before + TimeDuration.from_millis(20))
    codes = []
    _abi.start_mut_tx()
    for f in (_abi.start_mut_tx, _abi.http_request):
        try:
            f() if f is _abi.start_mut_tx else f(b"", b"")
        except Exception as e:
            codes.append(getattr(e, "errno", type(e).__name__))
    _abi.commit_mut_tx()
    for f in (_abi.commit_mut_tx, _abi.abort_mut_tx):
        try:
            f()
        except Exception as e:
            codes.append(e.errno)
    log.info(f"codes={codes} slept={(ctx.timestamp.micros - before.micros) >= 20000}")
    return ctx.with_tx(lambda tx: tx.db.item.count())


@procedure
def leave_open(ctx: ProcedureContext) -> None:
    _abi.start_mut_tx()
    ctx._db.item.insert(Item(name="left-open", qty=1, tag="p", owner=""))


@procedure
def proc_spin(ctx: ProcedureContext) -> None:
    _abi.start_mut_tx()
    ctx._db.item.insert(Item(name="partial", qty=1, tag="p", owner=""))
    while True:
        pass


@procedure
def proc_boom(ctx: ProcedureContext) -> None:
    raise RuntimeError("procedure failed")


@procedure
def proc_refuse(ctx: ProcedureContext) -> None:
    raise SenderError("not you")


@view
def my_items(ctx: ViewContext) -> list[Item]:
    return [i for i in ctx.db.item if i.owner == str(ctx.sender)]


@anonymous_view
def cheap_items(ctx: AnonymousViewContext) -> list[Item]:
    return list(ctx.db.item.qty.filter(range(0, 3)))


@view
def first_item(ctx: ViewContext) -> Option[Item]:
    return ctx.db.item.name.find("a")


@view
def bad_view(ctx: ViewContext) -> list[Item]:
    raise SenderError("view says no")
'''

ALL_IMPORTS = {
    "spacetime_10.0": [
        "table_id_from_name", "index_id_from_name", "datastore_table_row_count", "datastore_table_scan_bsatn",
        "datastore_index_scan_range_bsatn", "datastore_btree_scan_bsatn",
        "datastore_delete_by_index_scan_range_bsatn", "datastore_delete_by_btree_scan_bsatn",
        "datastore_delete_all_by_eq_bsatn", "row_iter_bsatn_advance", "row_iter_bsatn_close",
        "datastore_insert_bsatn", "datastore_update_bsatn", "bytes_sink_write", "bytes_source_read",
        "console_log", "console_timer_start", "console_timer_end", "identity",
        "volatile_nonatomic_schedule_immediate",
    ],
    "spacetime_10.1": ["bytes_source_remaining_length"],
    "spacetime_10.2": ["get_jwt"],
    "spacetime_10.3": ["procedure_sleep_until", "procedure_start_mut_tx", "procedure_commit_mut_tx",
                       "procedure_abort_mut_tx", "procedure_http_request"],
    "spacetime_10.4": ["datastore_index_scan_point_bsatn", "datastore_delete_by_index_scan_point_bsatn"],
    "spacetime_10.5": ["datastore_clear"],
}

# A hand-written module for the imports the SDK never calls (two deprecated aliases, datastore_clear): table
# counter(id u32 pk), reducer 0 = insert (args = the row), reducer 1 = scan with datastore_btree_scan_bsatn and
# then delete everything with datastore_delete_by_btree_scan_bsatn, reducer 2 = datastore_clear; each row count
# is logged as one byte.
ALIAS_DEF = b"\x02" + vec(
    b"\x00" + vec(b"\x02" + product(("id", U32), ("n", U64))),
    b"\x02" + vec(
        s("counter") + struct.pack("<I", 0) + vec(struct.pack("<H", 0))
        + vec(some(s("counter_id_idx_btree")) + some(s("id")) + b"\x00" + vec(struct.pack("<H", 0)))
        + vec(b"\x01" + b"\x00" + vec(struct.pack("<H", 0)))
        + vec() + b"\x01" + b"\x00" + vec() + b"\x00"
    ),
    b"\x03" + vec(
        s("insert_counter") + product(("id", U32), ("n", U64)) + b"\x01" + UNIT + STRING,
        s("scan_and_delete") + vec() + b"\x01" + UNIT + STRING,
        s("clear_all") + vec() + b"\x01" + UNIT + STRING,
    ),
)
ALIAS_WAT = f"""
(module
  (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "bytes_source_read" (func $source_read (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "table_id_from_name" (func $table_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "index_id_from_name" (func $index_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_insert_bsatn" (func $insert (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_btree_scan_bsatn"
    (func $scan (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_delete_by_btree_scan_bsatn"
    (func $delete (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "row_iter_bsatn_advance" (func $advance (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "console_log" (func $log (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "spacetime_10.5" "datastore_clear" (func $clear (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8192) "{wat_string(ALIAS_DEF)}")
  (data (i32.const 256) "counter")
  (data (i32.const 300) "counter_id_idx_btree")
  (data (i32.const 340) "\\02")
  (func $write (param $sink i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 64) (local.get $len))
    (drop (call $sink_write (local.get $sink) (local.get $ptr) (i32.const 64))))
  (func (export "__describe_module__") (param $sink i32)
    (call $write (local.get $sink) (i32.const 8192) (i32.const {len(ALIAS_DEF)})))
  (func (export "__call_reducer__") (param $id i32) (param i64 i64 i64 i64 i64 i64 i64)
        (param $args i32) (param $err i32) (result i32)
    (block $not0
      (br_if $not0 (i32.ne (local.get $id) (i32.const 0)))
      (i32.store (i32.const 68) (i32.const 64))
      (drop (call $source_read (local.get $args) (i32.const 2048) (i32.const 68)))
      (drop (call $table_id (i32.const 256) (i32.const 7) (i32.const 72)))
      (return (call $insert (i32.load (i32.const 72)) (i32.const 2048) (i32.const 68))))
    (block $not2  ;; reducer 2: datastore_clear (Rust modules built for 2.2+ use it; our SDK does not)
      (br_if $not2 (i32.ne (local.get $id) (i32.const 2)))
      (drop (call $table_id (i32.const 256) (i32.const 7) (i32.const 72)))
      (drop (call $clear (i32.load (i32.const 72)) (i32.const 88)))
      (i32.store8 (i32.const 502) (i32.add (i32.const 48) (i32.load (i32.const 88))))
      (call $log (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)
                 (i32.const 502) (i32.const 1))
      (return (i32.const 0)))
    ;; reducer 1: unbounded range scan through the alias, count bytes, then delete through the alias
    (drop (call $index_id (i32.const 300) (i32.const 20) (i32.const 76)))
    (drop (call $scan (i32.load (i32.const 76)) (i32.const 400) (i32.const 0) (i32.const 0)
                      (i32.const 340) (i32.const 1) (i32.const 340) (i32.const 1) (i32.const 80)))
    (i32.store (i32.const 84) (i32.const 1024))
    (drop (call $advance (i32.load (i32.const 80)) (i32.const 3000) (i32.const 84)))
    (i32.store8 (i32.const 500) (i32.add (i32.const 48) (i32.div_u (i32.load (i32.const 84)) (i32.const 12))))
    (call $log (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)
               (i32.const 500) (i32.const 1))
    (drop (call $delete (i32.load (i32.const 76)) (i32.const 400) (i32.const 0) (i32.const 0)
                        (i32.const 340) (i32.const 1) (i32.const 340) (i32.const 1) (i32.const 88)))
    (i32.store8 (i32.const 501) (i32.add (i32.const 48) (i32.load (i32.const 88))))
    (call $log (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)
               (i32.const 501) (i32.const 1))
    (i32.const 0)))
"""


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("features")
    (tmp / "features.py").write_text(MODULE)
    return build(tmp / "features.py", tmp / "features.wasm").output.read_bytes()


@pytest.fixture
def db(wasm):
    d = Database.create(wasm, owner=OWNER, limits=Limits(timeout_s=2.0, memory_bytes=256 << 20))
    yield d
    d.close()


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        body = f"hello {self.path}".encode()
        self.send_response(201)
        self.send_header("x-echo", self.headers.get("x-test", "none"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def messages(db, prefix=""):
    return [r.message for r in db.logs() if r.message.startswith(prefix)]


def names(db):
    return sorted(r["name"] for r in db.row_dicts("item"))


def ok(out):
    assert out.committed, out.error
    return out


# ---------------------------------------------------------------- procedures


def test_procedure_http_transactions_and_sleep(db, http_url):
    out = db.call_procedure("fetch", [f"{http_url}/x"], sender=ALICE)
    assert out.ok, out.error
    assert out.value == "201 1 hello /x"
    assert names(db) == ["hello /x"]
    out = db.call_procedure("tx_dance", ["kept"])
    assert out.ok, out.error
    assert out.value == 2 and names(db) == ["hello /x", "kept"]  # aborted / raised transactions left nothing
    assert messages(db, "codes=") == ["codes=[17, 17, 18, 18] slept=True"]


def test_procedure_http_is_loopback_only_by_default(db):
    # refused before any connection: a public address (only loopback by default), a special-purpose one
    # (refused by upstream too, worded as upstream), a scheme other than http(s)
    out = db.call_procedure("fetch", ["http://1.1.1.1/nope"])
    assert out.ok and out.value.startswith("error: ") and "only allows loopback" in out.value
    out = db.call_procedure("fetch", ["http://192.0.2.1/nope"])
    assert out.value == "error: refusing to connect to private or special-purpose addresses"
    out = db.call_procedure("fetch", ["ftp://127.0.0.1/x"])
    assert out.value == "error: builder error for url (ftp://127.0.0.1/x): URL scheme is not allowed"
    assert db.rows("item") == []


def test_procedure_left_open_tx_is_rolled_back_and_failures_reported(db):
    out = db.call_procedure("leave_open")
    assert out.ok and db.rows("item") == []
    assert any("transaction open: rolled back" in m for m in messages(db))
    # Upstream's protocol: a procedure returns 0 or traps.  The SDK logs why (with the traceback) and traps;
    # the caller gets the trap, the module log the reason, and a fresh instance serves the next call.
    for proc, reason in [("proc_boom", "RuntimeError: procedure failed"), ("proc_refuse", "not you")]:
        out = db.call_procedure(proc)
        assert out.status == "trapped" and out.trap_kind == "trap", out
        why = [r for r in db.logs() if r.message.startswith(f"procedure {proc} failed")]
        assert why and reason in why[-1].message and why[-1].level == 0
    assert "Traceback" in messages(db, "procedure proc_boom failed")[-1]
    ok(db.call_reducer("add", ["a", 1, "x"]))  # the database lock was released
    assert db.call_procedure("tx_dance", ["after"]).ok


def test_procedure_only_imports_in_reducers(db):
    ok(db.call_reducer("reducer_tx_calls"))
    assert messages(db, "reducer_tx=") == ["reducer_tx=[17, 18, 18]"]


def test_procedure_transactions_are_durable(wasm, tmp_path):
    d = Database.create(wasm, owner=OWNER, data_dir=tmp_path / "p")
    assert d.call_procedure("tx_dance", ["durable"]).ok
    d.close()
    again = Database.open(tmp_path / "p")
    assert names(again) == ["durable"]
    again.close()


# ---------------------------------------------------------------- views


def test_views_return_rows(db):
    ok(db.call_reducer("add", ["a", 1, "x"], sender=ALICE))
    ok(db.call_reducer("add", ["b", 7, "y"], sender=OWNER))
    mine = db.call_view("my_items", sender=ALICE)
    assert mine.ok and [r[1] for r in mine.rows] == ["a"] and len(mine.rows_bsatn) == 1
    assert [r[1] for r in db.call_view("cheap_items").rows] == ["a"]
    first = db.call_view("first_item")
    assert first.ok and [r[1] for r in first.rows] == ["a"]
    bad = db.call_view("bad_view")
    assert bad.status == "failed" and bad.error == "view says no"


def test_built_module_loads_on_a_server_without_abi_10_5(wasm, monkeypatch):
    """Servers before 2.2 host ABI 10.4 and refuse a module importing spacetime_10.5: the build drops
    datastore_clear (unreachable from Python), and Table.clear works with 10.0 calls."""
    minors = {int(i.module.rpartition(".")[2]) for i in module_info(wasm).imports}
    assert max(minors) == 4
    original = AbiEnv.imports
    monkeypatch.setattr(AbiEnv, "imports",  # an "old server": no spacetime_10.5 functions to link
                        lambda self: {k: v for k, v in original(self).items() if k[0] != "spacetime_10.5"})
    db = Database.create(wasm, owner=OWNER)
    for name in ("a", "b", "c"):
        ok(db.call_reducer("add", [name, 1, "x"]))
    ok(db.call_reducer("wipe"))
    assert messages(db, "cleared=") == ["cleared=3 door_has_clear=False"] and db.rows("item") == []
    ok(db.call_reducer("add", ["d", 1, "x"]))  # unique indexes were cleaned up too
    assert names(db) == ["d"]
    db.close()


# ---------------------------------------------------------------- schedule_immediate and JWTs


def test_exercise_runs_every_datastore_import_and_queues_a_follow_up(db):
    for name, qty, tag in [("a", 1, "x"), ("b", 2, "y"), ("c", 55, "x"), ("d", 3, "z")]:
        ok(db.call_reducer("add", [name, qty, tag]))
    db.set_connection_jwt(CONN, '{"sub":"alice"}')
    out = ok(db.call_reducer("exercise", sender=ALICE, connection_id=CONN))
    assert messages(db, "count=") == ["count=4 scan=['a', 'b', 'c', 'd']"]
    assert messages(db, "range=") == ["range=['a', 'b', 'd']"] and messages(db, "hash=") == ["hash=['a', 'c']"]
    assert messages(db, "deleted_") == ["deleted_range=1", "deleted_point=1", "deleted_row=True"]
    assert messages(db, "me=") == ["me=True jwt=('alice', '{\"sub\":\"alice\"}')"]
    assert any(m.startswith('Timing span "exercise"') for m in messages(db))
    assert out.txdata is not None
    # the follow-up ran after the call, as the database, in its own transaction
    (row,) = [r for r in db.row_dicts("item") if r["name"] == "later"]
    assert row["owner"] == str(db.identity)
    assert names(db) == ["a", "later"]
    ok(db.call_reducer("wipe"))
    assert messages(db, "cleared=") == ["cleared=2 door_has_clear=False"] and db.rows("item") == []


def test_schedule_immediate_runs_even_if_the_caller_fails(db):
    out = db.call_reducer("queue_then_fail")
    assert out.status == "failed"
    assert names(db) == ["queued-by-failure"]


def test_jwt_is_none_without_registration(db):
    for name, qty, tag in [("a", 1, "x"), ("b", 2, "y")]:
        ok(db.call_reducer("add", [name, qty, tag]))
    ok(db.call_reducer("exercise", sender=ALICE, connection_id=CONN))
    assert messages(db, "me=") == ["me=True jwt=None"]


# ---------------------------------------------------------------- every import


def test_every_import_is_exercised(wasm, http_url, monkeypatch):
    counts: Counter = Counter()
    original = AbiEnv.imports

    def counting(self):
        table = original(self)

        def wrap(key, impl):
            def counted(p):
                counts[key] += 1
                return impl(p)
            return counted

        return {key: wrap(key, impl) for key, impl in table.items()}

    monkeypatch.setattr(AbiEnv, "imports", counting)
    expected = {(mod, name) for mod, fns in ALL_IMPORTS.items() for name in fns}
    assert len(expected) == 30
    assert set(original(AbiEnv(tables={}, indexes={}, table_names={}, index_names={}, database_identity=bytes(32),
                               on_log=print))) == expected

    db = Database.create(wasm, owner=OWNER)
    for name, qty, tag in [("a", 1, "x"), ("b", 2, "y"), ("c", 55, "x"), ("d", 3, "z")]:
        ok(db.call_reducer("add", [name, qty, tag]))
    db.set_connection_jwt(CONN, '{"sub":"bob"}')
    ok(db.call_reducer("exercise", sender=ALICE, connection_id=CONN))
    ok(db.call_reducer("big_args", ["x" * 5000]))  # > 1 KiB of args: bytes_source_remaining_length
    ok(db.call_reducer("wipe"))
    assert db.call_procedure("fetch", [f"{http_url}/y"]).ok
    assert db.call_procedure("tx_dance", ["t"]).ok
    assert db.call_view("my_items", sender=ALICE).ok

    alias = Database.create(wt.wat2wasm(ALIAS_WAT), owner=OWNER)
    for i in range(3):
        ok(alias.call_reducer("insert_counter", [i, i]))
    ok(alias.call_reducer("scan_and_delete"))
    assert [r.message for r in alias.logs()] == ["3", "3"] and alias.rows("counter") == []
    for i in range(2):
        ok(alias.call_reducer("insert_counter", [i, i]))
    ok(alias.call_reducer("clear_all"))
    assert [r.message for r in alias.logs()][-1] == "2" and alias.rows("counter") == []

    missing = sorted(f"{m}.{n}" for m, n in expected - {k for k, v in counts.items() if v})
    assert not missing, f"imports never called: {missing}"


# ---------------------------------------------------------------- faults in Python code


@pytest.mark.parametrize("reducer, status, kinds", [
    ("boom", "failed", None),
    ("trap", "trapped", {"host"}),
    ("spin", "trapped", {"timeout"}),
    ("hog", None, None),  # MemoryError inside Python ("failed") or the memory cap traps: either way rolled back
    ("deep", "failed", None),  # RecursionError before the 512 KiB native stack overflows (test_host_limits.py)
])
def test_faults_roll_back_and_the_next_call_is_served(wasm, reducer, status, kinds):
    db = Database.create(wasm, owner=OWNER, limits=Limits(timeout_s=1.0, memory_bytes=192 << 20))
    ok(db.call_reducer("add", ["before", 1, "b"]))
    out = db.call_reducer(reducer)
    assert out.status in ("failed", "trapped") and out.error, out
    if status:
        assert out.status == status, out
    if kinds:
        assert out.trap_kind in kinds, out
    assert names(db) == ["before"]  # no partial writes
    ok(db.call_reducer("add", ["after", 2, "a"]))
    assert names(db) == ["after", "before"]
    db.close()


def test_procedure_timeout_inside_a_transaction_rolls_back_and_releases_the_database(wasm):
    db = Database.create(wasm, owner=OWNER, limits=Limits(timeout_s=0.5))
    out = db.call_procedure("proc_spin")
    assert out.status == "trapped" and out.trap_kind == "timeout"
    assert db.rows("item") == []
    ok(db.call_reducer("add", ["after", 2, "a"]))
    out = db.call_procedure("tx_dance", ["again"], timestamp=Timestamp(1_700_000_000_000_000))
    assert out.ok and names(db) == ["after", "again"]
    db.close()
