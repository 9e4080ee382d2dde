"""Upstream's `modules/sdk-test-view-pk` in Python: the module its Rust SDK suite `view-pk-client` runs against.

Three query-builder views (`-> Query[Row]`) over `view_pk_player`, which has a primary key: the views inherit
it, so a client sees a changed player as an update of the view's row (on_update), not a delete plus insert.
"""

from module_sdk import Query, ReducerContext, ViewContext, index, primary_key, reducer, table, u64, view


@table(accessor='view_pk_player', public=True)
class ViewPkPlayer:
    id: u64 = primary_key()
    name: str


@table(accessor='view_pk_membership', public=True)
class ViewPkMembership:
    id: u64 = primary_key()
    player_id: u64 = index()


@table(accessor='view_pk_membership_secondary', public=True)
class ViewPkMembershipSecondary:
    id: u64 = primary_key()
    player_id: u64 = index()


@reducer
def insert_view_pk_player(ctx: ReducerContext, id: u64, name: str) -> None:
    ctx.db.view_pk_player.insert(ViewPkPlayer(id=id, name=name))


@reducer
def update_view_pk_player(ctx: ReducerContext, id: u64, name: str) -> None:
    ctx.db.view_pk_player.id.update(ViewPkPlayer(id=id, name=name))


@reducer
def insert_view_pk_membership(ctx: ReducerContext, id: u64, player_id: u64) -> None:
    ctx.db.view_pk_membership.insert(ViewPkMembership(id=id, player_id=player_id))


@reducer
def insert_view_pk_membership_secondary(ctx: ReducerContext, id: u64, player_id: u64) -> None:
    ctx.db.view_pk_membership_secondary.insert(ViewPkMembershipSecondary(id=id, player_id=player_id))


@view
def all_view_pk_players(ctx: ViewContext) -> Query[ViewPkPlayer]:
    return ctx.from_.view_pk_player


@view
def sender_view_pk_players_a(ctx: ViewContext) -> Query[ViewPkPlayer]:
    return ctx.from_.view_pk_membership.right_semijoin(
        ctx.from_.view_pk_player, lambda membership, player: membership.player_id == player.id)


@view
def sender_view_pk_players_b(ctx: ViewContext) -> Query[ViewPkPlayer]:
    return ctx.from_.view_pk_membership_secondary.right_semijoin(
        ctx.from_.view_pk_player, lambda membership, player: membership.player_id == player.id)
