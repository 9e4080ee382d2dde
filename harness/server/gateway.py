"""The split server: a gateway process for the network and one database process for the databases.

    serve_split("data/", "127.0.0.1", 3000)        # blocks, like app.serve

Why: the one-process server runs the aiohttp event loop and the databases under one GIL, so it uses one
core, and every module callback on the database thread fights the busy loop for the GIL.  Here the gateway
(this process) keeps the event loop: HTTP parsing, WebSocket handshake, framing, masking, ping and
compression.  The database process (dbworker.py) owns the Registry and runs module code, subscriptions and the
commit logs; its GIL is not shared with a busy event loop.  benchmarks/README.md ("Second core") has the
measurements.

WebSocket clients: the gateway checks the request and the token as the one-process endpoint does, then sends
OPEN over the channel (channel.py); the database process looks the database up (404 and friends come back as
REJECT, answered before the upgrade) and runs ``client_connected``.  Then each client frame is forwarded as is
(MSG) and decoded in the database process; server messages come back at the end of each executor batch with
the tx offset they reflect, and the gateway holds each until the database's durable offset (one DURABLE record
per fsync) reaches it, for confirmed reads, then compresses, frames and writes them, several per transport
write.  Limits: per connection at
most ``ws_inflight_messages`` frames / ``ws_inflight_bytes`` bytes sent to the database process and not yet
run (the DONE credit), ``ws_outbox_*`` queued toward the client (over it the client is dropped, as in one
process), and the channel's write buffer is bounded by pausing every reader when it is full.

HTTP: every other route is proxied to the database process's own aiohttp app on a unix socket (the same
routes as the one-process server).  If the database process dies, every client is closed with 1011
``database process exited`` and requests get 503; the gateway does not restart it.

Status: an experiment, not wired into the CLI: on the keynote workload it measured slower than the
one-process server (benchmarks/README.md, "Second core"); kept so the measurement can be repeated.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

from harness.limits import ENV_PREFIX, LIMITS
from spacetime_core.protocol import SUBPROTOCOLS, V3_BSATN, compress_body
from spacetime_core.sats import ConnectionId

from .app import default_data_dir
from .auth import KeyPair, TokenAuthority
from .channel import (
    CLOSE,
    DONE,
    DONE_BODY,
    DURABLE,
    DURABLE_BODY,
    GONE,
    KICK,
    MSG,
    OFFSET,
    OPEN,
    OPENED,
    READY,
    REJECT,
    ChannelError,
    RecordReader,
    record,
)
from .http import _has_dot_segment, text_response
from .websocket import (
    PING_INTERVAL,
    SUBSCRIBE_ROUTE,
    V3_BATCH_LIMIT,
    WRITE_BACKLOG_BYTES,
    AuthFailed,
    TokenAuthorityAuth,
    _binary_frame_header,
    _reason,
    bearer,
    upgrade_params,
)

log = logging.getLogger("spacetime-py.gateway")

GATEWAY_KEY = web.AppKey("gateway", object)
WORKER_START_S = 120.0
HOP_HEADERS = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade", "content-length"))
CHANNEL_HIGH_WATER = 4 * 1024 * 1024  # gateway -> database bytes buffered before every reader pauses
WORKER_GONE = "database process exited"


class _Client:
    """One WebSocket client on the gateway side: the in-flight credit and the outbox toward the client."""

    def __init__(self, cid: int, compression: str, v3: bool, gw: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.cid = cid
        self.compression = compression
        self.v3 = v3
        self.gw = gw
        self.db = 0  # the database's channel key (from OPENED)
        self.opened: asyncio.Future = loop.create_future()  # None, or the REJECT dict
        self.gone: asyncio.Future = loop.create_future()
        self.ws: web.WebSocketResponse | None = None
        self.transport: asyncio.Transport | None = None
        self.out: collections.deque[tuple[bytes, int]] = collections.deque()  # (body, offset) not yet written
        self.out_bytes = 0
        self.sending = False  # the writer task is sending (then it owns the order)
        self.wake = asyncio.Event()
        self.inflight = 0
        self.inflight_bytes = 0
        self.room = asyncio.Event()
        self.room.set()
        self.close_after: tuple[int, bytes] | None = None  # a CLOSE from the database, after `out`
        self.closer: asyncio.Future | None = None
        self.writer_task: asyncio.Task | None = None
        self.kicked = False

    # ---------------------------------------------------------------- from the database process

    def add(self, payload: bytes) -> None:
        if self.kicked:
            return
        n = len(payload) - 8
        if self.out and (len(self.out) >= LIMITS.ws_outbox_messages
                         or self.out_bytes + n > LIMITS.ws_outbox_bytes):
            log.warning("client exceeded its outgoing queue, kicking")
            self.kick()
            return
        self.out.append((payload[8:], OFFSET.unpack_from(payload)[0]))
        self.out_bytes += n

    def _take(self) -> list[bytes]:
        """The durable prefix of the outbox as WebSocket message bodies (v3: concatenated up to 512 KiB)."""
        durable = self.gw.durable.get(self.db, -1)
        out = self.out
        bodies = []
        while out and out[0][1] <= durable:
            body = out.popleft()[0]
            self.out_bytes -= len(body)
            bodies.append(body)
        if out:
            self.gw.waiting.add(self)  # flushed again on the next DURABLE
        if not self.v3 or len(bodies) < 2:
            return bodies
        batches, cur, size = [], [], 0
        for b in bodies:
            if cur and size + len(b) > V3_BATCH_LIMIT:
                batches.append(b"".join(cur))
                cur, size = [], 0
            cur.append(b)
            size += len(b)
        batches.append(b"".join(cur))
        return batches

    def flush(self) -> None:
        """Write what may be sent: directly, several frames in one transport write, unless the socket has a
        backlog (then the writer task sends with aiohttp's flow control)."""
        ws, t = self.ws, self.transport
        if ws is None or self.kicked or not self.out:
            return
        if self.sending or t is None or ws.closed or t.is_closing() or \
                t.get_write_buffer_size() > WRITE_BACKLOG_BYTES:
            self.wake.set()
            return
        parts = []
        for body in self._take():
            data = compress_body(body, self.compression)
            parts.append(_binary_frame_header(len(data)))
            parts.append(data)
        if parts:
            t.write(b"".join(parts))

    def credit(self, n: int, size: int) -> None:
        self.inflight -= n
        self.inflight_bytes -= size
        if self._has_room():
            self.room.set()

    def close_when_sent(self, code: int, reason: bytes) -> None:
        """Close after what may be sent now (what still waits for durability is dropped, as in one process)."""
        self.close_after = (code, reason)
        self.wake.set()
        if self.ws is None or self.writer_task is None:
            self._close_now()

    def _close_now(self) -> None:
        code, reason = self.close_after
        ws = self.ws
        if ws is not None and self.closer is None and not ws.closed:
            self.closer = asyncio.ensure_future(ws.close(code=code, message=reason))
        self.room.set()

    def kick(self) -> None:
        self.kicked = True
        self.out.clear()
        self.out_bytes = 0
        self.room.set()
        self.wake.set()
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- toward the database process

    def _has_room(self) -> bool:
        return self.inflight < LIMITS.ws_inflight_messages and self.inflight_bytes < LIMITS.ws_inflight_bytes

    def started(self, size: int) -> bool:
        self.inflight += 1
        self.inflight_bytes += size
        if self._has_room():
            return True
        self.room.clear()
        return False

    async def writer(self) -> None:
        ws = self.ws
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.kicked:
                return
            self.sending = True
            try:
                for body in self._take():
                    await ws.send_bytes(compress_body(body, self.compression))
            finally:
                self.sending = False
            if self.close_after is not None:
                self._close_now()
                return


class _Channel(asyncio.Protocol):
    """The gateway's end of the channel (asyncio): records in, batched writes out."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.reader = RecordReader()
        self.transport: asyncio.Transport | None = None
        self._pending: list[bytes] = []
        self._scheduled = False
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=CHANNEL_HIGH_WATER)  # type: ignore[attr-defined]

    def send(self, rec: bytes) -> None:
        """Queue a record; everything queued in one loop iteration goes out in one write."""
        self._pending.append(rec)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        parts, self._pending = self._pending, []
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(b"".join(parts))

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            recs = self.reader.feed(data)
        except ChannelError as e:
            log.error("channel from the database process broken: %s", e)
            self.transport.abort()
            return
        clients = self.gw.clients
        touched: dict[int, _Client] = {}
        for cid, kind, payload in recs:
            c = clients.get(cid)
            if kind == MSG:
                if c is not None:
                    c.add(payload)
                    touched[cid] = c
            elif kind == DONE:
                if c is not None:
                    c.credit(*DONE_BODY.unpack(payload))
            elif kind == OPENED:
                if c is not None and not c.opened.done():
                    c.db, durable = DURABLE_BODY.unpack(payload)
                    gw = self.gw
                    if durable > gw.durable.get(c.db, -1):
                        gw.durable[c.db] = durable
                    c.opened.set_result(None)
            elif kind == DURABLE:
                db, durable = DURABLE_BODY.unpack(payload)
                gw = self.gw
                if durable > gw.durable.get(db, -1):
                    gw.durable[db] = durable
                    for w in [w for w in gw.waiting if w.db == db]:
                        gw.waiting.discard(w)
                        touched[w.cid] = w
            elif kind == REJECT:
                if c is not None:
                    clients.pop(cid, None)
                    if not c.opened.done():
                        c.opened.set_result(json.loads(payload))
            elif kind == CLOSE:
                if c is not None:
                    c.flush()
                    touched.pop(cid, None)
                    (code,) = struct.unpack_from("<H", payload)
                    c.close_when_sent(code, _reason(payload[2:].decode("utf-8", "replace")))
            elif kind == KICK:
                if c is not None:
                    c.kick()
            elif kind == GONE:
                if c is not None:
                    clients.pop(cid, None)
                    if not c.gone.done():
                        c.gone.set_result(None)
            elif kind == READY:
                if not self.gw.ready.done():
                    self.gw.ready.set_result(None)
        for c in touched.values():
            c.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        self.gw.worker_lost()


class Gateway:
    """The gateway's state: the database process, the channel, the clients, the HTTP proxy session."""

    def __init__(self, data_dir: Path, durability: str, authority: TokenAuthority) -> None:
        self.data_dir = data_dir
        self.durability = durability
        self.auth = TokenAuthorityAuth(authority)
        self.clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self.proc: subprocess.Popen | None = None
        self.channel: _Channel | None = None
        self.ready: asyncio.Future | None = None
        self.dead = False
        self.stopping = False
        self.live: set[_Client] = set()
        self.durable: dict[int, int] = {}  # database key -> durable tx offset (DURABLE records)
        self.waiting: set[_Client] = set()  # clients holding messages that are not durable yet
        self._tmp = Path(tempfile.mkdtemp(prefix="spacetime-py-"))
        self.http_sock = str(self._tmp / "http.sock")
        self.session: aiohttp.ClientSession | None = None

    # ---------------------------------------------------------------- the database process

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        for f in fields(LIMITS):  # limits set with --limit apply to the database process too
            env[ENV_PREFIX + f.name.upper()] = str(getattr(LIMITS, f.name))
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.server.dbworker", str(self.data_dir), str(theirs.fileno()),
             self.http_sock, self.durability], pass_fds=(theirs.fileno(),), env=env)
        theirs.close()
        self.channel = _Channel(self)
        await loop.create_unix_connection(lambda: self.channel, sock=mine)
        waiter = asyncio.ensure_future(asyncio.to_thread(self.proc.wait))
        done, _ = await asyncio.wait({self.ready, waiter}, timeout=WORKER_START_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.ready not in done:
            raise RuntimeError(f"the database process did not start (exit code {self.proc.poll()})")
        self._waiter = waiter
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.http_sock),
                                             auto_decompress=False)

    def worker_lost(self) -> None:
        if self.dead:
            return
        self.dead = True
        if not self.stopping:
            log.error("the database process exited (code %s): closing every client",
                      self.proc.poll() if self.proc else None)
        for c in list(self.clients.values()):
            if not c.opened.done():
                c.opened.set_result({"status": 503, "text": WORKER_GONE})
            c.close_when_sent(1011, WORKER_GONE.encode())
            if not c.gone.done():
                c.gone.set_result(None)
        self.clients.clear()

    async def stop(self) -> None:
        self.stopping = True
        live = list(self.live)
        for c in live:
            c.close_when_sent(1001, b"server shutting down")
        writers = [c.writer_task for c in live if c.writer_task is not None]
        if writers:  # each writer sends what may be sent, then starts the close
            await asyncio.wait(writers, timeout=3)
        closers = [c.closer for c in live if c.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=3)
        if self.session is not None:
            await self.session.close()
        if self.channel is not None and self.channel.transport is not None:
            self.channel.transport.close()  # EOF: the database process disconnects everyone, closes, exits
        if self.proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 60)
            except TimeoutError:
                log.error("the database process did not exit: killing it")
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _new_id(self) -> int:
        while True:
            cid = next(self._ids) & 0xFFFFFFFF
            if cid and cid not in self.clients:
                return cid

    # ---------------------------------------------------------------- WebSocket

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name_or_identity"]
        compression, confirmed, cid, protocol = upgrade_params(request, SUBPROTOCOLS)
        if protocol is None:
            raise web.HTTPBadRequest(text="no valid protocol selected")
        if self.dead:
            return text_response(WORKER_GONE, 503)
        try:
            identity, token = await asyncio.to_thread(self.auth.resolve, bearer(request))
        except AuthFailed as e:
            raise (web.HTTPBadRequest if e.status == 400 else web.HTTPUnauthorized)(text=e.text) from None
        if cid is None:
            cid = ConnectionId.from_bytes(os.urandom(16))
        loop = asyncio.get_running_loop()
        c = _Client(self._new_id(), compression, protocol == V3_BSATN, self, loop)
        self.clients[c.cid] = c
        self.channel.send(record(c.cid, OPEN, json.dumps({
            "db": name, "identity": identity.to_hex(), "connection_id": cid.to_hex(), "token": token,
            "v3": protocol == V3_BSATN, "confirmed": confirmed == "true"}).encode()))
        rejected = await c.opened
        if rejected is not None and rejected.get("status") is not None:
            self.clients.pop(c.cid, None)
            return text_response(rejected["text"], rejected["status"])
        ws = web.WebSocketResponse(protocols=(protocol,), heartbeat=PING_INTERVAL, compress=False,
                                   max_msg_size=LIMITS.ws_message_bytes, autoping=True)
        ws.headers["spacetime-identity"] = identity.to_hex()
        ws.headers["spacetime-identity-token"] = token
        if not ws.can_prepare(request).ok:
            if rejected is None:
                self.channel.send(record(c.cid, CLOSE))
            raise web.HTTPBadRequest(text="not a WebSocket upgrade request")
        await ws.prepare(request)
        if rejected is not None:
            await ws.close(code=1008, message=_reason(f"client_connected rejected the connection: "
                                                      f"{rejected['text']}"))
            return ws
        c.ws = ws
        c.transport = request.transport
        self.live.add(c)
        writer = c.writer_task = asyncio.create_task(c.writer())
        c.flush()  # InitialConnection and whatever came before the upgrade finished
        if c.close_after is not None:
            c.wake.set()  # closed by the database before the upgrade finished: the writer closes
        try:
            await self._read_loop(ws, c)
        finally:
            self.live.discard(c)
            self.waiting.discard(c)
            if not self.dead and c.cid in self.clients:
                self.channel.send(record(c.cid, CLOSE))
                await c.gone
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            if c.closer is not None:
                try:
                    await c.closer
                except Exception:  # noqa: BLE001
                    pass
            if not ws.closed:
                await ws.close()
        return ws

    async def _read_loop(self, ws: web.WebSocketResponse, c: _Client) -> None:
        channel = self.channel
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                if c.close_after is not None or self.dead:
                    return
                data = msg.data
                room = c.started(len(data))
                channel.send(record(c.cid, MSG, data))
                if not room:
                    await c.room.wait()
                if not channel.writable.is_set():
                    await channel.writable.wait()
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

    # ---------------------------------------------------------------- HTTP

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Forward an HTTP request to the database process's app and stream its answer back."""
        if _has_dot_segment(request.raw_path):  # before the URL is parsed again on the way
            return text_response("invalid path: `.` and `..` segments are not allowed", 400)
        if self.dead or self.session is None:
            return text_response(WORKER_GONE, 503)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
        if request.content_length is not None:
            headers.append(("Content-Length", str(request.content_length)))
        # streamed, not buffered here: the database process's app applies the per-route body limits
        body = request.content.iter_any() if request.body_exists else None
        try:
            async with self.session.request(request.method, "http://db" + request.raw_path, headers=headers,
                                            data=body, allow_redirects=False,
                                            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                               "Content-Type")) as r:
                resp = web.StreamResponse(status=r.status, reason=r.reason)
                for k, v in r.headers.items():
                    if k.lower() not in HOP_HEADERS:
                        resp.headers.add(k, v)
                if r.content_length is not None and "Content-Encoding" not in r.headers:
                    resp.content_length = r.content_length
                await resp.prepare(request)
                async for chunk in r.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except aiohttp.ClientError as e:
            if self.dead:
                return text_response(WORKER_GONE, 503)
            log.error("proxying %s %s failed: %s", request.method, request.path, e)
            return text_response(f"the database process did not answer: {e}", 502)


def create_gateway_app(data_dir: str | Path | None = None, *, durability: str = "group") -> web.Application:
    """The gateway app; its startup starts the database process (and waits for it), its cleanup stops it."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    authority = TokenAuthority(KeyPair.load_or_create(data_dir))  # created here, before the database process
    gw = Gateway(data_dir, durability, authority)
    app = web.Application(client_max_size=LIMITS.publish_bytes)
    app[GATEWAY_KEY] = gw
    app.router.add_get(SUBSCRIBE_ROUTE, gw.subscribe)
    app.router.add_route("*", "/{tail:.*}", gw.proxy)

    async def on_startup(app: web.Application) -> None:
        await gw.start()

    async def on_shutdown(app: web.Application) -> None:
        await gw.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


def serve_split(data_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 3000, *,
                print_fn: Callable[[str], None] | None = print, durability: str = "group") -> None:
    """Like ``app.serve``, with the databases in a second process (see the module docstring)."""
    app = create_gateway_app(data_dir, durability=durability)

    def announce(_msg: str) -> None:
        if print_fn:
            print_fn(f"spacetime-py server listening on http://{host}:{port} (data dir "
                     f"{app[GATEWAY_KEY].data_dir}, databases in process {app[GATEWAY_KEY].proc.pid})")

    web.run_app(app, host=host, port=port, print=announce, shutdown_timeout=3, handle_signals=True,
                access_log=None)


__all__ = ["GATEWAY_KEY", "Gateway", "create_gateway_app", "serve_split"]
