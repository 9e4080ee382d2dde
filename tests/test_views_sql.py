"""Views as tables: SQL (in-process and over HTTP /sql), one-off queries and WebSocket subscriptions through
our server (real bytes), per-sender views, re-evaluation after commits, and views in generated bindings."""

from __future__ import annotations

import asyncio
import json
import struct
import urllib.request

import pytest

from harness.host import Database
from harness.sql import QueryCache, SqlError, execute
from module_sdk.build import build
from spacetime_core.protocol import (
    CallReducer,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
)
from spacetime_core.sats import Identity
from spacetime_core.sats.raw_def import decode_raw_def
from tests.test_server_ws_common import AppServerThread, RawClient, bsatn_str

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))
ALICE = Identity.from_bytes(bytes([7] * 32))
BOB = Identity.from_bytes(bytes([9] * 32))

MODULE = '''
from module_sdk import (
    AnonymousViewContext, Identity, Query, ReducerContext, ViewContext, anonymous_view, index, primary_key,
    reducer, table, u32, view,
)


@table(public=True)
class Item:
    id: u32 = primary_key(auto_inc=True)
    owner: Identity = index()
    name: str


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.item.insert(Item(id=0, owner=ctx.sender, name=name))


@reducer
def drop(ctx: ReducerContext, name: str) -> None:
    for it in list(ctx.db.item.owner.filter(ctx.sender)):
        if it.name == name:
            ctx.db.item.id.delete(it.id)


@view(primary_key="id")
def my_items(ctx: ViewContext) -> list[Item]:
    return list(ctx.db.item.owner.filter(ctx.sender))


@anonymous_view
def long_names(ctx: AnonymousViewContext) -> list[Item]:
    return [i for i in ctx.db.item if len(i.name) > 3]


@table(public=True)
class Like:
    id: u32 = primary_key(auto_inc=True)
    item_id: u32 = index()
    fan: Identity = index()


@reducer
def like(ctx: ReducerContext, item_id: u32) -> None:
    ctx.db.like.insert(Like(id=0, item_id=item_id, fan=ctx.sender))


@anonymous_view
def figs(ctx: AnonymousViewContext) -> Query[Item]:
    return ctx.from_.item.where(lambda i: (i.name == "fig") | (i.name == "it's"))


@view
def liked_items(ctx: ViewContext) -> Query[Item]:
    return ctx.from_.like.where(lambda lk: lk.fan == ctx.sender).right_semijoin(
        ctx.from_.item, lambda lk, it: lk.item_id == it.id)
'''


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    d = tmp_path_factory.mktemp("views")
    (d / "views_mod.py").write_text(MODULE)
    return build(d / "views_mod.py", d / "views_mod.wasm").output.read_bytes()


@pytest.fixture
def db(wasm):
    d = Database.create(wasm, owner=OWNER)
    for who, name in ((ALICE, "apple"), (ALICE, "fig"), (BOB, "banana")):
        assert d.call_reducer("add", [name], sender=who).committed
    yield d
    d.close()


def names(res) -> list[str]:
    return sorted(r[2] for r in res.rows)


# ------------------------------------------------------------------------------ SQL in-process


def test_sql_select_from_views(db):
    [res] = execute(db, "SELECT * FROM my_items", ALICE, owner=False)
    assert [c for c, _ in res.columns] == ["id", "owner", "name"]
    assert names(res) == ["apple", "fig"]
    [res] = execute(db, "SELECT * FROM my_items", BOB, owner=False)
    assert names(res) == ["banana"]  # per sender
    [res] = execute(db, "SELECT name FROM long_names WHERE name <> 'apple'", BOB, owner=False)
    assert res.rows == [("banana",)]
    [res] = execute(db, "SELECT COUNT(*) AS n FROM my_items", ALICE, owner=False)
    assert res.rows == [(2,)]
    [res] = execute(db, "SELECT i.name FROM my_items AS m JOIN item AS i ON m.id = i.id", ALICE, owner=False)
    assert sorted(res.rows) == [("apple",), ("fig",)]


def test_views_reject_dml_and_unknown_columns(db):
    with pytest.raises(SqlError, match="is a view"):
        execute(db, "DELETE FROM my_items", OWNER, owner=True)
    with pytest.raises(SqlError, match="does not have a field `nope`"):
        execute(db, "SELECT nope FROM my_items", ALICE, owner=False)


def test_subscription_plan_over_a_view_follows_commits(db):
    cache = QueryCache(db)
    alice = cache.subscribe("SELECT * FROM my_items", ALICE)
    bob = cache.subscribe("SELECT * FROM my_items", BOB)
    assert alice is not bob  # a per-sender view: one plan per sender
    with db.datastore.read() as rt:
        assert len(alice.initial(rt)) == 2 and len(bob.initial(rt)) == 1
    out = db.call_reducer("add", ["kiwi"], sender=ALICE)
    with db.datastore.read() as rt:
        updates = cache.evaluate(out.txdata, rt)
    assert set(updates) == {alice}  # bob's view result did not change
    ins, dels = updates[alice]
    assert len(ins) == 1 and b"kiwi" in ins[0] and dels == []
    out = db.call_reducer("drop", ["apple"], sender=ALICE)
    with db.datastore.read() as rt:
        ins, dels = cache.evaluate(out.txdata, rt)[alice]
    assert ins == [] and len(dels) == 1 and b"apple" in dels[0]


def test_views_are_re_run_only_after_commits_to_tables_they_read(db):
    reads: set[int] = set()
    assert db.call_view("my_items", sender=ALICE, reads=reads).ok
    assert reads == {db.table_id("item")}
    cache = QueryCache(db)
    mine = cache.subscribe("SELECT * FROM my_items", ALICE)
    liked = cache.subscribe("SELECT * FROM liked_items", ALICE)
    with db.datastore.read() as rt:
        mine.initial(rt)
        liked.initial(rt)
    calls = []
    real = db.call_view
    db.call_view = lambda name, **kw: calls.append(name) or real(name, **kw)
    try:
        out = db.call_reducer("like", [1], sender=BOB)  # `like` only: my_items cannot change
        assert not mine.touches(out.txdata) and liked.touches(out.txdata)
        with db.datastore.read() as rt:
            assert cache.evaluate(out.txdata, rt) == {}  # liked_items re-ran; ALICE's result is unchanged
        assert calls == ["liked_items"]
        out = db.call_reducer("add", ["pear"], sender=ALICE)
        with db.datastore.read() as rt:
            assert set(cache.evaluate(out.txdata, rt)) == {mine}
    finally:
        db.call_view = real


# ------------------------------------------------------------------------------ query-builder views


def test_query_builder_views(db):
    # the module def encodes Query[Item] as upstream's {__query__: Item}; the view returns RawSql
    vdef = next(v for v in db.mdef.views if v.name == "figs")
    assert [n for n, _ in vdef.return_type.elements] == ["__query__"]
    sections = {s.tag: s.value for s in decode_raw_def(db.mdef.raw).value[0]}
    assert sections[13] == [("my_items", ["id"])]  # ViewPrimaryKeys: only the declared one
    assert db.call_view("figs").raw_sql == \
        '''SELECT * FROM "item" WHERE (("item"."name" = 'fig') OR ("item"."name" = 'it''s'))'''
    assert db.call_view("liked_items", sender=ALICE).raw_sql == (
        'SELECT "item".* FROM "like" JOIN "item" ON "like"."item_id" = "item"."id" '
        f'WHERE ("like"."fan" = 0x{ALICE.to_hex()})')
    [res] = execute(db, "SELECT * FROM figs", BOB, owner=False)
    assert names(res) == ["fig"]
    cache = QueryCache(db)
    alice = cache.subscribe("SELECT * FROM liked_items", ALICE)
    bob = cache.subscribe("SELECT * FROM liked_items", BOB)
    with db.datastore.read() as rt:
        assert alice.initial(rt) == [] and bob.initial(rt) == []
    banana = next(r[0] for r in db.rows("item") if r[2] == "banana")
    out = db.call_reducer("like", [banana], sender=ALICE)
    with db.datastore.read() as rt:
        updates = cache.evaluate(out.txdata, rt)
    assert set(updates) == {alice} and b"banana" in updates[alice][0][0]
    [res] = execute(db, "SELECT name FROM liked_items", ALICE, owner=False)
    assert res.rows == [("banana",)]


# ------------------------------------------------------------------------------ through our server


@pytest.fixture(scope="module")
def app(tmp_path_factory, wasm):
    srv = AppServerThread(tmp_path_factory.mktemp("viewsrv"), wasm, "views").start()
    yield srv
    srv.stop()


def _sql_http(app, sql: str, token: str):
    req = urllib.request.Request(f"{app.url}/v1/database/views/sql", data=sql.encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_sql_on_a_view_over_http(app):
    a, b = app.authority.mint(), app.authority.mint()
    db = app.databases["views"]
    db.call_reducer("add", ["melon"], sender=a.identity)
    db.call_reducer("add", ["plum"], sender=b.identity)
    [ra] = _sql_http(app, "SELECT name FROM my_items", a.token)
    [rb] = _sql_http(app, "SELECT name FROM my_items", b.token)
    assert ra["rows"] == [["melon"]] and rb["rows"] == [["plum"]]
    assert [e["name"] for e in ra["schema"]["elements"]] == [{"some": "name"}]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _connect(app, token: str) -> RawClient:
    c = await RawClient.connect(app.ws_url("views"), headers={"Authorization": f"Bearer {token}"})
    first = await c.recv()
    assert isinstance(first, InitialConnection)
    return c


def _row_name(row: bytes) -> str:
    (n,) = struct.unpack_from("<I", row, 36)
    return row[40:40 + n].decode()


def test_ws_subscription_to_a_view_gets_rows_and_updates(app):
    a, b = app.authority.mint(), app.authority.mint()

    async def go():
        ca, cb = await _connect(app, a.token), await _connect(app, b.token)
        await ca.send(CallReducer(1, 0, "add", bsatn_str("grape")))
        await ca.recv()  # ReducerResult
        for c in (ca, cb):
            await c.send(Subscribe(2, 7, ["SELECT * FROM my_items"]))
            m = await c.recv()
            assert isinstance(m, SubscribeApplied), m
            assert [t.table for t in m.rows.tables] in (["my_items"], [])  # a table without rows is left out
            c.initial = [_row_name(bytes(r)) for t in m.rows.tables for r in t.rows.rows()]
        assert ca.initial == ["grape"] and cb.initial == []
        # b's reducer changes only b's view: a gets nothing for it, b gets a TransactionUpdate for my_items
        await cb.send(CallReducer(3, 0, "add", bsatn_str("pear")))
        m = await cb.recv()
        upd = m.result.value.transaction_update
        [qs] = upd.query_sets
        [tu] = qs.tables
        assert qs.query_set_id == 7 and tu.table_name == "my_items"
        assert [_row_name(bytes(r)) for r in tu.rows[0].value.inserts.rows()] == ["pear"]
        # a deletes its row: its own ReducerResult carries the delete of the view row
        await ca.send(CallReducer(4, 0, "drop", bsatn_str("grape")))
        m = await ca.recv()
        [tu] = m.result.value.transaction_update.query_sets[0].tables
        assert [_row_name(bytes(r)) for r in tu.rows[0].value.deletes.rows()] == ["grape"]
        # the view also answers one-off queries
        await ca.send(OneOffQuery(5, "SELECT * FROM long_names"))
        m = await ca.recv()
        assert isinstance(m, OneOffQueryResult)
        assert m.result.value.tables[0].table == "long_names"
        assert "pear" in [_row_name(bytes(r)) for r in m.result.value.tables[0].rows.rows()]
        # an update from another connection reaches a subscriber of the anonymous view
        await ca.send(Subscribe(6, 8, ["SELECT * FROM long_names"]))
        assert isinstance(await ca.recv(), SubscribeApplied)
        await cb.send(CallReducer(7, 0, "add", bsatn_str("cherry")))
        await cb.recv()
        m = await ca.recv()
        assert isinstance(m, TransactionUpdate), m
        [qs] = m.query_sets
        assert qs.query_set_id == 8 and qs.tables[0].table_name == "long_names"
        assert [_row_name(bytes(r)) for r in qs.tables[0].rows[0].value.inserts.rows()] == ["cherry"]
        await ca.send(Subscribe(8, 9, ["SELECT * FROM my_items WHERE nope = 1"]))
        assert isinstance(await ca.recv(), SubscriptionError)
        await ca.close()
        await cb.close()
    run(go())


# ------------------------------------------------------------------------------ client bindings


def test_generated_bindings_include_views(wasm, app, tmp_path):
    import importlib
    import sys

    from client_sdk.codegen import generate, generate_python, module_def_from_schema_json
    from harness.host.describe import module_def_from_wasm

    files = generate_python(module_def_from_wasm(wasm))
    tables = files["tables.py"]
    assert "class MyItemsTable(TableHandle[Item]):" in tables and "class LongNamesTable(TableHandle[Item]):" in tables
    assert "    my_items: MyItemsTable\n" in tables and "view `my_items`" in tables
    init = files["__init__.py"]
    assert 'TableSpec("my_items", Item.__sats_type__, primary_key=0),' in init  # ViewPrimaryKeys
    assert 'TableSpec("figs", Item.__sats_type__, primary_key=0),' in init  # a Query[Item] view: item's key
    assert 'TableSpec("long_names", Item.__sats_type__),' in init
    assert '"long_names": LongNamesTable' in files["__init__.py"]
    # the same bindings from the server's schema JSON (the Views section is read)
    with urllib.request.urlopen(f"{app.url}/v1/database/views/schema?version=10", timeout=30) as r:
        assert generate_python(module_def_from_schema_json(json.loads(r.read()))) == files
    generate(module_def_from_wasm(wasm), tmp_path / "views_bind")
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module("views_bind")
        assert set(mod.MODULE.tables) == {"item", "my_items", "long_names", "like", "figs", "liked_items"}

        async def client():
            conn = await (mod.DbConnection.builder().with_uri(app.url).with_database_name("views").connect())
            try:
                await conn.subscription_builder().subscribe(["SELECT * FROM my_items"])
                assert conn.db.my_items.count() == 0
                await conn.reducers.add("lemon")
                await conn.reducers.add("lime")
                assert sorted(i.name for i in conn.db.my_items.iter()) == ["lemon", "lime"]
                assert all(i.owner == conn.identity for i in conn.db.my_items.iter())
            finally:
                await conn.disconnect()
        run(client())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("views_bind", None)
