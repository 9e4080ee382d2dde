"""module_sdk inside real built modules: `__describe_module__` and calls through the wasm exports, with a
tiny wasmtime host in this file that records the ABI calls (no datastore: rows come from canned data)."""

import struct
import textwrap
from pathlib import Path

import pytest
import wasmtime as wt

from module_sdk import schema
from module_sdk.build import build
from tests.test_moduledef import decode_module_def

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


def s(text: str) -> bytes:
    b = text.encode()
    return U32.pack(len(b)) + b


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


class Host:
    """Just enough of the SpacetimeDB host to call a module and watch what it asks for."""

    def __init__(self, path: Path):
        self.engine = wt.Engine()
        self.module = wt.Module.from_file(self.engine, str(path))
        self.store = wt.Store(self.engine)
        linker = wt.Linker(self.engine)
        for imp in {(i.module, i.name): i for i in self.module.imports}.values():  # a name may be imported twice
            linker.define_func(imp.module, imp.name, imp.type, self._handler(imp.name), access_caller=True)
        self.exports = linker.instantiate(self.store, self.module).exports(self.store)
        self.logs = []          # (level, target, filename, line, message)
        self.calls = []         # (import name, args...)
        self.ids = {}
        self.sources = {}
        self.sinks = {}
        self.iters = {}
        self.rows = {}          # table id -> [row bytes]
        self.point_result = b""
        self.writeback = b""
        self.database_identity = bytes(range(100, 132))

    # -- plumbing --
    def _handler(self, name):
        fn = getattr(self, "h_" + name, None)
        if fn is not None:
            return fn

        def missing(caller, *args):
            raise RuntimeError(f"unexpected import {name}{args}")
        return missing

    @staticmethod
    def read(caller, ptr, n):
        return bytes(caller["memory"].read(caller, ptr, ptr + n))

    @staticmethod
    def write(caller, ptr, data):
        caller["memory"].write(caller, data, ptr)

    def _iter(self, caller, out, data):
        it = len(self.iters) + 1 + sum(1 for _ in self.calls)
        self.iters[it] = data
        self.write(caller, out, U32.pack(it))
        return 0

    # -- imports --
    def h_console_log(self, caller, level, tp, tl, fp, fl, line, mp, ml):
        target = self.read(caller, tp, tl).decode() if tp else None
        filename = self.read(caller, fp, fl).decode() if fp else None
        self.logs.append((level, target, filename, None if line == 0xFFFFFFFF else line,
                          self.read(caller, mp, ml).decode()))

    def h_bytes_sink_write(self, caller, sink, ptr, len_ptr):
        n = U32.unpack(self.read(caller, len_ptr, 4))[0]
        self.sinks.setdefault(sink, bytearray()).extend(self.read(caller, ptr, n))
        return 0

    def h_bytes_source_read(self, caller, src, ptr, len_ptr):
        if src not in self.sources:
            return 8
        cap = U32.unpack(self.read(caller, len_ptr, 4))[0]
        data = self.sources[src]
        chunk, rest = data[:cap], data[cap:]
        self.write(caller, ptr, chunk)
        self.write(caller, len_ptr, U32.pack(len(chunk)))
        if rest:
            self.sources[src] = rest
            return 0
        del self.sources[src]
        return -1

    def h_bytes_source_remaining_length(self, caller, src, out):
        if src not in self.sources:
            return 8
        self.write(caller, out, U32.pack(len(self.sources[src])))
        return 0

    def h_identity(self, caller, out):
        self.write(caller, out, self.database_identity)

    def h_table_id_from_name(self, caller, ptr, n, out):
        name = self.read(caller, ptr, n).decode()
        self.calls.append(("table_id_from_name", name))
        self.write(caller, out, U32.pack(self.ids.setdefault(name, 4096 + len(self.ids))))
        return 0

    h_index_id_from_name = h_table_id_from_name

    def h_datastore_insert_bsatn(self, caller, tid, ptr, len_ptr):
        n = U32.unpack(self.read(caller, len_ptr, 4))[0]
        row = self.read(caller, ptr, n)
        self.calls.append(("insert", tid, row))
        self.rows.setdefault(tid, []).append(row)
        self.write(caller, ptr, self.writeback)
        self.write(caller, len_ptr, U32.pack(len(self.writeback)))
        return 0

    def h_datastore_table_scan_bsatn(self, caller, tid, out):
        self.calls.append(("scan", tid))
        return self._iter(caller, out, b"".join(self.rows.get(tid, [])))

    def h_datastore_index_scan_point_bsatn(self, caller, iid, ptr, n, out):
        self.calls.append(("scan_point", iid, self.read(caller, ptr, n)))
        return self._iter(caller, out, self.point_result)

    def h_datastore_index_scan_range_bsatn(self, caller, iid, pp, pl, elems, sp, sl, ep, el, out):
        prefix = self.read(caller, pp, pl) if elems else b""
        self.calls.append(("scan_range", iid, prefix, elems, self.read(caller, sp, sl), self.read(caller, ep, el)))
        return self._iter(caller, out, self.point_result)

    def h_row_iter_bsatn_advance(self, caller, it, buf, len_ptr):
        if it not in self.iters:
            return 6
        cap = U32.unpack(self.read(caller, len_ptr, 4))[0]
        data = self.iters[it]
        if len(data) > cap:
            self.write(caller, len_ptr, U32.pack(len(data)))
            return 11
        self.write(caller, buf, data)
        self.write(caller, len_ptr, U32.pack(len(data)))
        del self.iters[it]
        return -1

    def h_row_iter_bsatn_close(self, caller, it):
        return 0 if self.iters.pop(it, None) is not None else 6

    def h_datastore_table_row_count(self, caller, tid, out):
        self.write(caller, out, U64.pack(len(self.rows.get(tid, []))))
        return 0

    # -- calling the module --
    def describe(self) -> bytes:
        self.exports["__describe_module__"](self.store, 1)
        return bytes(self.sinks.pop(1, b""))

    def call_reducer(self, rid, args=b"", sender=bytes(32), conn=bytes(16), ts=1_700_000_000_000_000):
        src = 0
        if args:
            src = 5
            self.sources[src] = args
        words = [signed64(U64.unpack(sender[i:i + 8])[0]) for i in range(0, 32, 8)]
        cw = [signed64(U64.unpack(conn[i:i + 8])[0]) for i in range(0, 16, 8)]
        rc = self.exports["__call_reducer__"](self.store, rid, *words, *cw, ts, src, 9)
        return rc, bytes(self.sinks.pop(9, b"")).decode()

    def call_view(self, vid, sender=bytes(32)):
        words = [signed64(U64.unpack(sender[i:i + 8])[0]) for i in range(0, 32, 8)]
        rc = self.exports["__call_view__"](self.store, vid, *words, 0, 3)
        return rc, bytes(self.sinks.pop(3, b""))

    def call_procedure(self, pid, args=b"", ts=1_700_000_000_000_000):
        src = 0
        if args:
            src = 6
            self.sources[src] = args
        rc = self.exports["__call_procedure__"](self.store, pid, 0, 0, 0, 0, 0, 0, ts, src, 4)
        return rc, bytes(self.sinks.pop(4, b""))


MODULE = '''
from module_sdk import (
    Identity, Option, ProcedureContext, ReducerContext, SenderError, Timestamp, ViewContext, index, log,
    primary_key, procedure, reducer, table, u32, u64, view,
)


@table(public=True)
class Person:
    id: u64 = primary_key(auto_inc=True)
    name: str
    age: u32 = index()


@reducer
def add(ctx: ReducerContext, name: str, age: u32):
    if not name:
        raise SenderError("name must not be empty")
    if age > 150:
        raise ValueError(f"age {age} is not plausible")
    p = ctx.db.person.insert(Person(name=name, age=age))
    log.info(f"added {p.name} with id {p.id}")


@reducer
def census(ctx: ReducerContext):
    names = sorted(p.name for p in ctx.db.person)
    print("census:", ", ".join(names), ctx.db.person.count())
    adults = list(ctx.db.person.age.filter(range(18, 200)))
    log.debug(f"adults={len(adults)}")


@reducer
def whoami(ctx: ReducerContext):
    log.info(f"sender={ctx.sender} conn={ctx.connection_id} ts={ctx.timestamp.micros} db={ctx.identity}")
    log.info(f"random={ctx.rng.next_u32()} v7={ctx.new_uuid_v7()} v7={ctx.new_uuid_v7()} v4={ctx.new_uuid_v4()}")


@reducer
def find(ctx: ReducerContext, id: u64):
    p = ctx.db.person.id.find(id)
    log.info(f"found {p!r}")


@view
def oldest(ctx: ViewContext) -> Option[Person]:
    return Person(id=1, name="Old", age=99)


@procedure
def twice(ctx: ProcedureContext, n: u32) -> u64:
    return 2 * n
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdkmod")
    src = tmp / "sdkmod.py"
    src.write_text(MODULE)
    result = build(src, tmp / "sdkmod.wasm")
    return src, result


@pytest.fixture
def host(built):
    return Host(built[1].output)


def test_describe_is_what_the_same_code_describes_natively(built, host, tmp_path):
    import importlib.util
    import sys

    src, _ = built
    m = schema.new_module()
    spec = importlib.util.spec_from_file_location("sdkmod_native", src)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sdkmod_native"] = mod
    spec.loader.exec_module(mod)
    data = host.describe()
    assert data == m.describe()
    d = decode_module_def(data)
    assert [r["source_name"] for r in d["Reducers"]] == ["add", "census", "whoami", "find"]
    assert [v["source_name"] for v in d["Views"]] == ["oldest"] and d["Procedures"][0]["source_name"] == "twice"
    assert host.describe() == data  # every instance, every time


def test_reducer_inserts_and_logs_with_file_and_line(host):
    host.writeback = U64.pack(17)
    rc, err = host.call_reducer(0, s("Ada") + U32.pack(36))
    assert (rc, err) == (0, "")
    tid = host.ids["person"]
    assert ("insert", tid, U64.pack(0) + s("Ada") + U32.pack(36)) in host.calls
    level, target, filename, line, message = host.logs[-1]
    assert (level, message) == (2, "added Ada with id 17")
    assert target == "sdkmod" and filename == "sdkmod.py" and line == MODULE.splitlines().index(
        '    log.info(f"added {p.name} with id {p.id}")') + 1


def test_sender_error_and_exceptions_reach_the_caller(host):
    assert host.call_reducer(0, s("") + U32.pack(3)) == (1, "name must not be empty")
    rc, err = host.call_reducer(0, s("Bob") + U32.pack(999))
    assert (rc, err) == (1, "ValueError: age 999 is not plausible")
    level, _, filename, _, text = host.logs[-1]
    assert level == 0 and filename == "sdkmod.py"
    assert "Traceback (most recent call last):" in text and 'File "sdkmod.py"' in text and "in add" in text
    rc, err = host.call_reducer(0, s("Bob"))  # age missing
    assert rc == 1 and err.startswith("invalid arguments for reducer add:")
    assert host.call_reducer(99) == (1, "no reducer with id 99")


def test_scans_print_and_cached_ids(host):
    host.writeback = U64.pack(1)
    host.call_reducer(0, s("Zed") + U32.pack(40))
    host.call_reducer(0, s("Amy") + U32.pack(12))
    host.point_result = U64.pack(1) + s("Zed") + U32.pack(40)
    assert host.call_reducer(1) == (0, "")
    printed = [r for r in host.logs if r[4].startswith("census:")]
    assert printed and printed[-1][4] == "census: Amy, Zed 2" and printed[-1][2] == "sdkmod.py"
    assert printed[-1][0] == 2 and printed[-1][3] is not None
    age_idx = host.ids["person_age_idx_btree"]
    assert ("scan_range", age_idx, b"", 0, b"\x00" + U32.pack(18), b"\x01" + U32.pack(200)) in host.calls
    assert host.logs[-1][4] == "adults=1"
    lookups = [c for c in host.calls if c[0] == "table_id_from_name"]
    assert [c[1] for c in lookups] == ["person", "person_age_idx_btree"]  # each name resolved once


def test_context_values(host):
    sender = bytes(range(1, 33))
    conn = bytes(range(1, 17))
    host.call_reducer(2, sender=sender, conn=conn, ts=1_700_000_000_123_456)
    first = host.logs[-2][4]
    assert first == (f"sender={sender[::-1].hex()} conn={conn[::-1].hex()} ts=1700000000123456 "
                     f"db={host.database_identity[::-1].hex()}")
    rnd = host.logs[-1][4]
    host.call_reducer(2, sender=sender, conn=bytes(16), ts=1_700_000_000_123_456)
    assert "conn=None" in host.logs[-2][4]
    assert host.logs[-1][4] == rnd  # same timestamp, same random numbers and uuids
    v7a, v7b = rnd.split(" v7=")[1], rnd.split(" v7=")[2].split(" ")[0]
    assert v7a.startswith("018bcfe5-") and v7a < v7b


def test_unique_find_decodes_the_row(host):
    host.point_result = U64.pack(5) + s("Eve") + U32.pack(30)
    host.call_reducer(3, U64.pack(5))
    assert host.logs[-1][4] == "found Person(id=5, name='Eve', age=30)"
    assert host.calls[-1] == ("scan_point", host.ids["person_id_idx_btree"], U64.pack(5))
    host.point_result = b""
    host.call_reducer(3, U64.pack(6))
    assert host.logs[-1][4] == "found None"


def test_views_and_procedures_through_the_exports(host):
    assert host.call_view(0) == (2, b"\x00" + U32.pack(1) + U64.pack(1) + s("Old") + U32.pack(99))
    assert host.call_procedure(0, U32.pack(21)) == (0, U64.pack(42))


def test_quickstart_builds_and_describes(tmp_path):
    result = build(ROOT / "examples" / "quickstart", tmp_path / "quickstart.wasm")
    print(f"\nquickstart module: {result.size / 1e6:.2f} MB in {result.seconds:.2f} s")
    assert result.size < 8_000_000
    host = Host(result.output)
    d = decode_module_def(host.describe())
    tables = {t["source_name"]: t for t in d["Tables"]}
    assert set(tables) == {"user", "message"}
    assert all(t["table_access"] == "Public" for t in tables.values())
    assert tables["user"]["primary_key"] == [0]
    assert [r["source_name"] for r in d["Reducers"]] == ["set_name", "send_message", "identity_connected",
                                                         "identity_disconnected"]
    assert d["LifeCycleReducers"] == [{"lifecycle_spec": "OnConnect", "function_name": "identity_connected"},
                                      {"lifecycle_spec": "OnDisconnect", "function_name": "identity_disconnected"}]
    user = d["Typespace"][tables["user"]["product_type_ref"]]
    assert [n for n, _ in user.elements] == ["identity", "name", "online"]
    assert user.elements[0][1].is_identity() and user.elements[1][1].is_option()
    # validation through SenderError: empty message
    assert host.call_reducer(1, s("")) == (1, "Messages must not be empty")
    assert host.call_reducer(0, s("")) == (1, "Names must not be empty")
    # connect: user not found -> insert
    sender = bytes(range(32))
    assert host.call_reducer(2, sender=sender) == (0, "")
    (insert,) = [c for c in host.calls if c[0] == "insert"]
    assert insert[2] == sender + b"\x01" + b"\x01"  # identity, name None, online True


def test_schema_errors_fail_the_build(tmp_path):
    from module_sdk.build import BuildError

    src = tmp_path / "badschema.py"
    src.write_text(textwrap.dedent('''
        from module_sdk import table, primary_key, u32

        @table
        class A:
            a: u32 = primary_key()
            b: u32 = primary_key()
    '''))
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "bad.wasm")
    assert "more than one primary key" in str(e.value) and "badschema.py:4" in str(e.value)
