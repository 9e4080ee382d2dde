"""module_sdk end to end: built modules run by harness.host against the real datastore (reducers, lifecycle,
schedules; views and procedures: tests/test_host_features.py)."""

from pathlib import Path

import pytest

from harness.host import Database
from module_sdk.build import build
from spacetime_core.sats import ConnectionId, Identity, Timestamp

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
OWNER = Identity.from_bytes(bytes(range(32)))
ALICE = Identity.from_bytes(bytes(range(1, 33)))

MODULE = '''
from module_sdk import (
    Range, ReducerContext, ScheduleAt, SenderError, UniqueAlreadyExists, btree, index, init, log, primary_key,
    reducer, table, u32, u64, unique,
)


@table(public=True, indexes=[btree("name", "age", accessor="name_age")])
class Person:
    id: u64 = primary_key(auto_inc=True)
    email: str = unique()
    name: str
    age: u32 = index()
    tag: str = index("hash")


@reducer
def add(ctx: ReducerContext, email: str, name: str, age: u32, tag: str):
    p = ctx.db.person.insert(Person(email=email, name=name, age=age, tag=tag))
    log.info(f"id={p.id}")


@reducer
def add_twice(ctx: ReducerContext, email: str):
    ctx.db.person.insert(Person(email=email, name="dup", age=1, tag="t"))
    try:
        ctx.db.person.insert(Person(email=email, name="dup2", age=2, tag="t"))
    except UniqueAlreadyExists as e:
        log.info(f"caught {type(e).__name__} errno={e.errno}")


@reducer
def query(ctx: ReducerContext):
    def names(rows):
        return ",".join(sorted(p.name for p in rows))
    log.info(f"count={ctx.db.person.count()} len={len(ctx.db.person)} all={names(ctx.db.person)}")
    log.info(f"adults={names(ctx.db.person.age.filter(range(18, 65)))}")
    log.info(f"minors={names(ctx.db.person.age.filter(Range(None, 17, inclusive=True)))}")
    log.info(f"exact30={names(ctx.db.person.age.filter(30))} pair={names(ctx.db.person.age.filter((30, 40)))}")
    log.info(f"bob={names(ctx.db.person.name_age.filter('bob'))} "
             f"bob20s={len(list(ctx.db.person.name_age.filter(('bob', range(20, 30)))))} "
             f"bob40={len(list(ctx.db.person.name_age.filter(('bob', 40))))}")
    log.info(f"tag={names(ctx.db.person.tag.filter('x'))}")
    p = ctx.db.person.email.find("a@x")
    log.info(f"find={p.name if p else None} byid={ctx.db.person.id.find(p.id).email if p else None}")


@reducer
def birthday(ctx: ReducerContext, email: str):
    p = ctx.db.person.email.find(email)
    if p is None:
        raise SenderError(f"no person {email}")
    p.age += 1
    ctx.db.person.id.update(p)


@reducer
def remove(ctx: ReducerContext, email: str):
    log.info(f"removed={ctx.db.person.email.delete(email)}")


@reducer
def purge_minors(ctx: ReducerContext):
    log.info(f"purged={ctx.db.person.age.delete(range(0, 18))}")


@reducer
def delete_whole_row(ctx: ReducerContext, email: str):
    p = ctx.db.person.email.find(email)
    log.info(f"deleted={ctx.db.person.delete(p)} again={ctx.db.person.delete(p)}")


@reducer
def wipe(ctx: ReducerContext):
    log.info(f"cleared={ctx.db.person.clear()}")


@reducer
def fail_after_insert(ctx: ReducerContext):
    ctx.db.person.insert(Person(email="ghost@x", name="ghost", age=1, tag="g"))
    raise RuntimeError("rolled back")


@table(scheduled=lambda: tick)
class Tick:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt
    n: u32


@reducer
def tick(ctx: ReducerContext, row: Tick):
    log.info(f"tick n={row.n} from_db={ctx.sender == ctx.identity} conn={ctx.connection_id}")


@reducer
def schedule(ctx: ReducerContext, n: u32):
    ctx.db.tick.insert(Tick(scheduled_at=ScheduleAt.time(ctx.timestamp), n=n))


@init
def setup(ctx: ReducerContext):
    log.info(f"init sender={ctx.sender}")


@reducer
def whoami(ctx: ReducerContext):
    log.info(f"whoami sender={ctx.sender} conn={ctx.connection_id} ts={ctx.timestamp.micros} "
             f"internal={ctx.sender_auth.is_internal}")
'''


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostmod")
    (tmp / "hostmod.py").write_text(MODULE)
    return build(tmp / "hostmod.py", tmp / "hostmod.wasm").output.read_bytes()


@pytest.fixture
def db(wasm):
    d = Database.create(wasm, owner=OWNER)
    yield d
    d.close()


def messages(db, prefix=""):
    return [r.message for r in db.logs() if r.message.startswith(prefix)]


def call(db, name, *args, **kw):
    out = db.call_reducer(name, list(args), **kw)
    assert out.committed, out.error
    return out


def test_init_runs_as_owner(db):
    assert messages(db, "init") == [f"init sender={OWNER}"]


def test_each_call_sees_its_own_caller_and_time(db):
    """The dispatcher reuses the caller's Identity/ConnectionId while the same caller keeps calling: a change
    of caller or connection (or no connection) must show in the very next call."""
    bob = Identity.from_bytes(bytes(range(2, 34)))
    c1, c2 = ConnectionId.from_bytes(bytes(range(16))), ConnectionId.from_bytes(bytes(range(1, 17)))
    calls = [(ALICE, c1), (ALICE, c1), (bob, c1), (bob, None), (ALICE, None), (ALICE, c2), (OWNER, c2), (OWNER, None)]
    for i, (who, conn) in enumerate(calls):
        call(db, "whoami", sender=who, connection_id=conn, timestamp=Timestamp(1_700_000_000_000_000 + i))
    assert messages(db, "whoami") == [f"whoami sender={who} conn={conn} ts={1_700_000_000_000_000 + i} "
                                      f"internal={conn is None}" for i, (who, conn) in enumerate(calls)]


def test_crud_through_indexes(db):
    call(db, "add", "a@x", "ann", 30, "x")
    call(db, "add", "b@x", "bob", 25, "y")
    call(db, "add", "c@x", "bob", 40, "x")
    call(db, "add", "d@x", "dan", 12, "z")
    assert messages(db, "id=") == ["id=1", "id=2", "id=3", "id=4"]
    assert sorted(r["email"] for r in db.row_dicts("person")) == ["a@x", "b@x", "c@x", "d@x"]
    call(db, "query")
    assert messages(db)[-7:] == [
        "count=4 len=4 all=ann,bob,bob,dan",
        "adults=ann,bob,bob",
        "minors=dan",
        "exact30=ann pair=ann,bob",
        "bob=bob,bob bob20s=1 bob40=1",
        "tag=ann,bob",
        "find=ann byid=a@x",
    ]
    call(db, "birthday", "a@x")
    assert {r["email"]: r["age"] for r in db.row_dicts("person")}["a@x"] == 31
    out = db.call_reducer("birthday", ["nobody@x"])
    assert out.status == "failed" and out.error == "no person nobody@x"
    call(db, "purge_minors")
    call(db, "remove", "b@x")
    call(db, "remove", "b@x")
    assert messages(db, "purged=") == ["purged=1"] and messages(db, "removed=") == ["removed=True", "removed=False"]
    call(db, "delete_whole_row", "c@x")
    assert messages(db, "deleted=") == ["deleted=True again=False"]
    assert [r["email"] for r in db.row_dicts("person")] == ["a@x"]
    call(db, "wipe")
    assert messages(db, "cleared=") == ["cleared=1"] and db.rows("person") == []


def test_unique_violation_is_a_typed_exception(db):
    call(db, "add_twice", "u@x")
    assert messages(db, "caught") == ["caught UniqueAlreadyExists errno=12"]
    assert [r["name"] for r in db.row_dicts("person")] == ["dup"]


def test_failures_roll_back_and_explain(db):
    out = db.call_reducer("fail_after_insert", [])
    assert out.status == "failed" and out.error == "RuntimeError: rolled back"
    assert db.rows("person") == []
    err = [r for r in db.logs() if r.level == 0 and r.filename != "__spacetimedb__"][-1]  # the module's line
    assert err.filename == "hostmod.py" and "Traceback" in err.message and "in fail_after_insert" in err.message
    out = db.call_reducer("add", b"\x01")
    assert out.status == "failed" and out.error.startswith("invalid arguments for reducer add")


def test_scheduled_reducer_runs_from_the_database(db):
    call(db, "schedule", 7)
    assert len(db.rows("tick")) == 1
    outcomes = db.scheduler.run_due()
    assert [o.status for o in outcomes] == ["committed"]
    assert messages(db, "tick") == ["tick n=7 from_db=True conn=None"]
    assert db.rows("tick") == []


def test_quickstart_chat(tmp_path):
    wasm = build(ROOT / "examples" / "quickstart", tmp_path / "qs.wasm").output.read_bytes()
    db = Database.create(wasm, owner=OWNER)
    conn = ConnectionId.from_bytes(bytes(range(16)))
    assert db.client_connected(ALICE, conn).committed
    assert db.row_dicts("user") == [{"identity": ALICE, "name": None, "online": True}]
    assert db.call_reducer("set_name", ["Alice"], sender=ALICE, connection_id=conn).committed
    assert db.call_reducer("send_message", ["hi all"], sender=ALICE, connection_id=conn).committed
    out = db.call_reducer("send_message", [""], sender=ALICE, connection_id=conn)
    assert (out.status, out.error) == ("failed", "Messages must not be empty")
    out = db.call_reducer("set_name", ["Bob"], sender=OWNER)
    assert (out.status, out.error) == ("failed", "Cannot set name for unknown user")
    (msg,) = db.row_dicts("message")
    assert msg["sender"] == ALICE and msg["text"] == "hi all"
    assert db.client_disconnected(ALICE, conn).committed
    assert db.row_dicts("user") == [{"identity": ALICE, "name": "Alice", "online": False}]
    db.close()
