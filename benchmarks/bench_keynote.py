"""Upstream's keynote transfer workload against `spacetime-py start`, with a SQLite baseline in the same run.

    python benchmarks/bench_keynote.py                          # 100k accounts, alpha 0 and 1.5, 10 s each
    python benchmarks/bench_keynote.py --accounts 10000 --seconds 4 --connections 8 --inflight 8   # quick

Server under test: examples/keynote published on a data dir, served by `harness.server.app.serve` in a child
process with group commit (`--durability`, default "group": every acknowledged transfer is fsynced; clients use
confirmed reads, the default, so a ReducerResult means durable).  Baseline: a small WebSocket RPC server (aiohttp,
child process) doing the same transfer in SQLite, WAL mode, `synchronous=FULL`, one transaction per request on
one database thread.  One load generator drives both: N connections x M calls in flight, accounts drawn from a
Zipf distribution (alpha 0 = uniform; 1.5 = a few hot accounts), amount 1; it reports committed transfers/s
and the p50/p99 round trip.  Requests use spacetime_core.protocol's encoders (v2 BSATN), the protocol's one codec.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from spacetime_core.protocol import V2_BSATN, CallReducer, ReducerResult, decode_server_frame, encode_client  # noqa: E402
from spacetime_core.sats import Identity  # noqa: E402

OWNER = Identity.from_bytes(bytes(range(32)))
INITIAL_BALANCE = 1_000_000_000

SPACETIME_SERVER = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, sys.argv[4])
    if sys.argv[5:] == ["split"]:
        from harness.server.gateway import serve_split as serve
    else:
        from harness.server.app import serve
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


async def drive(urls: list[str], kind: str, n_conn: int, inflight: int, seconds: float, warmup: float,
                zipf: Zipf) -> Result:
    """N connections x M calls in flight for `warmup + seconds`; counts and latencies of the last `seconds`."""
    res = Result()
    t_start = time.perf_counter()
    t_measure = t_start + warmup
    t_end = t_measure + seconds

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
            if kind == "spacetime":
                data = encode_client(CallReducer(rid, 0, "transfer", struct.pack("<IIq", a, b, 1)))
            else:
                data = struct.pack("<IIIq", rid, a, b, 1)
            sent[rid] = time.perf_counter()
            await ws.send_bytes(data)

        for _ in range(inflight):
            await send()
        while sent:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                raise SystemExit(f"connection closed: {msg}")
            if kind == "spacetime":
                replies = [(m.request_id, m.result.tag == "Ok") for m in decode_server_frame(msg.data)
                           if isinstance(m, ReducerResult)]
            else:
                rid, ok = struct.unpack("<IB", msg.data)
                replies = [(rid, ok == 1)]
            now = time.perf_counter()
            for rid, ok in replies:
                t0 = sent.pop(rid)
                if t_measure <= t0 and now <= t_end:
                    if ok:
                        res.ok += 1
                    else:
                        res.failed += 1
                    res.lat.append(now - t0)
                if now < t_end:
                    await send()
        await ws.close()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(conn_loop(session, urls[k % len(urls)]) for k in range(n_conn)))
    return res


def report(name: str, res: Result, seconds: float) -> float:
    lat = sorted(res.lat)
    tps = res.ok / seconds
    p50 = lat[len(lat) // 2] * 1e3 if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] * 1e3 if lat else float("nan")
    print(f"  {name:<28} {tps:9.0f} TPS   p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   "
          f"(failed {res.failed})", flush=True)
    return tps


def thread_cpu(pid: int) -> tuple[float, float]:
    """(CPU seconds of the main thread = the event loop, CPU seconds of all other threads) of process `pid`
    (Linux /proc; the other threads are the database executor, its durability thread and small helpers)."""
    tick = os.sysconf("SC_CLK_TCK")
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if int(task.name) == pid:
            main += cpu
        else:
            other += cpu
    return main, other


def process_cpu(pid: int) -> float:
    """CPU seconds of every thread of process `pid` (Linux /proc)."""
    return sum(thread_cpu(pid))


def child_pid(pid: int) -> int:
    """The (first) child process of `pid`: the split server's database process."""
    return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--inflight", type=int, default=16, help="calls in flight per connection")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--alpha", type=float, nargs="*", default=[0.0, 1.5])
    ap.add_argument("--durability", choices=["group", "every", "none"], default="group")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--compare-root", type=Path, default=None,
                    help="also run the server from this checkout (e.g. the main branch) on a copy of the data")
    ap.add_argument("--compare-durability", default="every", help="--durability for the --compare-root server")
    ap.add_argument("--split", action="store_true",
                    help="also run the split server (serve_split: gateway + database process) on a copy of the data")
    ap.add_argument("--databases", type=int, default=1,
                    help="spread the connections over this many keynote databases (one executor thread each)")
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
        st_port, sq_port, cmp_port = free_port(), free_port(), free_port()
        if args.compare_root:
            shutil.copytree(tmp / "data", tmp / "data-compare")
        split_proc = None
        if args.split:
            shutil.copytree(tmp / "data", tmp / "data-split")
            split_port = free_port()
            split_proc = subprocess.Popen([sys.executable, "-c", SPACETIME_SERVER, str(tmp / "data-split"),
                                           str(split_port), args.durability, str(ROOT), "split"])
            procs.append(split_proc)
            wait_listening(split_port, split_proc)
        st_proc = subprocess.Popen([sys.executable, "-c", SPACETIME_SERVER, str(tmp / "data"), str(st_port),
                                    args.durability, str(ROOT)])
        procs.append(st_proc)
        wait_listening(st_port, st_proc)
        cmp_proc = None
        if args.compare_root:
            cmp_proc = subprocess.Popen([sys.executable, "-c", SPACETIME_SERVER, str(tmp / "data-compare"),
                                         str(cmp_port), args.compare_durability, str(args.compare_root.resolve())],
                                        cwd=args.compare_root)
            procs.append(cmp_proc)
            wait_listening(cmp_port, cmp_proc)
        if not args.skip_baseline:
            procs.append(subprocess.Popen([sys.executable, "-c", SQLITE_SERVER, str(tmp / "sqlite.db"),
                                           str(sq_port), str(args.accounts), str(INITIAL_BALANCE)]))
            wait_listening(sq_port, procs[-1])
        st_urls = [f"ws://127.0.0.1:{st_port}/v1/database/{n}/subscribe?compression=None" for n in names]
        sq_urls = [f"ws://127.0.0.1:{sq_port}/rpc"]
        for alpha in args.alpha:
            print(f"alpha {alpha:g}:")
            z = Zipf(args.accounts, alpha, 1)
            cpu0 = thread_cpu(st_proc.pid)
            res = asyncio.run(drive(st_urls, "spacetime", args.connections, args.inflight, args.seconds,
                                    args.warmup, z))
            cpu1 = thread_cpu(st_proc.pid)
            st = report(f"spacetime-py ({args.durability})", res, args.seconds)
            calls = (res.ok + res.failed) * (args.seconds + args.warmup) / args.seconds  # incl. warm-up
            print(f"    server CPU per call: event loop {(cpu1[0] - cpu0[0]) / calls * 1e6:.0f} us, "
                  f"database + durability threads {(cpu1[1] - cpu0[1]) / calls * 1e6:.0f} us", flush=True)
            if split_proc is not None:
                worker = child_pid(split_proc.pid)
                c0 = thread_cpu(split_proc.pid), process_cpu(worker)
                res = asyncio.run(drive([f"ws://127.0.0.1:{split_port}/v1/database/{n}/subscribe?compression=None"
                                         for n in names], "spacetime", args.connections, args.inflight,
                                        args.seconds, args.warmup, z))
                c1 = thread_cpu(split_proc.pid), process_cpu(worker)
                sp = report(f"split ({args.durability})", res, args.seconds)
                calls = (res.ok + res.failed) * (args.seconds + args.warmup) / args.seconds
                print(f"    CPU per call: gateway loop {(c1[0][0] - c0[0][0]) / calls * 1e6:.0f} us "
                      f"+ other threads {(c1[0][1] - c0[0][1]) / calls * 1e6:.0f} us, "
                      f"database process {(c1[1] - c0[1]) / calls * 1e6:.0f} us", flush=True)
                print(f"  ratio split / one process: {sp / st:.2f}x", flush=True)
            if cmp_proc is not None:
                urls = [f"ws://127.0.0.1:{cmp_port}/v1/database/{n}/subscribe?compression=None" for n in names]
                cmp = report(f"{args.compare_root.name} ({args.compare_durability})",
                             asyncio.run(drive(urls, "spacetime", args.connections, args.inflight, args.seconds,
                                               args.warmup, z)), args.seconds)
                print(f"  ratio spacetime-py / {args.compare_root.name}: {st / cmp:.2f}x", flush=True)
            if not args.skip_baseline:
                sq = report("sqlite WAL synchronous=FULL",
                            asyncio.run(drive(sq_urls, "sqlite", args.connections, args.inflight, args.seconds,
                                              args.warmup, z)), args.seconds)
                print(f"  ratio spacetime-py / sqlite: {st / sq:.2f}x", flush=True)
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
