"""Property tests: every protocol message survives encode -> decode; the decoders reject garbage only with
ProtocolError; and the server, fed random and mutated frames (hypothesis), always answers or closes cleanly
(1011) and keeps serving its other connections."""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.host import Database
from spacetime_core.protocol import (
    V2_BSATN,
    V3_BSATN,
    BsatnRowList,
    CallProcedure,
    CallReducer,
    EventTableRows,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    ProcedureResult,
    ProcedureStatus,
    ProtocolError,
    QueryRows,
    QuerySetUpdate,
    ReducerOk,
    ReducerOutcome,
    ReducerResult,
    RowSizeHint,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TableUpdateRows,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
    compress_body,
    decode_client,
    decode_client_frame,
    decode_server,
    decode_server_frame,
    decode_server_messages,
    encode_client,
    encode_server,
    row_list,
    server_frame,
)
from spacetime_core.sats import ConnectionId, Err, Identity, Ok, TimeDuration, Timestamp
from tests.test_server_ws_common import OWNER, RawClient, ServerThread, bsatn_str, module_wasm

u32 = st.integers(0, 2**32 - 1)
text = st.text(max_size=20)
blob = st.binary(max_size=40)

# ---------------------------------------------------------------------------------------------------------
# Strategies for every message
# ---------------------------------------------------------------------------------------------------------

rows = st.lists(blob, max_size=6)
row_lists = st.one_of(
    rows.map(row_list),
    st.lists(st.binary(min_size=3, max_size=3), max_size=5).map(
        lambda rs: BsatnRowList(RowSizeHint.FixedSize(3), b"".join(rs))),
)
query_rows = st.builds(QueryRows, st.lists(st.builds(SingleTableRows, text, row_lists), max_size=3))
table_update_rows = st.one_of(
    st.builds(lambda i, d: TableUpdateRows.PersistentTable(PersistentTableRows(i, d)), row_lists, row_lists),
    st.builds(lambda e: TableUpdateRows.EventTable(EventTableRows(e)), row_lists),
)
transaction_update = st.builds(TransactionUpdate, st.lists(st.builds(
    QuerySetUpdate, u32, st.lists(st.builds(TableUpdate, text, st.lists(table_update_rows, max_size=2)),
                                  max_size=2)), max_size=2))
timestamps = st.integers(-(2**63), 2**63 - 1).map(Timestamp)
outcomes = st.one_of(
    st.builds(lambda r, t: ReducerOutcome.Ok(ReducerOk(r, t)), blob, transaction_update),
    st.just(ReducerOutcome.OkEmpty),
    blob.map(ReducerOutcome.Err),
    text.map(ReducerOutcome.InternalError),
)
client_messages = st.one_of(
    st.builds(Subscribe, u32, u32, st.lists(text, max_size=3)),
    st.builds(Unsubscribe, u32, u32, st.sampled_from([UnsubscribeFlags.Default, UnsubscribeFlags.SendDroppedRows])),
    st.builds(OneOffQuery, u32, text),
    st.builds(CallReducer, u32, st.just(0), text, blob),
    st.builds(CallProcedure, u32, st.just(0), text, blob),
)
server_messages = st.one_of(
    st.builds(InitialConnection, st.binary(min_size=32, max_size=32).map(Identity.from_bytes),
              st.binary(min_size=16, max_size=16).map(ConnectionId.from_bytes), text),
    st.builds(SubscribeApplied, u32, u32, query_rows),
    st.builds(UnsubscribeApplied, u32, u32, st.none() | query_rows),
    st.builds(SubscriptionError, st.none() | u32, u32, text),
    transaction_update,
    st.builds(OneOffQueryResult, u32, st.one_of(query_rows.map(Ok), text.map(Err))),
    st.builds(ReducerResult, u32, timestamps, outcomes),
    st.builds(ProcedureResult, st.one_of(blob.map(ProcedureStatus.Returned), text.map(ProcedureStatus.InternalError)),
              timestamps, st.integers(-(2**63), 2**63 - 1).map(TimeDuration), u32),
)


@settings(max_examples=300, deadline=None)
@given(client_messages)
def test_client_message_roundtrip(msg):
    b = encode_client(msg)
    assert decode_client(b) == msg
    assert decode_client_frame(b + b, v3=True) == [msg, msg]


@settings(max_examples=300, deadline=None)
@given(server_messages, st.sampled_from(["None", "Gzip", "Brotli"]))
def test_server_message_roundtrip(msg, compression):
    b = encode_server(msg)
    assert decode_server(b) == msg
    assert decode_server_frame(server_frame([msg], compression)) == [msg]
    assert decode_server_messages(b + b, v3=True) == [msg, msg]
    assert decode_server_frame(server_frame([msg, msg], compression), v3=True) == [msg, msg]


@given(rows)
def test_row_list_splits_back_into_rows(rs):
    rl = row_list(rs)
    assert [bytes(r) for r in rl.rows()] == rs and len(rl) == len(rs)
    if rs and len({len(r) for r in rs}) == 1 and rs[0]:
        assert rl.size_hint.tag == "FixedSize"


@given(st.binary(max_size=2000))
def test_compression_is_transparent(body):
    from spacetime_core.protocol import decompress_frame
    for mode in ("None", "Gzip", "Brotli"):
        f = compress_body(body, mode)
        assert decompress_frame(f) == body
        if len(body) <= 1024 or mode == "None":
            assert f[0] == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.booleans())
def test_decoders_reject_garbage_cleanly(data, v3):
    for fn in (lambda: decode_client_frame(data, v3), lambda: decode_server_messages(data, v3),
               lambda: decode_server_frame(data, v3)):
        try:
            fn()
        except ProtocolError:
            pass


def test_flags_and_bad_row_hints_are_errors():
    with pytest.raises(ProtocolError):
        decode_client(encode_client(CallReducer(1, 0, "x", b""))[:-1])
    with pytest.raises(ProtocolError):
        decode_client(bytes.fromhex("03 01000000 07 01000000 78 00000000"))  # flags = 7
    with pytest.raises(ProtocolError):
        BsatnRowList(RowSizeHint.FixedSize(4), b"12345").rows()
    with pytest.raises(ProtocolError):
        BsatnRowList(RowSizeHint.RowOffsets([0, 9]), b"1234").rows()
    with pytest.raises(ProtocolError):
        decode_client_frame(b"", v3=True)


# ---------------------------------------------------------------------------------------------------------
# The server under random and mutated frames
# ---------------------------------------------------------------------------------------------------------

SEEDS = [
    encode_client(Subscribe(1, 1, ["SELECT * FROM person"])),
    encode_client(Subscribe(2, 2, ["SELECT * FROM person WHERE id = 1", "SELECT * FROM note"])),
    encode_client(Unsubscribe(3, 1, UnsubscribeFlags.SendDroppedRows)),
    encode_client(OneOffQuery(4, "SELECT * FROM person")),
    encode_client(CallReducer(5, 0, "add", bsatn_str("fuzz"))),
    encode_client(CallReducer(6, 0, "noop", b"")),
    encode_client(CallReducer(7, 0, "rename", struct.pack("<I", 1) + bsatn_str("r"))),
    encode_client(CallProcedure(8, 0, "shout", bsatn_str("p"))),
]


@st.composite
def frames(draw):
    kind = draw(st.sampled_from(["random", "mutate", "truncate", "extend", "splice", "batch"]))
    if kind == "random":
        return draw(st.binary(max_size=80))
    if kind == "batch":  # a v3 batch: several whole messages in one frame, one byte possibly changed
        batch = bytearray(b"".join(draw(st.lists(st.sampled_from(SEEDS), min_size=2, max_size=6))))
        if draw(st.booleans()):
            batch[draw(st.integers(0, len(batch) - 1))] = draw(st.integers(0, 255))
        return bytes(batch)
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "mutate":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(seed) - 1))
            seed[i] = draw(st.integers(0, 255))
        return bytes(seed)
    if kind == "truncate":
        return bytes(seed[:draw(st.integers(0, len(seed) - 1))])
    if kind == "extend":
        return bytes(seed) + draw(st.binary(min_size=1, max_size=10))
    other = draw(st.sampled_from(SEEDS))
    return bytes(seed[:draw(st.integers(0, len(seed)))]) + other[draw(st.integers(0, len(other))):]


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    db = Database.create(module_wasm(tmp_path_factory.mktemp("wsmod")), owner=OWNER)
    srv = ServerThread({"fuzz": db}).start()
    loop = asyncio.new_event_loop()

    async def open_health():
        c = await RawClient.connect(srv.ws_url("fuzz"))
        assert isinstance(await c.recv(), InitialConnection)
        await c.send(Subscribe(0, 0, ["SELECT * FROM person"]))
        assert isinstance(await c.recv(), SubscribeApplied)
        return c
    health = loop.run_until_complete(open_health())
    yield srv, db, loop, health
    loop.run_until_complete(health.close())
    loop.close()
    srv.stop()
    db.close()


async def _exchange(srv, frame: bytes, v3: bool) -> str:
    c = await RawClient.connect(srv.ws_url("fuzz"), protocols=(V3_BSATN,) if v3 else (V2_BSATN,))
    try:
        assert isinstance(await c.recv(), InitialConnection)
        await c.send_raw(frame)
        m = await c.ws.receive(timeout=20)
        if m.type == aiohttp.WSMsgType.BINARY:
            decode_server_frame(m.data, v3)  # a well-formed answer
            return "answered"
        assert m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), m
        code = int(m.data) if m.type == aiohttp.WSMsgType.CLOSE else c.ws.close_code
        assert code in (1011, 1009), (code, m)
        return "closed"
    finally:
        await c.close()


async def _healthy(health: RawClient, rid: int) -> None:
    await health.call(rid, "noop", b"")
    while True:  # the fuzz frames may have changed `person`: skip those updates
        m = await health.recv(timeout=20)
        if isinstance(m, ReducerResult):
            assert m.request_id == rid and m.result.tag == "Ok"
            return
        assert isinstance(m, TransactionUpdate)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(frame=frames(), v3=st.booleans())
def test_server_survives_random_and_mutated_frames(fuzz_env, frame, v3):
    srv, db, loop, health = fuzz_env
    outcome = loop.run_until_complete(asyncio.wait_for(_exchange(srv, frame, v3), 60))
    assert outcome in ("answered", "closed")
    event(outcome)
    health.rid = getattr(health, "rid", 100) + 1
    loop.run_until_complete(asyncio.wait_for(_healthy(health, health.rid), 60))


@st.composite
def valid_batches(draw):
    """2-8 well-formed requests with distinct request ids (and query set ids), for one v3 frame."""
    msgs = []
    for rid in range(1, draw(st.integers(2, 8)) + 1):
        kind = draw(st.sampled_from(["call", "noop", "query", "subscribe", "bad_sql", "no_reducer"]))
        if kind == "call":
            msgs.append(CallReducer(rid, 0, "add", bsatn_str(draw(text))))
        elif kind == "noop":
            msgs.append(CallReducer(rid, 0, "noop", b""))
        elif kind == "query":
            msgs.append(OneOffQuery(rid, "SELECT * FROM person"))
        elif kind == "subscribe":
            msgs.append(Subscribe(rid, 1000 + rid, ["SELECT * FROM note"]))
        elif kind == "bad_sql":
            msgs.append(OneOffQuery(rid, draw(text)))
        else:
            msgs.append(CallReducer(rid, 0, draw(text.filter(lambda s: s not in ("add", "noop", "rename"))), b""))
    return msgs


async def _batch_answers(srv, msgs) -> list[int]:
    c = await RawClient.connect(srv.ws_url("fuzz"), protocols=(V3_BSATN,))
    try:
        assert isinstance(await c.recv(), InitialConnection)
        await c.send_raw(b"".join(encode_client(m) for m in msgs))
        got: list[int] = []
        while len(got) < len(msgs):
            m = await c.recv(timeout=20)
            if isinstance(m, TransactionUpdate):
                continue  # another query set's update, not an answer
            got.append(m.request_id)
        return got
    finally:
        await c.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(msgs=valid_batches())
def test_every_message_of_a_v3_batch_is_answered_in_order(fuzz_env, msgs):
    """v3 lets a client concatenate messages in one frame: each gets exactly one answer, in the order sent
    (errors included: unknown reducers and bad SQL are answered, not fatal)."""
    srv, db, loop, health = fuzz_env
    got = loop.run_until_complete(asyncio.wait_for(_batch_answers(srv, msgs), 60))
    assert got == [m.request_id for m in msgs]
