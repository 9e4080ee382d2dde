"""Upstream's `modules/sdk-test-procedural-view-pk` in Python: the module its Rust SDK suite
`procedural-view-pk-client` runs against.

Two per-caller views computed by code (`-> list[Row]`) with an explicit `primary_key="id"`: a client keys
their rows by `id`, so `update_left` arrives as an update of `sender_left_view`'s row.
"""

from module_sdk import Identity, ReducerContext, ViewContext, index, primary_key, reducer, table, u64, view


@table(accessor='left_source', public=True)
class LeftSource:
    id: u64 = primary_key()
    sender: Identity = index()
    filter: u64


@table(accessor='right_source', public=True)
class RightSource:
    id: u64 = primary_key()
    sender: Identity = index()
    filter: u64


@reducer
def insert_left(ctx: ReducerContext, id: u64, filter: u64) -> None:
    ctx.db.left_source.insert(LeftSource(id=id, sender=ctx.sender, filter=filter))


@reducer
def update_left(ctx: ReducerContext, id: u64, filter: u64) -> None:
    ctx.db.left_source.id.update(LeftSource(id=id, sender=ctx.sender, filter=filter))


@reducer
def insert_right(ctx: ReducerContext, id: u64, filter: u64) -> None:
    ctx.db.right_source.insert(RightSource(id=id, sender=ctx.sender, filter=filter))


@view(primary_key='id')
def sender_left_view(ctx: ViewContext) -> list[LeftSource]:
    return list(ctx.db.left_source.sender.filter(ctx.sender))


@view(primary_key='id')
def sender_right_view(ctx: ViewContext) -> list[RightSource]:
    return list(ctx.db.right_source.sender.filter(ctx.sender))
