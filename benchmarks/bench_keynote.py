"""Upstream's keynote transfer workload against `spacetime-py start`, with a SQLite baseline in the same run.

    python benchmarks/bench_keynote.py                          # 100k accounts, alpha 0 and 1.5, 10 s each
    python benchmarks/bench_keynote.py --accounts 10000 --seconds 4 --connections 8 --inflight 8   # quick
    python benchmarks/bench_keynote.py --alpha 0 --subscribers 100   # + fan-out to 100 subscribers
    python benchmarks/bench_keynote.py --alpha 0 --single            # + 1 connection x 1 call in flight
    python benchmarks/bench_keynote.py --compare-root /work/main --compare-durability group   # before/after

Server under test: examples/keynote published on a data dir, served by `harness.server.app.serve` in a child
process with group commit (`--durability`, default "group": every acknowledged transfer is fsynced; clients use
confirmed reads, the default, so a ReducerResult means durable).  Baseline: a small WebSocket RPC server (aiohttp,
child process) doing the same transfer in SQLite, WAL mode, `synchronous=FULL`, one transaction per request on
one database thread.  One load generator drives both: N connections x M calls in flight, accounts drawn from a
Zipf distribution (alpha 0 = uniform; 1.5 = a few hot accounts), amount 1; it reports committed transfers/s
and the p50/p99 round trip.

The load generator (`--client raw`, the default) is a minimal RFC 6455 client on an asyncio Protocol, so that
it takes little of the CPU it shares with the servers: each connection pre-encodes a pool of requests with
spacetime_core.protocol's encoder (v2 BSATN, the protocol's one codec; masked once at setup) and cycles
through it (request id = pool slot, so a slot is reused only after its reply came back); every reply is
decoded with `decode_server_frame`.  `--client aiohttp` is the previous generator (aiohttp's ws client,
encoding per call), kept to compare.  The report line gives the generator's own CPU per call.

Server-side figures per run: CPU per call of the event loop, the database executor and the durability threads
(/proc per-thread times), fsyncs/s and transactions per fsync (read from the server's GroupCommitters), and the
share of fsyncs a lone call's executor thread did itself (durability.py ``sync_inline``; 0% on older checkouts),
and the duration of each fsync (p50/p99/max).  The counters are read when the load starts, after the
subscribers' initial queries (`SELECT ... WHERE id >= W` scans all accounts: the id index is a hash index).

Fan-out (`--subscribers N`): N more connections each subscribe to `SELECT * FROM accounts WHERE id >= W`
(the `--watch` highest account ids) while the load runs; the load draws its accounts below the two highest ids,
and a probe connection transfers 1 between those two every `--probe-ms` (one call in flight).  After the k-th
probe, account n-2 holds INITIAL - k, so each subscriber's update is matched to its probe exactly; the figure is
commit-to-delivery: the subscriber's receive time minus the probe transaction's timestamp (taken by the server
when the reducer starts, from the caller's ReducerResult; same machine clock), with confirmed reads (so it
includes the wait for the fsync).  The load transfers that touch watched accounts are delivered too (load on
the fan-out path) but not timed.  Also printed: how late the server's event loop runs a callback queued from
another thread (sampled every 5 ms) and the load generator's own loop lag, since the subscribers' receive
times are taken on that loop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import itertools
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spacetime_core.protocol import (  # noqa: E402
    V2_BSATN,
    CallReducer,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    decode_server_frame,
    encode_client,
)
from spacetime_core.sats import Identity  # noqa: E402

OWNER = Identity.from_bytes(bytes(range(32)))
INITIAL_BALANCE = 1_000_000_000
POOL = 1024  # pre-encoded requests per connection (must exceed --inflight)
ACCOUNT_ROW = struct.Struct("<Iq")  # the keynote module's `accounts` row {id: u32, balance: i64} in BSATN

SPACETIME_SERVER = textwrap.dedent("""
    # argv: data dir, port, durability, checkout root, commit delay in ms ("" = that checkout's default),
    # and "split" for the split server (gateway + database process: its commit log is in the child).
    # A line on stdin is answered with one JSON line: fsyncs so far, the commit log's end offset, thread names.
    import json, logging, sys, threading
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, sys.argv[4])
    from harness.host import durability
    if sys.argv[6:] == ["split"]:
        from harness.server.gateway import serve_split as serve
    else:
        from harness.server.app import serve
    if sys.argv[5]:
        durability.MAX_DELAY_S = float(sys.argv[5]) / 1e3
    import asyncio, collections, os, time
    committers = []
    durable_s = []  # every transaction's time from its append (os.write) to its fsync's publication
    fsync_s = []  # duration of every commit barrier (fsync) since the last stats line
    lag_s = []  # how late the event loop ran a callback queued from another thread (every 5 ms)
    _init = durability.GroupCommitter.__init__
    def _register(self, *a, **k):
        _init(self, *a, **k)
        committers.append(self)
        barrier = self.commitlog.commit_barrier
        def timed():
            t = time.perf_counter()
            try:
                return barrier()
            finally:
                fsync_s.append(time.perf_counter() - t)
        self.commitlog.commit_barrier = timed
        appended = collections.deque()  # (tx offset, when written), for append -> durable
        append = self.commitlog.append
        def timed_append(payload):
            off = append(payload)
            appended.append((off, time.perf_counter()))
            return off
        self.commitlog.append = timed_append
        def on_durable(offset):
            now = time.perf_counter()
            while appended and appended[0][0] <= offset:
                durable_s.append(now - appended.popleft()[1])
        self.add_listener(on_durable)
    durability.GroupCommitter.__init__ = _register
    def stats():
        for _ in sys.stdin:
            f, l, d = fsync_s[:], lag_s[:], durable_s[:]
            del fsync_s[:len(f)], lag_s[:len(l)], durable_s[:len(d)]
            print(json.dumps({"fsyncs": sum(c.batches for c in committers),
                              "inline": sum(getattr(c, "inline", 0) for c in committers),
                              "txs": sum(c.commitlog.next_offset for c in committers),
                              "fsync_s": f, "lag_s": l, "durable_s": d,
                              "threads": {t.native_id: t.name for t in threading.enumerate()}}), flush=True)
    threading.Thread(target=stats, daemon=True).start()
    def watch_loop(loop):
        while not loop.is_closed():
            t = time.perf_counter()
            try:
                loop.call_soon_threadsafe(lambda t=t: lag_s.append(time.perf_counter() - t))
            except RuntimeError:
                return
            time.sleep(0.005)
    if sys.argv[6:] != ["split"] and os.environ.get("BENCH_LOOP_LAG"):  # (--subscribers: it costs the loop a bit)
        from harness.server import app as _app
        _create = _app.create_app
        def create_app(*a, **k):
            app = _create(*a, **k)
            async def on_startup(app):
                threading.Thread(target=watch_loop, args=(asyncio.get_running_loop(),), daemon=True).start()
            app.on_startup.append(on_startup)
            return app
        _app.create_app = create_app
    serve(sys.argv[1], "127.0.0.1", int(sys.argv[2]), print_fn=None, durability=sys.argv[3])
""")

SQLITE_SERVER = textwrap.dedent("""
    # The baseline: WebSocket RPC over aiohttp; requests <u32 id, u32 from, u32 to, i64 amount>, replies
    # <u32 id, u8 ok>.  One SQLite connection on one thread, a transaction per request, WAL + synchronous=FULL.
    import asyncio, concurrent.futures, sqlite3, struct, sys
    from aiohttp import web, WSMsgType
    path, port, n, balance = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    pool = concurrent.futures.ThreadPoolExecutor(1)
    con = None

    def setup():
        global con
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        con.execute("DELETE FROM accounts")
        con.execute("BEGIN")
        con.executemany("INSERT INTO accounts VALUES (?, ?)", ((i, balance) for i in range(n)))
        con.execute("COMMIT")

    def transfer(src, dst, amount):
        if src == dst or amount <= 0:
            return 0
        con.execute("BEGIN IMMEDIATE")
        try:
            a = con.execute("SELECT balance FROM accounts WHERE id = ?", (src,)).fetchone()
            b = con.execute("SELECT balance FROM accounts WHERE id = ?", (dst,)).fetchone()
            if a is None or b is None or a[0] < amount:
                con.execute("ROLLBACK")
                return 0
            con.execute("UPDATE accounts SET balance = ? WHERE id = ?", (a[0] - amount, src))
            con.execute("UPDATE accounts SET balance = ? WHERE id = ?", (b[0] + amount, dst))
            con.execute("COMMIT")
            return 1
        except BaseException:
            con.execute("ROLLBACK")
            raise

    async def handle(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                break
            rid, s, d, a = struct.unpack("<IIIq", msg.data)
            out = await loop.run_in_executor(pool, transfer, s, d, a)
            await ws.send_bytes(struct.pack("<IB", rid, out))
        return ws

    pool.submit(setup).result()
    app = web.Application()
    app.router.add_get("/rpc", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


class Zipf:
    """Account ids 0..n-1 with P(k) proportional to 1/(k+1)^alpha (alpha 0: uniform)."""

    def __init__(self, n: int, alpha: float, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        if alpha == 0:
            self.cdf = None
        else:
            self.cdf = list(itertools.accumulate(1.0 / (k + 1) ** alpha for k in range(n)))

    def pair(self) -> tuple[int, int]:
        while True:
            if self.cdf is None:
                a, b = self.rng.randrange(self.n), self.rng.randrange(self.n)
            else:
                top = self.cdf[-1]
                a = bisect.bisect_left(self.cdf, self.rng.random() * top)
                b = bisect.bisect_left(self.cdf, self.rng.random() * top)
            if a != b:
                return min(a, self.n - 1), min(b, self.n - 1)


class Result:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.lat: list[float] = []
        self.client_cpu = 0.0  # CPU seconds of this (load generator) process during the run
        self.fanout: list[float] = []  # commit-to-subscriber-delivery latencies (--subscribers)
        self.probe_ack: list[float] = []  # commit-to-caller-reply latencies of the probes
        self.client_lag: list[float] = []  # the load generator's own loop lag (oversleep of 5 ms sleeps)


def spacetime_request(rid: int, a: int, b: int) -> bytes:
    return encode_client(CallReducer(rid, 0, "transfer", struct.pack("<IIq", a, b, 1)))


def spacetime_replies(data: bytes) -> list[tuple[int, bool]]:
    return [(m.request_id, m.result.tag == "Ok") for m in decode_server_frame(data) if isinstance(m, ReducerResult)]


def sqlite_request(rid: int, a: int, b: int) -> bytes:
    return struct.pack("<IIIq", rid, a, b, 1)


def sqlite_replies(data: bytes) -> list[tuple[int, bool]]:
    rid, ok = struct.unpack("<IB", data)
    return [(rid, ok == 1)]


# ---------------------------------------------------------------------------------------------- raw WebSocket

def ws_frame(payload: bytes, opcode: int = 2) -> bytes:
    """One masked client frame (RFC 6455 5.2; clients must mask). Done once per pooled request, not per send."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return head + key + masked


class WsClient(asyncio.Protocol):
    """A minimal WebSocket client connection: handshake, unfragmented binary messages from the server (what the
    servers here send), pongs to pings.  ``on_messages(payloads)`` gets all messages of one read at once."""

    def __init__(self, host: str, path: str, protocol: str | None,
                 on_messages: Callable[[list[bytes]], None]) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n"
                        + (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "") + "\r\n").encode()
        self.on_messages = on_messages
        loop = asyncio.get_running_loop()
        self.opened = loop.create_future()
        self.closed = loop.create_future()
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:buf.find(b"\r\n")])
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(f"handshake refused: {bytes(buf[:end]).decode()}"))
                self.transport.close()
                return
            del buf[:end + 4]
            self.opened.set_result(None)
        msgs = []
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, ln = buf[pos], buf[pos + 1]
            hdr = 2
            if ln & 0x80:
                raise ConnectionError("masked frame from the server")
            if ln == 126:
                if n - pos < 4:
                    break
                ln, hdr = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln, hdr = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if n - pos < hdr + ln:
                break
            payload = bytes(buf[pos + hdr:pos + hdr + ln])
            pos += hdr + ln
            op = b0 & 0x0F
            if op == 2 and b0 & 0x80:
                msgs.append(payload)
            elif op == 9:
                self.transport.write(ws_frame(payload, 10))
            elif op == 8:
                if not self.closed.done():
                    self.closed.set_result(payload)
            elif op != 10:
                raise ConnectionError(f"unexpected frame opcode {op} (fin {b0 >> 7})")
        if pos:
            del buf[:pos]
        if msgs:
            self.on_messages(msgs)

    def send(self, frames: bytes) -> None:
        self.transport.write(frames)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(struct.pack(">H", 1000), 8))
            self.transport.close()


async def ws_connect(url: str, protocol: str | None, on_messages: Callable[[list[bytes]], None]) -> WsClient:
    rest = url.removeprefix("ws://")
    hostport, path = rest.split("/", 1)
    host, port = hostport.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WsClient(hostport, "/" + path, protocol, on_messages),
                                             host, int(port))
    await client.opened
    return client


class Timing:
    """The measurement window: warm-up, then `seconds` counted; calls sent after the end are not counted."""

    def __init__(self, seconds: float, warmup: float) -> None:
        self.start = time.perf_counter()
        self.measure = self.start + warmup
        self.end = self.measure + seconds


async def load_conn(url: str, kind: str, inflight: int, pairs: list[tuple[int, int]], t: Timing,
                    res: Result, coalesce: bool) -> None:
    """One connection keeping `inflight` transfers in flight until the window ends (raw client)."""
    encode = spacetime_request if kind == "spacetime" else sqlite_request
    decode = spacetime_replies if kind == "spacetime" else sqlite_replies
    pool = [ws_frame(encode(slot, a, b)) for slot, (a, b) in enumerate(pairs)]  # request id = pool slot
    sent: dict[int, float] = {}
    slots = itertools.cycle(range(len(pool)))
    done = asyncio.get_running_loop().create_future()
    lat = res.lat

    def take(now: float) -> bytes:
        slot = next(slots)
        if slot in sent:
            raise RuntimeError(f"request slot {slot} reused while still in flight")
        sent[slot] = now
        return pool[slot]

    def on_messages(msgs: list[bytes]) -> None:
        now = time.perf_counter()
        out = []
        for data in msgs:
            for rid, ok in decode(data):
                t0 = sent.pop(rid)
                if t.measure <= t0 and now <= t.end:
                    if ok:
                        res.ok += 1
                    else:
                        res.failed += 1
                    lat.append(now - t0)
                if now < t.end:
                    out.append(take(now))
        if out:
            if coalesce:
                ws.send(b"".join(out))
            else:  # one write per call, as independent callers (and the aiohttp generator) do
                for frame in out:
                    ws.send(frame)
        elif not sent and not done.done():
            done.set_result(None)

    ws = await ws_connect(url, V2_BSATN if kind == "spacetime" else None, on_messages)
    for _ in range(inflight):
        ws.send(take(time.perf_counter()))
    try:
        await asyncio.wait_for(done, t.end - time.perf_counter() + 30)
    finally:
        ws.close()


async def subscriber(url: str, watch_from: int, probe_account: int, recv: dict[int, list[float]],
                     ready: asyncio.Event, n_ready: list[int], n_subs: int) -> WsClient:
    """Subscribe to the watched accounts; note when each probe's update arrives: the k-th probe of this run
    leaves `probe_account` at its balance in SubscribeApplied (before any probe of this run) minus k."""
    base: list[int] = []

    def on_messages(msgs: list[bytes]) -> None:
        now = time.time()
        for data in msgs:
            for m in decode_server_frame(data):
                if isinstance(m, TransactionUpdate):
                    for qs in m.query_sets:
                        for tu in qs.tables:
                            for rows in tu.rows:
                                for row in rows.value.inserts.rows():
                                    acct, balance = ACCOUNT_ROW.unpack(row)
                                    if acct == probe_account:
                                        recv.setdefault(base[0] - balance, []).append(now)
                elif isinstance(m, SubscribeApplied):
                    for table in m.rows.tables:
                        for row in table.rows.rows():
                            acct, balance = ACCOUNT_ROW.unpack(row)
                            if acct == probe_account:
                                base.append(balance)
                    if len(base) != 1:
                        raise RuntimeError(f"probe account {probe_account} not in the subscription's rows")
                    n_ready[0] += 1
                    if n_ready[0] == n_subs:
                        ready.set()
                elif isinstance(m, SubscriptionError):
                    raise RuntimeError(f"subscription failed: {m.error}")

    ws = await ws_connect(url, V2_BSATN, on_messages)
    ws.send(ws_frame(encode_client(Subscribe(1, 1, [f"SELECT * FROM accounts WHERE id >= {watch_from}"]))))
    return ws


async def prober(url: str, src: int, dst: int, every: float, t: Timing, sent_ts: dict[int, int],
                 acks: dict[int, float]) -> None:
    """Transfer 1 from `src` to `dst` every `every` seconds, one call in flight; the k-th committed probe leaves
    `src` at INITIAL - k: remember its transaction timestamp (server clock, µs) and when its reply came."""
    got: asyncio.Queue = asyncio.Queue()

    def on_messages(msgs: list[bytes]) -> None:
        now = time.time()
        for data in msgs:
            for m in decode_server_frame(data):
                if isinstance(m, ReducerResult):
                    got.put_nowait((m, now))

    ws = await ws_connect(url, V2_BSATN, on_messages)
    k = 0
    try:
        while time.perf_counter() < t.end:
            ws.send(ws_frame(spacetime_request(k + 1, src, dst)))
            m, now = await asyncio.wait_for(got.get(), 60)
            if m.result.tag != "Ok":
                raise RuntimeError(f"probe transfer failed: {m.result}")
            k += 1
            if time.perf_counter() >= t.measure:
                sent_ts[k] = m.timestamp.to_micros()
                acks[k] = now
            await asyncio.sleep(every)
    finally:
        ws.close()


async def loop_lag(t: Timing, out: list[float], every: float = 0.005) -> None:
    """How late this process's loop wakes from `every`-second sleeps during the measurement: a subscriber's
    receive time is taken on this loop, so its queueing is part of the fan-out figure."""
    while time.perf_counter() < t.end:
        t0 = time.perf_counter()
        await asyncio.sleep(every)
        if t0 >= t.measure:
            out.append(time.perf_counter() - t0 - every)


async def drive_raw(urls: list[str], kind: str, n_conn: int, inflight: int, seconds: float, warmup: float,
                    zipf: Zipf, subscribers: int = 0, watch_from: int = 0, probe: tuple[int, int] = (0, 0),
                    probe_every: float = 0.01, coalesce: bool = False,
                    on_ready: Callable[[], None] | None = None) -> Result:
    """N connections x M calls in flight for `warmup + seconds` (plus the fan-out clients); counts and
    latencies of the last `seconds`.  `on_ready` runs once the subscribers are subscribed, right before the
    load starts (the server's CPU counters are read there: the subscriptions' initial evaluation is setup)."""
    res = Result()
    assert inflight < POOL
    pairs = [[zipf.pair() for _ in range(POOL)] for _ in range(n_conn)]
    subs: list[WsClient] = []
    recv: dict[int, list[float]] = {}
    sent_ts: dict[int, int] = {}
    acks: dict[int, float] = {}
    if subscribers:
        ready, n_ready = asyncio.Event(), [0]
        subs = [await subscriber(urls[0], watch_from, probe[0], recv, ready, n_ready, subscribers)
                for _ in range(subscribers)]
        await asyncio.wait_for(ready.wait(), 120)
    if on_ready is not None:
        on_ready()
    cpu0 = time.process_time()
    t = Timing(seconds, warmup)
    jobs = [load_conn(urls[k % len(urls)], kind, inflight, pairs[k], t, res, coalesce) for k in range(n_conn)]
    if subscribers:
        jobs.append(prober(urls[0], probe[0], probe[1], probe_every, t, sent_ts, acks))
        jobs.append(loop_lag(t, res.client_lag))
    await asyncio.gather(*jobs)
    res.client_cpu = time.process_time() - cpu0
    if subscribers:
        await asyncio.sleep(0.5)  # the last probes' updates
        for ws in subs:
            ws.close()
        for k, ts in sent_ts.items():
            res.fanout += [r - ts / 1e6 for r in recv.get(k, [])]
            res.probe_ack.append(acks[k] - ts / 1e6)
        expected = len(sent_ts) * subscribers
        if len(res.fanout) < expected:
            print(f"    warning: {expected - len(res.fanout)} of {expected} probe updates not received",
                  flush=True)
    return res


async def drive_aiohttp(urls: list[str], kind: str, n_conn: int, inflight: int, seconds: float, warmup: float,
                        zipf: Zipf) -> Result:
    """The previous generator: aiohttp's ws client, one request encoded per call (to compare CPU per call)."""
    import aiohttp

    res = Result()
    cpu0 = time.process_time()
    t = Timing(seconds, warmup)
    encode = spacetime_request if kind == "spacetime" else sqlite_request
    decode = spacetime_replies if kind == "spacetime" else sqlite_replies

    async def conn_loop(session: aiohttp.ClientSession, url: str) -> None:
        if kind == "spacetime":
            ws = await session.ws_connect(url, protocols=(V2_BSATN,), max_msg_size=0)
            await ws.receive()  # InitialConnection
        else:
            ws = await session.ws_connect(url, max_msg_size=0)
        sent: dict[int, float] = {}
        ids = itertools.count(1)

        async def send() -> None:
            rid = next(ids)
            a, b = zipf.pair()
            data = encode(rid, a, b)
            sent[rid] = time.perf_counter()
            await ws.send_bytes(data)

        for _ in range(inflight):
            await send()
        while sent:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                raise SystemExit(f"connection closed: {msg}")
            now = time.perf_counter()
            for rid, ok in decode(msg.data):
                t0 = sent.pop(rid)
                if t.measure <= t0 and now <= t.end:
                    if ok:
                        res.ok += 1
                    else:
                        res.failed += 1
                    res.lat.append(now - t0)
                if now < t.end:
                    await send()
        await ws.close()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(conn_loop(session, urls[k % len(urls)]) for k in range(n_conn)))
    res.client_cpu = time.process_time() - cpu0
    return res


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(len(xs) * q), len(xs) - 1)] * 1e3 if xs else float("nan")


def report(name: str, res: Result, seconds: float, warmup: float) -> float:
    tps = res.ok / seconds
    calls = (res.ok + res.failed) * (seconds + warmup) / seconds  # incl. warm-up
    print(f"  {name:<28} {tps:9.0f} TPS   p50 {pct(res.lat, 0.5):8.2f} ms   p99 {pct(res.lat, 0.99):8.2f} ms   "
          f"(failed {res.failed}; load generator {res.client_cpu / max(calls, 1) * 1e6:.0f} us CPU/call)",
          flush=True)
    if res.fanout:
        print(f"    fan-out commit->subscriber: p50 {pct(res.fanout, 0.5):.2f} ms  p99 {pct(res.fanout, 0.99):.2f} ms"
              f"  ({len(res.fanout)} deliveries; probe commit->caller p50 {pct(res.probe_ack, 0.5):.2f} ms"
              f"  p99 {pct(res.probe_ack, 0.99):.2f} ms; load generator loop lag p50 {pct(res.client_lag, 0.5):.2f}"
              f" p99 {pct(res.client_lag, 0.99):.2f} ms)", flush=True)
    return tps


class ServerStats:
    """Per-thread CPU (Linux /proc) and group-commit counters of one spacetime-py server child."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def snapshot(self) -> dict:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        info = json.loads(self.proc.stdout.readline())
        tick = os.sysconf("SC_CLK_TCK")
        cpu: dict[str, float] = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu[task.name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        info["cpu"] = cpu
        info["children"] = sum(process_cpu(int(c)) for c in
                               Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split())
        info["t"] = time.perf_counter()
        return info

    def print_delta(self, a: dict, b: dict, calls: float) -> None:
        names = {**a["threads"], **b["threads"]}
        groups = {"event loop": 0.0, "executor": 0.0, "durability": 0.0, "other": 0.0}
        for tid, c in b["cpu"].items():
            d = c - a["cpu"].get(tid, 0.0)
            name = names.get(tid, "")
            g = ("event loop" if int(tid) == self.proc.pid else "executor" if name.startswith("db-")
                 else "durability" if name.startswith("durability") else "other")
            groups[g] += d
        dt = b["t"] - a["t"]
        fsyncs = b["fsyncs"] - a["fsyncs"]
        txs = b["txs"] - a["txs"]
        inline = b.get("inline", 0) - a.get("inline", 0)
        if b["children"]:  # the split server: its database process
            groups["database process"] = b["children"] - a["children"]
        per = ", ".join(f"{g} {v / max(calls, 1) * 1e6:.0f}" for g, v in groups.items())
        print(f"    server CPU us/call: {per};  {fsyncs / dt:.0f} fsyncs/s, "
              f"{txs / max(fsyncs, 1):.1f} tx/fsync"
              f" ({inline / max(fsyncs, 1):.0%} on the executor thread)", flush=True)
        f, lag = b.get("fsync_s", []), b.get("lag_s", [])
        parts = []  # where a confirmed result's time after its commit goes: the fsync, then the loop's queue
        if f:
            parts.append(f"fsync ms p50 {pct(f, 0.5):.2f} p99 {pct(f, 0.99):.2f} max {max(f) * 1e3:.1f}")
        d = b.get("durable_s", [])
        if d:
            parts.append(f"append->durable ms p50 {pct(d, 0.5):.2f} p99 {pct(d, 0.99):.2f}")
        if lag:
            parts.append(f"server loop lag (sampled every 5 ms) ms p50 {pct(lag, 0.5):.2f} p99 {pct(lag, 0.99):.2f}"
                         f" max {max(lag) * 1e3:.1f}")
        if parts:
            print("    " + ";  ".join(parts), flush=True)


def process_cpu(pid: int) -> float:
    """CPU seconds of every thread of process `pid` (Linux /proc; 0 once it is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / tick


def setup_spacetime(data: Path, accounts: int, wasm: bytes, names: list[str]) -> None:
    """Publish examples/keynote on `data` as each of `names` and seed it (in-process, before the server
    starts)."""
    from harness.server.registry import Registry

    reg = Registry(data, mint_identity=lambda: Identity.from_bytes(os.urandom(32)), durability="none",
                   start_schedulers=False)
    for name in names:
        reg.publish(wasm, OWNER, name)
        db = reg.lookup(name).database()
        out = db.call_reducer("seed", [accounts, INITIAL_BALANCE])
        assert out.committed, out.error
        db.snapshot()
    reg.close()


def start_spacetime(data: Path, port: int, durability: str, root: Path, delay_ms: str,
                    split: bool = False, loop_lag: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SPACETIME_SERVER, str(data), str(port), durability,
                             str(root), delay_ms] + (["split"] if split else []),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=root, env={**os.environ, "BENCH_LOOP_LAG": "1" if loop_lag else ""})
    wait_listening(port, proc)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--inflight", type=int, default=16, help="calls in flight per connection")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--alpha", type=float, nargs="*", default=[0.0, 1.5])
    ap.add_argument("--durability", choices=["group", "every", "none"], default="group")
    ap.add_argument("--commit-delay", default="", metavar="MS",
                    help="the server's group-commit delay under load (harness/host/durability.py MAX_DELAY_S); "
                         "default: the checkout's own")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--compare-root", type=Path, default=None,
                    help="also run the server from this checkout (e.g. the main branch) on a copy of the data")
    ap.add_argument("--compare-durability", default="every", help="--durability for the --compare-root server")
    ap.add_argument("--compare-commit-delay", default="", metavar="MS", help="--commit-delay for that server")
    ap.add_argument("--split", action="store_true",
                    help="also run the split server (harness.server.gateway: gateway + database process) on a "
                         "copy of the data")
    ap.add_argument("--databases", type=int, default=1,
                    help="spread the connections over this many keynote databases (one executor thread each)")
    ap.add_argument("--client", choices=["raw", "aiohttp", "both"], default="raw",
                    help="load generator: the raw asyncio client, aiohttp's ws client (the previous one), or both")
    ap.add_argument("--coalesce", action="store_true",
                    help="raw client: send the calls that one read of replies frees in one write (a pipelining "
                         "client; cheaper for both sides) instead of one write per call")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every configuration this many times, rotating the order of the servers")
    ap.add_argument("--single", action="store_true", help="also run 1 connection x 1 call in flight")
    ap.add_argument("--subscribers", type=int, default=0,
                    help="fan-out: this many subscriber connections (raw client, spacetime-py servers)")
    ap.add_argument("--watch", type=int, default=1000, help="fan-out: subscribers watch the top WATCH account ids")
    ap.add_argument("--probe-ms", type=float, default=10.0, help="fan-out: a probe transfer every this many ms")
    ap.add_argument("--port-base", type=int, default=0, help="listen on ports from here (default: free ports)")
    args = ap.parse_args()

    from module_sdk.build import build

    tmp = Path(tempfile.mkdtemp(prefix="bench-keynote-"))
    procs: list[subprocess.Popen] = []
    try:
        t = time.perf_counter()
        wasm = build(ROOT / "examples" / "keynote", tmp / "keynote.wasm").output.read_bytes()
        names = ["keynote"] + [f"keynote{k}" for k in range(2, args.databases + 1)]
        setup_spacetime(tmp / "data", args.accounts, wasm, names)
        print(f"keynote: {len(names)} database(s) x {args.accounts} accounts, {args.connections} connections x "
              f"{args.inflight} in flight, "
              f"{args.seconds:g} s per run (+{args.warmup:g} s warm-up); setup {time.perf_counter() - t:.1f} s",
              flush=True)
        if args.port_base:
            st_port, sq_port, cmp_port = args.port_base, args.port_base + 1, args.port_base + 2
        else:
            st_port, sq_port, cmp_port = free_port(), free_port(), free_port()
        if args.compare_root:
            shutil.copytree(tmp / "data", tmp / "data-compare")
        servers: list[tuple[str, subprocess.Popen, list[str]]] = []  # (label, process, urls)
        lag = bool(args.subscribers)  # sample the server loop's lag (fan-out runs only)
        st_proc = start_spacetime(tmp / "data", st_port, args.durability, ROOT, args.commit_delay, loop_lag=lag)
        procs.append(st_proc)
        delay = f", delay {args.commit_delay} ms" if args.commit_delay else ""
        servers.append((f"spacetime-py ({args.durability}{delay})", st_proc,
                        [f"ws://127.0.0.1:{st_port}/v1/database/{n}/subscribe?compression=None" for n in names]))
        if args.compare_root:
            cmp_proc = start_spacetime(tmp / "data-compare", cmp_port, args.compare_durability,
                                       args.compare_root.resolve(), args.compare_commit_delay, loop_lag=lag)
            procs.append(cmp_proc)
            delay = f", delay {args.compare_commit_delay} ms" if args.compare_commit_delay else ""
            servers.append((f"{args.compare_root.name} ({args.compare_durability}{delay})", cmp_proc,
                            [f"ws://127.0.0.1:{cmp_port}/v1/database/{n}/subscribe?compression=None"
                             for n in names]))
        if args.split:
            shutil.copytree(tmp / "data", tmp / "data-split")
            split_port = free_port() if not args.port_base else args.port_base + 3
            split_proc = start_spacetime(tmp / "data-split", split_port, args.durability, ROOT, args.commit_delay,
                                         split=True)
            procs.append(split_proc)
            servers.append((f"split ({args.durability})", split_proc,
                            [f"ws://127.0.0.1:{split_port}/v1/database/{n}/subscribe?compression=None"
                             for n in names]))
        if not args.skip_baseline:
            procs.append(subprocess.Popen([sys.executable, "-c", SQLITE_SERVER, str(tmp / "sqlite.db"),
                                           str(sq_port), str(args.accounts), str(INITIAL_BALANCE)]))
            wait_listening(sq_port, procs[-1])
            servers.append(("sqlite WAL synchronous=FULL", procs[-1], [f"ws://127.0.0.1:{sq_port}/rpc"]))
        clients = ["raw", "aiohttp"] if args.client == "both" else [args.client]
        shapes = [(args.connections, args.inflight)] + ([(1, 1)] if args.single else [])
        n_load = args.accounts - 2 if args.subscribers else args.accounts  # the top two: fan-out probes
        for alpha in args.alpha:
            for conns, inflight in shapes:
                print(f"alpha {alpha:g}, {conns} connection(s) x {inflight} in flight:", flush=True)
                tps: dict[str, list[float]] = {}
                for rnd in range(args.rounds):
                    for client in clients:
                        for label, proc, urls in servers[rnd % len(servers):] + servers[:rnd % len(servers)]:
                            kind = "sqlite" if label.startswith("sqlite") else "spacetime"
                            z = Zipf(n_load, alpha, 1 + rnd)
                            stats = ServerStats(proc) if kind == "spacetime" else None
                            s0 = stats.snapshot() if stats else None
                            fan = kind == "spacetime" and args.subscribers and (conns, inflight) == shapes[0]

                            def ready(stats=stats) -> None:  # the subscriptions' initial scans are not per call
                                nonlocal s0
                                s0 = stats.snapshot() if stats else None

                            if client == "raw":
                                res = asyncio.run(drive_raw(
                                    urls, kind, conns, inflight, args.seconds, args.warmup, z,
                                    subscribers=args.subscribers if fan else 0,
                                    watch_from=args.accounts - args.watch,
                                    probe=(args.accounts - 2, args.accounts - 1),
                                    probe_every=args.probe_ms / 1e3, coalesce=args.coalesce, on_ready=ready))
                            else:
                                res = asyncio.run(drive_aiohttp(urls, kind, conns, inflight, args.seconds,
                                                                args.warmup, z))
                            name = f"{label} [{client}]" if len(clients) > 1 else label
                            tps.setdefault(name, []).append(report(name, res, args.seconds, args.warmup))
                            if stats:
                                calls = (res.ok + res.failed) * (args.seconds + args.warmup) / args.seconds
                                stats.print_delta(s0, stats.snapshot(), calls)
                for client in clients:  # ratios within one load generator, round by round
                    names = [n for n in tps if n.endswith(f"[{client}]") or len(clients) == 1]
                    for name in names[1:]:
                        ratios = [f"{a / b:.2f}x" if b else "n/a (no calls)" for a, b in zip(tps[names[0]], tps[name])]
                        print(f"  ratio {names[0]} / {name}: " + ", ".join(ratios), flush=True)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
