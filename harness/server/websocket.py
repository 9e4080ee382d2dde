"""The client WebSocket endpoint ``GET /v1/database/{name_or_identity}/subscribe`` (client-protocol.md).

Speaks ``v3.bsatn.spacetimedb`` and ``v2.bsatn.spacetimedb`` (picked in that order of preference from what the
client offers; v1 is not implemented, so a v1-only client gets 400 ``no valid protocol selected``).

    from harness.server.websocket import SubscribeEndpoint
    endpoint = SubscribeEndpoint(lookup=registry_lookup, auth=auth_adapter)
    app.router.add_get("/v1/database/{name_or_identity}/subscribe", endpoint.handle)

``lookup(name_or_identity) -> Database | None``; ``auth`` resolves the credential (see ``WsAuth``).  Per
connection: upgrade (compression, connection_id and token query parameters, ``spacetime-identity`` headers),
``client_connected`` (a rejection closes the socket before any message), ``InitialConnection``, then the client's
messages one at a time in order.  Blocking database work runs in worker threads; replies and transaction updates
go through an ordered outbox drained by a writer task (on v3 the writer batches queued messages into one
WebSocket message).  Protocol errors (bad BSATN, unknown tag, text frame, empty v3 payload, reused query set id)
close the connection with 1011 and the error text; request-level errors (bad SQL, unknown reducer, bad
arguments) are answered with the protocol's error message and the connection stays open.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from spacetime_core.protocol import (
    COMPRESSION_MODES,
    SUBPROTOCOLS,
    V3_BSATN,
    CallProcedure,
    CallReducer,
    OneOffQuery,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    UnsubscribeFlags,
    choose_subprotocol,
    compress_body,
    decode_client_frame,
)
from spacetime_core.sats import ConnectionId, Identity

from .subscriptions import FatalClientError, SubscriptionManager, attach

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 32 * 1024 * 1024  # 0x2000000: larger inbound messages close the connection
PING_INTERVAL = 15.0
V3_BATCH_LIMIT = 512 * 1024
MAX_OUTBOX = 65536  # queued outbound messages before a client that does not read is dropped
SUBSCRIBE_ROUTE = "/v1/database/{name_or_identity}/subscribe"
INLINE_LIMIT_S = 0.002  # reducers faster than this (recent average) run on the event loop; 0 disables


class AuthFailed(Exception):
    """The credential was refused: ``status`` (401 invalid/expired token, 400 malformed header) and text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class WsAuth:
    """How the endpoint turns a credential into an identity.

    ``resolve(token)`` gets the bearer token (``Authorization`` header first, else the ``token`` query
    parameter) or None for an anonymous connection, and returns ``(identity, token)``: for a valid token the
    identity it proves and the same token; for None a freshly minted identity and its new long-lived token.
    Raise ``AuthFailed`` to refuse the upgrade.
    """

    def resolve(self, token: str | None) -> tuple[Identity, str]:  # pragma: no cover - interface
        raise NotImplementedError


class TokenAuthorityAuth(WsAuth):
    """``WsAuth`` over ``harness.server.auth.TokenAuthority`` (the HTTP side's ES256 tokens): anonymous
    connections get ``authority.mint()``, tokens are checked with ``authority.validate(token)``."""

    def __init__(self, authority: Any) -> None:
        self.authority = authority

    def resolve(self, token: str | None) -> tuple[Identity, str]:
        if token is None:
            claims = self.authority.mint()
            return claims.identity, claims.token
        try:
            claims = self.authority.validate(token)
        except Exception as e:  # noqa: BLE001 - harness.server.auth.AuthError carries the status
            raise AuthFailed(getattr(e, "status", 401), getattr(e, "message", None) or str(e)) from None
        return claims.identity, token


class LocalTestAuth(WsAuth):
    """Stand-in used when no auth is given and ``harness.server.auth`` is unavailable (tests only): anonymous
    connections get a random identity and an opaque token that this object accepts later."""

    def __init__(self) -> None:
        self.tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def resolve(self, token: str | None) -> tuple[Identity, str]:
        with self._lock:
            if token is None:
                ident = Identity.from_bytes(os.urandom(32))
                token = "local." + ident.to_hex()
                self.tokens[token] = ident
                return ident, token
            ident = self.tokens.get(token)
            if ident is None:
                raise AuthFailed(401, "invalid token")
            return ident, token


def default_auth() -> WsAuth:
    """Real tokens signed with a fresh ephemeral key (``harness.server.auth``), else ``LocalTestAuth``.  A
    server passes its own ``TokenAuthorityAuth(authority)`` so HTTP and WebSocket accept the same tokens."""
    try:
        from harness.server.auth import KeyPair, TokenAuthority
    except ImportError:  # pragma: no cover - auth dependencies missing
        return LocalTestAuth()
    return TokenAuthorityAuth(TokenAuthority(KeyPair.generate()))


@dataclass
class _Stats:
    connections: int = 0
    messages_in: int = 0
    inline_calls: int = 0
    protocols: collections.Counter = field(default_factory=collections.Counter)  # negotiated subprotocols
    compression: collections.Counter = field(default_factory=collections.Counter)  # requested compression


class Connection:
    """One WebSocket client: the ordered outbox shared with worker threads, and its identity."""

    def __init__(self, identity: Identity, connection_id: ConnectionId, token: str, compression: str, v3: bool,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.identity = identity
        self.connection_id = connection_id
        self.token = token
        self.compression = compression
        self.v3 = v3
        self._loop = loop
        self._loop_thread = threading.get_ident()  # connections are created on the loop's thread
        self._out: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._scheduled = False
        self._lock = threading.Lock()
        self.overflowed = False
        self.closed = False
        self.closer: asyncio.Future | None = None  # a close started outside the handler (awaited by it)

    def request_close(self, ws: web.WebSocketResponse, code: int, reason: bytes) -> None:
        """Close from another task (loop thread): the handler awaits it before returning, so the close frame
        is written before the HTTP layer drops the connection."""
        if self.closer is None and not ws.closed:
            self.closer = asyncio.ensure_future(ws.close(code=code, message=reason))

    def push(self, body: bytes) -> None:
        """Queue one encoded ServerMessage (any thread; order preserved)."""
        if self.closed:
            return
        with self._lock:
            if len(self._out) >= MAX_OUTBOX:
                self.overflowed = True
            else:
                self._out.append(body)
            if self._scheduled:
                return
            self._scheduled = True
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
            return
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # loop closed
            pass

    def _take(self) -> list[bytes]:
        with self._lock:
            self._scheduled = False
            if not self._out:
                return []
            if not self.v3:
                items = list(self._out)
                self._out.clear()
                return items
            # v3: concatenate queued messages, up to ~512 KiB per WebSocket message
            batches: list[bytes] = []
            cur: list[bytes] = []
            size = 0
            while self._out:
                b = self._out.popleft()
                if cur and size + len(b) > V3_BATCH_LIMIT:
                    batches.append(b"".join(cur))
                    cur, size = [], 0
                cur.append(b)
                size += len(b)
            if cur:
                batches.append(b"".join(cur))
            return batches

    async def writer(self, ws: web.WebSocketResponse) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for body in self._take():
                await ws.send_bytes(compress_body(body, self.compression))
            if self.overflowed:
                self.request_close(ws, 1013, b"too many requests")
                return


def _parse_connection_id(value: str | None) -> ConnectionId | None:
    if value is None:
        return None
    v = value[2:] if value.startswith(("0x", "0X")) else value
    if len(v) != 32:
        raise ValueError("connection_id must be 32 hex digits")
    cid = ConnectionId.from_hex(v)
    if cid.to_bytes() == bytes(16):
        raise ValueError("connection_id must not be zero")
    return cid


def _bearer(request: web.Request) -> str | None:
    """The credential: ``Authorization: Bearer <token>`` first, else the ``token`` query parameter."""
    h = request.headers.get("Authorization")
    if h is not None:
        scheme, _, cred = h.strip().partition(" ")
        if scheme.lower() != "bearer" or not cred.strip():
            raise AuthFailed(400, "malformed Authorization header: expected `Bearer <token>`")
        return cred.strip()
    return request.query.get("token") or None


class SubscribeEndpoint:
    """The aiohttp handler for the subscribe route.

    ``lookup(name_or_identity)`` returns the Database or None (-> 404).  ``auth`` is a ``WsAuth`` (default:
    the adapter over ``harness.server.auth``).  ``ping_interval`` is aiohttp's heartbeat (a Ping after that many
    idle seconds; no Pong within half of it closes the connection).  ``protocols`` restricts the subprotocols
    (default v3 then v2)."""

    def __init__(self, lookup: Callable[[str], Any], auth: WsAuth | None = None, *,
                 ping_interval: float | None = PING_INTERVAL, executor=None,
                 protocols: tuple[str, ...] = SUBPROTOCOLS, inline_limit_s: float = INLINE_LIMIT_S) -> None:
        self.lookup = lookup
        self.protocols = protocols  # offered subprotocols we accept, in order of preference
        self.auth = auth or default_auth()
        self.ping_interval = ping_interval
        self.executor = executor
        self.stats = _Stats()
        self.inline_limit_s = inline_limit_s
        self._durations: dict[tuple[int, str], float] = {}  # (manager, reducer) -> recent duration (EMA)
        self.live: set[tuple[web.WebSocketResponse, Connection, SubscriptionManager]] = set()

    def mount(self, app: web.Application) -> None:
        app.router.add_get(SUBSCRIBE_ROUTE, self.handle)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _call_reducer(self, mgr: SubscriptionManager, conn: Connection, m: CallReducer) -> None:
        """Fast reducers run right on the event loop (a worker-thread hop costs more than the reducer): when the
        database lock is free and this reducer's recent calls took under ``inline_limit_s``.  Anything slower,
        or contended, runs in a worker thread so the loop keeps serving other connections."""
        key = (id(mgr), m.reducer)
        avg = self._durations.get(key, 0.0)
        t0 = time.perf_counter()
        if avg < self.inline_limit_s and mgr.lock.acquire(blocking=False):
            try:
                mgr.call_reducer(conn, m.request_id, m.reducer, m.args)
            finally:
                mgr.lock.release()
            self.stats.inline_calls += 1
        else:
            await self._run(mgr.call_reducer, conn, m.request_id, m.reducer, m.args)
        if len(self._durations) > 10000:
            self._durations.clear()
        self._durations[key] = 0.7 * avg + 0.3 * (time.perf_counter() - t0)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name_or_identity"]
        q = request.query
        compression = q.get("compression", "Brotli")
        if compression not in COMPRESSION_MODES:
            raise web.HTTPBadRequest(text=f"invalid compression {compression!r}: expected None, Brotli or Gzip")
        try:
            cid = _parse_connection_id(q.get("connection_id"))
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        offered = [p for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]
        protocol = choose_subprotocol(offered, self.protocols)
        try:
            db = self.lookup(name)
        except Exception as e:  # noqa: BLE001 - e.g. registry.RegistryError(status, body)
            status = getattr(e, "status", None)
            if not isinstance(status, int):
                raise
            body = getattr(e, "body", None) or str(e)
            return web.Response(status=status, text=body if isinstance(body, str) else str(e))
        if db is None:
            raise web.HTTPNotFound(text=f"`{name}` not found")
        if protocol is None:
            raise web.HTTPBadRequest(text="no valid protocol selected")
        try:
            token = _bearer(request)
            identity, token = await self._run(self.auth.resolve, token)
        except AuthFailed as e:
            raise (web.HTTPBadRequest if e.status == 400 else web.HTTPUnauthorized)(text=e.text) from None
        ws = web.WebSocketResponse(protocols=(protocol,), heartbeat=self.ping_interval, compress=False,
                                   max_msg_size=MAX_MESSAGE_SIZE, autoping=True)
        ws.headers["spacetime-identity"] = identity.to_hex()
        ws.headers["spacetime-identity-token"] = token
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise web.HTTPBadRequest(text="not a WebSocket upgrade request")
        await ws.prepare(request)

        loop = asyncio.get_running_loop()
        conn = Connection(identity, cid or ConnectionId.from_bytes(os.urandom(16)), token, compression,
                          protocol == V3_BSATN, loop)
        mgr = attach(db)
        try:
            rejected = await self._run(mgr.connect, conn)
        except Exception as e:  # noqa: BLE001
            log.exception("client_connected raised")
            rejected = str(e)
        if rejected is not None:
            # Upstream drops the socket without a message; we send a close frame with the reason.
            await ws.close(code=1008, message=_reason(f"client_connected rejected the connection: {rejected}"))
            return ws
        self.stats.connections += 1
        self.stats.protocols[protocol] += 1
        self.stats.compression[compression] += 1
        entry = (ws, conn, mgr)
        self.live.add(entry)
        writer = asyncio.create_task(conn.writer(ws))
        try:
            await self._read_loop(ws, conn, mgr)
        finally:
            conn.closed = True
            self.live.discard(entry)
            try:
                await self._run(mgr.disconnect, conn)
            except Exception:  # noqa: BLE001
                log.exception("disconnect cleanup failed")
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            if conn.closer is not None:
                try:
                    await conn.closer
                except Exception:  # noqa: BLE001
                    pass
            if not ws.closed:
                await ws.close()
        return ws

    async def _read_loop(self, ws: web.WebSocketResponse, conn: Connection, mgr: SubscriptionManager) -> None:
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                self.stats.messages_in += 1
                try:
                    messages = decode_client_frame(msg.data, conn.v3)
                except ProtocolError as e:
                    await ws.close(code=1011, message=_reason(str(e)))
                    return
                for m in messages:
                    try:
                        await self._dispatch(conn, mgr, m)
                    except FatalClientError as e:
                        await ws.close(code=1011, message=_reason(str(e)))
                        return
            elif msg.type == WSMsgType.TEXT:
                await ws.close(code=1011, message=b"text frames are not supported by the binary protocol")
                return
            elif msg.type == WSMsgType.ERROR:
                exc = ws.exception()
                text = str(exc) if exc else "websocket error"
                if not ws.closed:
                    code = 1009 if "size" in text.lower() else 1011
                    await ws.close(code=code, message=_reason(text))
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    async def _dispatch(self, conn: Connection, mgr: SubscriptionManager, m: Any) -> None:
        cls = m.__class__
        if cls is CallReducer:
            await self._call_reducer(mgr, conn, m)
        elif cls is Subscribe:
            await self._run(mgr.subscribe, conn, m.request_id, m.query_set_id, list(m.query_strings))
        elif cls is Unsubscribe:
            await self._run(mgr.unsubscribe, conn, m.request_id, m.query_set_id,
                            m.flags is UnsubscribeFlags.SendDroppedRows)
        elif cls is OneOffQuery:
            await self._run(mgr.one_off_query, conn, m.request_id, m.query_string)
        elif cls is CallProcedure:
            await self._run(mgr.call_procedure, conn, m.request_id, m.procedure, m.args)
        else:  # pragma: no cover - decode_client_frame only yields the classes above
            raise FatalClientError(f"unexpected message {cls.__name__}")

    async def close_database(self, db, code: int = 1001, reason: str = "module exited") -> None:
        """Close every connection to ``db`` (database stopped or deleted)."""
        closers = []
        for ws, conn, mgr in list(self.live):
            if mgr.db is db:
                conn.request_close(ws, code, _reason(reason))
                if conn.closer is not None:
                    closers.append(conn.closer)
        if closers:
            await asyncio.gather(*closers, return_exceptions=True)

    def on_registry_event(self, event: str, entry: Any) -> None:
        """``Registry.subscribe`` listener (any thread): a deleted or replaced database closes its clients with
        1001 ``module exited``."""
        if event not in ("deleted", "replaced"):
            return
        ident = getattr(entry, "identity", None)
        for ws, conn, mgr in list(self.live):
            if getattr(mgr.db, "identity", None) != ident or mgr.db is getattr(entry, "db", None):
                continue
            conn._loop.call_soon_threadsafe(conn.request_close, ws, 1001, b"module exited")

    async def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        closers = []
        for ws, conn, _mgr in list(self.live):
            conn.request_close(ws, code, _reason(reason))
            if conn.closer is not None:
                closers.append(conn.closer)
        if closers:
            await asyncio.gather(*closers, return_exceptions=True)


def _reason(text: str) -> bytes:
    """A close reason fits in 123 bytes of UTF-8."""
    b = text.encode("utf-8", "replace")
    if len(b) <= 123:
        return b
    return b[:120].decode("utf-8", "ignore").encode() + b"..."


def add_routes(app: web.Application, lookup: Callable[[str], Any], auth: WsAuth | None = None,
               **kw: Any) -> SubscribeEndpoint:
    """Mount the subscribe endpoint on ``app`` and return it (also stored as ``app[WS_ENDPOINT_KEY]``)."""
    ep = SubscribeEndpoint(lookup, auth, **kw)
    ep.mount(app)
    app[WS_ENDPOINT_KEY] = ep
    return ep


WS_ENDPOINT_KEY = web.AppKey("ws_endpoint", SubscribeEndpoint)
