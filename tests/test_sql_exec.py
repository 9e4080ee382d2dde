"""harness.sql.execute (the /sql endpoint) against real databases: quickstart and tests/data/sqlmod."""

from __future__ import annotations

import pytest

from harness.host import Database
from harness.sql import SqlError, execute
from module_sdk.build import build
from spacetime_core.sats import U64, ConnectionId, Identity, Timestamp

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))
ALICE = Identity.from_bytes(bytes([7] * 32))
BOB = Identity.from_bytes(bytes([9] * 32))


@pytest.fixture(scope="module")
def sqlmod_wasm(tmp_path_factory):
    return build("tests/data/sqlmod", tmp_path_factory.mktemp("sqlmod") / "m.wasm").output.read_bytes()


@pytest.fixture(scope="module")
def quickstart_wasm(tmp_path_factory):
    return build("examples/quickstart", tmp_path_factory.mktemp("qs") / "qs.wasm").output.read_bytes()


def q(db, sql, who=OWNER, owner=None):
    [res] = execute(db, sql, who, owner=(who == OWNER) if owner is None else owner)
    return res


def err(db, sql, who=OWNER, owner=None) -> str:
    with pytest.raises(SqlError) as e:
        q(db, sql, who, owner)
    return str(e.value)


@pytest.fixture
def db(sqlmod_wasm):
    db = Database.create(sqlmod_wasm, owner=OWNER)
    q(db, "INSERT INTO guild (id, name, rank) VALUES (1, 'red', 3), (2, 'blue', 5), (3, 'none', 0)")
    for i, (name, age, who, g) in enumerate([("ann", 20, ALICE, 1), ("bob", 30, BOB, 2), ("cid", 40, ALICE, 2),
                                             ("dee", 50, OWNER, 9)], start=1):
        assert db.call_reducer("add_player", [i, name, age, g], sender=who).committed
    return db


def test_quickstart_select_and_private_visibility(quickstart_wasm):
    db = Database.create(quickstart_wasm, owner=OWNER)
    db.client_connected(ALICE, ConnectionId.from_bytes(bytes([1] * 16)))
    db.call_reducer("set_name", ["Alice"], sender=ALICE)
    db.call_reducer("send_message", ["hi"], sender=ALICE, timestamp=Timestamp(1_700_000_000_000_000))
    res = q(db, "SELECT * FROM user", ALICE)
    assert [c for c, _ in res.columns] == ["identity", "name", "online"]
    assert res.rows == [(ALICE, "Alice", True)] and res.affected is None
    res = q(db, f"SELECT text FROM message WHERE sender = 0x{ALICE.to_hex()} AND sent >= '2023-11-14T22:13:20Z'")
    assert res.rows == [("hi",)]
    assert q(db, "SELECT text FROM message WHERE sent > '2023-11-14 22:13:20.000001+00:00'").rows == []
    assert q(db, "SELECT COUNT(*) AS n FROM message").rows == [(1,)]
    assert "Option" not in err(db, "SELECT * FROM user WHERE name = 'Alice'")  # no literal form for Option
    # Option columns have no literal: DML cannot write them (upstream behaviour)
    assert err(db, f"INSERT INTO user (identity, name, online) VALUES (0x{BOB.to_hex()}, 'x', true)").startswith(
        "The literal expression `x` cannot be parsed as type")


def test_select_projection_where_limit_count(db):
    res = q(db, "SELECT name, age AS years FROM player WHERE age >= 30 AND name <> 'cid'")
    assert res.columns[0][0] == "name" and res.columns[1][0] == "years" and res.columns[1][1].name == "U32"
    assert sorted(res.rows) == [("bob", 30), ("dee", 50)]
    assert sorted(q(db, "SELECT id FROM player WHERE age < 25 OR (age > 35 AND age < 45)").rows) == [(1,), (3,)]
    assert len(q(db, "SELECT * FROM player LIMIT 2").rows) == 2
    assert q(db, "SELECT * FROM player LIMIT 0").rows == []
    res = q(db, "SELECT COUNT(*) AS n FROM player WHERE age > 100")
    assert res.columns == [("n", U64)] and res.rows == [(0,)]
    assert q(db, "SELECT id FROM player WHERE TRUE AND age = 1e1 OR age = 2e1").rows == [(1,)]
    assert q(db, "SELECT id FROM player WHERE FALSE").rows == []
    assert q(db, "SELECT id FROM player WHERE score = 0 AND active = TRUE AND level > -1 AND small = 0").rows
    assert q(db, "SELECT id FROM player WHERE id = 2").rows == [(2,)]  # index point lookup
    assert q(db, "SELECT id FROM player WHERE 2 = id").rows == [(2,)]
    assert q(db, "SELECT player.id FROM player WHERE player.age = 20").rows == [(1,)]
    assert q(db, "SELECT p.id FROM player AS p WHERE p.age = 20").rows == [(1,)]


def test_literal_typing(db):
    assert q(db, f"SELECT id FROM player WHERE owner = 0x{BOB.to_hex()}").rows == [(2,)]
    assert q(db, f"SELECT id FROM player WHERE owner = X'{BOB.to_hex()}'").rows == [(2,)]
    assert q(db, f"SELECT id FROM player WHERE owner = '{BOB.to_hex()}'").rows == [(2,)]
    assert sorted(q(db, "SELECT id FROM player WHERE owner = :sender", ALICE).rows) == [(1,), (3,)]
    assert q(db, "SELECT id FROM player WHERE data = 0x").rows  # empty bytes
    assert q(db, "SELECT id FROM player WHERE data = ''").rows  # hex string form
    assert err(db, "SELECT * FROM player WHERE age = 'x'") == (
        "The literal expression `x` cannot be parsed as type `U32`")
    assert err(db, "SELECT * FROM player WHERE age = -1") == (
        "The literal expression `-1` cannot be parsed as type `U32`")
    assert err(db, "SELECT * FROM player WHERE age = 1.5").endswith("as type `U32`")
    assert err(db, "SELECT * FROM player WHERE age = 0x10").endswith("as type `U32`")
    assert err(db, "SELECT * FROM player WHERE small = 256").endswith("as type `U8`")
    assert err(db, "SELECT * FROM player WHERE active = 1").endswith("as type `Bool`")
    assert err(db, "SELECT * FROM player WHERE name = 1") == (
        "The literal expression `1` cannot be parsed as type `String`")
    assert err(db, "SELECT * FROM player WHERE owner = 1").endswith("as type `(__identity__: U256)`")
    assert err(db, "SELECT * FROM player WHERE 1 = 1") == "Cannot resolve type for literal expression"
    assert err(db, "SELECT * FROM player WHERE age") == "Unexpected type: (expected) Bool != U32 (inferred)"
    assert err(db, "SELECT * FROM player WHERE age = name") == "Unexpected type: (expected) U32 != String (inferred)"
    assert err(db, "SELECT * FROM player WHERE 5") == "The literal expression `5` cannot be parsed as type `Bool`"
    assert err(db, "SELECT * FROM player WHERE nick = nick") == (
        "Invalid binary operator `=` for type `(some: String | none: ())`")
    assert err(db, "SELECT * FROM player WHERE age = :sender") == (
        "Unexpected type: (expected) U32 != (__identity__: U256) (inferred)")
    assert q(db, "SELECT id FROM player WHERE score < 1e400").rows  # float overflow is +inf


def test_name_resolution_errors(db):
    assert err(db, "SELECT * FROM nope") == "no such table: `nope`. If the table exists, it may be marked private."
    assert err(db, "SELECT * FROM Player").startswith("no such table: `Player`")  # identifiers are case-sensitive
    assert err(db, "SELECT x FROM player") == "`player` does not have a field `x`"
    assert err(db, "SELECT p.x FROM player") == "`p` is not in scope"
    assert err(db, "SELECT name, name FROM player") == "Duplicate name `name`"
    assert err(db, "SELECT * FROM player p JOIN guild g ON p.guild_id = g.id") == "SELECT * is not supported for joins"
    assert err(db, "SELECT p.name FROM player p JOIN guild g ON guild_id = g.id") == (
        "Names must be qualified when using joins")
    assert err(db, "SELECT player.id FROM player JOIN player ON player.id = player.id") == "Duplicate name `player`"


def test_joins(db):
    res = q(db, "SELECT p.name, g.name AS gname FROM player p JOIN guild g ON p.guild_id = g.id WHERE g.rank > 3")
    assert sorted(res.rows) == [("bob", "blue"), ("cid", "blue")]
    assert sorted(q(db, "SELECT g.* FROM player p JOIN guild g ON p.guild_id = g.id").rows) == [
        (1, "red", 3), (2, "blue", 5), (2, "blue", 5)]  # bag semantics
    assert q(db, "SELECT COUNT(*) AS n FROM player p CROSS JOIN guild g").rows == [(12,)]
    # three tables, no index requirement for /sql
    res = q(db, "SELECT a.id, b.id AS bid FROM player a JOIN player b ON a.guild_id = b.guild_id "
                "JOIN guild g ON b.guild_id = g.id WHERE g.name = 'blue' AND a.id < b.id")
    assert res.rows == [(2, 3)]
    q(db, "INSERT INTO loose (a, b, tag) VALUES (2, 1, 'x'), (2, 2, 'y')")
    assert sorted(q(db, "SELECT l.tag FROM loose l JOIN loose m ON l.a = m.b").rows) == [("x",), ("y",)]


def test_private_tables_and_rls(db):
    q(db, f"INSERT INTO secret (id, owner, note) VALUES (1, 0x{ALICE.to_hex()}, 'psst')")
    assert q(db, "SELECT note FROM secret").rows == [("psst",)]
    assert err(db, "SELECT * FROM secret", ALICE).startswith("no such table: `secret`")
    assert q(db, "SELECT * FROM secret", ALICE, owner=True).rows  # owner flag decides
    ts = "(__timestamp_micros_since_unix_epoch__: I64)"
    zero = "0x" + "00" * 32
    assert err(db, f"INSERT INTO note (id, owner, text, at) VALUES (3, {zero}, 'c', '2020-01-01T00:00:00Z')") == (
        f"The literal expression `2020-01-01T00:00:00Z` cannot be parsed as type `{ts}`")
    assert err(db, f"INSERT INTO note (id, owner, text, at) VALUES (3, {zero}, 'c', 0)").endswith(f"`{ts}`")
    # an identity literal needs all 64 hex digits (upstream's Identity::from_hex; seen in tests/data/transcripts)
    assert err(db, "INSERT INTO note (id, owner, text, at) VALUES (3, 0x00, 'c', 0)") == (
        "The literal expression `00` cannot be parsed as type `(__identity__: U256)`")
    tx = db.datastore.begin()  # Timestamp columns cannot be written through SQL DML (spec §1.1)
    tx.insert_values(db.table_id("note"), (1, ALICE, "a", Timestamp(0)))
    tx.insert_values(db.table_id("note"), (2, BOB, "b", Timestamp(0)))
    tx.commit()
    assert sorted(q(db, "SELECT id FROM note").rows) == [(1,), (2,)]  # owner bypasses RLS
    assert q(db, "SELECT text FROM note", ALICE).rows == [("a",)]
    assert q(db, "SELECT text FROM note", BOB).rows == [("b",)]
    assert q(db, "SELECT COUNT(*) AS n FROM note", BOB).rows == [(1,)]
    assert q(db, "SELECT n.text FROM note n JOIN player p ON n.owner = p.owner WHERE p.age > 0", ALICE).rows == [
        ("a",), ("a",)]


def test_dml(db):
    res = q(db, "INSERT INTO guild (id, name, rank) VALUES (10, 'ten', 1)")
    assert res.affected == 1 and res.stats["rows_inserted"] == 1 and res.columns == [] and res.rows == []
    assert res.txdata is not None and list(res.txdata.tables[db.table_id("guild")].inserts.values()) == [
        (10, "ten", 1)]
    res = q(db, "UPDATE guild SET name = 'TEN', rank = 2 WHERE id = 10")
    assert res.affected == 1 and res.stats["rows_updated"] == 1
    assert q(db, "SELECT * FROM guild WHERE id = 10").rows == [(10, "TEN", 2)]
    assert q(db, "UPDATE guild SET rank = 7").affected == 4
    assert {r[0] for r in q(db, "SELECT rank FROM guild").rows} == {7}
    res = q(db, "DELETE FROM guild WHERE rank = 7 AND id > 2")
    assert res.affected == 2 and res.stats["rows_deleted"] == 2
    assert q(db, "DELETE FROM guild WHERE id = 999").affected == 0
    # unique violation: nothing of the statement is applied
    assert "unique" in err(db, "INSERT INTO guild (id, name, rank) VALUES (20, 'a', 0), (1, 'dup', 0)").lower()
    assert q(db, "SELECT * FROM guild WHERE id = 20").rows == []
    assert err(db, "INSERT INTO guild (id, name) VALUES (1, 'x')") == (
        "The number of fields (2) in the INSERT does not match the number of columns (3) of the table `guild`")
    assert err(db, "INSERT INTO guild (id, name, rank) VALUES (1, 'x')") == (
        "Inserting a row with 2 values into `guild` which has 3 fields")
    assert err(db, "INSERT INTO guild (id, name, nope) VALUES (1, 'x', 1)") == "`guild` does not have a field `nope`"
    assert err(db, "UPDATE guild SET nope = 1") == "`guild` does not have a field `nope`"
    assert err(db, "DELETE FROM guild", ALICE) == (
        f"Caller {ALICE.to_hex()} is not authorized to run SQL DML statements")
    assert err(db, "SET row_limit = 1", ALICE).startswith(f"Caller {ALICE.to_hex()} is not authorized")
    # values by position, names not matched (upstream)
    q(db, "INSERT INTO guild (rank, name, id) VALUES (30, 'pos', 3)")
    assert q(db, "SELECT * FROM guild WHERE id = 30").rows == [(30, "pos", 3)]
    # event table: committed nowhere, but in the transaction data
    res = q(db, "INSERT INTO ping (player_id, msg) VALUES (1, 'hey')")
    assert res.affected == 1 and q(db, "SELECT * FROM ping").rows == []
    assert list(res.txdata.tables[db.table_id("ping")].inserts.values()) == [(1, "hey")]


def test_dml_is_durable(sqlmod_wasm, tmp_path):
    db = Database.create(sqlmod_wasm, owner=OWNER, data_dir=tmp_path / "d")
    q(db, "INSERT INTO guild (id, name, rank) VALUES (1, 'red', 3), (2, 'blue', 5)")
    q(db, "DELETE FROM guild WHERE id = 1")
    db.close()
    again = Database.open(tmp_path / "d")
    assert again.rows("guild") == [(2, "blue", 5)]


def test_set_show_row_limit(db):
    assert q(db, "SHOW row_limit").rows == []
    assert q(db, "SET row_limit = 2").affected == 0
    assert q(db, "SHOW row_limit").rows == [(2,)]
    assert err(db, "SET foo = 1") == "foo is not a valid system variable"
    assert err(db, "SHOW foo") == "foo is not a valid system variable"
    assert err(db, "SELECT * FROM player", ALICE) == "Estimated cardinality (4 rows) exceeds limit (2 rows)"
    assert len(q(db, "SELECT * FROM player").rows) == 4  # the owner may exceed it
    assert q(db, "SELECT id FROM player WHERE id = 1", ALICE).rows == [(1,)]  # index lookup: 1 row
