"""Shared pieces of the WebSocket server tests: the test module, a server running in a background thread, and a
raw protocol client built on aiohttp (no tests here)."""

from __future__ import annotations

import asyncio
import struct
import threading
from pathlib import Path

import aiohttp
from aiohttp import web

from harness.host import Database
from harness.server.websocket import SubscribeEndpoint
from module_sdk.build import build
from spacetime_core.protocol import (
    V2_BSATN,
    CallReducer,
    decode_server_frame,
    encode_client,
)
from spacetime_core.sats import Identity

OWNER = Identity.from_bytes(bytes(range(32)))

MODULE = '''
from module_sdk import (
    ProcedureContext, ReducerContext, SenderError, TxContext, client_connected, client_disconnected, primary_key,
    procedure, reducer, table, u32,
)


@table(public=True)
class Person:
    id: u32 = primary_key(auto_inc=True)
    name: str


@table(public=True)
class Note:
    id: u32 = primary_key(auto_inc=True)
    text: str


@table(public=True)
class Settings:
    id: u32 = primary_key()
    reject_connections: bool


@table(public=True)
class Online:
    identity_hex: str = primary_key()


@table(public=True, event=True)
class Chirp:
    text: str


@table
class Secret:
    id: u32 = primary_key()
    value: str


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    if not name:
        raise SenderError("name must not be empty")
    ctx.db.person.insert(Person(name=name))


@reducer
def add_many(ctx: ReducerContext, prefix: str, n: u32) -> None:
    for i in range(n):
        ctx.db.person.insert(Person(name=f"{prefix}{i}"))


@reducer
def rename(ctx: ReducerContext, id: u32, name: str) -> None:
    p = ctx.db.person.id.find(id)
    if p is None:
        raise SenderError(f"no person {id}")
    p.name = name
    ctx.db.person.id.update(p)


@reducer
def remove(ctx: ReducerContext, id: u32) -> None:
    ctx.db.person.id.delete(id)


@reducer
def note(ctx: ReducerContext, text: str) -> None:
    ctx.db.note.insert(Note(text=text))


@reducer
def chirp(ctx: ReducerContext, text: str) -> None:
    ctx.db.chirp.insert(Chirp(text=text))


@reducer
def noop(ctx: ReducerContext) -> None:
    pass


@reducer
def crash(ctx: ReducerContext) -> None:
    raise RuntimeError("kaboom")


@reducer
def set_reject(ctx: ReducerContext, reject: bool) -> None:
    s = ctx.db.settings.id.find(0)
    if s is None:
        ctx.db.settings.insert(Settings(id=0, reject_connections=reject))
    else:
        s.reject_connections = reject
        ctx.db.settings.id.update(s)


@procedure
def shout(ctx: ProcedureContext, text: str) -> str:
    def save(tx: TxContext):
        tx.db.note.insert(Note(text=text))
    ctx.with_tx(save)
    return text.upper()


@client_connected
def on_connect(ctx: ReducerContext) -> None:
    s = ctx.db.settings.id.find(0)
    if s is not None and s.reject_connections:
        raise SenderError("connections are closed")
    ctx.db.online.insert(Online(identity_hex=str(ctx.sender)))


@client_disconnected
def on_disconnect(ctx: ReducerContext) -> None:
    ctx.db.online.identity_hex.delete(str(ctx.sender))
'''

_wasm_cache: dict[str, bytes] = {}


def module_wasm(tmp_dir: Path) -> bytes:
    if "wasm" not in _wasm_cache:
        src = tmp_dir / "wsmod.py"
        src.write_text(MODULE)
        _wasm_cache["wasm"] = build(src, tmp_dir / "wsmod.wasm").output.read_bytes()
    return _wasm_cache["wasm"]


# ---------------------------------------------------------------------------------------------------------
# A server in a background thread
# ---------------------------------------------------------------------------------------------------------

class _EchoTokenAuthRoutes:
    """Minimal stand-in for the HTTP engineer's ``POST /v1/identity/websocket-token`` (echo the token), used
    only when ``harness.server.app`` is not available."""

    @staticmethod
    async def websocket_token(request: web.Request) -> web.Response:
        h = request.headers.get("Authorization", "")
        if not h.lower().startswith("bearer "):
            return web.Response(status=401, text="missing token")
        return web.json_response({"token": h.split(" ", 1)[1].strip()})


class ServerThread:
    """An aiohttp app serving the subscribe endpoint for named databases, on 127.0.0.1:<random port>."""

    def __init__(self, databases: dict[str, Database], *, ping_interval: float | None = None, **kw) -> None:
        self.databases = databases
        self.loop = asyncio.new_event_loop()
        self.endpoint = SubscribeEndpoint(self._lookup, ping_interval=ping_interval, **kw)
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="ws-server", daemon=True)

    def _lookup(self, name: str):
        return self.databases.get(name)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        self.endpoint.mount(app)
        app.router.add_post("/v1/identity/websocket-token", _EchoTokenAuthRoutes.websocket_token)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await self.endpoint.close_all()
        await runner.cleanup()

    def start(self) -> ServerThread:
        self.thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, db: str, query: str = "compression=None") -> str:
        return f"ws://127.0.0.1:{self.port}/v1/database/{db}/subscribe" + (f"?{query}" if query else "")


class AppServerThread(ServerThread):
    """The full server (``harness.server.app.create_app``: HTTP routes, registry, tokens) on a data dir, with
    the test module published as ``name``."""

    def __init__(self, data_dir: Path, wasm: bytes, name: str, durability: str = "every") -> None:
        from harness.server.app import create_app
        from harness.server.http import AUTHORITY_KEY, REGISTRY_KEY

        self.app = create_app(data_dir, durability=durability)
        self.registry = self.app[REGISTRY_KEY]
        self.authority = self.app[AUTHORITY_KEY]
        self.owner_claims = self.authority.mint()
        self.registry.publish(wasm, self.owner_claims.identity, name)
        self.databases = {name: self.registry.lookup(name).database()}
        self.loop = asyncio.new_event_loop()
        self.endpoint = None
        self.port = 0
        self._ready = threading.Event()
        self._stop = None
        self.thread = threading.Thread(target=self._main, name="app-server", daemon=True)

    async def _serve(self) -> None:
        from harness.server.websocket import WS_ENDPOINT_KEY

        self.endpoint = self.app[WS_ENDPOINT_KEY]
        runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()


# ---------------------------------------------------------------------------------------------------------
# Raw client
# ---------------------------------------------------------------------------------------------------------

def bsatn_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<I", len(b)) + b


class RawClient:
    """One WebSocket connection speaking raw frames; ``recv()`` returns decoded ServerMessages."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, v3: bool) -> None:
        self.session = session
        self.ws = ws
        self.v3 = v3
        self.pending: list = []
        self.raw_frames: list[bytes] = []

    @classmethod
    async def connect(cls, url: str, protocols=(V2_BSATN,), headers=None) -> RawClient:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, protocols=protocols, headers=headers, autoping=True)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws, ws.protocol == "v3.bsatn.spacetimedb")

    async def send(self, msg) -> None:
        await self.ws.send_bytes(encode_client(msg))

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def recv_frame(self, timeout: float = 10.0) -> bytes:
        m = await self.ws.receive(timeout=timeout)
        if m.type != aiohttp.WSMsgType.BINARY:
            raise ConnectionError(f"expected a binary message, got {m.type!r} {m.data!r} {m.extra!r}")
        self.raw_frames.append(m.data)
        return m.data

    async def recv(self, timeout: float = 10.0):
        if not self.pending:
            self.pending.extend(decode_server_frame(await self.recv_frame(timeout), self.v3))
        return self.pending.pop(0)

    async def expect_close(self, timeout: float = 10.0):
        """Read until the server closes; returns (close code, reason)."""
        while True:
            m = await self.ws.receive(timeout=timeout)
            if m.type == aiohttp.WSMsgType.CLOSE:  # the code in the close frame itself
                return int(m.data), (m.extra or "")
            if m.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return self.ws.close_code, (m.extra or "")
            if m.type == aiohttp.WSMsgType.ERROR:
                return self.ws.close_code, str(m.data)

    async def call(self, request_id: int, reducer: str, args: bytes) -> None:
        await self.send(CallReducer(request_id, 0, reducer, args))

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
