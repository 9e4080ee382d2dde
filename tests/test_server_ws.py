"""The client WebSocket endpoint at the byte level (client-protocol.md): upgrade and negotiation, every v2
message both ways, the example session of section 11 byte for byte, fan-out, lifecycle, compression, v3
framing, keep-alive and error handling."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import struct

import aiohttp
import pytest

from harness.host import Database
from harness.server.subscriptions import attach
from spacetime_core.protocol import (
    V1_BSATN,
    V1_JSON,
    V2_BSATN,
    V3_BSATN,
    CallProcedure,
    CallReducer,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    ProcedureResult,
    ReducerOutcome,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
    decode_reducer_error,
    decode_server_frame,
    encode_client,
)
from spacetime_core.sats import Ok
from tests.test_server_ws_common import OWNER, RawClient, ServerThread, bsatn_str, module_wasm

pytestmark = pytest.mark.slow

_names = itertools.count()


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    return module_wasm(tmp_path_factory.mktemp("wsmod"))


@pytest.fixture(scope="module")
def server():
    srv = ServerThread({}).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh(server, wasm):
    """A new database registered on the server: (name, Database)."""
    name = f"db{next(_names)}"
    db = Database.create(wasm, owner=OWNER)
    server.databases[name] = db
    yield name, db
    server.databases.pop(name, None)
    db.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def rows_of(single_table_rows):
    return [bytes(r) for r in single_table_rows.rows.rows()]


def person(pid: int, name: str) -> bytes:
    return struct.pack("<I", pid) + bsatn_str(name)


def persistent(update: TransactionUpdate, qsid: int | None = None):
    """(table, inserts, deletes) for each TableUpdateRows in an update."""
    out = []
    for qs in update.query_sets:
        if qsid is not None and qs.query_set_id != qsid:
            continue
        for tu in qs.tables:
            for r in tu.rows:
                p = r.value
                if r.tag == "PersistentTable":
                    out.append((tu.table_name, [bytes(x) for x in p.inserts.rows()],
                                [bytes(x) for x in p.deletes.rows()]))
                else:
                    out.append((tu.table_name, [bytes(x) for x in p.events.rows()], "event"))
    return out


async def connect(server, name, query="compression=None", protocols=(V2_BSATN,), headers=None) -> RawClient:
    c = await RawClient.connect(server.ws_url(name, query), protocols=protocols, headers=headers)
    first = await c.recv()
    assert isinstance(first, InitialConnection)
    c.hello = first
    return c


async def no_message(c: RawClient, wait: float = 0.3) -> bool:
    try:
        m = await c.ws.receive(timeout=wait)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected message {m!r}")


# ---------------------------------------------------------------------------------------------------------
# Upgrade
# ---------------------------------------------------------------------------------------------------------

def test_subprotocol_negotiation_and_headers(server, fresh):
    name, _ = fresh

    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(server.ws_url(name), protocols=(V2_BSATN,)) as ws:
                assert ws.protocol == V2_BSATN
                assert len(ws._response.headers["spacetime-identity"]) == 64
                assert ws._response.headers["spacetime-identity-token"].count(".") == 2
            # server preference: v3 first, whatever order the client lists them in
            async with s.ws_connect(server.ws_url(name), protocols=(V2_BSATN, V3_BSATN)) as ws:
                assert ws.protocol == V3_BSATN
            for protos in ((V1_BSATN,), (V1_JSON,), ("nonsense",), ()):
                with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                    await s.ws_connect(server.ws_url(name), protocols=protos)
                assert e.value.status == 400
            async with s.get(server.ws_url(name).replace("ws://", "http://"),
                             headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                      "Sec-WebSocket-Protocol": V1_JSON}) as r:
                assert r.status == 400 and "no valid protocol selected" in await r.text()
    run(go())


def test_upgrade_errors(server, fresh):
    name, _ = fresh

    async def status(url, headers=None):
        async with aiohttp.ClientSession() as s:
            try:
                async with s.ws_connect(url, protocols=(V2_BSATN,), headers=headers):
                    return 101
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    async def go():
        assert await status(server.ws_url("no-such-db")) == 404
        assert await status(server.ws_url(name, "compression=gzip")) == 400  # case-sensitive
        assert await status(server.ws_url(name, "connection_id=" + "0" * 32)) == 400
        assert await status(server.ws_url(name, "connection_id=xyz")) == 400
        assert await status(server.ws_url(name, "token=not-a-jwt")) == 401
        assert await status(server.ws_url(name), {"Authorization": "Bearer a.b.c"}) == 401
        assert await status(server.ws_url(name), {"Authorization": "Basic xyz"}) == 400
        assert await status(server.ws_url(name, "light=true&confirmed=false&unknown=1")) == 101
        for comp in ("None", "Gzip", "Brotli"):
            assert await status(server.ws_url(name, f"compression={comp}")) == 101
        assert await status(server.ws_url(name, "")) == 101  # default compression Brotli
    run(go())


def test_initial_connection_bytes_and_tokens(server, fresh):
    name, _ = fresh
    cid_hex = "0123456789abcdef0123456789abcdef"

    async def go():
        a = await connect(server, name, f"compression=None&connection_id={cid_hex}")
        frame = a.raw_frames[0]
        assert frame[:2] == b"\x00\x00"  # uncompressed, ServerMessage::InitialConnection
        ident = a.hello.identity
        assert frame[2:34] == ident.to_bytes() and frame[33] == 0xC2 and frame[32] == 0x00  # LE, hex is BE
        assert frame[34:50] == bytes.fromhex(cid_hex)[::-1]
        (n,) = struct.unpack_from("<I", frame, 50)
        assert frame[54:] == a.hello.token.encode() and n == len(a.hello.token)
        assert a.ws._response.headers["spacetime-identity"] == ident.to_hex()
        token = a.hello.token
        await a.close()
        # the saved token proves the same identity, by header or by query parameter
        b = await connect(server, name, headers={"Authorization": f"Bearer {token}"})
        assert b.hello.identity == ident and b.hello.token == token
        c = await connect(server, name, f"compression=None&token={token}")
        assert c.hello.identity == ident
        # two anonymous connections get different identities
        d = await connect(server, name)
        assert d.hello.identity != ident
        for x in (b, c, d):
            await x.close()
    run(go())


# ---------------------------------------------------------------------------------------------------------
# The example session of client-protocol.md section 11, byte for byte
# ---------------------------------------------------------------------------------------------------------

def test_example_session_bytes(server, fresh):
    name, db = fresh
    assert db.call_reducer("add", ["Alice"]).committed

    async def go():
        a = await connect(server, name)
        b = await connect(server, name)
        sub = bytes.fromhex("00 00000000 00000000 01000000 14000000") + b"SELECT * FROM person"
        assert len(sub) == 37 and encode_client(Subscribe(0, 0, ["SELECT * FROM person"])) == sub
        await a.send_raw(sub)
        frame = await a.recv_frame()
        assert frame == bytes.fromhex(
            "00 01 00000000 00000000 01000000 06000000 706572736f6e 00 0d00 0d000000"
            "01000000 05000000 416c696365")
        assert len(frame) == 44
        await b.send(Subscribe(0, 7, ["SELECT * FROM person"]))
        await b.recv()

        call = bytes.fromhex("03 01000000 00 03000000 616464 07000000 03000000 426f62")
        assert len(call) == 24
        await a.send_raw(call)
        frame = await a.recv_frame()
        assert len(frame) == 73
        assert frame[:6] == bytes.fromhex("00 06 01000000")
        ts = struct.unpack_from("<q", frame, 6)[0]
        assert abs(ts - db.logs()[-1].timestamp) < 10_000_000 if db.logs() else ts > 1_700_000_000_000_000
        assert frame[14:] == bytes.fromhex(
            "00 00000000 01000000 00000000 01000000 06000000 706572736f6e 01000000 00"
            "00 0b00 0b000000 02000000 03000000 426f62 01 00000000 00000000")
        frame = await b.recv_frame()
        assert frame == bytes.fromhex(
            "00 04 01000000 07000000 01000000 06000000 706572736f6e"
            "01000000 00 00 0b00 0b000000 02000000 03000000 426f62 01 00000000 00000000")
        assert len(frame) == 56

        await a.send_raw(bytes.fromhex("01 02000000 00000000 01"))
        frame = await a.recv_frame()
        assert frame == bytes.fromhex(
            "00 02 02000000 00000000 00 01000000 06000000 706572736f6e"
            "01 02000000 0000000000000000 0d00000000000000"
            "18000000 01000000 05000000 416c696365 02000000 03000000 426f62")
        await a.close()
        await b.close()
    run(go())


# ---------------------------------------------------------------------------------------------------------
# Subscribe / Unsubscribe
# ---------------------------------------------------------------------------------------------------------

def test_subscribe_errors_keep_the_connection(server, fresh):
    name, db = fresh

    async def go():
        a = await connect(server, name)
        for rid, sql in enumerate(["SELEKT * FROM person", "SELECT * FROM nope", "SELECT * FROM secret"], 1):
            await a.send(Subscribe(rid, rid, [sql]))
            m = await a.recv()
            assert isinstance(m, SubscriptionError), m
            assert m.request_id == rid and m.query_set_id == rid and m.error
        # a failed set is not registered: its id can be used again
        await a.send(Subscribe(9, 1, ["SELECT * FROM person"]))
        assert isinstance(await a.recv(), SubscribeApplied)
        await a.send(CallReducer(10, 0, "add", bsatn_str("x")))
        m = await a.recv()
        assert isinstance(m, ReducerResult) and m.result.tag == "Ok"
        assert persistent(m.result.value.transaction_update) == [("person", [person(1, "x")], [])]
        await a.close()
    run(go())


def test_owner_may_subscribe_to_private_table(server, wasm):
    claims = server.endpoint.auth.authority.mint()
    db = Database.create(wasm, owner=claims.identity)
    server.databases["owned"] = db

    async def go():
        owner = await connect(server, "owned", headers={"Authorization": f"Bearer {claims.token}"})
        assert owner.hello.identity == claims.identity
        await owner.send(Subscribe(1, 1, ["SELECT * FROM secret"]))
        assert isinstance(await owner.recv(), SubscribeApplied)
        other = await connect(server, "owned")
        await other.send(Subscribe(1, 1, ["SELECT * FROM secret"]))
        assert isinstance(await other.recv(), SubscriptionError)
        await owner.close()
        await other.close()
    try:
        run(go())
    finally:
        server.databases.pop("owned")
        db.close()


def test_duplicate_query_set_id_closes_with_1011(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        await a.send(Subscribe(1, 5, ["SELECT * FROM person"]))
        assert isinstance(await a.recv(), SubscribeApplied)
        await a.send(Subscribe(2, 5, ["SELECT * FROM note"]))
        code, reason = await a.expect_close()
        assert code == 1011 and "5" in reason
        await a.close()
    run(go())


def test_unsubscribe_flags_and_unknown_set(server, fresh):
    name, db = fresh
    db.call_reducer("add", ["a"])
    db.call_reducer("add", ["b"])

    async def go():
        a = await connect(server, name)
        await a.send(Unsubscribe(1, 42))
        m = await a.recv()
        assert isinstance(m, SubscriptionError) and m.request_id == 1 and m.query_set_id == 42
        await a.send(Subscribe(2, 0, ["SELECT * FROM person", "SELECT * FROM person"]))  # deduplicated
        m = await a.recv()
        assert len(m.rows.tables) == 1 and rows_of(m.rows.tables[0]) == [person(1, "a"), person(2, "b")]
        await a.send(Unsubscribe(3, 0, UnsubscribeFlags.Default))
        m = await a.recv()
        assert isinstance(m, UnsubscribeApplied) and m.rows is None and m.request_id == 3
        # the id is free again; after unsubscribing no more updates arrive
        await a.send(Subscribe(4, 0, ["SELECT * FROM person"]))
        assert isinstance(await a.recv(), SubscribeApplied)
        await a.send(Unsubscribe(5, 0, UnsubscribeFlags.SendDroppedRows))
        m = await a.recv()
        assert rows_of(m.rows.tables[0]) == [person(1, "a"), person(2, "b")]
        db.call_reducer("add", ["c"])
        assert await no_message(a)
        await a.close()
    run(go())


def test_several_query_sets_and_tables(server, fresh):
    name, db = fresh

    async def go():
        a = await connect(server, name)
        await a.send(Subscribe(1, 1, ["SELECT * FROM person", "SELECT * FROM note"]))
        m = await a.recv()
        assert m.rows.tables == []  # as upstream: only tables that have rows are listed, and none has yet
        await a.send(Subscribe(2, 2, ["SELECT * FROM person"]))
        await a.recv()
        b = await connect(server, name)
        await b.send(CallReducer(1, 0, "add", bsatn_str("p")))
        await b.recv()
        m = await a.recv()
        assert isinstance(m, TransactionUpdate)
        assert sorted(qs.query_set_id for qs in m.query_sets) == [1, 2]  # delivered once per query set
        assert persistent(m, 1) == [("person", [person(1, "p")], [])]
        assert persistent(m, 2) == [("person", [person(1, "p")], [])]
        await b.send(CallReducer(2, 0, "note", bsatn_str("n")))
        await b.recv()
        m = await a.recv()
        assert [qs.query_set_id for qs in m.query_sets] == [1]  # only affected sets and tables
        assert persistent(m) == [("note", [person(1, "n")], [])]
        await a.close()
        await b.close()
    run(go())


# ---------------------------------------------------------------------------------------------------------
# Reducers
# ---------------------------------------------------------------------------------------------------------

def test_reducer_results(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        await a.call(1, "add", bsatn_str(""))
        m = await a.recv()
        assert m.request_id == 1 and m.result.tag == "Err"
        assert decode_reducer_error(m.result.value) == "name must not be empty"
        assert bytes(m.result.value) == bsatn_str("name must not be empty")
        await a.call(2, "nope", b"")
        m = await a.recv()
        assert m.result.tag == "InternalError" and "no such reducer" in m.result.value
        await a.call(3, "add", b"\x05\x00")  # truncated string
        m = await a.recv()
        assert m.result.tag == "InternalError" and "invalid arguments for reducer add" in m.result.value
        await a.call(4, "add", bsatn_str("x") + b"\x00")  # trailing byte
        m = await a.recv()
        assert m.result.tag == "InternalError" and "invalid arguments" in m.result.value
        await a.call(5, "on_connect", b"")
        m = await a.recv()
        assert m.result.tag == "InternalError" and "lifecycle" in m.result.value
        await a.call(6, "crash", b"")
        m = await a.recv()
        assert m.result.tag in ("Err", "InternalError")
        text = decode_reducer_error(m.result.value) if m.result.tag == "Err" else m.result.value
        assert "kaboom" in text
        # committed with nothing subscribed: Ok with an empty transaction update
        await a.call(7, "noop", b"")
        m = await a.recv()
        assert m.result == ReducerOutcome.Ok(m.result.value) and m.result.value.transaction_update.query_sets == []
        assert m.result.value.ret_value == b""
        # flags must be 0: a decode error, which closes the connection
        await a.send(CallReducer(8, 1, "noop", b""))
        code, _ = await a.expect_close()
        assert code == 1011
        await a.close()
    run(go())


def test_caller_and_other_subscribers(server, fresh):
    name, db = fresh

    async def go():
        a = await connect(server, name)
        b = await connect(server, name)
        c = await connect(server, name)
        for cl in (a, b):
            await cl.send(Subscribe(0, 3, ["SELECT * FROM person"]))
            await cl.recv()
        await c.send(Subscribe(0, 3, ["SELECT * FROM note"]))
        await c.recv()
        await a.call(1, "add", bsatn_str("Ann"))
        m = await a.recv()
        assert isinstance(m, ReducerResult)
        assert persistent(m.result.value.transaction_update) == [("person", [person(1, "Ann")], [])]
        m = await b.recv()
        assert isinstance(m, TransactionUpdate) and persistent(m) == [("person", [person(1, "Ann")], [])]
        # updates: delete + insert in one message; deletes
        await a.call(2, "rename", struct.pack("<I", 1) + bsatn_str("Anna"))
        m = await a.recv()
        assert persistent(m.result.value.transaction_update) == [("person", [person(1, "Anna")], [person(1, "Ann")])]
        assert persistent(await b.recv()) == [("person", [person(1, "Anna")], [person(1, "Ann")])]
        await a.call(3, "remove", struct.pack("<I", 1))
        await a.recv()
        assert persistent(await b.recv()) == [("person", [], [person(1, "Anna")])]
        # a failed reducer notifies nobody else
        await a.call(4, "add", bsatn_str(""))
        assert (await a.recv()).result.tag == "Err"
        # the caller gets no separate TransactionUpdate; c (other table) got nothing at all
        assert await no_message(a, 0.2) and await no_message(b, 0.1) and await no_message(c, 0.1)
        for cl in (a, b, c):
            await cl.close()
    run(go())


def test_commits_from_outside_reach_subscribers(server, fresh):
    """HTTP /call, the scheduler and lifecycle reducers commit through the same host path."""
    name, db = fresh

    async def go():
        a = await connect(server, name)
        await a.send(Subscribe(0, 0, ["SELECT * FROM person"]))
        await a.recv()
        await asyncio.to_thread(db.call_reducer, "add_many", ["z", 3])
        m = await a.recv()
        assert persistent(m) == [("person", [person(i + 1, f"z{i}") for i in range(3)], [])]
        await a.close()
    run(go())


def test_event_table_rows(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        b = await connect(server, name)
        await b.send(Subscribe(0, 0, ["SELECT * FROM chirp"]))
        m = await b.recv()
        assert m.rows.tables == []  # an event table has no rows to start with
        await a.call(1, "chirp", bsatn_str("tweet"))
        await a.recv()
        m = await b.recv()
        assert persistent(m) == [("chirp", [bsatn_str("tweet")], "event")]
        await a.close()
        await b.close()
    run(go())


def test_fan_out_evaluates_each_distinct_query_once(server, fresh):
    name, db = fresh
    mgr = attach(db)

    async def go():
        clients = [await connect(server, name) for _ in range(12)]
        for i, cl in enumerate(clients):
            await cl.send(Subscribe(0, i % 2, ["SELECT * FROM person"]))
            await cl.recv()
        before = mgr.evaluations
        await asyncio.to_thread(db.call_reducer, "add", ["q"])
        for i, cl in enumerate(clients):
            m = await cl.recv()
            assert m.query_sets[0].query_set_id == i % 2
        assert mgr.evaluations - before == 1
        for cl in clients:
            await cl.close()
    run(go())


def test_many_updates_arrive_in_order(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        b = await connect(server, name)
        await b.send(Subscribe(0, 0, ["SELECT * FROM person"]))
        await b.recv()
        for i in range(50):
            await a.call(i, "add", bsatn_str(f"n{i}"))
        for i in range(50):
            assert (await a.recv()).request_id == i
        for i in range(50):
            assert persistent(await b.recv()) == [("person", [person(i + 1, f"n{i}")], [])]
        await a.close()
        await b.close()
    run(go())


# ---------------------------------------------------------------------------------------------------------
# One-off queries and procedures
# ---------------------------------------------------------------------------------------------------------

def test_one_off_query(server, fresh):
    name, db = fresh
    db.call_reducer("add", ["a"])

    async def go():
        a = await connect(server, name)
        await a.send(OneOffQuery(1, "SELECT * FROM person"))
        m = await a.recv()
        assert isinstance(m, OneOffQueryResult) and m.request_id == 1 and isinstance(m.result, Ok)
        (t,) = m.result.value.tables
        assert t.table == "person" and rows_of(t) == [person(1, "a")]
        await a.send(OneOffQuery(2, "SELECT * FROM missing"))
        m = await a.recv()
        assert m.request_id == 2 and m.result.is_err() and m.result.value
        await a.close()
    run(go())


def test_call_procedure(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        b = await connect(server, name)
        await b.send(Subscribe(0, 0, ["SELECT * FROM note"]))
        await b.recv()
        await a.send(CallProcedure(76, 0, "shout", bsatn_str("hey")))
        m = await a.recv()
        assert isinstance(m, ProcedureResult) and m.request_id == 76
        assert m.status.tag == "Returned" and bytes(m.status.value) == bsatn_str("HEY")
        assert m.total_host_execution_duration.micros >= 0
        # the transaction the procedure committed reaches subscribers
        assert persistent(await b.recv()) == [("note", [person(1, "hey")], [])]
        await a.send(CallProcedure(77, 0, "nope", b""))
        frame = await a.recv_frame()
        m = decode_server_frame(frame)[0]
        assert isinstance(m, ProcedureResult) and m.request_id == 77
        assert m.status.tag == "InternalError" and "no such procedure" in m.status.value
        assert frame[-4:] == struct.pack("<I", 77)  # request_id is the last field
        await a.send(CallProcedure(78, 0, "shout", b"\x01"))
        m = await a.recv()
        assert m.status.tag == "InternalError" and "invalid arguments" in m.status.value
        await a.send(CallProcedure(79, 2, "shout", bsatn_str("x")))  # flags must be 0
        code, _ = await a.expect_close()
        assert code == 1011
        await a.close()
        await b.close()
    run(go())


# ---------------------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------------------

def test_connect_and_disconnect_lifecycle(server, fresh):
    name, db = fresh

    async def go():
        watcher = await connect(server, name)
        await watcher.send(Subscribe(0, 0, ["SELECT * FROM online"]))
        m = await watcher.recv()
        assert len(rows_of(m.rows.tables[0])) == 1  # the watcher itself
        a = await connect(server, name)
        m = await watcher.recv()
        assert persistent(m) == [("online", [bsatn_str(str(a.hello.identity))], [])]
        await a.close()
        m = await watcher.recv()
        assert persistent(m) == [("online", [], [bsatn_str(str(a.hello.identity))])]
        await watcher.close()
    run(go())


def test_client_connected_rejection(server, fresh):
    name, db = fresh
    assert db.call_reducer("set_reject", [True]).committed

    async def go():
        c = await RawClient.connect(server.ws_url(name), protocols=(V2_BSATN,))
        m = await c.ws.receive(timeout=10)
        assert m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert c.raw_frames == []
        await c.close()
        assert db.rows("online") == []
        db.call_reducer("set_reject", [False])
        ok = await connect(server, name)
        await ok.close()
    run(go())


# ---------------------------------------------------------------------------------------------------------
# Compression, v3, keep-alive, malformed input
# ---------------------------------------------------------------------------------------------------------

def test_compression_modes(server, fresh):
    name, db = fresh
    db.call_reducer("add_many", ["row-with-a-longish-name-", 100])

    async def frame_for(comp):
        c = await connect(server, name, f"compression={comp}")
        await c.send(Subscribe(0, 0, ["SELECT * FROM person"]))
        frame = await c.recv_frame()
        await c.send(OneOffQuery(1, "SELECT * FROM note"))  # small: always tag 0
        small = await c.recv_frame()
        await c.close()
        return frame, small

    async def go():
        plain, small = await frame_for("None")
        assert plain[0] == 0 and small[0] == 0 and len(plain) > 1025
        body = plain[1:]
        gz, small = await frame_for("Gzip")
        assert gz[0] == 2 and small[0] == 0 and gzip.decompress(gz[1:]) == body
        br, small = await frame_for("Brotli")
        assert br[0] in (0, 1) and small[0] == 0
        assert decode_server_frame(br)[0] == decode_server_frame(plain)[0]
    run(go())


def test_v3_batches_in_both_directions(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name, protocols=(V3_BSATN,))
        assert a.v3
        batch = b"".join(encode_client(m) for m in (
            Subscribe(0, 0, ["SELECT * FROM person"]), CallReducer(1, 0, "add", bsatn_str("v3")),
            OneOffQuery(2, "SELECT * FROM person")))
        await a.send_raw(batch)
        got = [await a.recv() for _ in range(3)]
        assert [type(m).__name__ for m in got] == ["SubscribeApplied", "ReducerResult", "OneOffQueryResult"]
        await a.send_raw(b"")
        code, reason = await a.expect_close()
        assert code == 1011 and "empty" in reason
        await a.close()
    run(go())


@pytest.mark.parametrize("frame", [
    b"", b"\x07", b"\x00\x01\x00", b"\x03\x01\x00\x00\x00\x00\x03\x00\x00\x00ad",
    encode_client(Subscribe(1, 1, ["SELECT * FROM person"])) + b"\x00",
    b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x05",  # UnsubscribeFlags tag 5
])
def test_malformed_frames_close_1011_and_server_keeps_serving(server, fresh, frame):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        other = await connect(server, name)
        await a.send_raw(frame)
        code, reason = await a.expect_close()
        assert code == 1011 and reason
        await a.close()
        await other.call(1, "noop", b"")
        assert isinstance(await other.recv(), ReducerResult)
        await other.close()
    run(go())


def test_text_frame_closes(server, fresh):
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        await a.ws.send_str("hello")
        code, _ = await a.expect_close()
        assert code == 1011
        await a.close()
    run(go())


def test_keepalive_pings(wasm):
    db = Database.create(wasm, owner=OWNER)
    srv = ServerThread({"k": db}, ping_interval=0.2).start()

    async def go():
        async with aiohttp.ClientSession() as s:
            # a client that answers pings stays connected
            async with s.ws_connect(srv.ws_url("k"), protocols=(V2_BSATN,), autoping=True) as ws:
                await ws.receive(timeout=5)  # InitialConnection
                with pytest.raises(asyncio.TimeoutError):  # receive() answers the server's pings meanwhile
                    await asyncio.wait_for(ws.receive(), 1.0)
                assert not ws.closed
                await ws.send_bytes(encode_client(CallReducer(1, 0, "noop", b"")))
                m = await ws.receive(timeout=5)
                assert isinstance(decode_server_frame(m.data)[0], ReducerResult)
                # client pings are answered
                await ws.ping(b"hi")
            # the server pings; a client that never answers is dropped
            async with s.ws_connect(srv.ws_url("k"), protocols=(V2_BSATN,), autoping=False) as ws:
                await ws.receive(timeout=5)
                m = await ws.receive(timeout=5)
                assert m.type == aiohttp.WSMsgType.PING
                m = await ws.receive(timeout=5)
                assert m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    try:
        run(go())
    finally:
        srv.stop()
        db.close()


# ---------------------------------------------------------------------------------------------------------
# Inside the full server (harness.server.app): registry lookup, shared tokens, database deletion
# ---------------------------------------------------------------------------------------------------------

def test_full_app_lookup_tokens_and_delete(tmp_path, wasm):
    from tests.test_server_ws_common import AppServerThread

    srv = AppServerThread(tmp_path / "data", wasm, "appdb").start()
    owner = srv.owner_claims

    async def go():
        db = srv.databases["appdb"]
        # by name and by identity; unknown name -> 404
        a = await connect(srv, "appdb", headers={"Authorization": f"Bearer {owner.token}"})
        assert a.hello.identity == owner.identity
        b = await connect(srv, db.identity.to_hex())
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(srv.ws_url("nope"), protocols=(V2_BSATN,))
            assert e.value.status == 404
        # the owner sees private tables
        await a.send(Subscribe(1, 1, ["SELECT * FROM secret"]))
        assert isinstance(await a.recv(), SubscribeApplied)
        await b.send(Subscribe(1, 1, ["SELECT * FROM secret"]))
        assert isinstance(await b.recv(), SubscriptionError)
        # deleting the database closes its clients with 1001
        entry = srv.registry.lookup("appdb")
        await asyncio.to_thread(srv.registry.delete, entry, owner.identity)
        for c in (a, b):
            code, reason = await c.expect_close()
            assert code == 1001 and reason == "module exited"
            await c.close()
    try:
        run(go())
    finally:
        srv.stop()


def test_a_busy_database_stalls_neither_the_loop_nor_another_database(server, wasm, fresh):
    """Module code runs on its database's own thread: while a long reducer runs on one database, a call on
    another database (and on the same event loop) is answered first."""
    name, _ = fresh
    other = f"db{next(_names)}"
    server.databases[other] = db2 = Database.create(wasm, owner=OWNER)

    async def go():
        a = await connect(server, name)
        b = await connect(server, other)
        await a.call(1, "add_many", bsatn_str("s") + struct.pack("<I", 40000))
        await asyncio.sleep(0.05)
        await b.call(2, "noop", b"")
        got_b = await b.recv()
        assert got_b.request_id == 2 and got_b.result.tag == "Ok"
        assert await no_message(a, 0.01)  # the long call is still running
        got_a = await a.recv()
        assert got_a.request_id == 1 and got_a.result.tag == "Ok"
        await a.close()
        await b.close()
    try:
        run(go())
    finally:
        server.databases.pop(other, None)
        db2.close()


def test_a_flooding_client_is_paused_not_dropped_and_answered_in_order(server, fresh, monkeypatch):
    """Messages queued to the database are bounded per connection: past ws_inflight_messages the reader waits."""
    from harness.limits import LIMITS

    monkeypatch.setattr(LIMITS, "ws_inflight_messages", 4)
    name, _ = fresh

    async def go():
        a = await connect(server, name)
        before = server.endpoint.stats.reader_waits
        for i in range(60):
            await a.call(i, "add", bsatn_str(f"p{i}"))
        got = [(await a.recv()).request_id for _ in range(60)]
        assert got == list(range(60))
        assert server.endpoint.stats.reader_waits > before
        await a.close()
    run(go())


def test_failure_while_evaluating_an_update_drops_the_set(server, fresh):
    """A query that fails on a later transaction: SubscriptionError with no request id, before the updates of
    that transaction, and the set is removed (client-protocol.md 8.1)."""
    name, db = fresh
    mgr = attach(db)

    class Boom:
        def __init__(self, plan):
            self._plan = plan

        def __getattr__(self, attr):
            return getattr(self._plan, attr)

        def touches(self, txdata):
            return True

        def delta(self, txdata, read_tx):
            raise RuntimeError("evaluation exploded")

    async def go():
        a = await connect(server, name)
        await a.send(Subscribe(1, 4, ["SELECT * FROM note"]))
        await a.recv()
        await a.send(Subscribe(2, 5, ["SELECT * FROM person"]))
        await a.recv()
        with mgr.lock:
            (entry,) = [e for e in mgr._plans.values() if e.table_name == "note"]
            entry.plan = Boom(entry.plan)
        b = await connect(server, name)
        await b.call(1, "note", bsatn_str("n"))
        await b.recv()
        m = await a.recv()
        assert isinstance(m, SubscriptionError) and m.request_id is None and m.query_set_id == 4
        assert "exploded" in m.error
        await b.call(2, "add", bsatn_str("p"))
        await b.recv()
        m = await a.recv()  # the other set still works
        assert [qs.query_set_id for qs in m.query_sets] == [5]
        await a.send(Unsubscribe(3, 4))  # set 4 is gone
        assert isinstance(await a.recv(), SubscriptionError)
        await a.close()
        await b.close()
    run(go())


def test_sql_dml_reaches_subscribers_exactly_once(tmp_path, wasm):
    """/sql INSERT commits through the host's commit path, which fans out; nothing sends it a second time."""
    from tests.test_server_ws_common import AppServerThread

    srv = AppServerThread(tmp_path / "data", wasm, "dmldb").start()
    owner = srv.owner_claims

    async def go():
        a = await connect(srv, "dmldb")
        await a.send(Subscribe(0, 0, ["SELECT * FROM person"]))
        await a.recv()
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{srv.port}/v1/database/dmldb/sql",
                              data="INSERT INTO person (id, name) VALUES (77, 'Dee')",
                              headers={"Authorization": f"Bearer {owner.token}"}) as r:
                assert r.status == 200, await r.text()
        m = await a.recv()
        assert persistent(m) == [("person", [person(77, "Dee")], [])]
        assert await no_message(a, 0.5), "the DML transaction was sent twice"
        await a.close()
    try:
        run(go())
    finally:
        srv.stop()


def test_queued_results_share_one_socket_write_and_stay_separate_messages():
    """Several results queued for one client go out with one transport write (one syscall), yet each is its own
    well-formed binary WebSocket message, in order; with a backlog in the
    socket buffer, they go out one message at a time through aiohttp (flow control)."""
    from harness.server.websocket import WRITE_BACKLOG_BYTES, Connection

    class Spy:
        def __init__(self, backlog=0):
            self.writes: list[bytes] = []
            self.backlog = backlog

        def is_closing(self):
            return False

        def get_write_buffer_size(self):
            return self.backlog

        def write(self, data):
            self.writes.append(bytes(data))

    class Ws:
        closed = False

        def __init__(self):
            self.sent: list[bytes] = []

        async def send_bytes(self, data):
            self.sent.append(data)

    async def go():
        loop = asyncio.get_running_loop()
        conn = Connection(OWNER, None, "t", "Gzip", False, loop)
        bodies = [b"a" * 3, b"b" * 200, b"c" * 70_000, b"d"]
        conn.transport, ws = Spy(), Ws()
        left = conn._write_frames(ws, bodies)
        assert left == [b"d"] and len(conn.transport.writes) == 1
        data, got = conn.transport.writes[0], []
        while data:  # RFC 6455: FIN + opcode, unmasked length (7 bits, or 126 + u16, or 127 + u64), payload
            assert data[0] == 0x82 and data[1] & 0x80 == 0
            n, off = data[1], 2
            if n == 126:
                (n,), off = struct.unpack_from("!H", data, 2), 4
            elif n == 127:
                (n,), off = struct.unpack_from("!Q", data, 2), 10
            got.append(data[off:off + n])
            data = data[off + n:]
        assert [m[0] for m in got] == [0, 0, 2]  # the 70 kB one compressed, as the client asked
        assert [m[1:] if m[0] == 0 else gzip.decompress(m[1:]) for m in got] == bodies[:3]
        conn.transport = Spy(backlog=WRITE_BACKLOG_BYTES + 1)
        assert conn._write_frames(ws, bodies) == bodies and conn.transport.writes == []
    run(go())
