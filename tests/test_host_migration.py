"""Republishing (Database.update_module: automatic migration, refusal, clear), snapshots and persisted logs."""

from __future__ import annotations

import pytest

from harness.host import Database, MigrationError
from harness.host import database as database_mod
from module_sdk.build import build
from spacetime_core.sats import Identity

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))

V1 = '''
from module_sdk import ReducerContext, init, log, primary_key, reducer, table, u64


@table(public=True)
class Person:
    id: u64 = primary_key(auto_inc=True)
    name: str


@init
def setup(ctx: ReducerContext):
    ctx.db.person.insert(Person(name="founder"))


@reducer
def add(ctx: ReducerContext, name: str):
    p = ctx.db.person.insert(Person(name=name))
    log.info(f"added {name} as {p.id}")
'''

# compatible: a column at the end with a default, an index, a table, a reducer; `add` changes behaviour
V2 = '''
from module_sdk import ReducerContext, default, index, init, log, primary_key, reducer, table, u32, u64


@table(public=False)
class Person:
    id: u64 = primary_key(auto_inc=True)
    name: str = index()
    age: u32 = default(7)


@table
class Pet:
    id: u64 = primary_key(auto_inc=True)
    name: str


@init
def setup(ctx: ReducerContext):
    ctx.db.person.insert(Person(name="founder v2"))


@reducer
def add(ctx: ReducerContext, name: str):
    p = ctx.db.person.insert(Person(name=name, age=30))
    log.info(f"v2 added {name} as {p.id}")


@reducer
def count_named(ctx: ReducerContext, name: str):
    log.info(f"named {name}: {len(list(ctx.db.person.name.filter(name)))}")


@reducer
def add_pet(ctx: ReducerContext, name: str):
    ctx.db.pet.insert(Pet(name=name))
'''

# incompatible: `name` retyped, a column without a default, a unique constraint, and `person` loses its sequence
V3_BAD = '''
from module_sdk import ReducerContext, primary_key, reducer, table, u32, u64, unique


@table(public=True)
class Person:
    id: u64 = primary_key()
    name: u32
    email: str = unique()


@reducer
def add(ctx: ReducerContext, name: str):
    pass
'''

# incompatible: the person table is gone
V4_DROP = '''
from module_sdk import ReducerContext, primary_key, reducer, table, u64


@table(public=True)
class Other:
    id: u64 = primary_key(auto_inc=True)


@reducer
def add(ctx: ReducerContext, name: str):
    pass
'''


def _build(tmp_path_factory, name, src):
    tmp = tmp_path_factory.mktemp(name)
    (tmp / f"{name}.py").write_text(src)
    return build(tmp / f"{name}.py", tmp / f"{name}.wasm").output.read_bytes()


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    return {n: _build(tmp_path_factory, n, src) for n, src in
            (("v1", V1), ("v2", V2), ("v3", V3_BAD), ("v4", V4_DROP))}


def people(db):
    return sorted((r["id"], r["name"], r.get("age")) for r in db.row_dicts("person"))


def ok(out):
    assert out.committed, out.error
    return out


def test_same_module_keeps_everything(mods):
    db = Database.create(mods["v1"], owner=OWNER)
    ok(db.call_reducer("add", ["ann"]))
    before = people(db)
    res = db.update_module(mods["v1"])
    assert res.status == "unchanged" and people(db) == before


def test_compatible_update_migrates_and_survives_reopen(mods, tmp_path):
    db = Database.create(mods["v1"], owner=OWNER, data_dir=tmp_path / "db")
    ok(db.call_reducer("add", ["ann"]))
    ok(db.call_reducer("add", ["bob"]))
    res = db.update_module(mods["v2"])
    assert res.status == "updated"
    assert "table 'person': add column 'age' with its default value" in res.changes
    assert "add table 'pet'" in res.changes and "add reducer 'count_named'" in res.changes
    assert "table 'person': make private" in res.changes
    assert people(db) == [(1, "founder", 7), (2, "ann", 7), (3, "bob", 7)]  # init did not run again
    ok(db.call_reducer("add", ["cyd"]))  # the sequence continues
    ok(db.call_reducer("count_named", ["ann"]))  # the new index works over migrated rows
    ok(db.call_reducer("add_pet", ["rex"]))
    assert [r.message for r in db.logs()][-2:] == ["v2 added cyd as 4", "named ann: 1"]
    after = people(db)
    db.close()
    again = Database.open(tmp_path / "db")
    assert again.mdef.table("person").column_names == ("id", "name", "age")
    assert people(again) == after and [r["name"] for r in again.row_dicts("pet")] == ["rex"]
    ok(again.call_reducer("add", ["dee"]))
    assert people(again)[-1] == (5, "dee", 30)
    again.close()


def test_incompatible_update_is_refused_with_every_reason_and_changes_nothing(mods, tmp_path):
    db = Database.create(mods["v1"], owner=OWNER, data_dir=tmp_path / "db")
    ok(db.call_reducer("add", ["ann"]))
    before = people(db)
    with pytest.raises(MigrationError) as err:
        db.update_module(mods["v3"])
    reasons = err.value.incompatible
    assert any("column 'name' changed type" in r for r in reasons), reasons
    assert any("new column 'email' has no default value" in r for r in reasons), reasons
    assert any("unique constraint on ('email') was added" in r for r in reasons), reasons
    assert any("auto_inc sequence on 'id' was removed" in r for r in reasons), reasons
    assert "clear=True" in str(err.value)
    with pytest.raises(MigrationError, match="table 'person' was removed"):
        db.update_module(mods["v4"])
    assert people(db) == before and db.mdef.table("person").column_names == ("id", "name")
    ok(db.call_reducer("add", ["bob"]))
    db.close()
    again = Database.open(tmp_path / "db")
    assert [p[1] for p in people(again)] == ["founder", "ann", "bob"]
    again.close()


def test_clear_drops_data_and_runs_init(mods, tmp_path):
    db = Database.create(mods["v1"], owner=OWNER, data_dir=tmp_path / "db")
    ok(db.call_reducer("add", ["ann"]))
    res = db.update_module(mods["v4"], clear=True)
    assert res.status == "cleared"
    assert [t.name for t in db.mdef.tables] == ["other"] and db.rows("other") == []
    res = db.update_module(mods["v2"], clear=True)
    assert people(db) == [(1, "founder v2", 7)]
    db.close()
    again = Database.open(tmp_path / "db")
    assert people(again) == [(1, "founder v2", 7)]
    again.close()


def test_update_interrupted_before_the_switch_keeps_the_old_module(mods, tmp_path, monkeypatch):
    db = Database.create(mods["v1"], owner=OWNER, data_dir=tmp_path / "db")
    ok(db.call_reducer("add", ["ann"]))
    real = database_mod._write_atomic

    def crash_on_switch(path, data):
        if path.name == "database.json":
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(database_mod, "_write_atomic", crash_on_switch)
    with pytest.raises(OSError):
        db.update_module(mods["v2"])
    monkeypatch.setattr(database_mod, "_write_atomic", real)
    assert db.mdef.table("person").column_names == ("id", "name")
    ok(db.call_reducer("add", ["bob"]))
    db.close()
    again = Database.open(tmp_path / "db")  # the new module's snapshot is discarded
    assert [p[1] for p in people(again)] == ["founder", "ann", "bob"]
    assert again.mdef.table("person").column_names == ("id", "name")
    again.close()


def test_snapshots_periodic_and_explicit(mods, tmp_path):
    db = Database.create(mods["v1"], owner=OWNER, data_dir=tmp_path / "db", snapshot_every=5)
    for i in range(12):
        ok(db.call_reducer("add", [f"p{i}"]))
    snaps = db.commitlog.snapshots.offsets()
    assert snaps and snaps[-1] >= 9
    ok(db.call_reducer("add", ["last"]))
    assert db.snapshot() == db.commitlog.last_offset
    ok(db.call_reducer("add", ["after snapshot"]))
    before = people(db)
    db.close()
    again = Database.open(tmp_path / "db")
    assert people(again) == before
    ok(again.call_reducer("add", ["more"]))  # the sequence was restored from the snapshot
    assert people(again)[-1][0] == before[-1][0] + 1
    again.close()


def test_logs_are_persisted_as_json_lines(mods, tmp_path):
    db = Database.create(mods["v1"], owner=OWNER, data_dir=tmp_path / "db")
    seen = []
    db.subscribe_logs(seen.append)
    for name in ("ann", "bob", "cyd"):
        ok(db.call_reducer("add", [name]))
    assert [r.message for r in seen] == ["added ann as 2", "added bob as 3", "added cyd as 4"]
    db.close()
    lines = (tmp_path / "db" / "module_logs.jsonl").read_text().splitlines()
    assert '"level": "info"' in lines[0] and '"function": "add"' in lines[0] and '"time": ' in lines[0]
    again = Database.open(tmp_path / "db")
    assert [r.message for r in again.logs()] == ["added ann as 2", "added bob as 3", "added cyd as 4"]
    assert [r.message for r in again.logs(num_lines=1)] == ["added cyd as 4"]
    rec = again.logs()[0]
    assert rec.level_name == "info" and rec.function == "add" and rec.filename.endswith(".py") and rec.line > 0
    again.close()
