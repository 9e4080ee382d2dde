"""The module the host benchmark runs, both inside wasm and natively."""

from module_sdk import ReducerContext, index, primary_key, reducer, table, u32, u64


@table(public=True)
class Item:
    id: u64 = primary_key(auto_inc=True)
    owner: u32 = index()
    score: u64 = 0


@reducer
def noop(ctx: ReducerContext) -> None:
    pass


@reducer
def insert_one(ctx: ReducerContext, owner: u32) -> None:
    ctx.db.item.insert(Item(owner=owner))


@reducer
def insert_many(ctx: ReducerContext, n: u32) -> None:
    for i in range(n):
        ctx.db.item.insert(Item(owner=i))


@reducer
def find_update(ctx: ReducerContext, id: u64) -> None:
    item = ctx.db.item.id.find(id)
    item.score += 1
    ctx.db.item.id.update(item)
