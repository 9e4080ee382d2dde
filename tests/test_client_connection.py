"""DbConnection against a scripted in-process WebSocket server speaking v2/v3 (spacetime_core.protocol frames, plus
the exact bytes of client-protocol.md §11), and against dead servers (timeouts)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from client_sdk.connection import DbConnection, ReducerEvent, TransactionEvent
from client_sdk.errors import (
    ConnectError,
    ConnectionClosedError,
    QueryError,
    ReducerFailedError,
    ReducerInternalError,
    SubscriptionFailedError,
)
from client_sdk.module import IndexSpec, ModuleSpec, ReducerSpec, TableSpec
from spacetime_core import protocol as P
from spacetime_core.sats import ConnectionId, Identity, ProductType, Timestamp, encode, product, u32
from spacetime_core.sats.types import STRING


@product
class Person:
    id: u32
    name: str


PT = Person.__sats_type__
IDENT = Identity.from_bytes(bytes(range(32)))
CONN_ID = ConnectionId.from_bytes(bytes(range(16)))
TS = Timestamp(1767225600000000)
SPEC = ModuleSpec.of([TableSpec("person", PT, primary_key=0, indexes=(IndexSpec("id", (0,), True),))],
                     [ReducerSpec("add", ProductType([("name", STRING)])),
                      ReducerSpec("rename", ProductType([("id", u32.__sats_type__), ("name", STRING)]))])


def row(id: int, name: str) -> bytes:
    return encode(PT, Person(id, name))


def run(coro: Any, timeout: float = 30) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(main())


class FakeServer:
    """A minimal v2/v3 database `person(id u32 pk, name)` with reducers `add(name)` / `rename(id, name)`."""

    def __init__(self, protocols: tuple[str, ...] = (P.V2_BSATN,), send_initial: bool = True,
                 compression_threshold: bool = True):
        self.protocols = protocols
        self.send_initial = send_initial
        self.rows: dict[int, bytes] = {}
        self.sockets: list[web.WebSocketResponse] = []
        self.requests: list[web.Request] = []
        self.received: list[Any] = []
        self.subs: dict[int, dict[int, list[str]]] = {}  # socket index -> query set -> queries
        self.token = "minted-token"
        self.port = 0
        self.on_message: Callable[[web.WebSocketResponse, Any], Any] | None = None
        self.runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> FakeServer:
        app = web.Application()
        app.router.add_get("/v1/database/{name}/subscribe", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        await self.runner.cleanup()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def send(self, ws: web.WebSocketResponse, *msgs: Any, compression: str = "None") -> None:
        await ws.send_bytes(P.server_frame(list(msgs), compression))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if request.match_info["name"] != "db":
            raise web.HTTPNotFound(text="`nope` not found")
        ws = web.WebSocketResponse(protocols=self.protocols)
        await ws.prepare(request)
        self.requests.append(request)
        self.sockets.append(ws)
        me = len(self.sockets) - 1
        self.subs[me] = {}
        v3 = ws.ws_protocol == P.V3_BSATN
        compression = request.query.get("compression", "Brotli")
        if self.send_initial:
            await self.send(ws, P.InitialConnection(IDENT, CONN_ID, self.token))
        async for m in ws:
            for msg in P.decode_client_frame(m.data, v3):
                self.received.append(msg)
                if self.on_message and await self.on_message(ws, msg):
                    continue
                await self.default(ws, me, msg, compression)
        return ws

    def query_rows(self, queries: list[str]) -> P.QueryRows:
        return P.QueryRows([P.SingleTableRows("person", P.row_list(list(self.rows.values()))) for _ in queries])

    async def default(self, ws: web.WebSocketResponse, me: int, msg: Any, compression: str) -> None:
        if isinstance(msg, P.Subscribe):
            if any("nope" in q for q in msg.query_strings):
                await self.send(ws, P.SubscriptionError(msg.request_id, msg.query_set_id, "no such table: `nope`"))
                return
            self.subs[me][msg.query_set_id] = msg.query_strings
            await self.send(ws, P.SubscribeApplied(msg.request_id, msg.query_set_id,
                                                   self.query_rows(msg.query_strings)), compression=compression)
        elif isinstance(msg, P.Unsubscribe):
            qs = self.subs[me].pop(msg.query_set_id)
            await self.send(ws, P.UnsubscribeApplied(msg.request_id, msg.query_set_id, self.query_rows(qs)))
        elif isinstance(msg, P.CallReducer):
            await self.call(ws, me, msg)
        elif isinstance(msg, P.OneOffQuery):
            if "nope" in msg.query_string:
                from spacetime_core.sats import Err
                await self.send(ws, P.OneOffQueryResult(msg.request_id, Err("no such table: `nope`")))
            else:
                from spacetime_core.sats import Ok
                await self.send(ws, P.OneOffQueryResult(msg.request_id, Ok(self.query_rows([msg.query_string]))))

    def update_for(self, me: int, inserts: list[bytes], deletes: list[bytes]) -> P.TransactionUpdate:
        return P.TransactionUpdate([
            P.QuerySetUpdate(q, [P.TableUpdate("person", [P.TableUpdateRows.PersistentTable(
                P.PersistentTableRows(P.row_list(inserts), P.row_list(deletes)))])])
            for q, queries in self.subs[me].items() for _ in queries])

    async def call(self, ws: web.WebSocketResponse, me: int, msg: P.CallReducer) -> None:
        from spacetime_core.sats import decode
        inserts: list[bytes] = []
        deletes: list[bytes] = []
        if msg.reducer == "add":
            name = decode(STRING, msg.args)
            if not name:
                out = P.ReducerOutcome.Err(P.reducer_error_bytes("Names must not be empty"))
                await self.send(ws, P.ReducerResult(msg.request_id, TS, out))
                return
            new_id = max(self.rows, default=0) + 1
            self.rows[new_id] = row(new_id, name)
            inserts.append(self.rows[new_id])
        elif msg.reducer == "rename":
            rid, name = decode(ProductType([("id", u32.__sats_type__), ("name", STRING)]), msg.args)
            deletes.append(self.rows[rid])
            self.rows[rid] = row(rid, name)
            inserts.append(self.rows[rid])
        else:
            await self.send(ws, P.ReducerResult(msg.request_id, TS, P.ReducerOutcome.InternalError("no such reducer")))
            return
        ok = P.ReducerOk(b"", self.update_for(me, inserts, deletes))
        await self.send(ws, P.ReducerResult(msg.request_id, TS, P.ReducerOutcome.Ok(ok)))
        for other, ows in enumerate(self.sockets):
            if other != me and not ows.closed and self.subs.get(other):
                await self.send(ows, self.update_for(other, inserts, deletes))


def builder(server: FakeServer, **timeouts: Any):
    return (DbConnection.builder().with_uri(server.uri).with_database_name("db").with_module(SPEC)
            .with_timeouts(**({"connect": 3, "request": 3} | timeouts)))


async def with_server(fn: Callable[[FakeServer], Any], **kw: Any) -> Any:
    server = await FakeServer(**kw).start()
    try:
        return await fn(server)
    finally:
        await server.stop()


# ---------------------------------------------------------------------------------------------------------

def test_connect_subscribe_call_and_token_persisted(tmp_path):
    token_file = tmp_path / "sub" / "token.jwt"

    async def body(server: FakeServer) -> None:
        server.rows[1] = row(1, "Alice")
        connected: list = []
        conn = await builder(server).with_token_file(token_file).on_connect(
            lambda c, i, t: connected.append((i, t))).connect()
        assert connected == [(IDENT, "minted-token")] and conn.identity == IDENT and conn.connection_id == CONN_ID
        assert token_file.read_text() == "minted-token"
        req = server.requests[0]
        assert "Authorization" not in req.headers and req.query["compression"] == "Gzip"
        assert conn.protocol == P.V2_BSATN
        inserted: list = []
        conn.db.person.on_insert(lambda ctx, r: inserted.append((type(ctx.event).__name__, r)))
        applied: list = []
        sub = await conn.subscription_builder().on_applied(lambda ctx: applied.append(ctx.event)).subscribe(
            "SELECT * FROM person")
        assert sub.is_active and len(applied) == 1
        assert inserted == [("SubscribeAppliedEvent", Person(1, "Alice"))]
        on_add: list = []
        conn.reducers.on_add(lambda ctx, name: on_add.append((ctx.event.status, name)))
        ev = await conn.reducers.add("Bob")
        assert isinstance(ev, ReducerEvent) and ev.committed and ev.timestamp == TS and ev.args == ("Bob",)
        assert inserted[-1] == ("ReducerEvent", Person(2, "Bob")) and on_add == [("committed", "Bob")]
        assert conn.db.person.id.find(2) == Person(2, "Bob")
        with pytest.raises(ReducerFailedError, match="Names must not be empty") as ei:
            await conn.call_reducer("add", "")
        assert ei.value.event.status == "failed" and on_add[-1] == ("failed", "")
        with pytest.raises(ReducerInternalError, match="no such reducer"):
            await conn.call_reducer_raw("missing", b"")
        rows = await conn.one_off_query("SELECT * FROM person")
        assert sorted(p.id for p in rows["person"]) == [1, 2]
        with pytest.raises(QueryError, match="no such table"):
            await conn.one_off_query("SELECT * FROM nope")
        deleted: list = []
        conn.db.person.on_delete(lambda ctx, r: deleted.append(r))
        await sub.unsubscribe()
        assert sub.is_ended and conn.db.person.count() == 0 and len(deleted) == 2
        await conn.disconnect()
        assert not conn.is_active

        # second connection: the saved token is sent as a bearer token
        conn2 = await builder(server).with_token_file(token_file).connect()
        assert server.requests[1].headers["Authorization"] == "Bearer minted-token"
        await conn2.disconnect()

    run(with_server(body))


def test_subscription_error_and_bad_arguments():
    async def body(server: FakeServer) -> None:
        conn = await builder(server).connect()
        errors: list = []
        sub = conn.subscription_builder().on_error(lambda ctx, e: errors.append(str(e))).subscribe(
            ["SELECT * FROM nope"])
        with pytest.raises(SubscriptionFailedError, match="no such table"):
            await sub
        assert errors == ["no such table: `nope`"] and sub.is_ended
        with pytest.raises(TypeError, match="takes 1 arguments"):
            conn.call_reducer("add", "a", "b")
        await conn.disconnect()

    run(with_server(body))


def test_other_clients_transactions_and_updates():
    async def body(server: FakeServer) -> None:
        server.rows[1] = row(1, "Alice")
        a = await builder(server).connect()
        b = await builder(server).connect()
        await a.subscription_builder().subscribe(["SELECT * FROM person"])
        # b subscribes with two overlapping sets: every row is delivered twice
        await b.subscription_builder().subscribe(["SELECT * FROM person"])
        await b.subscription_builder().subscribe(["SELECT * FROM person WHERE id = 1"])
        assert b.db.person.ref_count(Person(1, "Alice")) == 2
        updates: list = []
        b.db.person.on_update(lambda ctx, old, new: updates.append((type(ctx.event), old, new)))
        got_update = asyncio.Event()
        b.db.person.on_update(lambda ctx, old, new: got_update.set())
        await a.reducers.rename(1, "Alicia")
        await asyncio.wait_for(got_update.wait(), 3)
        assert updates == [(TransactionEvent, Person(1, "Alice"), Person(1, "Alicia"))]
        assert b.db.person.ref_count(Person(1, "Alicia")) == 2
        await a.disconnect()
        await b.disconnect()

    run(with_server(body))


def test_spec_example_bytes_and_gzip_and_v3_batches():
    """The byte-level session of client-protocol.md §11, sent verbatim, on v3 with two messages per frame,
    and a gzip-compressed SubscribeApplied."""
    sub_applied = bytes.fromhex("00 01 00000000 00000000 01000000 06000000 706572736f6e 00 0d00"
                                " 0d000000 01000000 05000000 416c696365".replace(" ", ""))
    reducer_result = bytes.fromhex(
        "00 06 01000000 0040204648470600 00 00000000 01000000 00000000 01000000 06000000 706572736f6e 01000000 00"
        " 00 0b00 0b000000 02000000 03000000 426f62 01 00000000 00000000".replace(" ", ""))

    async def body(server: FakeServer) -> None:
        async def on_message(ws: web.WebSocketResponse, msg: Any) -> bool:
            if isinstance(msg, P.Subscribe):
                assert P.encode_client(msg) == bytes.fromhex(
                    "00 00000000 00000000 01000000 14000000".replace(" ", "")) + b"SELECT * FROM person"
                # v3: SubscribeApplied and a TransactionUpdate in one frame
                tx = P.TransactionUpdate([P.QuerySetUpdate(0, [P.TableUpdate("person", [
                    P.TableUpdateRows.PersistentTable(P.PersistentTableRows(P.row_list([row(7, "x" * 2000)]),
                                                                            P.row_list([])))])])])
                await ws.send_bytes(P.compress_body(sub_applied[1:] + P.encode_server(tx), "Gzip"))
                return True
            if isinstance(msg, P.CallReducer):
                assert P.encode_client(msg) == bytes.fromhex("03 01000000 00 03000000 616464 07000000 03000000 426f62"
                                                             .replace(" ", ""))
                await ws.send_bytes(reducer_result)
                return True
            return False
        server.on_message = on_message
        conn = await builder(server).connect()
        assert conn.protocol == P.V3_BSATN
        await conn.subscription_builder().subscribe("SELECT * FROM person")
        assert sorted(p.id for p in conn.db.person) == [1, 7]
        ev = await conn.reducers.add("Bob")
        assert ev.timestamp == TS and conn.db.person.id.find(2) == Person(2, "Bob")
        await conn.disconnect()

    run(with_server(body, protocols=(P.V3_BSATN, P.V2_BSATN)))


def test_reconnect_restores_subscriptions_and_reports_changes(tmp_path):
    async def body() -> None:
        server = await FakeServer().start()
        server.rows = {1: row(1, "A"), 2: row(2, "B")}
        events: list = []
        disconnects: list = []
        reconnects: list = []
        conn = await (builder(server).with_token_file(tmp_path / "t").with_reconnect(initial_delay=0.05)
                      .on_disconnect(lambda c, e: disconnects.append(e))
                      .on_reconnect(lambda c, i: reconnects.append(i)).connect())
        sub = await conn.subscription_builder().subscribe("SELECT * FROM person")
        conn.db.person.on_insert(lambda ctx, r: events.append(("insert", r)))
        conn.db.person.on_delete(lambda ctx, r: events.append(("delete", r)))
        conn.db.person.on_update(lambda ctx, a, b: events.append(("update", a, b)))
        port = server.port
        await server.stop()
        await asyncio.sleep(0.1)
        assert not conn.is_active and disconnects and disconnects[0] is not None
        # a call while the server is down times out (it waits for the connection)
        with pytest.raises(TimeoutError):
            await conn.reducers.add("x", timeout=0.2)
        # the server comes back with different rows
        server2 = FakeServer()
        server2.rows = {1: row(1, "A"), 2: row(2, "B2"), 3: row(3, "C")}
        await server2.start(port)
        await asyncio.wait_for(sub.conn._open.wait(), 5)
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.02)
        assert reconnects == [IDENT]
        assert server2.requests[0].headers["Authorization"] == "Bearer minted-token"
        assert sorted(map(repr, events)) == sorted(map(repr, [
            ("update", Person(2, "B"), Person(2, "B2")), ("insert", Person(3, "C"))]))
        assert sub.is_active and conn.db.person.ref_count(Person(1, "A")) == 1
        await conn.reducers.add("D")
        assert conn.db.person.id.find(4) == Person(4, "D")
        await conn.disconnect()
        await server2.stop()

    run(body())


def test_connect_to_closed_port_fails_fast():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def body() -> None:
        errors: list = []
        b = (DbConnection.builder().with_uri(f"http://127.0.0.1:{port}").with_database_name("db")
             .with_timeouts(connect=2).on_connect_error(lambda c, e: errors.append(e)))
        with pytest.raises(ConnectError, match="cannot connect"):
            await b.connect()
        assert len(errors) == 1

    run(body(), timeout=10)


def test_server_that_never_answers_times_out():
    async def body() -> None:
        conns: list = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conns.append(writer)  # accept the TCP connection, never answer the upgrade

        srv = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await (DbConnection.builder().with_uri(f"http://127.0.0.1:{port}").with_database_name("db")
                   .with_timeouts(connect=0.5).connect())
        assert loop.time() - t0 < 3
        for w in conns:
            w.close()
        srv.close()

    run(body(), timeout=10)


def test_upgrade_without_initial_connection_times_out_and_404_is_reported():
    async def body(server: FakeServer) -> None:
        with pytest.raises(TimeoutError):
            await builder(server, connect=0.5).connect()
        with pytest.raises(ConnectError, match="404") as ei:
            await builder(server).with_database_name("nope").connect()
        assert ei.value.status == 404

    run(with_server(body, send_initial=False), timeout=10)


def test_request_timeout_when_server_stops_answering():
    async def body(server: FakeServer) -> None:
        async def swallow(ws: Any, msg: Any) -> bool:
            return True
        server.on_message = swallow
        conn = await builder(server, request=0.3).connect()
        with pytest.raises(TimeoutError):
            await conn.reducers.add("x")
        with pytest.raises(TimeoutError):
            await conn.subscription_builder().subscribe("SELECT * FROM person").applied()
        with pytest.raises(TimeoutError):
            await conn.one_off_query("SELECT * FROM person", timeout=0.1)
        await conn.disconnect()

    run(with_server(body), timeout=10)


def test_pending_calls_fail_when_the_connection_drops():
    async def body(server: FakeServer) -> None:
        async def drop(ws: Any, msg: Any) -> bool:
            if isinstance(msg, P.CallReducer):
                await ws.close()
                return True
            return False
        server.on_message = drop
        conn = await builder(server).with_reconnect(False).connect()
        with pytest.raises(ConnectionClosedError):
            await conn.reducers.add("x")
        await conn.wait_closed(3)
        with pytest.raises(ConnectionClosedError):
            await conn.reducers.add("y")

    run(with_server(body), timeout=10)
