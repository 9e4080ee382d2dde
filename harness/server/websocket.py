"""The client WebSocket endpoint ``GET /v1/database/{name_or_identity}/subscribe`` (client-protocol.md).

Speaks ``v3.bsatn.spacetimedb`` and ``v2.bsatn.spacetimedb`` (picked in that order of preference from what the
client offers; v1 is not implemented, so a v1-only client gets 400 ``no valid protocol selected``).

    from harness.server.websocket import SubscribeEndpoint
    endpoint = SubscribeEndpoint(lookup=registry_lookup, auth=auth_adapter)
    app.router.add_get("/v1/database/{name_or_identity}/subscribe", endpoint.handle)

``lookup(name_or_identity) -> Database | None``; ``auth`` resolves the credential (see ``WsAuth``). Per connection:
upgrade (compression, connection_id and token query parameters, ``spacetime-identity`` headers), ``client_connected``
(a rejection closes the socket before any message), ``InitialConnection``, then the client's messages in order. All
database work (module code included) runs on the database's executor thread (executor.py), never on the event loop:
the reader queues each message there without waiting for it (at most ``ws_inflight_messages`` messages /
``ws_inflight_bytes`` per connection in flight, harness.limits), and replies and transaction updates go through an
ordered outbox drained by a writer task (on v3 the writer batches queued messages into one WebSocket message). With
``confirmed=true`` (the default for v2/v3, as upstream) a message computed from the database state is held in the
outbox until the commit log is fsynced up to the transaction it reflects (docs/durability.md). Protocol errors (bad
BSATN, unknown tag, text frame, empty v3 payload, reused query set id) close the connection with 1011 and the error
text; request-level errors (bad SQL, unknown reducer, bad arguments) are answered with the protocol's error message
and the connection stays open.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from harness.limits import LIMITS
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

from . import heap
from .executor import DatabaseExecutor, executor_for, pending_wakes, stop_executor
from .subscriptions import FatalClientError, SubscriptionManager, attach

log = logging.getLogger(__name__)

PING_INTERVAL = 15.0
V3_BATCH_LIMIT = 512 * 1024
SUBSCRIBE_ROUTE = "/v1/database/{name_or_identity}/subscribe"
WRITE_BACKLOG_BYTES = 64 * 1024  # above this many unsent bytes, results go out one message at a time (drained)


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
    reader_waits: int = 0  # times a reader paused because its connection had too much in flight
    protocols: collections.Counter = field(default_factory=collections.Counter)  # negotiated subprotocols
    compression: collections.Counter = field(default_factory=collections.Counter)  # requested compression


class Connection:
    """One WebSocket client: the ordered outbox shared with the database's executor thread, and its identity.

    Outbox entries are ``(body, tx_offset)``: with ``confirmed`` reads and a group-commit database, a message
    pushed while the database lock is held carries the last written tx offset (the state it was computed from is
    at most that), and the writer sends only the prefix of the outbox that is durable."""

    holds_until_durable = True  # this outbox holds what is not durable (the split server's gateway does it there)

    def __init__(self, identity: Identity, connection_id: ConnectionId, token: str, compression: str, v3: bool,
                 loop: asyncio.AbstractEventLoop, db: Any = None, executor: DatabaseExecutor | None = None,
                 confirmed: bool = True) -> None:
        self.identity = identity
        self.connection_id = connection_id
        self.token = token
        self.compression = compression
        self.v3 = v3
        self._loop = loop
        self._loop_thread = threading.get_ident()  # connections are created on the loop's thread
        self._out: collections.deque[tuple[bytes, int | None]] = collections.deque()
        self._out_bytes = 0  # queued or taken by the writer and not yet sent: bounded by ws_outbox_bytes
        self.transport: asyncio.BaseTransport | None = None  # aborted when the client falls too far behind
        self._db = db if confirmed and db is not None and getattr(db, "committer", None) is not None else None
        self._executor = executor
        self.confirmed = confirmed
        self.inflight = 0  # messages queued to the executor, not yet run
        self.inflight_bytes = 0
        self._want_room = False
        self._room = asyncio.Event()
        self.fatal: str | None = None  # a FatalClientError on the executor: the writer closes with 1011
        self._wake = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None  # set by the writer
        self._writer_idle = False  # the writer task waits for a wake-up (nothing of ours is being sent)
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
        """Queue one encoded ServerMessage (any thread; order preserved).  A client that lets more than
        `ws_outbox_messages` messages or `ws_outbox_bytes` bytes pile up is kicked as upstream does when its
        channel is full: the connection is aborted and the queue freed.  (One message larger than the budget
        still goes out when nothing else is queued.)"""
        if self.closed or self.overflowed:
            return
        db = self._db
        offset = db.written_offset if db is not None else None
        with self._lock:
            over = bool(self._out) and (len(self._out) >= LIMITS.ws_outbox_messages
                                  or self._out_bytes + len(body) > LIMITS.ws_outbox_bytes)
            if over:
                self.overflowed = True
                self._out.clear()
                self._out_bytes = 0
            else:
                self._out.append((body, offset))
                self._out_bytes += len(body)
                if self._scheduled:
                    return
                self._scheduled = True
        if over:
            log.warning("client %s exceeded its outgoing queue (%d messages / %d bytes), kicking",
                        self.identity.to_hex()[:16], LIMITS.ws_outbox_messages, LIMITS.ws_outbox_bytes)
            self._call_on_loop(self._kick)
            return
        if (offset is not None and self.holds_until_durable and self._executor is not None
                and self._executor.wait_for_durable(self, offset)):
            # Not durable yet: waking the loop now would find nothing sendable (``_take`` sends only the durable
            # prefix) and register this wait anyway; the durability thread's wake-up after the fsync is the one
            # that sends.  Under load this halves the loop's wake-ups per result and per fan-out delivery.
            return
        self._schedule_wake()

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
            return
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # loop closed
            pass

    def _schedule_wake(self) -> None:
        wakes = pending_wakes()
        if wakes is not None:  # on an executor thread: one loop wake-up for the whole batch
            wakes.add(self)
        elif threading.get_ident() == self._loop_thread:
            self.wake()
        else:
            try:
                self._loop.call_soon_threadsafe(self.wake)
            except RuntimeError:  # loop closed
                pass

    def _has_room(self) -> bool:
        """Fewer than ``ws_inflight_messages`` messages and ``ws_inflight_bytes`` bytes queued to the database."""
        return self.inflight < LIMITS.ws_inflight_messages and self.inflight_bytes < LIMITS.ws_inflight_bytes

    def wake(self) -> None:
        """(event loop) Something to send, room to read more, or durability advanced.

        When the writer task is idle and the socket has no backlog, what is sendable goes out right here (one
        transport write) instead of waking the writer for it: one loop step less per result."""
        if not (self._writer_idle and self.fatal is None and not self.overflowed and self._send_now()):
            self._wake.set()
        if self._has_room():
            self._room.set()

    def _send_now(self) -> bool:
        """(event loop, writer idle) Write what ``_take`` gives as WebSocket frames; False to leave it to the
        writer (closing, or a backlog: then the writer's flow control applies)."""
        t, ws = self.transport, self._ws
        if t is None or ws is None or ws.closed or t.is_closing() or t.get_write_buffer_size() > WRITE_BACKLOG_BYTES:
            return False
        bodies = self._take()
        if bodies:
            parts: list[bytes] = []
            for body in bodies:
                data = compress_body(body, self.compression)
                parts.append(_binary_frame_header(len(data)))
                parts.append(data)
            t.write(b"".join(parts))
            self._sent(sum(map(len, bodies)))
        return True

    def job_started(self, size: int) -> bool:
        """(event loop) Count one more message in flight; False when the reader must wait for room first."""
        with self._lock:
            self.inflight += 1
            self.inflight_bytes += size
            if self._has_room():
                return True
            self._want_room = True
            self._room.clear()
            return False

    def job_done(self, size: int) -> None:
        """(executor thread) One message has run."""
        with self._lock:
            self.inflight -= 1
            self.inflight_bytes -= size
            if not self._want_room or not self._has_room():
                return
            self._want_room = False
        self._schedule_wake()

    def set_fatal(self, text: str) -> None:
        """(executor thread) A protocol-level error: close with 1011 once what came before it is sent."""
        if self.fatal is None:
            self.fatal = text
        self._schedule_wake()

    def _kick(self) -> None:
        """Drop the connection without a close handshake (the client is not reading): the read loop ends, the
        handler cleans up and the writer's pending sends fail, so nothing queued for this client stays alive."""
        self._wake.set()
        if self.transport is not None:
            self.transport.abort()

    def _sent(self, n: int) -> None:
        with self._lock:
            self._out_bytes = max(0, self._out_bytes - n)

    def _take(self) -> list[bytes]:
        with self._lock:
            self._scheduled = False
            if not self._out:
                return []
            n = len(self._out)
            if self._db is not None and self._executor is not None:
                # Only the durable prefix goes out; if something waits, the durability thread wakes us.
                durable = self._executor.durable_offset()
                n = 0
                for _, off in self._out:
                    if off is not None and off > durable:
                        if self._executor.wait_for_durable(self, off):
                            break
                        durable = self._executor.durable_offset()
                    n += 1
                if n == 0:
                    return []
            if not self.v3:
                return [self._out.popleft()[0] for _ in range(n)]
            # v3: concatenate queued messages, up to ~512 KiB per WebSocket message
            batches: list[bytes] = []
            cur: list[bytes] = []
            size = 0
            for _ in range(n):
                b = self._out.popleft()[0]
                if cur and size + len(b) > V3_BATCH_LIMIT:
                    batches.append(b"".join(cur))
                    cur, size = [], 0
                cur.append(b)
                size += len(b)
            if cur:
                batches.append(b"".join(cur))
            return batches

    def _write_frames(self, ws: web.WebSocketResponse, bodies: list[bytes]) -> list[bytes]:
        """Send all but the last of ``bodies`` as binary WebSocket messages with one transport write (one
        syscall, instead of one per message: with many calls in flight most wake-ups carry several results);
        returns what is left for ``ws.send_bytes``, whose flow control (drain) then applies.  Everything goes
        through aiohttp when the socket already has a backlog or the WebSocket is closing."""
        t = self.transport
        if t is None or ws.closed or t.is_closing() or t.get_write_buffer_size() > WRITE_BACKLOG_BYTES:
            return bodies
        parts: list[bytes] = []
        sent = 0
        for body in bodies[:-1]:
            data = compress_body(body, self.compression)
            parts.append(_binary_frame_header(len(data)))
            parts.append(data)
            sent += len(body)
        t.write(b"".join(parts))
        self._sent(sent)
        return bodies[-1:]

    async def writer(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        while True:
            if not self._wake.is_set():
                self._writer_idle = True
                try:
                    await self._wake.wait()
                finally:
                    self._writer_idle = False
            self._wake.clear()
            bodies = self._take()
            if len(bodies) > 1:
                bodies = self._write_frames(ws, bodies)
            for body in bodies:
                await ws.send_bytes(compress_body(body, self.compression))
                self._sent(len(body))
            if self.fatal is not None:
                self.request_close(ws, 1011, _reason(self.fatal))
                return
            if self.overflowed:
                return


def _binary_frame_header(n: int) -> bytes:
    """RFC 6455 header of an unmasked, unfragmented binary frame (FIN + opcode 2) of ``n`` payload bytes."""
    if n < 126:
        return bytes((0x82, n))
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n)
    return struct.pack("!BBQ", 0x82, 127, n)


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


def upgrade_params(request: web.Request, protocols: tuple[str, ...] = SUBPROTOCOLS
                   ) -> tuple[str, str, ConnectionId | None, str | None]:
    """The subscribe request's ``(compression, confirmed, connection id, chosen subprotocol or None)``;
    raises 400 for a bad query parameter.  (Shared with the split server's gateway.)"""
    q = request.query
    compression = q.get("compression", "Brotli")
    confirmed = q.get("confirmed", "true")  # upstream's default for v2/v3
    if confirmed not in ("true", "false"):
        raise web.HTTPBadRequest(text=f"invalid confirmed {confirmed!r}: expected true or false")
    if compression not in COMPRESSION_MODES:
        raise web.HTTPBadRequest(text=f"invalid compression {compression!r}: expected None, Brotli or Gzip")
    try:
        cid = _parse_connection_id(q.get("connection_id"))
    except ValueError as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    offered = [p for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]
    return compression, confirmed, cid, choose_subprotocol(offered, protocols)


def bearer(request: web.Request) -> str | None:
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
                 protocols: tuple[str, ...] = SUBPROTOCOLS) -> None:
        self.lookup = lookup
        self.protocols = protocols  # offered subprotocols we accept, in order of preference
        self.auth = auth or default_auth()
        self.ping_interval = ping_interval
        self.executor = executor  # thread pool for token checks only; database work uses executor_for(db)
        self.stats = _Stats()
        self.live: set[tuple[web.WebSocketResponse, Connection, SubscriptionManager]] = set()
        self.open = 0  # upgrade requests past the connection limits and not finished (handshake or live)
        self.per_address: collections.Counter[str] = collections.Counter()

    def mount(self, app: web.Application) -> None:
        app.router.add_get(SUBSCRIBE_ROUTE, self.handle)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name_or_identity"]
        compression, confirmed, cid, protocol = upgrade_params(request, self.protocols)
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
        address = request.remote or ""
        if self.per_address[address] >= LIMITS.ws_connections_per_address:
            raise web.HTTPTooManyRequests(
                text=f"too many WebSocket connections from {address}: {self.per_address[address]} open "
                     f"(limit ws_connections_per_address)")
        if self.open >= LIMITS.ws_connections:
            raise web.HTTPServiceUnavailable(
                text=f"too many WebSocket connections: {self.open} open (limit ws_connections)")
        self.open += 1
        self.per_address[address] += 1
        try:
            return await self._handle(request, db, compression, confirmed, cid, protocol)
        finally:
            self.open -= 1
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]

    async def _handle(self, request: web.Request, db: Any, compression: str, confirmed: str | None,
                      cid: ConnectionId | None, protocol: str) -> web.StreamResponse:
        try:
            token = bearer(request)
            identity, token = await self._run(self.auth.resolve, token)
        except AuthFailed as e:
            raise (web.HTTPBadRequest if e.status == 400 else web.HTTPUnauthorized)(text=e.text) from None
        ws = web.WebSocketResponse(protocols=(protocol,), heartbeat=self.ping_interval, compress=False,
                                   max_msg_size=LIMITS.ws_message_bytes, autoping=True)
        ws.headers["spacetime-identity"] = identity.to_hex()
        ws.headers["spacetime-identity-token"] = token
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise web.HTTPBadRequest(text="not a WebSocket upgrade request")
        await ws.prepare(request)

        loop = asyncio.get_running_loop()
        ex = executor_for(db)
        conn = Connection(identity, cid or ConnectionId.from_bytes(os.urandom(16)), token, compression,
                          protocol == V3_BSATN, loop, db, ex, confirmed == "true")
        conn.transport = request.transport
        mgr = attach(db)
        try:
            rejected = await ex.call(mgr.connect, conn)
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
            await self._read_loop(ws, conn, mgr, ex)
        finally:
            conn.closed = True
            self.live.discard(entry)
            try:
                await ex.call(mgr.disconnect, conn)
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
            if conn.overflowed:  # its outbox (up to ws_outbox_bytes) was just freed: give the pages back
                heap.trim_soon(loop)
        return ws

    async def _read_loop(self, ws: web.WebSocketResponse, conn: Connection, mgr: SubscriptionManager,
                         ex: DatabaseExecutor) -> None:
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
                    if conn.fatal is not None:
                        return  # the writer closes the connection with the error
                    fn, args, size = _job(mgr, m)
                    room = conn.job_started(size)
                    if fn == mgr.call_procedure:  # may sleep or wait on HTTP: not on the database's thread
                        asyncio.get_running_loop().run_in_executor(self.executor, _run_job, conn, size, fn, args)
                    else:
                        ex.submit(_run_job, conn, size, fn, args)
                    if not room:
                        self.stats.reader_waits += 1
                        await conn._room.wait()
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
        dbs = {id(mgr.db): mgr.db for _ws, _conn, mgr in self.live}
        for ws, conn, _mgr in list(self.live):
            conn.request_close(ws, code, _reason(reason))
            if conn.closer is not None:
                closers.append(conn.closer)
        if closers:
            await asyncio.gather(*closers, return_exceptions=True)
        for db in dbs.values():  # queued work finishes before the databases close
            await asyncio.to_thread(stop_executor, db)


def _job(mgr: SubscriptionManager, m: Any) -> tuple[Callable, tuple, int]:
    """The manager method, arguments and in-flight byte size for one client message."""
    cls = m.__class__
    if cls is CallReducer:
        return mgr.call_reducer, (m.request_id, m.reducer, m.args), len(m.args) + len(m.reducer)
    if cls is Subscribe:
        qs = list(m.query_strings)
        return mgr.subscribe, (m.request_id, m.query_set_id, qs), sum(map(len, qs))
    if cls is Unsubscribe:
        return mgr.unsubscribe, (m.request_id, m.query_set_id, m.flags is UnsubscribeFlags.SendDroppedRows), 0
    if cls is OneOffQuery:
        return mgr.one_off_query, (m.request_id, m.query_string), len(m.query_string)
    if cls is CallProcedure:
        return mgr.call_procedure, (m.request_id, m.procedure, m.args), len(m.args) + len(m.procedure)
    raise FatalClientError(f"unexpected message {cls.__name__}")  # pragma: no cover - decoder yields the above


def _run_job(conn: Connection, size: int, fn: Callable, args: tuple) -> None:
    """(executor thread) One client message; a protocol-level error closes the connection (1011)."""
    try:
        if conn.fatal is None:
            fn(conn, *args)
    except FatalClientError as e:
        conn.set_fatal(str(e))
    finally:
        conn.job_done(size)


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
