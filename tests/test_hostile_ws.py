"""Hostile WebSocket clients against a real `spacetime-py start` (issue 11): clients that subscribe and never
read are kicked once their outbound budget is spent (as upstream kicks a client whose channel is full) and the
server's memory stays capped; an oversized inbound message closes only that connection."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time

import pytest

from spacetime_core.protocol import (
    V2_BSATN,
    CallReducer,
    OneOffQuery,
    OneOffQueryResult,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    Unsubscribe,
    UnsubscribeApplied,
    decode_reducer_error,
    decode_server_frame,
    encode_client,
)
from tests.hostile import HOSTILE_WAT, Bystander, PingProbe, Server, publish_hostile, survived, wasm

SLOW_CLIENTS = 8
RSS_GROWTH_CAP_MIB = 150  # 8 clients x 4 MiB outbox budget (this server), the rows, their fan-out in flight


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("hostile-ws") / "data", {"ws_message_bytes": "1m", "ws_outbox_bytes": "4m",
                                                                      "call_timeout_ms": "2000",
                                                                      "subscription_queries": "64",
                                                                      "query_text_bytes": "4k"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def bystander(server):
    return Bystander(server)


@pytest.fixture(scope="module")
def hostile(server):
    return publish_hostile(server, "feed")


def frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One masked client frame."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask_fast(payload, mask)
    return head + mask + body


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    m = int.from_bytes(mask * ((len(payload) + 3) // 4), "big") >> (8 * (-len(payload) % 4))
    return (int.from_bytes(payload, "big") ^ m).to_bytes(len(payload), "big")


def ws_connect(server: Server, db: str, rcvbuf: int | None = None) -> socket.socket:
    """A raw WebSocket client (a plain socket, so "never reads" really means nothing reads)."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/database/{db}/subscribe?compression=None HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {V2_BSATN}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", exact(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


def dropped(sock: socket.socket, within: float) -> bool:
    """Read and discard until the server ends the connection (True) or `within` seconds pass (False)."""
    deadline = time.monotonic() + within
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_clients_that_never_read_are_kicked_and_memory_stays_capped(server, bystander, hostile):
    before = server.rss_mib()
    slow = []
    for i in range(SLOW_CLIENTS):  # distinct query set ids: each client's updates are its own bytes
        sock = ws_connect(server, "feed", rcvbuf=4096)
        sock.sendall(frame(encode_client(Subscribe(i + 1, i + 1, ["SELECT * FROM blob"]))))
        slow.append(sock)
    row = "z" * (256 * 1024)
    with PingProbe(server, bystander) as probe:
        for i in range(120):  # 120 commits of 256 KiB, each fanned out to every slow client: ~240 MiB unbounded
            status, body = server.call("feed", "put_blob", [i, row], hostile)
            assert status == 200, body
    assert server.alive(), server.output()
    survived(server, bystander, probe, before, RSS_GROWTH_CAP_MIB)
    for sock in slow:
        assert dropped(sock, within=10), "a client that never read was not disconnected"
        sock.close()
    # a client that does read is served normally afterwards
    fresh = ws_connect(server, "feed")
    opcode, data = read_frame(fresh)  # InitialConnection
    assert opcode == 0x2 and data[:1] == b"\x00"
    fresh.close()


def test_an_oversized_message_closes_only_that_connection(server, bystander, hostile):
    good = ws_connect(server, "feed")
    read_frame(good)
    bad = ws_connect(server, "feed")
    read_frame(bad)
    with PingProbe(server, bystander) as probe:
        try:
            bad.sendall(frame(b"\x00" * (2 << 20)))  # 2 MiB > this server's 1 MiB ws_message_bytes
        except (BrokenPipeError, ConnectionResetError):
            pass
        opcode, data = read_frame(bad)
    assert opcode == 0x8 and struct.unpack(">H", data[:2])[0] == 1009, data
    probe.check()
    good.sendall(frame(encode_client(Subscribe(7, 7, ["SELECT * FROM counter"]))))
    opcode, data = read_frame(good)
    assert opcode == 0x2  # SubscribeApplied: the other connection is unaffected
    good.close()
    bad.close()
    bystander.check()


def test_a_reducer_that_loops_forever_after_fast_ones_does_not_freeze_the_server(server, bystander, hostile):
    """Issue 11 case #3: 20 fast reducer calls then one that never returns, on one WebSocket.  The fast ones are
    answered, the loop is stopped at call_timeout_ms (2 s here) with an error, and meanwhile /v1/ping and another
    database keep answering (module code runs on the database's own executor thread, not the event loop)."""
    sock = ws_connect(server, "feed")
    read_frame(sock)  # InitialConnection
    before = server.rss_mib()
    base = 10_000
    with PingProbe(server, bystander, interval=0.02) as probe:
        for i in range(20):
            args = struct.pack("<IQ", base + i, i)
            sock.sendall(frame(encode_client(CallReducer(i, 0, "insert_counter", args))))
        sock.sendall(frame(encode_client(CallReducer(20, 0, "spin", b""))))
        results: dict[int, ReducerResult] = {}
        t0 = time.monotonic()
        while 20 not in results and time.monotonic() - t0 < 30:
            opcode, data = read_frame(sock)
            assert opcode == 0x2, (opcode, data)
            for m in decode_server_frame(data):
                if isinstance(m, ReducerResult):
                    results[m.request_id] = m
        spun = time.monotonic() - t0
    assert server.alive(), server.output()
    probe.check()
    assert len(probe.latencies) > 20, "the probe did not run while the reducer looped"
    bystander.check()
    assert probe.rss_peak - before < RSS_GROWTH_CAP_MIB, (before, probe.rss_peak)
    assert sorted(results) == list(range(21))
    assert all(results[i].result.tag in ("Ok", "OkEmpty") for i in range(20)), [results[i].result for i in range(20)]
    outcome = results[20].result
    text = decode_reducer_error(outcome.value) if outcome.tag == "Err" else str(outcome.value)
    assert outcome.tag in ("Err", "InternalError") and "time limit" in text, outcome
    assert 1.5 < spun < 20, spun  # stopped by the 2 s call limit, not earlier and not never
    # the database itself is usable again: the 20 rows are there, and a new call works on the same socket
    status, body = server.sql("feed", f"SELECT id FROM counter WHERE id >= {base}", hostile)
    assert status == 200, body
    assert sorted(r[0] for r in json.loads(body)[0]["rows"]) == [base + i for i in range(20)]
    sock.sendall(frame(encode_client(CallReducer(21, 0, "insert_counter", struct.pack("<IQ", base + 99, 1)))))
    while True:
        opcode, data = read_frame(sock)
        ms = [m for m in decode_server_frame(data) if isinstance(m, ReducerResult)]
        if ms:
            assert ms[0].request_id == 21 and ms[0].result.tag in ("Ok", "OkEmpty"), ms
            break
    sock.close()


def answer(sock: socket.socket, request_id: int, within: float = 20):
    """The next server message answering `request_id` (transaction updates in between are skipped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        opcode, data = read_frame(sock)
        assert opcode == 0x2, (opcode, data)
        for m in decode_server_frame(data):
            if getattr(m, "request_id", None) == request_id:
                return m
    raise AssertionError(f"no answer to request {request_id}")


def test_subscriptions_per_client_and_query_text_are_capped(server, bystander, hostile):
    """This server allows 64 subscribed queries per client and 4 KiB per query text (subscription_queries,
    query_text_bytes): past either the client gets a SubscriptionError / Err naming the limit and stays
    connected; a client that keeps subscribing cannot make the server hold more."""
    sock = ws_connect(server, "feed")
    read_frame(sock)
    queries = [f"SELECT * FROM counter WHERE id = {i}" for i in range(64)]
    sock.sendall(frame(encode_client(Subscribe(1, 1, queries))))
    assert isinstance(answer(sock, 1), SubscribeApplied)
    sock.sendall(frame(encode_client(Subscribe(2, 2, ["SELECT * FROM counter WHERE id = 1000"]))))
    m = answer(sock, 2)
    assert isinstance(m, SubscriptionError) and "subscription_queries" in m.error, m
    sock.sendall(frame(encode_client(Subscribe(3, 3, []))))  # empty sets are not free either
    m = answer(sock, 3)
    assert isinstance(m, SubscriptionError) and "subscription_queries" in m.error, m

    long_query = "SELECT * FROM counter WHERE id = 1" + " " * 5000
    sock.sendall(frame(encode_client(OneOffQuery(4, long_query))))
    m = answer(sock, 4)
    assert isinstance(m, OneOffQueryResult) and m.result.tag == "err" and "query_text_bytes" in m.result.value, m
    sock.sendall(frame(encode_client(Unsubscribe(5, 1))))
    assert isinstance(answer(sock, 5), UnsubscribeApplied)
    sock.sendall(frame(encode_client(Subscribe(6, 6, [long_query]))))
    m = answer(sock, 6)
    assert isinstance(m, SubscriptionError) and "query_text_bytes" in m.error, m

    # the attack: 400 Subscribe messages of 16 distinct ~4 KiB queries each (~25 MiB of query text)
    before = server.rss_mib()
    applied = refused = 0
    with PingProbe(server, bystander) as probe:
        for k in range(400):
            qs = [f"SELECT * FROM blob WHERE id = {k * 16 + j}" + " " * 4000 for j in range(16)]
            sock.sendall(frame(encode_client(Subscribe(100 + k, 100 + k, qs))))
            m = answer(sock, 100 + k)
            applied += isinstance(m, SubscribeApplied)
            refused += isinstance(m, SubscriptionError) and "subscription_queries" in m.error
    assert (applied, refused) == (4, 396)  # 4 x 16 = 64 queries held, the rest refused
    assert server.alive(), server.output()
    probe.check()
    bystander.check()
    assert probe.rss_peak - before < 60, (before, probe.rss_peak)
    sock.sendall(frame(encode_client(OneOffQuery(7, "SELECT * FROM counter WHERE id = 1"))))
    m = answer(sock, 7)
    assert isinstance(m, OneOffQueryResult) and m.result.tag == "ok", m  # still connected and served
    sock.close()


def test_memory_of_kicked_clients_is_given_back(tmp_path):
    """8 clients that never read each fill a 24 MiB outbox (~190 MiB held at the peak); once they are kicked and
    gone, the server's resident memory falls back to what the stored rows need plus slack (the allocator may keep
    some; the server trims the C heap after a kick)."""
    srv = Server(tmp_path / "data", {"ws_outbox_bytes": "24m"})
    try:
        token = srv.token()
        status, body = srv.publish(wasm(HOSTILE_WAT), "feed", token)
        assert status == 200, body
        before = srv.rss_mib()
        slow = []
        for i in range(SLOW_CLIENTS):
            sock = ws_connect(srv, "feed", rcvbuf=4096)
            sock.sendall(frame(encode_client(Subscribe(i + 1, i + 1, ["SELECT * FROM blob"]))))
            slow.append(sock)
        row = "k" * (1 << 20)
        with PingProbe(srv) as probe:
            for i in range(40):  # 40 MiB of rows: each client's outbox reaches its 24 MiB budget
                status, body = srv.call("feed", "put_blob", [i, row], token)
                assert status == 200, body
        probe.check()
        for sock in slow:
            assert dropped(sock, within=10), "a client that never read was not disconnected"
            sock.close()
        deadline = time.monotonic() + 10
        after = srv.rss_mib()
        while after - before > 40 + 64 and time.monotonic() < deadline:  # rows + slack
            time.sleep(0.2)
            after = srv.rss_mib()
        print(f"RSS MiB: before {before:.0f}, peak {probe.rss_peak:.0f}, after the kicks {after:.0f}")
        assert probe.rss_peak - before > 150, "the slow clients never held their outboxes: nothing was measured"
        assert after - before < 40 + 64, (before, probe.rss_peak, after)
        assert srv.alive()
    finally:
        srv.stop()


def upgrade(server: Server, db: str, source: str) -> tuple[bytes, socket.socket]:
    """A WebSocket upgrade from a given loopback source address: the response head (plus body when refused)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/database/{db}/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {V2_BSATN}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(head.split(b"\r\n\r\n", 1)[1]) < length:
            head += sock.recv(length)
    return head, sock


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("capped-ws") / "data",
                 {"ws_connections": "10", "ws_connections_per_address": "6"})
    yield srv
    srv.stop()


def test_connection_limits_refuse_a_flood_before_the_handshake_and_free_slots_on_close(capped):
    """One address cannot take every slot, the server as a whole has a cap, refusals name their limit, HTTP
    keeps answering, and a slot is free again once its client goes away (closed with no close handshake)."""
    publish_hostile(capped, "flooded")
    bystander = Bystander(capped)
    held: list[socket.socket] = []
    try:
        with PingProbe(capped, bystander) as probe:
            for _ in range(6):
                head, sock = upgrade(capped, "flooded", "127.0.0.2")
                assert head.startswith(b"HTTP/1.1 101"), head
                held.append(sock)
            head, sock = upgrade(capped, "flooded", "127.0.0.2")
            sock.close()
            assert head.startswith(b"HTTP/1.1 429"), head
            assert b"too many WebSocket connections from 127.0.0.2: 6 open (limit ws_connections_per_address)" in head
            for _ in range(4):  # another address still gets in, up to the server's cap
                head, sock = upgrade(capped, "flooded", "127.0.0.3")
                assert head.startswith(b"HTTP/1.1 101"), head
                held.append(sock)
            head, sock = upgrade(capped, "flooded", "127.0.0.4")
            sock.close()
            assert head.startswith(b"HTTP/1.1 503"), head
            assert b"too many WebSocket connections: 10 open (limit ws_connections)" in head

            held.pop(0).close()  # an abrupt close frees its slot once the server sees the EOF
            deadline = time.monotonic() + 10
            while True:
                head, sock = upgrade(capped, "flooded", "127.0.0.4")
                if head.startswith(b"HTTP/1.1 101"):
                    held.append(sock)
                    break
                sock.close()
                assert time.monotonic() < deadline, head
                time.sleep(0.1)
            assert capped.request("GET", "/v1/ping")[0] == 200
    finally:
        for sock in held:
            sock.close()
    assert capped.alive(), capped.output()
    probe.check()
    bystander.check()
