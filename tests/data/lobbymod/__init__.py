"""Client bindings that name u64, Option, a sum type and a column `name` (tests/test_client_usability.py)."""

from module_sdk import (
    Option,
    ProcedureContext,
    ReducerContext,
    TxContext,
    primary_key,
    procedure,
    product,
    reducer,
    sum_type,
    table,
    u64,
    unique,
)


@sum_type
class Mode:
    Solo: None
    Team: u64


@product
class LobbySummary:
    name: str
    players: u64


@table(public=True)
class Lobby:
    id: u64 = primary_key()
    name: str = unique()
    players: u64
    mode: Mode


@reducer
def add_lobby(ctx: ReducerContext, id: u64, name: str, mode: Mode) -> None:
    ctx.db.lobby.insert(Lobby(id=id, name=name, players=0, mode=mode))


@procedure
def summary(ctx: ProcedureContext, id: u64) -> Option[LobbySummary]:
    def get(tx: TxContext) -> Option[LobbySummary]:
        row = tx.db.lobby.id.find(id)
        return None if row is None else LobbySummary(name=row.name, players=row.players)
    return ctx.with_tx(get)
