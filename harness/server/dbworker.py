"""The database process of the split server (gateway.py starts it).

It owns the data dir's databases (the Registry), runs module code, subscriptions and the commit logs, and
serves the HTTP API on a unix socket the gateway proxies to.  WebSocket clients arrive as channel records
(channel.py): the same ``Connection`` outbox and ``SubscriptionManager`` as the one-process server, on each
database's executor thread (executor.py), but with no busy event loop in this process: the channel is read
by a thread that is blocked in ``recv`` when idle, and results are written to the channel by the thread that
produced them (one write per executor batch; the durability thread writes one DURABLE record per fsync), so
the GIL here serves the databases alone.

    python -m harness.server.dbworker DATA_DIR CHANNEL_FD HTTP_SOCKET DURABILITY
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any

from harness.limits import LIMITS
from spacetime_core.protocol import CallProcedure, ProtocolError, decode_client_frame
from spacetime_core.sats import ConnectionId, Identity

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
    record_limit,
)
from .executor import executor_for, stop_executor
from .subscriptions import FatalClientError, attach
from .websocket import Connection, _job

log = logging.getLogger("spacetime-py.dbworker")

RECV_BYTES = 1 << 20
PROCEDURE_THREADS = 8


class _Sender:
    """The channel's write side, shared by every thread that produces results.  It is also the ``_loop`` of
    every ``WorkerConnection``: after a batch the executor (or the durability thread) calls
    ``call_soon_threadsafe(wake_all, conns)``, which here runs at once on that thread, collecting the records
    of every connection, and writes them with one ``sendall``.  One re-entrant lock keeps records in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.RLock()
        self._batch: list[bytes] | None = None
        self.dead = False

    def call_soon_threadsafe(self, fn, *args) -> None:
        with self.lock:
            outer = self._batch
            if outer is None:
                self._batch = []
            try:
                fn(*args)
            finally:
                if outer is None:
                    parts, self._batch = self._batch, None
                    self._write(parts)

    def send(self, *records: bytes) -> None:
        with self.lock:
            if self._batch is not None:  # inside call_soon_threadsafe on this thread: join its write
                self._batch.extend(records)
            else:
                self._write(records)

    def _write(self, parts) -> None:
        if not parts or self.dead:
            return
        try:
            self.sock.sendall(b"".join(parts))
        except OSError as e:  # the gateway is gone; the reader sees EOF and shuts down
            self.dead = True
            log.info("channel write failed: %s", e)


class WorkerConnection(Connection):
    """A WebSocket client as the database process sees it: the one-process ``Connection`` (ordered outbox with
    the tx offset of each message, outbox limits) whose ``wake`` turns everything queued into channel records
    at the end of each executor batch.  The durability gate is the gateway's: the durability thread only sends
    one DURABLE record per fsync (``Worker._db_key``), instead of waking every connection."""

    holds_until_durable = False  # records carry their offset; the gateway holds them

    def __init__(self, cid: int, sender: _Sender, identity: Identity, connection_id: ConnectionId, token: str,
                 v3: bool, db: Any, confirmed: bool) -> None:
        ex = executor_for(db)
        super().__init__(identity, connection_id, token, "None", v3, sender, db, ex, confirmed)
        self._loop_thread = None  # no event loop here: every wake goes through the sender
        self.cid = cid
        self.ex = ex
        self.mgr = attach(db)
        self.sender = sender
        self._done_n = 0
        self._done_bytes = 0
        self._close_sent = False
        self.fatal_read = False  # the reader found a protocol error: later frames are dropped

    def wake(self) -> None:
        """(sender lock held, via call_soon_threadsafe) Emit what is durable, the in-flight credit, a close."""
        if self._close_sent:
            return
        recs = []
        limit = record_limit() - 16
        with self._lock:  # everything queued, with its offset: the gateway holds what is not yet durable
            self._scheduled = False
            items = list(self._out)
            self._out.clear()
        for body, off in items:
            if len(body) > limit:
                self.fatal = f"a server message of {len(body)} bytes is over the channel's record limit"
                break
            recs.append(record(self.cid, MSG, OFFSET.pack(-1 if off is None else off) + body))
            self._sent(len(body))
        with self._lock:
            n, b = self._done_n, self._done_bytes
            # The credit rides along with results; alone it goes out only past a quarter of the gateway's
            # in-flight limits (so the gateway never waits for it, and an idle batch costs no write).
            if n and (recs or self.fatal is not None or n >= LIMITS.ws_inflight_messages // 4
                      or b >= LIMITS.ws_inflight_bytes // 4):
                self._done_n = self._done_bytes = 0
            else:
                n = 0
            empty = not self._out
        if n:
            recs.append(record(self.cid, DONE, DONE_BODY.pack(n, b)))
        if self.fatal is not None and empty:
            self._close_sent = True
            recs.append(record(self.cid, CLOSE, struct.pack("<H", 1011) + self.fatal.encode("utf-8", "replace")))
        if recs:
            self.sender.send(*recs)

    def job_done(self, size: int) -> None:
        with self._lock:
            self._done_n += 1
            self._done_bytes += size
        self._schedule_wake()

    def _kick(self) -> None:
        self._close_sent = True
        self.sender.send(record(self.cid, KICK))

    def close_with(self, code: int, reason: str) -> None:
        """Ask the gateway to close this client (after what was sent before)."""
        self.sender.send(record(self.cid, CLOSE, struct.pack("<H", code) + reason.encode("utf-8", "replace")))


class _Frame:
    """Credit for one client frame: returned to the gateway once every message in it has run."""

    __slots__ = ("left", "size")

    def __init__(self, left: int, size: int) -> None:
        self.left = left
        self.size = size


def _run(conn: WorkerConnection, frame: _Frame, fn, args) -> None:
    """(executor thread, or the procedure pool) One client message; a protocol-level error closes (1011)."""
    try:
        if conn.fatal is None and not conn.closed:
            fn(conn, *args)
    except FatalClientError as e:
        conn.set_fatal(str(e))
    except Exception:  # noqa: BLE001 - a bug must not kill the executor thread
        log.exception("client message failed")
        conn.set_fatal("internal error")
    finally:
        with conn._lock:
            frame.left -= 1
            last = frame.left == 0
        if last:
            conn.job_done(frame.size)


class Worker:
    """The channel's read side: turns records into work on the databases' executors."""

    def __init__(self, registry: Any, sock: socket.socket) -> None:
        self.registry = registry
        self.sock = sock
        self.sender = _Sender(sock)
        self.conns: dict[int, WorkerConnection] = {}
        self._dbs: dict[int, Any] = {}  # channel key -> Database (a replaced database gets a new key)
        self._lock = threading.Lock()
        self.procedures = concurrent.futures.ThreadPoolExecutor(PROCEDURE_THREADS, thread_name_prefix="procedure")
        self.thread = threading.Thread(target=self._read, name="channel", daemon=True)
        self.closed = False
        registry.subscribe(self.on_registry_event)

    def start(self) -> None:
        self.thread.start()
        self.sender.send(record(0, READY))

    def _read(self) -> None:
        reader = RecordReader()
        try:
            while True:
                data = self.sock.recv(RECV_BYTES)
                if not data:
                    break
                for cid, kind, payload in reader.feed(data):
                    self._dispatch(cid, kind, payload)
        except (OSError, ChannelError) as e:
            log.error("channel broken: %s", e)
        self.close()
        os.kill(os.getpid(), signal.SIGTERM)  # the gateway is gone: shut the HTTP side down and exit

    def _dispatch(self, cid: int, kind: int, payload: bytes) -> None:
        if kind == MSG:
            conn = self.conns.get(cid)
            if conn is None or conn.fatal_read or conn.closed:
                return
            try:
                messages = decode_client_frame(payload, conn.v3)
            except ProtocolError as e:
                conn.fatal_read = True
                conn.ex.submit(conn.set_fatal, str(e))
                return
            frame = _Frame(len(messages), len(payload))
            if not messages:
                conn.ex.submit(conn.job_done, len(payload))
            for m in messages:
                fn, args, _size = _job(conn.mgr, m)
                if m.__class__ is CallProcedure:  # may sleep or wait on HTTP: not on the database's thread
                    self.procedures.submit(_run, conn, frame, fn, args)
                else:
                    conn.ex.submit(_run, conn, frame, fn, args)
        elif kind == OPEN:
            self._open(cid, payload)
        elif kind == CLOSE:
            with self._lock:
                conn = self.conns.get(cid)
            if conn is None:
                self.sender.send(record(cid, GONE))
                return
            conn.closed = True
            conn.ex.submit(self._disconnect, conn)
        else:
            log.error("unexpected channel record kind %d", kind)

    def _open(self, cid: int, payload: bytes) -> None:
        try:
            info = json.loads(payload)
            db = self.registry.lookup(info["db"]).database()
        except Exception as e:  # noqa: BLE001 - registry.RegistryError(status, body) and friends
            status = getattr(e, "status", None)
            body = getattr(e, "body", None)
            text = body if isinstance(body, str) else str(e)
            self.sender.send(record(cid, REJECT, json.dumps({"status": status if isinstance(status, int) else 500,
                                                             "text": text}).encode()))
            return
        key = self._db_key(db)
        conn = WorkerConnection(cid, self.sender, Identity.from_hex(info["identity"]),
                                ConnectionId.from_hex(info["connection_id"]), info["token"], bool(info["v3"]), db,
                                bool(info["confirmed"]))
        conn.db_key = key
        with self._lock:
            self.conns[cid] = conn
        conn.ex.submit(self._connect, conn)

    def _connect(self, conn: WorkerConnection) -> None:
        """(executor) client_connected: OPENED (InitialConnection follows, from the outbox) or REJECT."""
        try:
            rejected = conn.mgr.connect(conn)
        except Exception as e:  # noqa: BLE001
            log.exception("client_connected raised")
            rejected = str(e)
        if rejected is None:
            committer = getattr(conn.mgr.db, "committer", None)
            durable = committer.durable_offset if committer is not None else -1
            self.sender.send(record(conn.cid, OPENED, DURABLE_BODY.pack(conn.db_key, durable)))
            return
        conn.closed = True
        with self._lock:
            self.conns.pop(conn.cid, None)
        self.sender.send(record(conn.cid, REJECT, json.dumps({"status": None, "text": rejected}).encode()))

    def _db_key(self, db: Any) -> int:
        """The channel's key for ``db``; the first time, its durability thread starts sending DURABLE."""
        with self._lock:
            for key, d in self._dbs.items():
                if d is db:
                    return key
            key = len(self._dbs) + 1
            self._dbs[key] = db
        committer = getattr(db, "committer", None)
        if committer is not None:
            committer.add_listener(lambda offset: self.sender.send(record(0, DURABLE, DURABLE_BODY.pack(key, offset))))
        return key

    def _disconnect(self, conn: WorkerConnection) -> None:
        try:
            conn.mgr.disconnect(conn)
        except Exception:  # noqa: BLE001
            log.exception("disconnect cleanup failed")
        with self._lock:
            self.conns.pop(conn.cid, None)
        self.sender.send(record(conn.cid, GONE))

    def on_registry_event(self, event: str, entry: Any) -> None:
        """A deleted or replaced database closes its clients with 1001 ``module exited``."""
        if event not in ("deleted", "replaced"):
            return
        ident = getattr(entry, "identity", None)
        with self._lock:
            conns = list(self.conns.values())
        for conn in conns:
            if getattr(conn.mgr.db, "identity", None) == ident and conn.mgr.db is not getattr(entry, "db", None):
                conn.close_with(1001, "module exited")

    def close(self) -> None:
        """Disconnect every client and let each database's queued work finish (idempotent)."""
        if self.closed:
            return
        self.closed = True
        with self._lock:
            conns = list(self.conns.values())
        dbs = {}
        for conn in conns:
            conn.closed = True
            dbs[id(conn.mgr.db)] = conn.mgr.db
            try:
                conn.ex.submit(self._disconnect, conn)
            except RuntimeError:  # executor already stopped
                pass
        self.procedures.shutdown(wait=True, cancel_futures=True)
        for db in dbs.values():
            stop_executor(db)


def main(argv: list[str]) -> None:
    from aiohttp import web

    from .app import create_app
    from .http import REGISTRY_KEY

    data_dir, fd, http_sock, durability = Path(argv[0]), int(argv[1]), argv[2], argv[3]
    logging.basicConfig(level=os.environ.get("SPACETIME_PY_LOG_LEVEL", "WARNING"))
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    app = create_app(data_dir, durability=durability)
    worker = Worker(app[REGISTRY_KEY], sock)

    async def on_shutdown(app: web.Application) -> None:
        await asyncio.to_thread(worker.close)

    app.on_shutdown.insert(0, on_shutdown)

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=3, handle_signals=False)
        await runner.setup()
        await web.UnixSite(runner, http_sock).start()
        worker.start()  # READY only once the HTTP socket accepts connections
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()  # on_shutdown (disconnect clients) then on_cleanup (close the databases)

    asyncio.run(run())
    try:
        sock.close()
    except OSError:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["LIMITS", "Worker", "WorkerConnection", "main"]
