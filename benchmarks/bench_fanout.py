"""Fan-out costs that end-to-end runs on a shared machine cannot resolve: the executor's work per commit with
many subscribers, and the event loop's wake-ups per delivered message.

    python benchmarks/bench_fanout.py [--subscribers 100] [--root /work/main]   # --root: another checkout

1. In-process (no sockets): examples/keynote with 1 000 accounts, N fake clients subscribed to
   `SELECT * FROM accounts`; thread CPU of one `transfer` (reducer, commit, fan-out) with and without them
   (best of 5 x 500).  The difference is the fan-out per commit.
2. Over WebSockets (group commit, confirmed reads): N subscribers and one caller with 8 calls in flight,
   400 transfers; `Connection.wake` calls per delivered message (each is an event-loop step for a connection).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--subscribers", type=int, default=100)
ap.add_argument("--calls", type=int, default=400)
ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                help="the checkout whose server code is measured (default: this one)")
ARGS = ap.parse_args()
sys.path.insert(0, str(ARGS.root.resolve()))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from harness.host import Database  # noqa: E402
from harness.server import websocket as wsmod  # noqa: E402
from harness.server.subscriptions import attach  # noqa: E402
from module_sdk.build import build  # noqa: E402
from spacetime_core.protocol import (  # noqa: E402
    V2_BSATN,
    CallReducer,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    decode_server_frame,
    encode_client,
)
from spacetime_core.sats import ConnectionId, Identity  # noqa: E402

OWNER = Identity.from_bytes(bytes(range(32)))
QUERY = "SELECT * FROM accounts"


def transfer_args(a: int, b: int) -> bytes:
    return struct.pack("<IIq", a, b, 1)


def keynote(wasm: bytes, data_dir: Path | None = None) -> Database:
    kw = {"data_dir": data_dir, "durability": "group"} if data_dir else {}
    db = Database.create(wasm, owner=OWNER, **kw)
    assert db.call_reducer("seed", [1000, 10**9]).committed
    return db


class FakeClient:
    def __init__(self) -> None:
        self.identity = Identity.from_bytes(os.urandom(32))
        self.connection_id = ConnectionId.from_bytes(os.urandom(16))
        self.token = "t"
        self.pushed = 0

    def push(self, body: bytes) -> None:
        self.pushed += 1


def in_process(wasm: bytes, n: int) -> None:
    db = keynote(wasm)
    mgr = attach(db)
    clients = [FakeClient() for _ in range(n)]
    for c in clients:
        mgr.connect(c)
        mgr.subscribe(c, 1, 1, [QUERY])
    args = transfer_args(0, 1)

    def best() -> float:
        for _ in range(200):
            db.call_reducer("transfer", args)
        out = []
        for _ in range(5):
            t = time.thread_time()
            for _ in range(500):
                assert db.call_reducer("transfer", args).committed
            out.append((time.thread_time() - t) / 500 * 1e6)
        return min(out)

    with_subs = best()
    for c in clients:
        mgr.disconnect(c)
    without = best()
    print(f"in-process, {n} subscribers of one query: transfer + commit + fan-out {with_subs:.0f} us, "
          f"without subscribers {without:.0f} us: fan-out {with_subs - without:.0f} us per commit", flush=True)
    db.close()


def over_websockets(wasm: bytes, n: int, calls: int, inflight: int = 8) -> None:
    db = keynote(wasm, Path(tempfile.mkdtemp(prefix="bench-fanout-")) / "db")
    wakes = [0]
    orig = wsmod.Connection.wake

    def wake(self) -> None:
        wakes[0] += 1
        orig(self)

    wsmod.Connection.wake = wake
    loop = asyncio.new_event_loop()
    endpoint = wsmod.SubscribeEndpoint(lambda name: db if name == "k" else None, ping_interval=None)
    ready, stop = threading.Event(), []
    port = [0]

    async def serve() -> None:
        app = web.Application()
        endpoint.mount(app)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port[0] = site._server.sockets[0].getsockname()[1]
        ev = asyncio.Event()
        stop.append(ev)
        ready.set()
        await ev.wait()
        await endpoint.close_all()
        await runner.cleanup()

    th = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    th.start()
    ready.wait(10)
    url = f"ws://127.0.0.1:{port[0]}/v1/database/k/subscribe?compression=None"

    async def client() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:  # > 100 sockets
            async def connect():
                ws = await s.ws_connect(url, protocols=(V2_BSATN,))
                await ws.receive()  # InitialConnection
                return ws

            async def recv(ws, pending):
                while not pending:
                    pending.extend(decode_server_frame((await ws.receive(timeout=30)).data))
                return pending.pop(0)

            subs = [await connect() for _ in range(n)]
            caller = await connect()
            queues = {id(w): [] for w in (*subs, caller)}
            for w in subs:
                await w.send_bytes(encode_client(Subscribe(1, 1, [QUERY])))
            for w in subs:
                assert isinstance(await recv(w, queues[id(w)]), SubscribeApplied)
            wakes[0] = 0

            async def drain(w) -> None:  # subscribers read while the calls run (as live clients do)
                for _ in range(calls):
                    await recv(w, queues[id(w)])

            readers = [asyncio.ensure_future(drain(w)) for w in subs]
            sent = 0
            for _ in range(min(inflight, calls)):
                await caller.send_bytes(encode_client(CallReducer(sent, 0, "transfer", transfer_args(0, 1))))
                sent += 1
            for _ in range(calls):
                assert isinstance(await recv(caller, queues[id(caller)]), ReducerResult)
                if sent < calls:
                    await caller.send_bytes(encode_client(CallReducer(sent, 0, "transfer", transfer_args(0, 1))))
                    sent += 1
            await asyncio.gather(*readers)
            delivered = calls * (n + 1)
            print(f"over WebSockets, {n} confirmed subscribers + 1 caller ({inflight} in flight), {calls} commits: "
                  f"{wakes[0]} Connection.wake calls for {delivered} messages "
                  f"({wakes[0] / delivered:.2f} per message)", flush=True)
            for w in (*subs, caller):
                await w.close()

    try:
        asyncio.run(asyncio.wait_for(client(), 300))
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        th.join(10)
        wsmod.Connection.wake = orig
        db.close()


def main() -> None:
    root = ARGS.root.resolve()
    wasm = build(root / "examples" / "keynote", Path(tempfile.mkdtemp()) / "keynote.wasm").output.read_bytes()
    print(f"server code: {root}", flush=True)
    in_process(wasm, ARGS.subscribers)
    over_websockets(wasm, ARGS.subscribers, ARGS.calls)


if __name__ == "__main__":
    main()
