"""module_sdk on a plain Python against a fake `_spacetime`: what bytes and bounds the handles send, the
errno -> exception mapping, dispatch error handling, logging, rng, uuids, http encoding and names.
(Datastore behaviour is tested against the real host once it exists; see test_module_sdk_wasm.py for the
same code running inside a built module.)"""

import struct
from pathlib import Path

import pytest

from module_sdk import (
    Excluded,
    Identity,
    Included,
    Option,
    Range,
    ReducerContext,
    ScheduleAt,
    SenderError,
    Timestamp,
    UniqueAlreadyExists,
    Uuid,
    _abi,
    btree,
    errors,
    f64,
    hash_index,
    i64,
    index,
    log,
    primary_key,
    reducer,
    rng,
    schema,
    table,
    u8,
    u32,
    u64,
    unique,
    view,
)
from module_sdk.http import HttpResponse, decode_response, encode_request
from spacetime_core.names import canonical_snake, python_snake

U32 = struct.Struct("<I").pack
U64 = struct.Struct("<Q").pack


def s(text: str) -> bytes:
    b = text.encode()
    return U32(len(b)) + b


class FakeDoor:
    """Records every host call; answers from canned data."""

    class HostError(Exception):
        pass

    def __init__(self):
        self.calls = []
        self.ids = {"person": 100, "person_id_idx_btree": 101, "person_email_idx_btree": 102,
                    "person_age_idx_btree": 103}
        self.scan_result = b""
        self.generated = b""
        self.deleted = 1
        self.fail = {}  # import name -> errno
        self.logs = []
        self.http_fails = False

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.HostError(self.fail[name])

    def table_id_from_name(self, name):
        self._call("table_id_from_name", name)
        return self.ids.setdefault(name, 200 + len(self.ids))

    def index_id_from_name(self, name):
        self._call("index_id_from_name", name)
        return self.ids.setdefault(name, 200 + len(self.ids))

    def datastore_table_row_count(self, tid):
        self._call("row_count", tid)
        return 42

    def datastore_table_scan_bsatn(self, tid):
        self._call("scan", tid)
        return 7

    def datastore_index_scan_point_bsatn(self, iid, point):
        self._call("scan_point", iid, point)
        return 7

    def datastore_index_scan_range_bsatn(self, iid, prefix, n, rstart, rend):
        self._call("scan_range", iid, prefix, n, rstart, rend)
        return 7

    def row_iter_read_all(self, it):
        return self.scan_result

    def datastore_insert_bsatn(self, tid, row):
        self._call("insert", tid, row)
        return self.generated

    def datastore_update_bsatn(self, tid, iid, row):
        self._call("update", tid, iid, row)
        return self.generated

    def datastore_delete_all_by_eq_bsatn(self, tid, rows):
        self._call("delete_eq", tid, rows)
        return self.deleted

    def datastore_delete_by_index_scan_point_bsatn(self, iid, point):
        self._call("delete_point", iid, point)
        return self.deleted

    def datastore_delete_by_index_scan_range_bsatn(self, iid, prefix, n, rstart, rend):
        self._call("delete_range", iid, prefix, n, rstart, rend)
        return self.deleted

    def datastore_clear(self, tid):
        self._call("clear", tid)
        return 3

    def console_log(self, level, target, filename, line, message):
        self.logs.append((level, target, filename, line, message))

    def identity(self):
        return bytes(range(32))

    def get_jwt(self, conn):
        self._call("get_jwt", conn)
        return b'{"sub":"x"}'

    def volatile_nonatomic_schedule_immediate(self, name, args):
        self._call("schedule_immediate", name, args)

    def procedure_http_request(self, req, body):
        self._call("http", req, body)
        if self.http_fails:
            raise self.HostError(21, s("connection refused"))
        return (U32(1) + s("content-type") + U32(4) + b"text" + b"\x02" + struct.pack("<H", 201), b"hello")

    def __getattr__(self, name):
        def missing(*a):
            raise AssertionError(f"unexpected host call {name}{a}")
        return missing


@pytest.fixture
def door():
    d = FakeDoor()
    _abi.install(d)
    yield d
    _abi.install(None)


@pytest.fixture
def m():
    return schema.new_module()


def people(m):
    @table(public=True, indexes=[btree("name", "age", accessor="name_age"), hash_index("nick")])
    class Person:
        id: u64 = primary_key(auto_inc=True)
        email: str = unique()
        name: str
        age: u32 = index()
        nick: str = ""

    m.finalize()
    return Person


def row_bytes(id_, email, name, age, nick=""):
    return U64(id_) + s(email) + s(name) + U32(age) + s(nick)


# ---------------------------------------------------------------------------
# Table handles
# ---------------------------------------------------------------------------

def test_insert_sends_the_row_and_fills_auto_inc(door, m):
    Person = people(m)
    db = m.db
    door.generated = U64(5)
    p = Person(email="a@x", name="Ada", age=36)
    out = db.person.insert(p)
    assert out is p and p.id == 5
    assert door.calls == [("table_id_from_name", "person"), ("insert", 100, row_bytes(0, "a@x", "Ada", 36))]
    # a non-zero id is not overwritten, and nothing comes back
    door.generated = b""
    q = db.person.insert(Person(id=9, email="b@x", name="Bo", age=3))
    assert q.id == 9
    assert door.calls[-1] == ("insert", 100, row_bytes(9, "b@x", "Bo", 3))
    assert [c[0] for c in door.calls].count("table_id_from_name") == 1  # the id is cached


def test_insert_accepts_tuples_and_returns_a_row(door, m):
    Person = people(m)
    door.generated = U64(1)
    out = m.db.person.insert((0, "t@x", "T", 1, ""))
    assert isinstance(out, Person) and out.id == 1 and out.name == "T"


def test_delete_row_count_iter_clear(door, m):
    Person = people(m)
    p = Person(id=1, email="a", name="A", age=2)
    assert m.db.person.delete(p) is True
    assert door.calls[-1] == ("delete_eq", 100, U32(1) + row_bytes(1, "a", "A", 2))
    door.deleted = 0
    assert m.db.person.delete(p) is False
    assert m.db.person.delete_many([p, p]) == 0
    assert door.calls[-1] == ("delete_eq", 100, U32(2) + row_bytes(1, "a", "A", 2) * 2)
    assert m.db.person.count() == 42 and len(m.db.person) == 42
    door.scan_result = row_bytes(1, "a", "A", 2) + row_bytes(2, "b", "B", 3, "bee")
    rows = list(m.db.person)
    assert rows == [Person(1, "a", "A", 2, ""), Person(2, "b", "B", 3, "bee")]
    assert m.db.person.clear() == 3


def test_unique_and_primary_key_accessors(door, m):
    Person = people(m)
    door.scan_result = row_bytes(1, "a", "A", 2)
    assert m.db.person.id.find(1) == Person(1, "a", "A", 2, "")
    assert door.calls[-2:] == [("index_id_from_name", "person_id_idx_btree"), ("scan_point", 101, U64(1))]
    assert m.db.person.email.find("a").id == 1
    assert door.calls[-1] == ("scan_point", 102, s("a"))
    door.scan_result = b""
    assert m.db.person.email.find("zz") is None
    assert m.db.person.email.delete("a") is True
    assert door.calls[-1] == ("delete_point", 102, s("a"))
    door.generated = b""
    p = Person(1, "new", "A", 3, "")
    assert m.db.person.id.update(p) is p
    assert door.calls[-1] == ("update", 100, 101, row_bytes(1, "new", "A", 3))
    assert not hasattr(m.db.person.email, "update")  # update only through the primary key


def test_btree_filters_send_points_prefixes_and_bounds(door, m):
    people(m)
    age = m.db.person.age
    list(age.filter(30))
    assert door.calls[-1] == ("scan_point", 103, U32(30))
    list(age.filter(range(18, 65)))
    assert door.calls[-1] == ("scan_range", 103, b"", 0, b"\x00" + U32(18), b"\x01" + U32(65))
    list(age.filter((18, 65)))
    assert door.calls[-1] == ("scan_range", 103, b"", 0, b"\x00" + U32(18), b"\x00" + U32(65))
    list(age.filter(Range(Excluded(18), None)))
    assert door.calls[-1] == ("scan_range", 103, b"", 0, b"\x01" + U32(18), b"\x02")
    list(age.filter(Range(None, 10, inclusive=True)))
    assert door.calls[-1] == ("scan_range", 103, b"", 0, b"\x02", b"\x00" + U32(10))
    list(age.filter(Range(Included(1), Included(2))))
    assert door.calls[-1][4:] == (b"\x00" + U32(1), b"\x00" + U32(2))
    # the spec's example: 5 <= x < 9
    list(age.filter(range(5, 9)))
    assert door.calls[-1][4:] == (bytes.fromhex("0005000000"), bytes.fromhex("0109000000"))
    with pytest.raises(ValueError):
        list(age.filter(range(0, 10, 2)))
    assert age.delete(range(0, 18)) == 1
    assert door.calls[-1] == ("delete_range", 103, b"", 0, b"\x00" + U32(0), b"\x01" + U32(18))
    assert age.delete(7) == 1
    assert door.calls[-1] == ("delete_point", 103, U32(7))


def test_multi_column_prefix_scans(door, m):
    people(m)
    na = m.db.person.name_age
    iid = None
    list(na.filter(("bob", 30)))
    iid = door.calls[-1][1]
    assert door.calls[-1] == ("scan_point", iid, s("bob") + U32(30))
    list(na.filter("bob"))
    assert door.calls[-1] == ("scan_range", iid, b"", 0, b"\x00" + s("bob"), b"\x00" + s("bob"))
    list(na.filter(("bob", range(18, 30))))
    assert door.calls[-1] == ("scan_range", iid, s("bob"), 1, b"\x00" + U32(18), b"\x01" + U32(30))
    list(na.filter(("bob", (18, 30))))
    assert door.calls[-1] == ("scan_range", iid, s("bob"), 1, b"\x00" + U32(18), b"\x00" + U32(30))
    with pytest.raises(TypeError, match="2 columns"):
        list(na.filter(("bob", 1, 2)))


def test_hash_index_takes_exact_values_only(door, m):
    people(m)
    list(m.db.person.nick.filter("x"))
    assert door.calls[-1][0] == "scan_point"
    with pytest.raises(TypeError, match="hash index"):
        list(m.db.person.nick.filter(Range("a", "b")))


def test_errno_becomes_a_typed_exception(door, m):
    Person = people(m)
    door.fail["insert"] = 12
    with pytest.raises(UniqueAlreadyExists) as e:
        m.db.person.insert(Person(email="a", name="A", age=1))
    assert e.value.errno == 12 and isinstance(e.value, errors.SpacetimeError)
    door.fail["table_id_from_name"] = 4
    m.db.person._id = None
    with pytest.raises(errors.NoSuchTable):
        m.db.person.count()
    assert isinstance(errors.from_errno(99), errors.SpacetimeError)


def test_views_get_read_only_handles(door, m):
    people(m)
    ro = m.view_db.person
    assert not hasattr(ro, "insert") and not hasattr(ro, "delete") and not hasattr(ro, "clear")
    assert not hasattr(ro.id, "delete") and not hasattr(ro.id, "update") and hasattr(ro.id, "find")
    assert not hasattr(ro.age, "delete") and hasattr(ro.age, "filter")


def test_outside_a_module_host_calls_explain_themselves(m):
    people(m)
    with pytest.raises(RuntimeError, match="only works inside a built module"):
        m.db.person.count()


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

@pytest.fixture
def dispatch(m):
    from module_sdk import _dispatch

    def load():
        _dispatch.load(m.finalize())
        return _dispatch
    return load


@pytest.fixture(autouse=True, scope="module")
def _import_dispatch_on_an_empty_module():
    saved = schema.current()
    schema.new_module()
    from module_sdk import _dispatch  # noqa: F401 - its import describes the current (empty) module
    schema._current = saved


SENDER = bytes(range(32))
NO_CONN = bytes(16)
CONN = bytes(range(1, 17))


def test_reducer_call_success_sender_error_and_exception(door, m, dispatch):
    seen = []

    @reducer
    def greet(ctx: ReducerContext, name: str, n: u8):
        seen.append((ctx.sender, ctx.connection_id, ctx.timestamp, name, n))
        if n == 1:
            raise SenderError("no ones")
        if n == 2:
            raise KeyError("two")

    d = dispatch()
    args = s("bo") + b"\x00"
    assert d.call_reducer(0, SENDER, NO_CONN, 1_700_000_000_000_000, args) is None
    assert seen[0] == (Identity.from_bytes(SENDER), None, Timestamp(1_700_000_000_000_000), "bo", 0)
    d.call_reducer(0, SENDER, CONN, 5, args)
    assert seen[1][1].to_bytes() == CONN
    assert d.call_reducer(0, SENDER, NO_CONN, 5, s("bo") + b"\x01") == "no ones"
    assert d.call_reducer(0, SENDER, NO_CONN, 5, s("bo") + b"\x02") == "KeyError: 'two'"
    level, _, filename, line, text = door.logs[-1]
    assert level == 0 and filename.endswith("test_module_sdk.py") and "reducer greet failed" in text
    assert "Traceback (most recent call last)" in text and "in greet" in text and "KeyError: 'two'" in text
    assert d.call_reducer(0, SENDER, NO_CONN, 5, s("bo")).startswith("invalid arguments for reducer greet:")
    assert d.call_reducer(0, SENDER, NO_CONN, 5, args + b"\x00").startswith("invalid arguments")
    assert d.call_reducer(9, SENDER, NO_CONN, 5, b"") == "no reducer with id 9"


def test_fixed_width_arguments_decode_exactly(door, m, dispatch):
    """All-integer/float parameters take the one-struct path: same values, same errors for short/long args."""
    seen = []

    @reducer
    def move(ctx: ReducerContext, a: u32, b: i64, c: f64, d: u8):
        seen.append((a, b, c, d))

    @reducer
    def flag(ctx: ReducerContext, a: u32, ok: bool):
        seen.append((a, ok))

    d = dispatch()
    args = struct.pack("<Iqdb", 7, -5, 2.5, 255 - 256)
    assert d.call_reducer(0, SENDER, NO_CONN, 5, args) is None
    assert seen[-1] == (7, -5, 2.5, 255)
    short = d.call_reducer(0, SENDER, NO_CONN, 5, args[:-1])
    assert short.startswith("invalid arguments for reducer move:") and "need 21 bytes, got 20" in short
    assert "1 unexpected bytes" in d.call_reducer(0, SENDER, NO_CONN, 5, args + b"\x00")
    assert d.call_reducer(1, SENDER, NO_CONN, 5, struct.pack("<IB", 1, 1)) is None and seen[-1] == (1, True)
    assert d.call_reducer(1, SENDER, NO_CONN, 5, struct.pack("<IB", 1, 2)).startswith("invalid arguments")


def test_views_and_procedures_dispatch(door, m, dispatch):
    @table
    class Item:
        id: u32 = primary_key()
        label: str

    @view
    def mine(ctx) -> Option[Item]:
        return Item(7, "x") if ctx.sender == Identity.from_bytes(SENDER) else None

    @view
    def every(ctx: "AnonymousViewContext") -> list[Item]:  # noqa: F821 - string annotations are matched by name
        return [Item(1, "a"), Item(2, "b")]

    from module_sdk import ProcedureContext, procedure

    @procedure
    def double(ctx: ProcedureContext, n: u32) -> u64:
        return 2 * n

    @procedure
    def boom(ctx: ProcedureContext):
        raise SenderError("nope")

    d = dispatch()
    assert d.call_view(0, SENDER, b"") == (2, b"\x00" + U32(1) + U32(7) + s("x"))
    assert d.call_view(0, bytes(32), b"") == (2, b"\x00" + U32(0))
    assert d.call_view_anon(0, b"") == (2, b"\x00" + U32(2) + U32(1) + s("a") + U32(2) + s("b"))
    assert d.call_procedure(0, SENDER, NO_CONN, 5, U32(21)) == U64(42)
    # A str result makes the C door trap (upstream: procedures return 0 or trap): the reason goes to the log.
    assert d.call_procedure(1, SENDER, NO_CONN, 5, b"") == "procedure boom failed: nope"
    assert door.logs[-1][0] == 0 and door.logs[-1][-1] == "procedure boom failed: nope"


def test_with_tx_commits_or_aborts(door, m, dispatch):
    from module_sdk import ProcedureContext, procedure

    door.calls.clear()
    calls = door.calls

    def start():
        calls.append(("start",))
        return 99

    door.procedure_start_mut_tx = start
    door.procedure_commit_mut_tx = lambda: calls.append(("commit",))
    door.procedure_abort_mut_tx = lambda: calls.append(("abort",))
    _abi.install(door)

    @procedure
    def work(ctx: ProcedureContext, fail: bool) -> u32:
        def body(tx):
            assert tx.timestamp == Timestamp(99) and tx.db is m.db
            if fail:
                raise ValueError("bad")
            return 5
        return ctx.with_tx(body)

    d = dispatch()
    assert d.call_procedure(0, SENDER, NO_CONN, 5, b"\x00") == U32(5)
    assert calls[-2:] == [("start",), ("commit",)]
    assert d.call_procedure(0, SENDER, NO_CONN, 5, b"\x01") == "ValueError: bad"
    assert ("abort",) in calls


# ---------------------------------------------------------------------------
# Context, logging, rng, uuids, http, names
# ---------------------------------------------------------------------------

def test_context_identity_rng_uuids(door, m):
    ctx = ReducerContext(Identity(1), None, Timestamp(1_700_000_000_123_456), m.db)
    assert ctx.identity == Identity.from_bytes(bytes(range(32))) and ctx.database_identity == ctx.identity
    a = [ctx.rng.next_u32() for _ in range(3)]
    ctx2 = ReducerContext(Identity(1), None, Timestamp(1_700_000_000_123_456), m.db)
    assert [ctx2.rng.next_u32() for _ in range(3)] == a  # seeded from the timestamp
    assert 0 <= ctx.random() < 1
    v4 = ctx.new_uuid_v4()
    assert v4.version() == 4
    u = [ctx.new_uuid_v7() for _ in range(50)]
    assert all(x.version() == 7 for x in u)
    assert u == sorted(u) and len(set(u)) == 50
    assert u[0].to_bytes()[:6] == (1_700_000_000_123).to_bytes(6, "big")
    assert ctx.sender_auth.is_internal and ctx.sender_auth.jwt is None
    ctx3 = ReducerContext(Identity(1), Identity, Timestamp(0), m.db)  # any non-None connection id object
    assert ctx3.sender_auth.is_internal is False


def test_jwt_is_read_for_a_connection(door, m):
    from module_sdk import ConnectionId

    ctx = ReducerContext(Identity(1), ConnectionId(5), Timestamp(0), m.db)
    assert ctx.sender_auth.jwt.raw_payload == '{"sub":"x"}' and ctx.sender_auth.has_jwt
    assert ctx.sender_auth.jwt.subject == "x"
    assert door.calls[-1] == ("get_jwt", (5).to_bytes(16, "little"))


def test_rng_api():
    r = rng.Rng(12345)
    assert [r.randint(1, 6) for _ in range(200)].count(7) == 0
    assert {r.randint(1, 6) for _ in range(500)} == {1, 2, 3, 4, 5, 6}
    assert 0 <= r.randrange(10) < 10 and r.randrange(10, 20, 5) in (10, 15)
    x = list(range(20))
    r.shuffle(x)
    assert sorted(x) == list(range(20))
    assert len(set(r.sample(range(100), 10))) == 10
    assert len(r.randbytes(7)) == 7 and r.getrandbits(70) < 2**70
    assert rng.Rng(1).next_u64() == rng.Rng(1).next_u64() != rng.Rng(2).next_u64()


def test_log_records_carry_caller_file_and_line(door):
    log.info("hello", 3)
    line = test_log_records_carry_caller_file_and_line.__code__.co_firstlineno + 1
    level, target, filename, lineno, message = door.logs[-1]
    assert (level, message, lineno) == (2, "hello 3", line) and filename.endswith("test_module_sdk.py")
    assert target == __name__
    log.warn("w")
    log.error("e")
    log.debug("d")
    log.trace("t")
    assert [r[0] for r in door.logs[-4:]] == [1, 0, 3, 4]


def test_print_goes_to_the_log(door):
    out = log._LogStream(log.INFO, "<stdout>")
    print("a", "b", file=out)
    print("partial", end="", file=out)
    print(" line\nnext", file=out)
    assert [r[4] for r in door.logs[-3:]] == ["a b", "partial line", "next"]
    assert door.logs[-1][2].endswith("test_module_sdk.py")


def test_format_exception_by_hand():
    def inner():
        raise ValueError("x")

    try:
        try:
            inner()
        except ValueError as e:
            raise RuntimeError("outer") from e
    except RuntimeError as e:
        text = log.format_exception(e)
    assert text.index("ValueError: x") < text.index("direct cause") < text.index("RuntimeError: outer")
    assert "in inner" in text


def test_http_request_and_response_encoding(door):
    req = encode_request("POST", "https://x/y", [("a", "b")], timeout=1.5)
    assert req == (b"\x02" + U32(1) + s("a") + U32(1) + b"b" + b"\x00" + struct.pack("<q", 1_500_000)
                   + s("https://x/y") + b"\x02")
    assert encode_request("PURGE", "/", [])[:1] == b"\x09"
    status, headers, version = decode_response(U32(0) + b"\x03" + struct.pack("<H", 404))
    assert (status, headers, version) == (404, [], 3)
    from module_sdk.http import HttpClient

    r = HttpClient().get("https://example.com", headers={"accept": "text/plain"})
    assert isinstance(r, HttpResponse) and r.status == 201 and r.text() == "hello"
    assert r.header("Content-Type") == "text"
    door.http_fails = True
    with pytest.raises(errors.HttpError, match="connection refused"):
        HttpClient().get("https://example.com")


def test_schedule_immediate_encodes_args(door, m):
    from module_sdk import schedule_immediate

    @reducer
    def later(ctx, n: u32, t: str):
        pass

    m.finalize()
    schedule_immediate(later, 3, "x")
    assert door.calls[-1] == ("schedule_immediate", "later", U32(3) + s("x"))


def test_scheduled_table_row_values(m):
    @table(scheduled="go")
    class Job:
        scheduled_id: u64 = primary_key(auto_inc=True)
        scheduled_at: ScheduleAt

    @reducer
    def go(ctx, job: Job):
        pass

    m.finalize()
    j = Job(scheduled_at=ScheduleAt.interval(1_000_000))
    assert m.db.job._enc(j) == U64(0) + bytes.fromhex("00 40 42 0f 00 00 00 00 00")


@pytest.mark.parametrize("source,canonical", [
    ("one_u8", "one_u_8"), ("pk_u32_two", "pk_u_32_two"), ("delete_pk_i128", "delete_pk_i_128"),
    ("CreatePlayer1", "create_player_1"), ("Player1Id", "player_1_id"), ("HTTPRequest", "http_request"),
    ("IOStream", "io_stream"), ("ABC", "abc"), ("u8", "u_8"), ("U8", "u_8"), ("8a", "8_a"), ("vec2d", "vec_2_d"),
    ("u128", "u_128"), ("_private", "private"), ("a__b", "a_b"), ("x_", "x"), ("add_person", "add_person"),
    ("player1", "player_1"), ("FruitBasket", "fruit_basket"), ("deliveryRecord", "delivery_record"),
    ("sayHello", "say_hello"),
])
def test_canonical_names_follow_convert_case(source, canonical):
    assert canonical_snake(source) == canonical


def test_default_accessors_are_pythonic():
    assert [python_snake(n) for n in ("Person", "OneU8", "Player1Id", "HTTPRequest", "BTreeU32")] == [
        "person", "one_u8", "player1_id", "http_request", "b_tree_u32"]


def test_uuid_type_round_trips(m):
    @table
    class OneUuid:
        u: Uuid

    m.finalize()
    u = Uuid.parse("01888d6e-5c00-7000-8000-000000000000")
    assert m.db.one_uuid._enc(OneUuid(u)) == bytes.fromhex("00000000000000800070005c6e8d8801")


def test_sum_type_is_the_documented_decorator_and_keeps_builtin_sum():
    import module_sdk
    from module_sdk import sum as legacy_sum
    from module_sdk import sum_type

    ns: dict = {}
    exec("from module_sdk import *\ntotal = sum([1, 2, 3])", ns)  # a star import leaves the builtin alone
    assert ns["total"] == 6 and "sum_type" in module_sdk.__all__ and "sum" not in module_sdk.__all__

    @sum_type
    class Coin:
        Heads: None
        Tails: None

    @legacy_sum  # older code keeps working
    class Side:
        Left: None
        Right: u32

    assert Coin.Heads.tag == "Heads" and Side.Right(2).value == 2
    docs = (Path(__file__).resolve().parents[1] / "docs" / "module-api.md").read_text()
    assert "import product, sum_type" in docs and "@sum\n" not in docs
