"""Upstream's `modules/sdk-test-connect-disconnect` in Python: the module its Rust SDK client
`connect_disconnect_client` runs against.

Each WebSocket connection inserts a `connected` row (its identity) and each disconnection a `disconnected` row,
so a client can see its own connect and, after reconnecting, its own disconnect.
"""

from module_sdk import Identity, ReducerContext, client_connected, client_disconnected, table


@table(accessor='connected', public=True)
class Connected:
    identity: Identity


@table(accessor='disconnected', public=True)
class Disconnected:
    identity: Identity


@client_connected
def identity_connected(ctx: ReducerContext) -> None:
    ctx.db.connected.insert(Connected(identity=ctx.sender))


@client_disconnected
def identity_disconnected(ctx: ReducerContext) -> None:
    ctx.db.disconnected.insert(Disconnected(identity=ctx.sender))
