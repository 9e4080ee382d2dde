"""Upstream's `modules/sdk-test-case-conversion` in Python: the module its Rust SDK suite
`case-conversion-client` runs against.

Every name is deliberately in a case the server converts under the default snake_case policy: tables
(`person2` -> `person_2`; `Player1Canonical` is an explicit name and stays), columns with digits and
capitals (`Player1Id` -> `player_1_id`, `currentLevel2` -> `current_level_2`), nested struct fields
(`AgeValue1` -> `age_value_1`), enum variants (`Active1` -> `active1`, `BannedUntil` -> `bannedUntil`),
reducers (`CreatePlayer1` -> `create_player_1`; `banPlayer1` is explicit) and a query-builder view with an
explicit name (`Level2Person`).  Reducer parameters keep their names.
"""

from module_sdk import (
    AnonymousViewContext,
    Query,
    ReducerContext,
    index,
    primary_key,
    product,
    reducer,
    sum_type,
    table,
    u8,
    u32,
    view,
)


@sum_type
class Player2Status:
    Active1: None
    BannedUntil: u32


@product
class Person3Info:
    AgeValue1: u8
    ScoreTotal: u32


@table(name='Player1Canonical', accessor='player1', public=True)
class Player1:
    Player1Id: u32 = primary_key(auto_inc=True)
    player_name: str
    currentLevel2: u32
    status3Field: Player2Status


@table(accessor='person2', public=True)
class Person2:
    Person2Id: u32 = primary_key(auto_inc=True)
    FirstName: str
    playerRef: u32 = index()
    personInfo: Person3Info


@reducer
def CreatePlayer1(ctx: ReducerContext, Player1Name: str, Start2Level: u32) -> None:  # noqa: N802, N803
    ctx.db.player1.insert(Player1(Player1Id=0, player_name=Player1Name, currentLevel2=Start2Level,
                                  status3Field=Player2Status.Active1))


@reducer
def AddPerson2(ctx: ReducerContext, First3Name: str, playerRef: u32, AgeValue: u8,  # noqa: N802, N803
               ScoreTotal: u32) -> None:
    ctx.db.person2.insert(Person2(Person2Id=0, FirstName=First3Name, playerRef=playerRef,
                                  personInfo=Person3Info(AgeValue1=AgeValue, ScoreTotal=ScoreTotal)))


@reducer(name='banPlayer1')
def BanPlayer1(ctx: ReducerContext, Player1Id: u32, BanUntil6: u32) -> None:  # noqa: N802, N803
    player = ctx.db.player1.Player1Id.find(Player1Id)
    if player is not None:
        player.status3Field = Player2Status.BannedUntil(BanUntil6)
        ctx.db.player1.Player1Id.update(player)


@view(name='Level2Person')
def person_at_level_2(ctx: AnonymousViewContext) -> Query[Person2]:
    return ctx.from_.player1.where(lambda pl: pl.currentLevel2 == 2).right_semijoin(
        ctx.from_.person2, lambda pl, per: pl.Player1Id == per.playerRef)
