"""Client cache: reference counting across overlapping query sets, update detection, event tables, indexes,
and the diff after a reconnect (client-protocol.md §9). Rows are constructed BSATN bytes."""

from __future__ import annotations

import pytest

from client_sdk.cache import ClientCache, TableDelta
from client_sdk.module import IndexSpec, ModuleSpec, TableSpec
from spacetime_core.sats import Identity, encode, product, u32


@product
class Person:
    id: u32
    name: str
    team: u32


@product
class Note:
    text: str


T = Person.__sats_type__
N = Note.__sats_type__


def person(id: int, name: str, team: int = 1) -> bytes:
    return encode(T, Person(id, name, team))


def note(text: str) -> bytes:
    return encode(N, Note(text))


def make_cache() -> tuple[ClientCache, list]:
    spec = ModuleSpec.of([
        TableSpec("person", T, primary_key=0,
                  indexes=(IndexSpec("id", (0,), True), IndexSpec("team", (2,), False),
                           IndexSpec("team_name", (2, 1), False))),
        TableSpec("note", N),
        TableSpec("ping", N, is_event=True),
    ])
    cache = ClientCache(spec)
    seen: list = []
    for t in cache.tables.values():
        t.on_insert(lambda ctx, r, t=t: seen.append(("insert", t.table_name, r)))
        t.on_delete(lambda ctx, r, t=t: seen.append(("delete", t.table_name, r)))
        if t.spec.primary_key is not None:
            t.on_update(lambda ctx, a, b, t=t: seen.append(("update", t.table_name, a, b)))
    return cache, seen


def apply(cache: ClientCache, *deltas: TableDelta) -> None:
    cache.fire(cache.apply(deltas), ctx=None)


def test_overlapping_subscriptions_are_reference_counted():
    cache, seen = make_cache()
    people = cache.table("person")
    # set 1: SELECT * FROM person; set 2: SELECT * FROM person WHERE team = 1 -> Alice delivered twice
    apply(cache, TableDelta("person", [person(1, "Alice"), person(2, "Bob", 2)]))
    apply(cache, TableDelta("person", [person(1, "Alice")]))
    assert [e[0] for e in seen] == ["insert", "insert"]
    assert people.count() == 2 and people.ref_count(Person(1, "Alice", 1)) == 2
    # unsubscribing set 2 drops one reference: no callback, row stays
    apply(cache, TableDelta("person", [], [person(1, "Alice")]))
    assert len(seen) == 2 and people.find_by_pk(1) == Person(1, "Alice", 1)
    apply(cache, TableDelta("person", [], [person(1, "Alice")]))
    assert seen[-1] == ("delete", "person", Person(1, "Alice", 1))
    assert people.find_by_pk(1) is None and people.count() == 1


def test_rows_without_primary_key_count_by_bytes():
    cache, seen = make_cache()
    notes = cache.table("note")
    apply(cache, TableDelta("note", [note("hi"), note("hi"), note("yo")]))  # same row from two queries
    assert notes.count() == 2 and [e[0] for e in seen] == ["insert", "insert"]
    apply(cache, TableDelta("note", [], [note("hi")]))
    assert notes.count() == 2 and len(seen) == 2
    apply(cache, TableDelta("note", [], [note("hi")]))
    assert sorted(n.text for n in notes) == ["yo"] and seen[-1][0] == "delete"
    with pytest.raises(TypeError):
        notes.on_update(lambda ctx, a, b: None)


def test_delete_and_insert_with_same_pk_is_an_update():
    cache, seen = make_cache()
    apply(cache, TableDelta("person", [person(1, "Alice")]))
    seen.clear()
    apply(cache, TableDelta("person", [person(1, "Alicia")], [person(1, "Alice")]))
    assert seen == [("update", "person", Person(1, "Alice", 1), Person(1, "Alicia", 1))]
    assert cache.table("person").id.find(1).name == "Alicia"


def test_update_across_overlapping_sets_nets_counts():
    cache, seen = make_cache()
    # two sets deliver Alice; a transaction moves her to team 2: set 1 (all) sends delete+insert,
    # set 2 (team = 1) only the delete. One update, and one reference remains.
    apply(cache, TableDelta("person", [person(1, "Alice")]), TableDelta("person", [person(1, "Alice")]))
    seen.clear()
    apply(cache, TableDelta("person", [person(1, "Alice", 2)], [person(1, "Alice")]),
          TableDelta("person", [], [person(1, "Alice")]))
    assert seen == [("update", "person", Person(1, "Alice", 1), Person(1, "Alice", 2))]
    people = cache.table("person")
    assert people.ref_count(Person(1, "Alice", 2)) == 1
    apply(cache, TableDelta("person", [], [person(1, "Alice", 2)]))
    assert seen[-1][0] == "delete" and people.count() == 0


def test_callbacks_run_after_the_whole_message_is_applied():
    cache, _ = make_cache()
    people, notes = cache.table("person"), cache.table("note")
    observed = []
    people.on_insert(lambda ctx, r: observed.append((people.count(), notes.count())))
    apply(cache, TableDelta("person", [person(1, "A"), person(2, "B")]), TableDelta("note", [note("x")]))
    assert observed == [(2, 1), (2, 1)]


def test_a_raising_callback_is_logged_and_the_others_still_run(caplog):
    cache, seen = make_cache()

    def boom(ctx, row):
        raise AttributeError("a bug in the app")

    cache.table("person").on_insert(boom)
    apply(cache, TableDelta("person", [person(1, "A")]), TableDelta("note", [note("x")]))
    assert [e[:2] for e in seen] == [("insert", "person"), ("insert", "note")]
    assert "insert callback on table person raised" in caplog.text and "a bug in the app" in caplog.text


def test_event_tables_fire_inserts_and_store_nothing():
    cache, seen = make_cache()
    apply(cache, TableDelta("ping", [note("a"), note("a")], [], event=True))
    assert [e[:2] for e in seen] == [("insert", "ping"), ("insert", "ping")]
    assert cache.table("ping").count() == 0


def test_indexes_follow_inserts_updates_and_deletes():
    cache, _ = make_cache()
    people = cache.table("person")
    apply(cache, TableDelta("person", [person(1, "A", 1), person(2, "B", 1), person(3, "C", 2)]))
    assert sorted(p.id for p in people.team.filter(1)) == [1, 2]
    assert [p.id for p in people.team_name.filter(2, "C")] == [3]
    assert sorted(p.id for p in people.team_name.filter(1)) == [1, 2]  # prefix of a two-column index
    apply(cache, TableDelta("person", [person(2, "B", 2)], [person(2, "B", 1)]))
    assert [p.id for p in people.team.filter(1)] == [1] and sorted(p.id for p in people.team.filter(2)) == [2, 3]
    apply(cache, TableDelta("person", [], [person(3, "C", 2)]))
    assert [p.id for p in people.team.filter(2)] == [2] and people.id.find(3) is None


def test_unknown_rows_and_tables_are_ignored():
    cache, seen = make_cache()
    apply(cache, TableDelta("person", [], [person(9, "ghost")]), TableDelta("nope", [b"\x00"]))
    assert seen == [] and cache.table("person").count() == 0


def test_resync_after_reconnect_reports_only_differences():
    cache, seen = make_cache()
    apply(cache, TableDelta("person", [person(1, "A"), person(2, "B"), person(3, "C")]),
          TableDelta("note", [note("keep"), note("gone")]))
    seen.clear()
    cache.begin_resync()
    # the new session's SubscribeApplied: 1 unchanged, 2 renamed, 3 deleted, 4 new; a note vanished
    apply(cache, TableDelta("person", [person(1, "A"), person(2, "B2"), person(4, "D")]),
          TableDelta("note", [note("keep")]))
    assert seen == []  # nothing fires until every set is back
    apply(cache, *[])
    cache.fire(cache.end_resync(), None)
    assert sorted(map(repr, seen)) == sorted(map(repr, [
        ("update", "person", Person(2, "B", 1), Person(2, "B2", 1)),
        ("delete", "person", Person(3, "C", 1)),
        ("insert", "person", Person(4, "D", 1)),
        ("delete", "note", Note("gone")),
    ]))
    assert cache.table("person").ref_count(Person(1, "A", 1)) == 1


def test_module_spec_from_module_def_binds_row_classes():
    class FakeTable:
        name, row_ref, primary_key, is_event = "user", 0, 0, False
        unique = [(0,)]

        class _Ix:
            accessor, columns = "identity", (0,)
        indexes = [_Ix]

    @product
    class U:
        identity: Identity
        name: str

    class FakeDef:
        from spacetime_core.sats import Typespace
        typespace = Typespace([U.__sats_type__])
        tables = [FakeTable]
        reducers: list = []
        types: list = []

    spec = ModuleSpec.from_module_def(FakeDef)
    t = spec.tables["user"]
    ident = Identity.from_bytes(bytes(range(32)))
    row = t.decode_row(encode(U.__sats_type__, U(ident, "x")))
    assert row.identity == ident and row.name == "x" and type(row).__name__ == "User"
    cache = ClientCache(spec)
    cache.apply([TableDelta("user", [encode(U.__sats_type__, U(ident, "x"))])])
    assert cache.table("user").identity.find(ident).name == "x"
