"""`DbConnection`: an asyncio client for one SpacetimeDB database over the v2/v3 BSATN WebSocket protocol.

    conn = await (DbConnection.builder()
                  .with_uri("http://127.0.0.1:3000").with_database_name("quickstart")
                  .with_token_file("~/.chat-token")          # read if present, written after a first anonymous connect
                  .on_connect(lambda conn, identity, token: ...)
                  .connect())                                # or .build(): connect in the background
    sub = await conn.subscription_builder().subscribe(["SELECT * FROM user"])
    event = await conn.call_reducer("set_name", "Alice")    # ReducerEvent; raises ReducerFailedError(msg)
    await conn.disconnect()

Every wait has a timeout (builder defaults, overridable per call): connecting (including the first server
message), each request (reducer call, subscribe, unsubscribe, one-off query, procedure), closing; a
WebSocket heartbeat notices a dead server. After a connection that had succeeded drops, the client
reconnects with exponential backoff (same token, so the same identity), re-sends its subscriptions and
turns the difference between the old and new rows into row callbacks. Reducer calls in flight when the
connection drops fail with ConnectionClosedError (whether they ran is unknown).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from spacetime_core import protocol as P
from spacetime_core.sats import ConnectionId, Identity, Timestamp

from .cache import ClientCache, RowEvent, TableDelta, TableHandle
from .errors import (
    ClientError,
    ConnectError,
    ConnectionClosedError,
    ProcedureError,
    QueryError,
    ReducerFailedError,
    ReducerInternalError,
    SubscriptionFailedError,
)
from .module import ModuleSpec
from .subscriptions import ACTIVE, ENDED, ENDING, PENDING, SubscriptionBuilder, SubscriptionHandle, _consume, _task

log = logging.getLogger("client_sdk")

COMPRESSIONS = {"none": "None", "gzip": "Gzip", "brotli": "Brotli"}


# ---------------------------------------------------------------------------------------------------- events

@dataclass
class ReducerEvent:
    """A reducer call this connection made, and how it ended."""

    reducer: str
    args: Any
    status: str  # "committed" | "failed" | "internal_error"
    message: str | None
    timestamp: Timestamp | None
    caller_identity: Identity | None
    caller_connection_id: ConnectionId | None
    request_id: int

    @property
    def committed(self) -> bool:
        return self.status == "committed"


@dataclass
class SubscribeAppliedEvent:
    subscription: SubscriptionHandle


@dataclass
class UnsubscribeAppliedEvent:
    subscription: SubscriptionHandle


@dataclass
class TransactionEvent:
    """Rows changed by a transaction this connection did not start (v2 does not say which reducer)."""


@dataclass
class ResyncEvent:
    """Rows that changed while the connection was down, found when the subscriptions were restored."""


@dataclass
class SubscriptionErrorEvent:
    error: Exception


class EventContext:
    """First argument of every callback: the connection, its tables and reducers, and what happened."""

    __slots__ = ("conn", "event")

    def __init__(self, conn: DbConnection, event: Any):
        self.conn = conn
        self.event = event

    @property
    def db(self) -> Any:
        return self.conn.db

    @property
    def reducers(self) -> Any:
        return self.conn.reducers

    @property
    def procedures(self) -> Any:
        return self.conn.procedures

    @property
    def identity(self) -> Identity | None:
        return self.conn.identity

    def __repr__(self) -> str:
        return f"EventContext({self.event!r})"


# ---------------------------------------------------------------------------------------------------- accessors

class RemoteTables:
    """`conn.db`: one TableHandle per table, by accessor name (generated bindings add typed attributes)."""

    def __init__(self, cache: ClientCache):
        self._cache = cache
        for t in cache.tables.values():
            setattr(self, t.spec.accessor or t.table_name, t)

    def __getattr__(self, name: str) -> TableHandle:
        try:
            return self._cache.table(name)
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __iter__(self):
        return iter(self._cache.tables.values())


class RemoteReducers:
    """`conn.reducers`: `conn.reducers.<name>(*args)` calls a reducer; `on_<name>(cb)` registers `cb(ctx, *args)`
    for this connection's calls of it (generated bindings add typed methods)."""

    def __init__(self, conn: DbConnection):
        self._conn = conn

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        conn = self._conn
        if name.startswith("on_") and name[3:] in conn._module.reducers:
            return lambda cb: conn.on_reducer(name[3:], cb)
        if name.startswith("remove_on_") and name[10:] in conn._module.reducers:
            return lambda cb: conn.remove_on_reducer(name[10:], cb)
        if name in conn._module.reducers:
            return lambda *args, timeout=None: conn.call_reducer(name, *args, timeout=timeout)
        raise AttributeError(conn._unknown("reducer", name))


class RemoteProcedures:
    """`conn.procedures.<name>(*args)`: call a procedure, the task's result is its decoded return value."""

    def __init__(self, conn: DbConnection):
        self._conn = conn

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._conn._module.procedures:
            raise AttributeError(self._conn._unknown("procedure", name))
        return lambda *args, timeout=None: self._conn.call_procedure(name, *args, timeout=timeout)


# ---------------------------------------------------------------------------------------------------- builder

@dataclass
class _Options:
    uri: str = "http://127.0.0.1:3000"
    database: str | None = None
    token: str | None = None
    token_file: Path | None = None
    compression: str = "Gzip"
    protocols: tuple[str, ...] = (P.V3_BSATN, P.V2_BSATN)
    confirmed: bool | None = None
    connect_timeout: float = 10.0
    request_timeout: float | None = 30.0
    close_timeout: float = 5.0
    heartbeat: float | None = 15.0
    reconnect: bool = True
    reconnect_initial: float = 0.5
    reconnect_max: float = 10.0
    reconnect_attempts: int | None = None  # None: forever
    max_msg_size: int = 64 << 20


class DbConnectionBuilder:
    """Fluent configuration; `build()` starts connecting in the background, `await connect()` waits for it."""

    def __init__(self, cls: type[DbConnection]):
        self._cls = cls
        self._o = _Options()
        self._module: ModuleSpec | None = None
        self._on_connect: list[Callable[..., Any]] = []
        self._on_disconnect: list[Callable[..., Any]] = []
        self._on_connect_error: list[Callable[..., Any]] = []
        self._on_reconnect: list[Callable[..., Any]] = []

    def with_uri(self, uri: str) -> DbConnectionBuilder:
        """Server address: http(s):// or ws(s)://, optionally with a path prefix."""
        self._o.uri = uri
        return self

    def with_database_name(self, name: str) -> DbConnectionBuilder:
        """Database name or identity (hex)."""
        self._o.database = name
        return self

    with_module_name = with_database_name

    def with_token(self, token: str | None) -> DbConnectionBuilder:
        """Credential (JWT) sent as `Authorization: Bearer`; None connects anonymously."""
        self._o.token = token or None
        return self

    def with_token_file(self, path: str | os.PathLike | None = None) -> DbConnectionBuilder:
        """Read the token from `path` if it exists; after an anonymous first connect, save the new one there.
        Default path: ~/.spacetime_py/tokens/<host>_<port>_<database>.jwt."""
        self._o.token_file = Path(path).expanduser() if path is not None else None
        self._default_token_file = path is None
        return self

    def with_token_env(self, var: str = "SPACETIMEDB_TOKEN") -> DbConnectionBuilder:
        """Use the token in environment variable `var`, if set."""
        tok = os.environ.get(var)
        if tok:
            self._o.token = tok.strip()
        return self

    def with_compression(self, compression: str) -> DbConnectionBuilder:
        """What the server may compress with: "gzip" (default), "none", or "brotli" (needs `brotli`)."""
        c = COMPRESSIONS.get(compression.lower())
        if c is None:
            raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, not {compression!r}")
        if c == "Brotli" and P._brotli is None:
            raise ValueError("brotli compression needs the `brotli` package")
        self._o.compression = c
        return self

    def with_protocol(self, version: str) -> DbConnectionBuilder:
        """"v2", "v3", or "auto" (offer v3 then v2; default)."""
        self._o.protocols = {"v2": (P.V2_BSATN,), "v3": (P.V3_BSATN,), "auto": (P.V3_BSATN, P.V2_BSATN)}[version]
        return self

    def with_confirmed_reads(self, confirmed: bool) -> DbConnectionBuilder:
        self._o.confirmed = confirmed
        return self

    def with_timeouts(self, *, connect: float | None = None, request: float | None = -1.0,
                      close: float | None = None, heartbeat: float | None = -1.0) -> DbConnectionBuilder:
        """Seconds. `connect`: until the first server message; `request`: default for each call (None: wait
        forever); `close`: clean close; `heartbeat`: ping interval, a missing pong closes (None: off)."""
        if connect is not None:
            self._o.connect_timeout = connect
        if request is None or request >= 0:
            self._o.request_timeout = request
        if close is not None:
            self._o.close_timeout = close
        if heartbeat is None or heartbeat >= 0:
            self._o.heartbeat = heartbeat
        return self

    def with_reconnect(self, enabled: bool = True, *, initial_delay: float = 0.5, max_delay: float = 10.0,
                       max_attempts: int | None = None) -> DbConnectionBuilder:
        """Reconnect after a drop of an established connection (not after a failed first connect)."""
        o = self._o
        o.reconnect, o.reconnect_initial, o.reconnect_max, o.reconnect_attempts = (
            enabled, initial_delay, max_delay, max_attempts)
        return self

    def with_module(self, module: ModuleSpec | Any) -> DbConnectionBuilder:
        """The module's tables/reducers (a ModuleSpec, or a ModuleDef); generated bindings set this."""
        self._module = module if isinstance(module, ModuleSpec) else ModuleSpec.from_module_def(module)
        return self

    def on_connect(self, cb: Callable[[Any, Identity, str], Any]) -> DbConnectionBuilder:
        """`cb(conn, identity, token)` after the first InitialConnection."""
        self._on_connect.append(cb)
        return self

    def on_disconnect(self, cb: Callable[[Any, Exception | None], Any]) -> DbConnectionBuilder:
        """`cb(conn, error)` whenever an established connection ends (error None for `disconnect()`)."""
        self._on_disconnect.append(cb)
        return self

    def on_connect_error(self, cb: Callable[[Any, Exception], Any]) -> DbConnectionBuilder:
        """`cb(conn, error)` if the first connect fails (or reconnecting gives up)."""
        self._on_connect_error.append(cb)
        return self

    def on_reconnect(self, cb: Callable[[Any, Identity], Any]) -> DbConnectionBuilder:
        """`cb(conn, identity)` after a reconnect (before the subscriptions are restored)."""
        self._on_reconnect.append(cb)
        return self

    def _resolve(self) -> _Options:
        o = self._o
        if not o.database:
            raise ValueError("with_database_name(...) is required")
        if getattr(self, "_default_token_file", False):
            from yarl import URL

            u = URL(o.uri)
            o.token_file = Path.home() / ".spacetime_py" / "tokens" / f"{u.host}_{u.port}_{o.database}.jwt"
        if o.token is None and o.token_file is not None and o.token_file.is_file():
            o.token = o.token_file.read_text().strip() or None
        return o

    def build(self) -> DbConnection:
        """The connection, connecting in the background (call inside a running event loop)."""
        conn = self._cls(self._resolve(), self._module, self)
        conn._start()
        return conn

    async def connect(self) -> DbConnection:
        """Connect and wait for the server's InitialConnection; raises ConnectError / TimeoutError."""
        conn = self.build()
        await conn.wait_connected()
        return conn


# ---------------------------------------------------------------------------------------------------- connection

class DbConnection:
    """A connection to one database. Create it with `DbConnection.builder()`."""

    MODULE: ClassVar[ModuleSpec | None] = None  # set by generated bindings
    TABLE_HANDLES: ClassVar[dict[str, type[TableHandle]]] = {}
    REMOTE_TABLES: ClassVar[type] = RemoteTables
    REMOTE_REDUCERS: ClassVar[type] = RemoteReducers
    REMOTE_PROCEDURES: ClassVar[type] = RemoteProcedures

    @classmethod
    def builder(cls) -> DbConnectionBuilder:
        return DbConnectionBuilder(cls)

    def __init__(self, options: _Options, module: ModuleSpec | None, builder: DbConnectionBuilder):
        self._o = options
        self._module = module or self.MODULE or ModuleSpec()
        self.cache = ClientCache(self._module, self.TABLE_HANDLES)
        self.db = self.REMOTE_TABLES(self.cache)
        self.reducers = self.REMOTE_REDUCERS(self)
        self.procedures = self.REMOTE_PROCEDURES(self)
        self.identity: Identity | None = None
        self.connection_id: ConnectionId | None = None
        self.token: str | None = options.token
        self.protocol: str | None = None
        self._cb_connect = list(builder._on_connect)
        self._cb_disconnect = list(builder._on_disconnect)
        self._cb_connect_error = list(builder._on_connect_error)
        self._cb_reconnect = list(builder._on_reconnect)
        self._reducer_cbs: dict[str, list[Callable[..., Any]]] = {}
        self._next_request = 0
        self._next_query_set = 0
        self._pending: dict[int, tuple[str, asyncio.Future, Any]] = {}
        self._subs: dict[int, SubscriptionHandle] = {}
        self._ws: Any = None
        self._session: Any = None
        self._v3 = False
        self._closing = False
        self._task: asyncio.Task | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._open = asyncio.Event()  # set while a session is established (InitialConnection seen)
        self._first: asyncio.Future[DbConnection] = loop.create_future()
        self._first.add_done_callback(_consume)
        self._done: asyncio.Future[None] = loop.create_future()
        self._done.add_done_callback(_consume)
        self._connects = 0
        self._stop = asyncio.Event()
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future]] = []

    def __repr__(self) -> str:
        state = "open" if self.is_active else ("closed" if self._done.done() else "connecting")
        return f"<{type(self).__name__} {self._o.uri} {self._o.database} {state}>"

    # ------------------------------------------------------------------ public API
    @property
    def is_active(self) -> bool:
        return self._open.is_set()

    def _timeout(self, t: float | None) -> float | None:
        return self._o.request_timeout if t is None else t

    async def wait_connected(self, timeout: float | None = None) -> DbConnection:
        """Wait for the first successful connect (raises its ConnectError / TimeoutError)."""
        t = timeout if timeout is not None else self._o.connect_timeout + 1.0
        async with asyncio.timeout(t):
            return await asyncio.shield(self._first)

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the connection has ended for good (disconnect(), or reconnecting gave up)."""
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._done)

    async def until(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Wait until `predicate()` is truthy and return its value: checked now and again after every message this
        connection applies (so after the cache changed and the row callbacks ran), e.g.
        `await conn.until(lambda: conn.db.message.count() == 2)`. Raises TimeoutError after `timeout` seconds
        (default: the request timeout); an exception from `predicate` is raised here."""
        value = predicate()
        if value:
            return value
        fut: asyncio.Future = self._loop.create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        t = self._timeout(timeout)
        try:
            async with asyncio.timeout(t):
                return await fut
        except TimeoutError:
            raise TimeoutError(f"condition not met within {t} s ({predicate!r})") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _check_waiters(self) -> None:
        for predicate, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                value = predicate()
            except Exception as e:  # noqa: BLE001 - handed to the waiting caller
                fut.set_exception(e)
                continue
            if value:
                fut.set_result(value)

    async def disconnect(self, timeout: float | None = None) -> None:
        """Close cleanly and stop reconnecting. Pending calls fail with ConnectionClosedError."""
        self._closing = True
        self._stop.set()
        t = timeout if timeout is not None else self._o.close_timeout
        ws = self._ws
        try:
            if ws is not None and not ws.closed:
                async with asyncio.timeout(t):
                    await ws.close()
        except (TimeoutError, OSError) as e:
            log.debug("close: %s", e)
        task = self._task
        if task is not None and not task.done():
            try:
                async with asyncio.timeout(t):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
        await self._close_session()
        self._finish(None)

    def subscription_builder(self) -> SubscriptionBuilder:
        return SubscriptionBuilder(self)

    def on_reducer(self, reducer: str, cb: Callable[..., Any]) -> Callable[..., Any]:
        """`cb(ctx, *args)` after each call of `reducer` made by this connection ends (ctx.event.status)."""
        self._reducer_cbs.setdefault(reducer, []).append(cb)
        return cb

    def remove_on_reducer(self, reducer: str, cb: Callable[..., Any]) -> None:
        self._reducer_cbs.get(reducer, []).remove(cb)

    def call_reducer(self, reducer: str, *args: Any, timeout: float | None = None) -> asyncio.Task[ReducerEvent]:
        """Call `reducer` with its arguments (positional, in parameter order) and return a task: its result is
        the committed ReducerEvent; it raises ReducerFailedError (the module's error message),
        ReducerInternalError, ConnectionClosedError or TimeoutError."""
        spec = self._module.reducers.get(reducer)
        if spec is None:
            raise ClientError(self._unknown("reducer", reducer))
        if len(args) == 1 and spec.params.cls is not None and isinstance(args[0], spec.params.cls):
            value = args[0]
        else:
            if len(args) != len(spec.params.elements):
                names = ", ".join(n or "?" for n, _ in spec.params.elements)
                raise TypeError(f"reducer {reducer}({names}) takes {len(spec.params.elements)} arguments, "
                                f"got {len(args)}")
            value = tuple(args)
        data = spec.encode_args(value)
        return self.call_reducer_raw(reducer, data, timeout=timeout, _value=value)

    def _unknown(self, kind: str, name: str) -> str:
        """Why `name` cannot be called as a `kind`: it is the other kind (say which call to use), or a near miss."""
        import difflib

        other = "procedure" if kind == "reducer" else "reducer"
        m = self._module
        if not (m.reducers or m.procedures or m.tables):
            return (f"cannot call {kind} {name!r}: this connection has no module bindings; connect with the "
                    "generated bindings (spacetime-py generate) or builder.with_module(module_def)")
        if name in (self._module.procedures if kind == "reducer" else self._module.reducers):
            return (f"{name!r} is a {other}, not a {kind}: call it with call_{other}({name!r}, ...) "
                    f"(conn.{other}s.{name}(...))")
        known = sorted(self._module.reducers if kind == "reducer" else self._module.procedures)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = ("did you mean " + " or ".join(repr(c) for c in close) + "?" if close
                else f"it has: {', '.join(known)}" if known else f"it has no {kind}s")
        return f"no {kind} {name!r} in this module's bindings; {hint}"

    def call_reducer_raw(self, reducer: str, args: bytes, *, timeout: float | None = None,
                         _value: Any = None) -> asyncio.Task[ReducerEvent]:
        """Call `reducer` with already-encoded BSATN arguments (see `call_reducer`)."""
        msg = P.CallReducer(request_id=0, flags=0, reducer=reducer, args=bytes(args))
        return _task(self._request("reducer", msg, timeout, (reducer, _value if _value is not None else bytes(args))))

    def call_procedure(self, procedure: str, *args: Any, timeout: float | None = None) -> asyncio.Task[Any]:
        """Call a procedure; the task's result is its decoded return value (ProcedureError on failure)."""
        spec = self._module.procedures.get(procedure)
        if spec is None:
            raise ClientError(self._unknown("procedure", procedure))
        data = spec.encode_args(tuple(args))
        msg = P.CallProcedure(request_id=0, flags=0, procedure=procedure, args=data)
        return _task(self._request("procedure", msg, timeout, spec))

    def call_procedure_raw(self, procedure: str, args: bytes, *, timeout: float | None = None) -> asyncio.Task[bytes]:
        msg = P.CallProcedure(request_id=0, flags=0, procedure=procedure, args=bytes(args))
        return _task(self._request("procedure", msg, timeout, None))

    def one_off_query(self, sql: str, *, timeout: float | None = None) -> asyncio.Task[dict[str, list[Any]]]:
        """Run one subscription-dialect SELECT once; result: {table name: [rows]} (rows decoded when the
        bindings know the table, else raw bytes). Raises QueryError with the server's message."""
        return _task(self._request("query", P.OneOffQuery(request_id=0, query_string=sql), timeout, None))

    # ------------------------------------------------------------------ requests
    def _request_id(self) -> int:
        rid = self._next_request
        self._next_request = (rid + 1) & 0xFFFFFFFF
        return rid

    async def _wait_open(self, timeout: float | None) -> None:
        if self._open.is_set():
            return
        if self._done.done():
            raise ConnectionClosedError("the connection is closed")
        waiter = asyncio.ensure_future(self._open.wait())
        try:
            async with asyncio.timeout(timeout):
                done, _ = await asyncio.wait({waiter, self._done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._open.is_set():
            raise ConnectionClosedError("the connection is closed")

    async def _request(self, kind: str, msg: Any, timeout: float | None, extra: Any) -> Any:
        t = self._timeout(timeout)
        async with asyncio.timeout(t):
            await self._wait_open(t)
            rid = self._request_id()
            msg.request_id = rid
            fut = self._loop.create_future()
            self._pending[rid] = (kind, fut, extra)
            try:
                await self._send(msg)
                return await fut
            finally:
                self._pending.pop(rid, None)

    async def _send(self, msg: Any) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionClosedError("the connection is not open")
        await ws.send_bytes(P.encode_client(msg))

    def _subscribe(self, queries: list[str], on_applied: list, on_error: list) -> SubscriptionHandle:
        qsid = self._next_query_set
        while qsid in self._subs:
            qsid = (qsid + 1) & 0xFFFFFFFF
        self._next_query_set = (qsid + 1) & 0xFFFFFFFF
        h = SubscriptionHandle(self, qsid, queries, list(on_applied), list(on_error))
        self._subs[qsid] = h
        if self._open.is_set():
            _task(self._send_subscribe(h))
        elif self._done.done():
            h._set_failed(ConnectionClosedError("the connection is closed"))
            del self._subs[qsid]
        return h

    async def _send_subscribe(self, h: SubscriptionHandle) -> None:
        try:
            await self._send(P.Subscribe(request_id=self._request_id(), query_set_id=h.query_set_id,
                                         query_strings=h.queries))
        except (ConnectionClosedError, OSError) as e:
            log.debug("subscribe %d not sent (%s); it is re-sent on reconnect", h.query_set_id, e)

    async def _unsubscribe(self, h: SubscriptionHandle, timeout: float | None) -> SubscriptionHandle:
        if h.state == ENDED:
            return h
        if h.state == PENDING and not h.resyncing:
            await h.applied(timeout)
        if h.state == ENDED:
            return h
        h.state = ENDING
        if not self._open.is_set():  # nothing to tell the server: it forgot the set when the socket closed
            self._end_subscription(h, [])
            return h
        await self._send(P.Unsubscribe(request_id=self._request_id(), query_set_id=h.query_set_id,
                                       flags=P.UnsubscribeFlags.SendDroppedRows))
        return await h.ended(timeout)

    # ------------------------------------------------------------------ connection loop
    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(_consume)

    def _ws_url(self) -> Any:
        from yarl import URL

        u = URL(self._o.uri)
        scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(u.scheme)
        if scheme is None:
            raise ConnectError(f"unsupported URI scheme {u.scheme!r} (use http, https, ws or wss)")
        path = u.path.rstrip("/") + f"/v1/database/{self._o.database}/subscribe"
        query = {"compression": self._o.compression}
        if self._o.confirmed is not None:
            query["confirmed"] = "true" if self._o.confirmed else "false"
        return u.with_scheme(scheme).with_path(path).with_query(query)

    async def _open_ws(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        o = self._o
        try:
            async with asyncio.timeout(o.connect_timeout):
                ws = await self._session.ws_connect(
                    self._ws_url(), protocols=o.protocols, headers=headers, heartbeat=o.heartbeat,
                    autoping=True, max_msg_size=o.max_msg_size,
                    timeout=aiohttp.ClientWSTimeout(ws_close=o.close_timeout))
                try:
                    self.protocol = ws.protocol or P.V2_BSATN
                    if self.protocol not in (P.V2_BSATN, P.V3_BSATN):
                        log.warning("server chose subprotocol %r; speaking v2", self.protocol)
                        self.protocol = P.V2_BSATN
                    self._v3 = self.protocol == P.V3_BSATN
                    first = await ws.receive()
                    msgs = self._decode(first, ws)
                except BaseException:
                    await ws.close()
                    raise
        except TimeoutError:
            raise TimeoutError(f"no answer from {o.uri} for database {o.database!r} within {o.connect_timeout} s")\
                from None
        except aiohttp.WSServerHandshakeError as e:
            raise ConnectError(_handshake_message(e, o), e.status) from None
        except aiohttp.ClientError as e:
            raise ConnectError(f"cannot connect to {o.uri}: {e}") from None
        except OSError as e:
            raise ConnectError(f"cannot connect to {o.uri}: {e}") from None
        if not msgs or not isinstance(msgs[0], P.InitialConnection):
            await ws.close()
            raise ConnectError(f"the server's first message was not InitialConnection: {msgs[:1]!r}")
        return ws, msgs

    def _decode(self, msg: Any, ws: Any) -> list[Any]:
        import aiohttp

        if msg.type == aiohttp.WSMsgType.BINARY:
            return P.decode_server_frame(msg.data, self._v3)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            code = ws.close_code
            raise ConnectionClosedError(f"the server closed the connection (code {code}"
                                        f"{', ' + str(msg.extra) if msg.extra else ''})")
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise ConnectionClosedError(f"WebSocket error: {ws.exception() or msg.data}")
        raise P.ProtocolError(f"unexpected {msg.type.name} WebSocket message")

    async def _run(self) -> None:
        o = self._o
        attempt = 0
        delay = o.reconnect_initial
        error: Exception | None = None
        while not self._closing:
            try:
                ws, msgs = await self._open_ws()
            except (ConnectError, TimeoutError, ConnectionClosedError, P.ProtocolError) as e:
                error = e
                if self._connects == 0 or not o.reconnect or (
                        o.reconnect_attempts is not None and attempt >= o.reconnect_attempts):
                    self._fire(self._cb_connect_error, self, e)
                    break
                attempt += 1
                log.info("reconnect attempt %d failed: %s", attempt, e)
                await self._sleep(delay)
                delay = min(delay * 2, o.reconnect_max)
                continue
            if self._closing:
                await ws.close()
                break
            attempt = 0
            delay = o.reconnect_initial
            self._ws = ws
            error = None
            try:
                for m in msgs:
                    self._dispatch(m)
                while True:
                    raw = await ws.receive()
                    for m in self._decode(raw, ws):
                        self._dispatch(m)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure ends this session
                error = e if not self._closing else None
                if isinstance(e, P.ProtocolError):
                    log.error("closing the connection: %s", e)
            finally:
                self._open.clear()
                if not ws.closed:
                    try:
                        async with asyncio.timeout(o.close_timeout):
                            await ws.close()
                    except (TimeoutError, OSError):
                        pass
                self._ws = None
                self._fail_pending(error)
            self._fire(self._cb_disconnect, self, error)
            if self._closing or not o.reconnect:
                break
            self._prepare_resync()
            await self._sleep(delay * random.uniform(0.5, 1.0))
        await self._close_session()
        self._finish(error)

    async def _sleep(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            pass

    def _finish(self, error: Exception | None) -> None:
        self._closing = True
        self._open.clear()
        if not self._first.done():
            self._first.set_exception(error or ConnectionClosedError("disconnected before connecting"))
        for h in list(self._subs.values()):
            if h.state != ENDED:
                h._set_failed(ConnectionClosedError("the connection is closed"))
        self._subs.clear()
        self._fail_pending(error)
        if not self._done.done():
            self._done.set_result(None)
        if self._session is not None and not self._session.closed:
            asyncio.ensure_future(self._session.close())

    async def _close_session(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _fail_pending(self, error: Exception | None) -> None:
        pending, self._pending = self._pending, {}
        for _, fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError(
                    f"the connection closed before the answer arrived{': ' + str(error) if error else ''}"))

    def _prepare_resync(self) -> None:
        """Before reconnecting: the next session starts without subscriptions; re-send every live one."""
        self.cache.begin_resync()
        for h in list(self._subs.values()):
            if h.state == ENDING:
                self._end_subscription(h, [])
            else:
                h.resyncing = h.state == ACTIVE
        self._subs = {q: h for q, h in self._subs.items() if h.state != ENDED}

    # ------------------------------------------------------------------ dispatch
    def _fire(self, cbs: Iterable[Callable[..., Any]], *args: Any) -> None:
        for cb in list(cbs):
            try:
                cb(*args)
            except Exception:
                log.exception("callback %r raised", cb)

    def _apply(self, deltas: list[TableDelta], event: Any) -> list[RowEvent]:
        return self.cache.apply(deltas)

    def _dispatch(self, msg: Any) -> None:
        handler = getattr(self, f"_on_{type(msg).__name__}", None)
        if handler is None:
            log.warning("unhandled server message %s", type(msg).__name__)
            return
        handler(msg)
        if self._waiters:
            self._check_waiters()

    def _on_InitialConnection(self, msg: P.InitialConnection) -> None:
        self.identity = msg.identity
        self.connection_id = msg.connection_id
        if not self.token:
            self.token = msg.token
            self._save_token(msg.token)
        self._connects += 1
        self._open.set()
        if self._connects == 1:
            if not self._first.done():
                self._first.set_result(self)
            self._fire(self._cb_connect, self, msg.identity, self.token)
        else:
            self._fire(self._cb_reconnect, self, msg.identity)
        live = [h for h in self._subs.values() if h.state in (PENDING, ACTIVE)]
        for h in live:
            _task(self._send_subscribe(h))
        self._maybe_end_resync()

    def _save_token(self, token: str) -> None:
        path = self._o.token_file
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("could not save the token to %s: %s", path, e)

    def _maybe_end_resync(self) -> None:
        if self.cache.resyncing and not any(h.resyncing for h in self._subs.values()):
            events = self.cache.end_resync()
            self.cache.fire(events, EventContext(self, ResyncEvent()))

    def _on_SubscribeApplied(self, msg: P.SubscribeApplied) -> None:
        h = self._subs.get(msg.query_set_id)
        if h is None:
            log.warning("SubscribeApplied for unknown query set %d", msg.query_set_id)
            return
        deltas = [TableDelta(t.table, t.rows.rows()) for t in msg.rows.tables]
        ctx = EventContext(self, SubscribeAppliedEvent(h))
        events = self.cache.apply(deltas)
        self.cache.fire(events, ctx)
        if h.resyncing:
            h.resyncing = False
            h.state = ACTIVE if h.state == PENDING else h.state
            self._maybe_end_resync()
            return
        h._set_applied()
        self._fire(h._on_applied, ctx)

    def _end_subscription(self, h: SubscriptionHandle, deltas: list[TableDelta]) -> None:
        ctx = EventContext(self, UnsubscribeAppliedEvent(h))
        self.cache.fire(self.cache.apply(deltas), ctx)
        self._subs.pop(h.query_set_id, None)
        h._set_ended()
        self._fire(h._on_end, ctx)

    def _on_UnsubscribeApplied(self, msg: P.UnsubscribeApplied) -> None:
        h = self._subs.get(msg.query_set_id)
        if h is None:
            log.warning("UnsubscribeApplied for unknown query set %d", msg.query_set_id)
            return
        rows = msg.rows
        deltas = [TableDelta(t.table, [], t.rows.rows()) for t in rows.tables] if rows is not None else []
        if rows is None:
            log.warning("UnsubscribeApplied without rows for set %d; cached rows may linger", msg.query_set_id)
        self._end_subscription(h, deltas)

    def _on_SubscriptionError(self, msg: P.SubscriptionError) -> None:
        h = self._subs.pop(msg.query_set_id, None)
        err = SubscriptionFailedError(msg.error)
        if h is None:
            log.warning("subscription error for unknown query set %d: %s", msg.query_set_id, msg.error)
            return
        was_live = h.state in (ACTIVE, ENDING) or h.resyncing
        h.resyncing = False
        h._set_failed(err)
        self._fire(h._on_error, EventContext(self, SubscriptionErrorEvent(err)), err)
        if msg.request_id is None and was_live:
            # The server dropped a set whose rows are in the cache; rebuild the cache from the remaining sets
            # (as the TypeScript SDK does, by closing the connection; with reconnect on, sets are restored).
            log.warning("query set %d failed after it was applied (%s); reconnecting to resynchronise",
                        msg.query_set_id, msg.error)
            raise ConnectionClosedError(f"subscription {msg.query_set_id} failed: {msg.error}")
        self._maybe_end_resync()

    def _tx_deltas(self, tx: P.TransactionUpdate) -> list[TableDelta]:
        out = []
        for qs in tx.query_sets:
            for tu in qs.tables:
                for rows in tu.rows:
                    if rows.tag == "PersistentTable":
                        out.append(TableDelta(tu.table_name, rows.value.inserts.rows(), rows.value.deletes.rows()))
                    else:
                        out.append(TableDelta(tu.table_name, rows.value.events.rows(), [], True))
        return out

    def _on_TransactionUpdate(self, msg: P.TransactionUpdate) -> None:
        events = self.cache.apply(self._tx_deltas(msg))
        self.cache.fire(events, EventContext(self, TransactionEvent()))

    def _on_ReducerResult(self, msg: P.ReducerResult) -> None:
        p = self._pending.get(msg.request_id)
        if p is None or p[0] != "reducer":
            log.warning("ReducerResult for unknown request %d", msg.request_id)
            return
        _, fut, (name, args) = p
        outcome = msg.result
        status, message, deltas = "committed", None, []
        if outcome.tag == "Ok":
            deltas = self._tx_deltas(outcome.value.transaction_update)
        elif outcome.tag == "Err":
            status, message = "failed", P.decode_reducer_error(outcome.value)
        elif outcome.tag == "InternalError":
            status, message = "internal_error", outcome.value
        ev = ReducerEvent(name, args, status, message, msg.timestamp, self.identity, self.connection_id,
                          msg.request_id)
        ctx = EventContext(self, ev)
        self.cache.fire(self.cache.apply(deltas), ctx)
        fields = getattr(type(args), "__sats_fields__", None)
        cb_args = tuple(args) if isinstance(args, tuple) else (
            tuple(getattr(args, f) for f in fields) if fields is not None else (args,))
        self._fire(self._reducer_cbs.get(name, ()), ctx, *cb_args)
        if fut.done():
            return
        if status == "committed":
            fut.set_result(ev)
        elif status == "failed":
            fut.set_exception(ReducerFailedError(message or "", ev))
        else:
            fut.set_exception(ReducerInternalError(message or "", ev))

    def _on_OneOffQueryResult(self, msg: P.OneOffQueryResult) -> None:
        p = self._pending.get(msg.request_id)
        if p is None or p[1].done():
            return
        res = msg.result
        if res.is_err():
            p[1].set_exception(QueryError(res.value))
            return
        out: dict[str, list[Any]] = {}
        for t in res.value.tables:
            spec = self._module.tables.get(t.table)
            raw = t.rows.rows()
            out.setdefault(t.table, []).extend([spec.decode_row(r) for r in raw] if spec else raw)
        p[1].set_result(out)

    def _on_ProcedureResult(self, msg: P.ProcedureResult) -> None:
        p = self._pending.get(msg.request_id)
        if p is None or p[1].done():
            return
        _, fut, spec = p
        if msg.status.tag == "InternalError":
            fut.set_exception(ProcedureError(msg.status.value))
            return
        data = msg.status.value
        try:
            fut.set_result(spec.decode_return(data) if spec is not None else data)
        except Exception as e:  # noqa: BLE001
            fut.set_exception(ProcedureError(f"cannot decode the procedure's return value: {e}"))


def _handshake_message(e: Any, o: _Options) -> str:
    status = e.status
    what = {401: "the token was refused", 403: "not allowed", 404: f"database {o.database!r} not found",
            400: "bad request"}.get(status, "handshake failed")
    return f"cannot connect to {o.uri}/v1/database/{o.database}/subscribe: {status} {what} ({e.message})"


__all__ = [
    "DbConnection", "DbConnectionBuilder", "EventContext", "ReducerEvent", "RemoteProcedures", "RemoteReducers",
    "RemoteTables", "ResyncEvent", "SubscribeAppliedEvent", "SubscriptionErrorEvent", "TransactionEvent",
    "UnsubscribeAppliedEvent",
]
