"""harness.sql subscriptions: compile rules, initial rows, incremental deltas (property-tested against full
re-evaluation), RLS and private tables, QueryCache sharing."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.datastore import DatastoreError
from harness.host import Database
from harness.sql import QueryCache, SqlError, compile_subscription
from harness.sql.check import catalog
from module_sdk.build import build
from spacetime_core.sats import Identity, Timestamp

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))
ALICE = Identity.from_bytes(bytes([7] * 32))
BOB = Identity.from_bytes(bytes([9] * 32))
PEOPLE = [OWNER, ALICE, BOB]

# An extra RLS rule with a join, added to the module's own `note` rule for these tests.
GUILD_RLS = "SELECT g.* FROM guild g JOIN player p ON g.id = p.guild_id WHERE p.owner = :sender"


@pytest.fixture(scope="module")
def sqlmod_wasm(tmp_path_factory):
    return build("tests/data/sqlmod", tmp_path_factory.mktemp("sqlmod") / "m.wasm").output.read_bytes()


def make_db(wasm, rls=()):
    db = Database.create(wasm, owner=OWNER)
    db.mdef.row_level_security.extend(rls)
    db.__dict__.pop("_sql_catalog", None)
    return db


@pytest.fixture
def db(sqlmod_wasm):
    return make_db(sqlmod_wasm)


def player(i, age=20, owner=ALICE, guild=1, name=None, level=0):
    return (i, name or f"p{i}", age, owner, guild, None, b"", 0.0, True, level, 0)


def write(db, inserts=(), deletes=()):
    """One transaction straight on the datastore: (table, values) inserts, (table, values) deletes."""
    tx = db.datastore.begin()
    for t, vals in deletes:
        tid = db.table_id(t)
        tx.delete_all_by_eq(tid, [b for b, v in tx.scan_items(tid) if v == vals])
    for t, vals in inserts:
        tx.insert_values(db.table_id(t), vals)
    return tx.commit()


def initial(db, plan):
    with db.datastore.read() as rt:
        return plan.initial(rt)


def delta(db, plan, txdata):
    with db.datastore.read() as rt:
        return plan.delta(txdata, rt)


def test_compile_errors(db):
    def e(sql, who=ALICE):
        with pytest.raises(SqlError) as ex:
            compile_subscription(db, sql, who)
        return str(ex.value)

    assert e("SELECT * FROM secret").startswith("no such table: `secret`. If the table exists")
    assert compile_subscription(db, "SELECT * FROM secret", OWNER).table_name == "secret"
    assert e("SELECT l.* FROM loose l JOIN loose m ON l.a = m.b") == "Subscriptions require indexes on join columns"
    assert e("SELECT l.* FROM loose l JOIN player p") == "Subscriptions require indexes on join columns"
    assert e("SELECT l.* FROM loose l CROSS JOIN player p") == "Subscriptions require indexes on join columns"
    assert e("SELECT * FROM loose l JOIN player p ON l.a = p.id") == "SELECT * is not supported for joins"
    assert e("SELECT l.* FROM loose l JOIN player p ON a = p.id") == "Names must be qualified when using joins"
    assert e("SELECT l.* FROM loose l JOIN player p ON l.a = p.id WHERE tag = 'x'") == (
        "Names must be qualified when using joins")
    assert e("SELECT a.* FROM guild a JOIN guild b ON a.id = b.id JOIN guild c ON a.id = c.id") == (
        "Invalid number of tables in subscription: 3")
    assert e("SELECT guild.* FROM guild JOIN guild ON guild.id = guild.id") == "Duplicate name `guild`"
    assert e("SELECT x.* FROM loose l JOIN player p ON l.a = p.id") == "`x` is not in scope"
    assert e("SELECT p.* FROM ping p JOIN loose l ON p.player_id = l.a") == (
        "Subscriptions require indexes on join columns")
    assert e("SELECT * FROM player WHERE age = 'x'") == "The literal expression `x` cannot be parsed as type `U32`"
    assert e("SELECT * FROM player LIMIT 1") == "Unsupported: SELECT * FROM player LIMIT 1"
    assert e("UPDATE player SET age = 1") == "Unsupported: Non-SELECT queries"
    ok = compile_subscription(db, "SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id", ALICE)
    assert ok.table_name == "loose" and ok.is_join  # the JOINed side is indexed (upstream's index join)


# Which joins a subscription accepts, as answered by the real SpacetimeDB 2.8.3 for this module (spacetime
# subscribe, docs/compatibility.md): the JOINed table is probed through an index on its join column, unless
# the FROM table is unfiltered and the JOINed one filtered, which swaps them.
JOIN_RULE = [
    ("SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id", True),
    ("SELECT p.* FROM loose l JOIN player p ON l.a = p.guild_id", True),
    ("SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id WHERE p.level >= 0", False),
    ("SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id WHERE l.tag = 'x'", True),
    ("SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id WHERE l.tag = 'x' AND p.age = 1", True),
    ("SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id WHERE l.tag = 'x' OR p.age = 1", True),
    ("SELECT p.* FROM player p JOIN loose l ON l.a = p.guild_id", False),
    ("SELECT p.* FROM player p JOIN loose l ON l.a = p.guild_id WHERE l.tag = 'x'", True),
    ("SELECT p.* FROM player p JOIN loose l ON l.a = p.guild_id WHERE p.age = 3", False),
    ("SELECT p.* FROM player p JOIN guild g ON p.guild_id = g.id WHERE g.rank > 1", True),
    ("SELECT g.* FROM guild g JOIN player p ON g.id = p.guild_id WHERE g.rank = 1", True),
    ("SELECT g.* FROM guild g JOIN player p ON g.id = p.guild_id WHERE p.age = 1", True),
    ("SELECT a.* FROM player a JOIN player b ON a.guild_id = b.id WHERE a.id <> b.id", True),
    ("SELECT p.* FROM ping p JOIN player q ON p.player_id = q.id", True),
    ("SELECT q.* FROM player q JOIN ping p ON p.player_id = q.id", False),
    ("SELECT q.* FROM player q JOIN ping p ON p.player_id = q.id WHERE p.msg = 'x'", True),
    ("SELECT p.* FROM ping p JOIN loose l ON p.player_id = l.a", False),
]


@pytest.mark.parametrize(("sql", "accepted"), JOIN_RULE)
def test_join_index_rule_as_the_real_server(db, sql, accepted):
    if accepted:
        assert compile_subscription(db, sql, ALICE).is_join
    else:
        with pytest.raises(SqlError, match="^Subscriptions require indexes on join columns$"):
            compile_subscription(db, sql, ALICE)


def test_initial_and_single_table_delta(db):
    write(db, [("player", player(1, 10)), ("player", player(2, 30)), ("player", player(3, 50))])
    plan = compile_subscription(db, 'SELECT * FROM "player" WHERE ("player"."age" > 18)', ALICE)
    assert plan.table_name == "player" and plan.table_id == db.table_id("player")
    rows = initial(db, plan)
    tid = db.table_id("player")
    with db.datastore.read() as rt:
        by_bytes = dict(rt.scan_items(tid))
    assert sorted(by_bytes[b][0] for b in rows) == [2, 3]
    tx = write(db, [("player", player(4, 60)), ("player", player(5, 5)), ("player", player(2, 31))],
               [("player", player(2, 30)), ("player", player(1, 10))])
    ins, dels = delta(db, plan, tx)
    dec = db.datastore.schema(tid).decode
    assert sorted(dec(b)[:3] for b in ins) == [(2, "p2", 31), (4, "p4", 60)]
    assert [dec(b)[:3] for b in dels] == [(2, "p2", 30)]
    assert delta(db, plan, write(db, [("guild", (1, "g", 1))])) == ([], [])


def test_sender_parameter_and_rls(sqlmod_wasm):
    db = make_db(sqlmod_wasm, [GUILD_RLS])
    write(db, [("note", (1, ALICE, "a", Timestamp(0))), ("note", (2, BOB, "b", Timestamp(0))),
               ("guild", (1, "red", 1)), ("guild", (2, "blue", 2)), ("player", player(1, owner=ALICE, guild=2))])
    mine = compile_subscription(db, "SELECT * FROM player WHERE owner = :sender", ALICE)
    assert len(initial(db, mine)) == 1 and initial(db, compile_subscription(
        db, "SELECT * FROM player WHERE owner = :sender", BOB)) == []
    notes = {w: compile_subscription(db, "SELECT * FROM note", w) for w in PEOPLE}
    assert len(initial(db, notes[OWNER])) == 2  # owner bypasses RLS
    assert len(initial(db, notes[ALICE])) == 1 and len(initial(db, notes[BOB])) == 1
    assert notes[ALICE].sender_dependent and not notes[OWNER].sender_dependent
    guilds = compile_subscription(db, "SELECT * FROM guild", ALICE)
    dec = db.datastore.schema(db.table_id("guild")).decode
    assert [dec(b) for b in initial(db, guilds)] == [(2, "blue", 2)]
    assert initial(db, compile_subscription(db, "SELECT * FROM guild", BOB)) == []
    tx = write(db, [("player", player(2, owner=ALICE, guild=1))])
    ins, dels = delta(db, guilds, tx)
    assert [dec(b) for b in ins] == [(1, "red", 1)] and dels == []
    tx = write(db, [("note", (3, ALICE, "c", Timestamp(0))), ("note", (4, BOB, "d", Timestamp(0)))])
    ins, _ = delta(db, notes[BOB], tx)
    assert [db.datastore.schema(db.table_id("note")).decode(b)[2] for b in ins] == ["d"]


def test_event_table_subscription(db):
    plan = compile_subscription(db, "SELECT * FROM ping WHERE msg <> 'skip'", ALICE)
    assert plan.is_event and initial(db, plan) == []
    tx = write(db, [("ping", (1, "hi")), ("ping", (2, "skip"))])
    ins, dels = delta(db, plan, tx)
    assert [db.datastore.schema(db.table_id("ping")).decode(b) for b in ins] == [(1, "hi")] and dels == []
    join = compile_subscription(db, "SELECT p.* FROM ping p JOIN player q ON p.player_id = q.id", ALICE)
    write(db, [("player", player(1))])
    ins, _ = delta(db, join, write(db, [("ping", (1, "a")), ("ping", (7, "b"))]))
    assert len(ins) == 1


def test_query_cache_shares_plans(db):
    cache = QueryCache(db)
    plans = [cache.subscribe("SELECT * FROM player WHERE age > 18", Identity.from_u256(i + 1)) for i in range(100)]
    plans.append(cache.subscribe("select *   from player where age>18;", ALICE))
    assert len({id(p) for p in plans}) == 1 and len(cache) == 1
    per_sender = [cache.subscribe("SELECT * FROM player WHERE owner = :sender", w) for w in (ALICE, BOB, ALICE)]
    assert per_sender[0] is per_sender[2] and per_sender[0] is not per_sender[1] and len(cache) == 3
    calls = Counter()
    real = type(plans[0].fragments[0]).delta_counts

    def counting(self, *a):
        calls[id(self)] += 1
        return real(self, *a)

    type(plans[0].fragments[0]).delta_counts = counting
    try:
        tx = write(db, [("player", player(1, 30, owner=BOB))])
        with db.datastore.read() as rt:
            out = cache.evaluate(tx, rt)
            for p in plans:  # every subscriber asks; memoized per transaction
                p.delta(tx, rt)
    finally:
        type(plans[0].fragments[0]).delta_counts = real
    assert sum(calls.values()) == 3  # one evaluation per distinct plan, not per subscriber
    assert set(out) == {plans[0], per_sender[1]}
    assert cache.evaluate(write(db, [("guild", (1, "g", 0))]), db.datastore.read()) == {}
    for p in plans:
        cache.unsubscribe(p)
    assert len(cache) == 2


def test_one_off_queries_leave_nothing_in_the_cache(db):
    """`get` (one-off queries) must not remember plans or request keys: a client sending distinct one-off
    queries forever would otherwise grow the cache without bound."""
    cache = QueryCache(db)
    kept = cache.subscribe("SELECT * FROM player WHERE age > 18", ALICE)
    for i in range(200):
        assert cache.get(f"SELECT * FROM player WHERE age > {i}", ALICE).table_name == "player"
    assert len(cache) == 1 and len(cache._by_request) == 1
    assert cache.get("SELECT * FROM player WHERE age > 18", ALICE) is kept  # a subscribed plan is shared


# ---------------------------------------------------------------------------------------------------- property

QUERIES = [
    ("SELECT * FROM player WHERE age > 3 AND name <> 'p1'", OWNER),
    ("SELECT * FROM player WHERE guild_id = 1 OR level < 0", OWNER),
    ("SELECT * FROM player WHERE owner = :sender", ALICE),
    ("SELECT p.* FROM player p JOIN guild g ON p.guild_id = g.id WHERE g.rank > 1", OWNER),
    ("SELECT g.* FROM player p JOIN guild g ON p.guild_id = g.id WHERE p.age < 5", OWNER),
    ("SELECT l.* FROM loose l JOIN player p ON l.a = p.guild_id WHERE l.tag = 'x' AND p.level >= 0", OWNER),
    ("SELECT p.* FROM loose l JOIN player p ON l.a = p.guild_id", OWNER),
    ("SELECT a.* FROM player a JOIN player b ON a.guild_id = b.id WHERE a.id <> b.id", OWNER),
    ("SELECT * FROM guild", ALICE),  # join RLS
    ("SELECT * FROM guild WHERE rank = 2", BOB),
    ("SELECT n.* FROM note n JOIN player p ON n.owner = p.owner", ALICE),  # RLS + join
]

player_vals = st.builds(lambda i, age, who, g, lvl: player(i, age, PEOPLE[who], g, level=lvl),
                        st.integers(0, 12), st.integers(0, 6), st.integers(0, 2), st.integers(0, 4),
                        st.integers(-1, 1))
guild_vals = st.tuples(st.integers(0, 5), st.sampled_from(["a", "b"]), st.integers(0, 3))
loose_vals = st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from(["x", "y"]))
note_vals = st.builds(lambda i, who: (i, PEOPLE[who], "n", Timestamp(0)), st.integers(0, 5), st.integers(0, 2))
op = st.one_of(
    st.tuples(st.just("ins"), st.just("player"), player_vals),
    st.tuples(st.just("ins"), st.just("guild"), guild_vals),
    st.tuples(st.just("ins"), st.just("loose"), loose_vals),
    st.tuples(st.just("ins"), st.just("note"), note_vals),
    st.tuples(st.just("del"), st.sampled_from(["player", "guild", "loose", "note"]), st.integers(0, 1000)),
)


@pytest.fixture(scope="module")
def prop_db(sqlmod_wasm):
    db = make_db(sqlmod_wasm, [GUILD_RLS])
    plans = [compile_subscription(db, sql, who) for sql, who in QUERIES]
    return db, plans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(op, max_size=8), min_size=1, max_size=4))
def test_incremental_delta_equals_full_reevaluation(prop_db, txs):
    db, plans = prop_db
    for ops in txs:
        before = [Counter(initial(db, p)) for p in plans]
        tx = db.datastore.begin()
        for kind, table, arg in ops:
            tid = db.table_id(table)
            if kind == "ins":
                try:
                    tx.insert_values(tid, arg)
                except DatastoreError:
                    pass
            else:
                items = tx.scan_items(tid)
                if items:
                    tx.delete_all_by_eq(tid, [items[arg % len(items)][0]])
        txdata = tx.commit()
        for p, b in zip(plans, before, strict=True):
            after = Counter(initial(db, p))
            ins, dels = delta(db, p, txdata)
            assert not set(ins) & set(dels)
            expect = Counter(after)
            expect.subtract(b)
            got = Counter(ins)
            got.subtract(Counter(dels))
            assert +expect == +got and -expect == -got, p.sql


def test_catalog_is_cached(db):
    assert catalog(db) is catalog(db)
