"""examples/sdk_test_view, sdk_test_view_pk and sdk_test_procedural_view_pk: upstream's view test modules in
Python, driven the way upstream's Rust suites (view-client, view-pk-client, procedural-view-pk-client) drive
them, through a published database and real client connections (docs/compatibility.md has the Rust clients'
results on both servers)."""

from __future__ import annotations

import pytest

from spacetime_core.sats import Identity

pytestmark = pytest.mark.slow

VIEW = pytest.mark.spacetime_module("../examples/sdk_test_view")
VIEW_PK = pytest.mark.spacetime_module("../examples/sdk_test_view_pk")
PROC_VIEW_PK = pytest.mark.spacetime_module("../examples/sdk_test_procedural_view_pk")


def ident(b: int) -> Identity:
    return Identity.from_bytes(bytes([b]) * 32)


def identities(table) -> set[Identity]:
    return {r.identity for r in table}


def recorder(table) -> list:
    """Every row event of `table` from now on, as ('insert'|'delete'|'update', ...) tuples."""
    seen: list = []
    table.on_insert(lambda _ctx, row: seen.append(("insert", row)))
    table.on_delete(lambda _ctx, row: seen.append(("delete", row)))
    return seen


# ------------------------------------------------------------------------------------------- sdk_test_view


@VIEW
def test_anonymous_view_follows_its_tables(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM players_at_level_0") as conn:
        seen = recorder(conn.db.players_at_level_0)
        for b, level in [(1, 1), (2, 0), (3, 1), (4, 0)]:
            conn.call("insert_player", ident(b), level)
        conn.call("delete_player", ident(4))
        conn.until(lambda: identities(conn.db.players_at_level_0) == {ident(2)}, timeout=10)
        assert [(kind, row.identity) for kind, row in seen] == [
            ("insert", ident(2)), ("insert", ident(4)), ("delete", ident(4))]


@VIEW
def test_query_builder_join_over_the_view_tables(spacetime_db):
    """The client's query-builder subscription of upstream's view-client (a filtered semijoin)."""
    sql = ('SELECT "player".* FROM "player_level" JOIN "player" ON "player_level"."entity_id" = '
           '"player"."entity_id" WHERE ("player_level"."level" = 0)')
    with spacetime_db.connect(subscribe=sql) as conn:
        for b, level in [(1, 1), (2, 0), (4, 0)]:
            conn.call("insert_player", ident(b), level)
        conn.call("delete_player", ident(4))
        conn.until(lambda: identities(conn.db.player) == {ident(2)}, timeout=10)


@VIEW
def test_sender_views_show_each_caller_its_own_row(spacetime_db):
    _, token = spacetime_db.new_identity()
    with spacetime_db.connect(subscribe=["SELECT * FROM my_player", "SELECT * FROM my_player_and_level"]) as a, \
            spacetime_db.connect(token=token, subscribe="SELECT * FROM my_player") as b:
        a.call("insert_player", ident(1), 0)       # someone else's row: in no one's my_player
        a.call("insert_player", a.identity, 1)
        b.call("insert_player", b.identity, 0)
        a.until(lambda: identities(a.db.my_player) == {a.identity}, timeout=10)
        b.until(lambda: identities(b.db.my_player) == {b.identity}, timeout=10)
        [mine] = a.until(lambda: list(a.db.my_player_and_level), timeout=10)
        assert (mine.identity, mine.level) == (a.identity, 1)
        b.call("delete_player", b.identity)
        b.until(lambda: b.db.my_player.count() == 0, timeout=10)
        assert identities(a.db.my_player) == {a.identity}
        a.call("delete_player", a.identity)
        a.until(lambda: a.db.my_player.count() == 0 and a.db.my_player_and_level.count() == 0, timeout=10)


@VIEW
def test_nearby_players_over_a_private_table(spacetime_db):
    _, token = spacetime_db.new_identity()
    with spacetime_db.connect(subscribe="SELECT * FROM nearby_players") as a, \
            spacetime_db.connect(token=token, subscribe="SELECT * FROM nearby_players") as b:
        a.call("move_player", 0, 0)
        b.call("move_player", 2, 2)
        a.until(lambda: [(p.x, p.y) for p in a.db.nearby_players] == [(2, 2)], timeout=10)
        b.until(lambda: [(p.x, p.y) for p in b.db.nearby_players] == [(0, 0)], timeout=10)
        b.call("move_player", 3, 3)                # now at (5, 5): out of range for both
        a.until(lambda: a.db.nearby_players.count() == 0, timeout=10)
        b.until(lambda: b.db.nearby_players.count() == 0, timeout=10)
    with pytest.raises(Exception, match="player_location"):  # the table itself stays private
        spacetime_db.connect(token=token, subscribe="SELECT * FROM player_location")


@VIEW
def test_sender_view_updates_survive_another_client_leaving(spacetime_db):
    _, token = spacetime_db.new_identity()
    a = spacetime_db.connect(subscribe="SELECT * FROM my_player")
    a.call("insert_player", a.identity, 0)
    with spacetime_db.connect(token=token, subscribe="SELECT * FROM my_player") as b:
        b.call("insert_player", b.identity, 0)
        b.until(lambda: b.db.my_player.count() == 1, timeout=10)
    a.call("delete_player", a.identity)
    a.until(lambda: a.db.my_player.count() == 0, timeout=10)


# ---------------------------------------------------------------------------------------- sdk_test_view_pk


@VIEW_PK
def test_query_builder_view_inherits_the_table_primary_key(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM all_view_pk_players") as conn:
        view = conn.db.all_view_pk_players
        updates: list = []
        view.on_update(lambda _ctx, old, new: updates.append((old.name, new.name)))
        conn.call("insert_view_pk_player", 1, "before")
        conn.call("update_view_pk_player", 1, "after")
        conn.until(lambda: updates, timeout=10)
        assert updates == [("before", "after")]
        assert view.find_by_pk(1).name == "after" and view.count() == 1


@VIEW_PK
def test_semijoin_of_two_sender_views_on_their_primary_keys(spacetime_db):
    sql = ('SELECT "sender_view_pk_players_b".* FROM "sender_view_pk_players_a" JOIN "sender_view_pk_players_b" '
           'ON "sender_view_pk_players_a"."id" = "sender_view_pk_players_b"."id"')
    with spacetime_db.connect(subscribe=sql) as conn:
        conn.call("insert_view_pk_player", 1, "both")
        conn.call("insert_view_pk_player", 2, "only-a")
        conn.call("insert_view_pk_membership", 10, 1)
        conn.call("insert_view_pk_membership", 11, 2)
        conn.call("insert_view_pk_membership_secondary", 20, 1)
        rows = conn.until(lambda: list(conn.db.sender_view_pk_players_b), timeout=10)
        assert [(r.id, r.name) for r in rows] == [(1, "both")]


# ----------------------------------------------------------------------------- sdk_test_procedural_view_pk


@PROC_VIEW_PK
def test_sender_scoped_view_with_explicit_primary_key(spacetime_db):
    _, token = spacetime_db.new_identity()
    with spacetime_db.connect(subscribe="SELECT * FROM sender_left_view") as a, \
            spacetime_db.connect(token=token, subscribe="SELECT * FROM sender_left_view") as b:
        updates: list = []
        a.db.sender_left_view.on_update(lambda _ctx, old, new: updates.append((old.filter, new.filter)))
        a.call("insert_left", 1, 5)
        b.call("insert_left", 2, 6)
        a.call("update_left", 1, 7)
        a.until(lambda: updates, timeout=10)
        assert updates == [(5, 7)]
        assert [(r.id, r.filter) for r in a.db.sender_left_view] == [(1, 7)]
        b.until(lambda: [(r.id, r.filter) for r in b.db.sender_left_view] == [(2, 6)], timeout=10)


@PROC_VIEW_PK
@pytest.mark.parametrize("side", ["left", "right"])
def test_filtered_semijoin_of_two_procedural_views(spacetime_db, side):
    other = "right" if side == "left" else "left"
    ret, probe = f"sender_{side}_view", f"sender_{other}_view"
    flt = {"left": 100, "right": 300}
    sql = (f'SELECT "{ret}".* FROM "{probe}" JOIN "{ret}" ON "{probe}"."id" = "{ret}"."id" '
           f'WHERE ("{probe}"."filter" = {flt[other]}) AND ("{ret}"."filter" = {flt[side]})')
    with spacetime_db.connect(subscribe=sql) as conn:
        conn.call("insert_left", 10, 100)
        conn.call("insert_left", 20, 200)
        conn.call("insert_right", 10, 300)
        conn.call("insert_right", 20, 300)
        rows = conn.until(lambda: list(getattr(conn.db, ret)), timeout=10)
        assert [(r.id, r.filter) for r in rows] == [(10, flt[side])]


@PROC_VIEW_PK
def test_joins_on_a_view_key_as_the_real_server(spacetime_db):
    """A table joined to a view is probed through the table (upstream swaps them), so its column needs the index."""
    assert spacetime_db.connect(subscribe="SELECT l.* FROM left_source l JOIN sender_right_view r ON l.id = r.filter")
    with pytest.raises(Exception, match="Subscriptions require indexes on join columns"):
        spacetime_db.connect(subscribe="SELECT l.* FROM left_source l JOIN sender_right_view r ON l.filter = r.id")
    with pytest.raises(Exception, match="Subscriptions require indexes on join columns"):
        spacetime_db.connect(subscribe="SELECT l.* FROM sender_left_view l JOIN sender_right_view r ON l.id = r.filter")
