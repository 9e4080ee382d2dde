"""WebSocket server throughput and latency, against the same reducer called in-process (`Database.call_reducer`)
in the same run.

    python benchmarks/bench_server.py [--quick]

The server (harness.server.websocket over aiohttp, one database with the test module) runs in a child process;
the clients are raw v2 connections (aiohttp) in this process.  Measures:
  * reducer round trips/s over one connection (send, wait for ReducerResult, repeat) and pipelined;
  * aggregate round trips/s over many connections at once;
  * fan-out: one client inserts a row, 100 subscribers receive the TransactionUpdate: p50/p99 latency from the
    call to each subscriber's receipt, and to the last subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from harness.host import Database  # noqa: E402
from module_sdk.build import build  # noqa: E402
from spacetime_core.protocol import (  # noqa: E402
    V2_BSATN,
    CallReducer,
    ReducerResult,
    Subscribe,
    TransactionUpdate,
    decode_server_frame,
    encode_client,
)
from spacetime_core.sats import Identity  # noqa: E402

OWNER = Identity.from_bytes(bytes(range(32)))
MODULE = '''
from module_sdk import ReducerContext, primary_key, reducer, table, u32


@table(public=True)
class Person:
    id: u32 = primary_key(auto_inc=True)
    name: str


@reducer
def noop(ctx: ReducerContext) -> None:
    pass


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name))
'''


def module_wasm() -> bytes:
    d = Path(tempfile.mkdtemp())
    (d / "benchmod.py").write_text(MODULE)
    return build(d / "benchmod.py", d / "benchmod.wasm").output.read_bytes()


# ---------------------------------------------------------------------------------------------------------
# server child process
# ---------------------------------------------------------------------------------------------------------

def serve(port_file: str) -> None:
    from aiohttp import web

    from harness.server.websocket import SubscribeEndpoint

    db = Database.create(module_wasm(), owner=OWNER)

    async def main():
        app = web.Application()
        SubscribeEndpoint(lambda name: db if name == "bench" else None, ping_interval=None).mount(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        Path(port_file).write_text(str(site._server.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------------------------------------

def s(text: str) -> bytes:
    b = text.encode()
    return len(b).to_bytes(4, "little") + b


class Client:
    def __init__(self, session, ws):
        self.session, self.ws = session, ws

    @classmethod
    async def open(cls, url):
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(url, protocols=(V2_BSATN,), max_msg_size=0)
        c = cls(session, ws)
        await c.recv()  # InitialConnection
        return c

    async def recv(self):
        m = await self.ws.receive()
        return decode_server_frame(m.data)[0]

    async def close(self):
        await self.ws.close()
        await self.session.close()


async def round_trips(c: Client, n: int, pipelined: bool = False) -> float:
    noop = [encode_client(CallReducer(i, 0, "noop", b"")) for i in range(n)]
    t0 = time.perf_counter()
    if pipelined:
        for f in noop:
            await c.ws.send_bytes(f)
        for _ in range(n):
            assert isinstance(await c.recv(), ReducerResult)
    else:
        for f in noop:
            await c.ws.send_bytes(f)
            assert isinstance(await c.recv(), ReducerResult)
    return time.perf_counter() - t0


async def bench(url: str, quick: bool) -> dict:
    res = {}
    n = 300 if quick else 2000
    c = await Client.open(url)
    await round_trips(c, 50)
    res["one connection, sequential"] = n / min([await round_trips(c, n) for _ in range(3)])
    res["one connection, pipelined"] = n / min([await round_trips(c, n, True) for _ in range(3)])
    await c.close()

    for nconn in (10, 50):
        clients = [await Client.open(url) for _ in range(nconn)]
        per = max(20, n // nconn)
        t0 = time.perf_counter()
        await asyncio.gather(*(round_trips(cl, per) for cl in clients))
        res[f"{nconn} connections, sequential each"] = nconn * per / (time.perf_counter() - t0)
        for cl in clients:
            await cl.close()

    nsub = 100
    subs = [await Client.open(url) for _ in range(nsub)]
    for cl in subs:
        await cl.ws.send_bytes(encode_client(Subscribe(0, 0, ["SELECT * FROM person"])))
        await cl.recv()
    caller = await Client.open(url)
    lat: list[float] = []
    last: list[float] = []
    rounds = 20 if quick else 100

    async def receive_update(cl):
        m = await cl.recv()
        assert isinstance(m, TransactionUpdate)
        return time.perf_counter()

    for i in range(rounds):
        waiters = [asyncio.ensure_future(receive_update(cl)) for cl in subs]
        t0 = time.perf_counter()
        await caller.ws.send_bytes(encode_client(CallReducer(i, 0, "add", s(f"row{i}"))))
        times = await asyncio.gather(*waiters)
        await caller.recv()
        lat.extend(t - t0 for t in times)
        last.append(max(times) - t0)
    lat.sort()
    res["fanout_p50"] = lat[len(lat) // 2]
    res["fanout_p99"] = lat[int(len(lat) * 0.99)]
    res["fanout_last_p50"] = statistics.median(last)
    for cl in [*subs, caller]:
        await cl.close()
    return res


def baseline(quick: bool) -> float:
    db = Database.create(module_wasm(), owner=OWNER)
    n = 1000 if quick else 5000
    for _ in range(100):
        db.call_reducer("noop", b"")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            db.call_reducer("noop", b"")
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--serve", metavar="PORT_FILE")
    a = ap.parse_args()
    if a.serve:
        serve(a.serve)
        return
    port_file = Path(tempfile.mkdtemp()) / "port"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)], cwd=ROOT)
    try:
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text():
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.05)
        url = f"ws://127.0.0.1:{port_file.read_text()}/v1/database/bench/subscribe?compression=None"
        res = asyncio.run(bench(url, a.quick))
    finally:
        proc.terminate()
        proc.wait(10)
    base = baseline(a.quick)
    print(f"cores: {os.cpu_count()}; baseline: in-process Database.call_reducer('noop') {base:,.0f}/s")
    print(f"{'measure':40} {'value':>14} {'vs baseline':>12}")
    for k in ("one connection, sequential", "one connection, pipelined", "10 connections, sequential each",
              "50 connections, sequential each"):
        print(f"{'round trips/s, ' + k:40} {res[k]:12,.0f}/s {res[k] / base:11.2f}x")
    print(f"{'fan-out to 100 subscribers, p50':40} {res['fanout_p50'] * 1e3:12.2f}ms")
    print(f"{'fan-out to 100 subscribers, p99':40} {res['fanout_p99'] * 1e3:12.2f}ms")
    print(f"{'fan-out, last of 100 subscribers, p50':40} {res['fanout_last_p50'] * 1e3:12.2f}ms")


if __name__ == "__main__":
    main()
