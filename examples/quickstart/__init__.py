"""The SpacetimeDB quickstart chat module, in Python.

Build:   spacetime-py build examples/quickstart      (or module_sdk.build.build("examples/quickstart"))
Clients: the upstream quickstart chat clients work unchanged (tables `user` and `message`, reducers
`set_name` and `send_message`).
"""

from module_sdk import (
    Identity,
    Option,
    ReducerContext,
    SenderError,
    Timestamp,
    client_connected,
    client_disconnected,
    log,
    primary_key,
    reducer,
    table,
)


@table(public=True)
class User:
    identity: Identity = primary_key()
    name: Option[str] = None
    online: bool = False


@table(public=True)
class Message:
    sender: Identity
    sent: Timestamp
    text: str


def validate_name(name: str) -> str:
    if not name:
        raise SenderError("Names must not be empty")
    return name


@reducer
def set_name(ctx: ReducerContext, name: str) -> None:
    """Clients call this to set their display name."""
    name = validate_name(name)
    user = ctx.db.user.identity.find(ctx.sender)
    if user is None:
        raise SenderError("Cannot set name for unknown user")
    log.info(f"User {ctx.sender} sets name to {name}")
    user.name = name
    ctx.db.user.identity.update(user)


def validate_message(text: str) -> str:
    if not text:
        raise SenderError("Messages must not be empty")
    return text


@reducer
def send_message(ctx: ReducerContext, text: str) -> None:
    """Clients call this to send a chat message."""
    text = validate_message(text)
    log.info(f"User {ctx.sender}: {text}")
    ctx.db.message.insert(Message(sender=ctx.sender, sent=ctx.timestamp, text=text))


@client_connected
def identity_connected(ctx: ReducerContext) -> None:
    """A client connected: mark the user online, creating it on first contact."""
    user = ctx.db.user.identity.find(ctx.sender)
    if user is not None:
        user.online = True
        ctx.db.user.identity.update(user)
    else:
        ctx.db.user.insert(User(identity=ctx.sender, name=None, online=True))


@client_disconnected
def identity_disconnected(ctx: ReducerContext) -> None:
    """A client disconnected: mark the user offline."""
    user = ctx.db.user.identity.find(ctx.sender)
    if user is not None:
        user.online = False
        ctx.db.user.identity.update(user)
    else:
        log.warn(f"Disconnect event for unknown user with identity {ctx.sender}")
