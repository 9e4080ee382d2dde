"""Test module for harness.sql: integer/string/identity/option/bytes/float/bool columns, indexed and
unindexed join columns, a private table, an RLS-filtered table and an event table."""

from module_sdk import (
    Identity,
    Option,
    ReducerContext,
    Timestamp,
    client_visibility_filter,
    f64,
    i32,
    index,
    primary_key,
    reducer,
    table,
    u8,
    u32,
    u64,
)


@table(public=True)
class Player:
    id: u64 = primary_key()
    name: str
    age: u32 = index()
    owner: Identity = index()
    guild_id: u64 = index()
    nick: Option[str] = None
    data: bytes = b""
    score: f64 = 0.0
    active: bool = True
    level: i32 = 0
    small: u8 = 0


@table(public=True)
class Guild:
    id: u64 = primary_key()
    name: str
    rank: u32 = 0


@table(public=True)
class Loose:
    a: u64
    b: u64
    tag: str


@table(public=False)
class Secret:
    id: u64 = primary_key()
    owner: Identity
    note: str


@table(public=True)
class Note:
    id: u64 = primary_key()
    owner: Identity = index()
    text: str
    at: Timestamp


@table(public=True, event=True)
class Ping:
    player_id: u64
    msg: str


client_visibility_filter("SELECT * FROM note WHERE owner = :sender")


@reducer
def add_player(ctx: ReducerContext, id: u64, name: str, age: u32, guild_id: u64) -> None:
    ctx.db.player.insert(Player(id=id, name=name, age=age, owner=ctx.sender, guild_id=guild_id))


@reducer
def ping(ctx: ReducerContext, player_id: u64, msg: str) -> None:
    ctx.db.ping.insert(Ping(player_id=player_id, msg=msg))
