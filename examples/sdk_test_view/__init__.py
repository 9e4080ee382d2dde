"""Upstream's `modules/sdk-test-view` in Python: the module its Rust SDK suite `view-client` runs against.

Tables, reducers and views have upstream's names and semantics, so the client's checked-in bindings work
unchanged: `my_player` and `my_player_and_level` (per caller), `players_at_level_0` (anonymous), and
`nearby_players` (per caller, over the private `player_location` table).
"""

from module_sdk import (
    AnonymousViewContext,
    Identity,
    Option,
    ReducerContext,
    ViewContext,
    i32,
    index,
    primary_key,
    product,
    reducer,
    table,
    u64,
    unique,
    view,
)


@table(accessor='player', public=True)
class Player:
    entity_id: u64 = primary_key(auto_inc=True)
    identity: Identity = unique()


@table(accessor='player_level', public=True)
class PlayerLevel:
    entity_id: u64 = unique()
    level: u64 = index()


@table(accessor='player_location')
class PlayerLocation:
    entity_id: u64 = unique()
    active: bool = index()
    x: i32
    y: i32


@product
class PlayerAndLevel:
    entity_id: u64
    identity: Identity
    level: u64


@reducer
def insert_player(ctx: ReducerContext, identity: Identity, level: u64) -> None:
    player = ctx.db.player.insert(Player(entity_id=0, identity=identity))
    ctx.db.player_level.insert(PlayerLevel(entity_id=player.entity_id, level=level))


@reducer
def delete_player(ctx: ReducerContext, identity: Identity) -> None:
    player = ctx.db.player.identity.find(identity)
    if player is not None:
        ctx.db.player.entity_id.delete(player.entity_id)
        ctx.db.player_level.entity_id.delete(player.entity_id)


@reducer
def move_player(ctx: ReducerContext, dx: i32, dy: i32) -> None:
    me = ctx.db.player.identity.find(ctx.sender)
    if me is None:
        me = ctx.db.player.insert(Player(entity_id=0, identity=ctx.sender))
    loc = ctx.db.player_location.entity_id.find(me.entity_id)
    if loc is None:
        ctx.db.player_location.insert(PlayerLocation(entity_id=me.entity_id, active=True, x=dx, y=dy))
    else:
        # upstream deletes and re-inserts (no update through a unique, non-primary key)
        ctx.db.player_location.entity_id.delete(loc.entity_id)
        ctx.db.player_location.insert(PlayerLocation(entity_id=loc.entity_id, active=loc.active,
                                                     x=loc.x + dx, y=loc.y + dy))


@view
def my_player(ctx: ViewContext) -> Option[Player]:
    return ctx.db.player.identity.find(ctx.sender)


@view
def my_player_and_level(ctx: ViewContext) -> Option[PlayerAndLevel]:
    player = ctx.db.player.identity.find(ctx.sender)
    if player is None:
        return None
    level = ctx.db.player_level.entity_id.find(player.entity_id)
    if level is None:
        return None
    return PlayerAndLevel(entity_id=player.entity_id, identity=player.identity, level=level.level)


@view
def players_at_level_0(ctx: AnonymousViewContext) -> list[Player]:
    found = (ctx.db.player.entity_id.find(pl.entity_id) for pl in ctx.db.player_level.level.filter(0))
    return [p for p in found if p is not None]


@view
def nearby_players(ctx: ViewContext) -> list[PlayerLocation]:
    me = ctx.db.player.identity.find(ctx.sender)
    mine = ctx.db.player_location.entity_id.find(me.entity_id) if me is not None else None
    if mine is None:
        return []
    return [loc for loc in ctx.db.player_location.active.filter(True)
            if loc.entity_id != mine.entity_id and abs(loc.x - mine.x) < 5 and abs(loc.y - mine.y) < 5]
