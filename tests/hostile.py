"""Shared pieces of the hostile-input suite (tests/test_hostile_*.py): a real `spacetime-py start` in a subprocess
(so its memory can be read from /proc and a crash is visible), a ping probe that measures how fast the server
answers while it is attacked, a bystander database that must stay untouched, and hand-written WAT modules that
misbehave in the ways a module can (no wasm build needed).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import wasmtime as wt

from tests.test_host_wat import STRING, U32, U64, UNIT, product, s, some, vec, wat_string

PING_BOUND_S = 2.0  # generous: robustness, not speed


class Server:
    """`spacetime-py start` on a free 127.0.0.1 port, with a fresh data dir."""

    def __init__(self, data_dir: Path, limits: dict[str, str] | None = None):
        self.data_dir = data_dir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        args = [sys.executable, "-c", "from harness.cli import main; main()", "start",
                "-l", f"127.0.0.1:{self.port}", "--data-dir", str(data_dir)]
        for k, v in (limits or {}).items():
            args += ["--limit", f"{k}={v}"]
        self.log = open(data_dir.parent / f"server-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.output()}"
            try:
                if self.request("GET", "/v1/ping", timeout=1)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"server did not start: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()

    def conn(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int, bytes]:
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def token(self) -> str:
        status, body = self.request("POST", "/v1/identity")
        assert status == 200
        return json.loads(body)["token"]

    def publish(self, wasm: bytes, name: str | None = None, token: str | None = None,
                timeout: float = 60) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if name is None:
            return self.request("POST", "/v1/database", wasm, headers, timeout)
        return self.request("PUT", f"/v1/database/{name}", wasm, headers, timeout)

    def call(self, db: str, reducer: str, args, token: str | None = None, timeout: float = 30) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("POST", f"/v1/database/{db}/call/{reducer}", json.dumps(args).encode(), headers, timeout)

    def sql(self, db: str, query: str, token: str | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.request("POST", f"/v1/database/{db}/sql", query.encode(), headers)


class PingProbe:
    """Pings /v1/ping (and optionally calls the bystander) in a thread while an attack runs; `worst` is the
    slowest answer in seconds and `failures` the pings that got no 200."""

    def __init__(self, server: Server, bystander: Bystander | None = None, interval: float = 0.05):
        self.server, self.bystander, self.interval = server, bystander, interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.rss_peak = server.rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                status, _ = self.server.request("GET", "/v1/ping", timeout=10)
                if status != 200:
                    self.failures.append(f"ping {status}")
                if self.bystander is not None and n % 5 == 0:
                    self.bystander.touch()
            except Exception as e:  # noqa: BLE001 - a dead or stuck server is what we record
                self.failures.append(f"{type(e).__name__}: {e}")
            self.latencies.append(time.perf_counter() - t0)
            if self.server.alive():
                self.rss_peak = max(self.rss_peak, self.server.rss_mib())
            n += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PingProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def check(self) -> None:
        assert self.latencies, "the probe never ran"
        assert not self.failures, self.failures[:5]
        assert self.worst < PING_BOUND_S, f"slowest ping {self.worst:.2f} s (bound {PING_BOUND_S} s)"


class Bystander:
    """A well-behaved database on the same server: every touch inserts a row; `check` asserts all are there."""

    def __init__(self, server: Server):
        self.server = server
        self.token = server.token()
        status, body = server.publish(wasm(HOSTILE_WAT), "bystander", self.token)  # only its well-behaved reducers
        assert status == 200, body
        self.ids: list[int] = []
        self._lock = threading.Lock()

    def touch(self) -> None:
        with self._lock:
            i = len(self.ids) + 1
            status, body = self.server.call("bystander", "insert_counter", [i, i * 10], self.token, timeout=10)
            assert status == 200, body
            self.ids.append(i)

    def check(self) -> None:
        self.touch()
        status, body = self.server.sql("bystander", "SELECT id FROM counter", self.token)
        assert status == 200, body
        got = sorted(r[0] for r in json.loads(body)[0]["rows"])
        assert got == self.ids


def survived(server: Server, bystander: Bystander, probe: PingProbe, rss_before: float, rss_cap_mib: float) -> None:
    """What every attack must leave true: the server is up, pings stayed fast, the bystander database kept every
    row, and resident memory grew by less than `rss_cap_mib`."""
    assert server.alive(), server.output()
    probe.check()
    bystander.check()
    assert probe.rss_peak - rss_before < rss_cap_mib, (rss_before, probe.rss_peak)


def publish_hostile(server: Server, name: str) -> str:
    """Publish HOSTILE_WAT as `name`; the owner's token."""
    token = server.token()
    status, body = server.publish(wasm(HOSTILE_WAT), name, token)
    assert status == 200, body
    return token


def wasm(wat: str) -> bytes:
    return wt.wat2wasm(wat)


def describe_module(def_bytes: bytes) -> tuple[str, str]:
    """(data segment, describe function) writing `def_bytes` to the sink, for a WAT module."""
    return (f'(data (i32.const 4096) "{wat_string(def_bytes)}")',
            f"""(func (export "__describe_module__") (param $sink i32)
    (i32.store (i32.const 64) (i32.const {len(def_bytes)}))
    (drop (call $sink_write (local.get $sink) (i32.const 4096) (i32.const 64))))""")


IMPORTS = """
  (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "bytes_source_read" (func $source_read (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "table_id_from_name" (func $table_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_insert_bsatn" (func $insert (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_table_scan_bsatn" (func $scan (param i32 i32) (result i32)))
  (import "spacetime_10.0" "console_log" (func $log (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "spacetime_10.0" "console_timer_start" (func $timer (param i32 i32) (result i32)))
  (import "spacetime_10.0" "volatile_nonatomic_schedule_immediate" (func $later (param i32 i32 i32 i32)))
"""

# counter {id: u32 pk, n: u64} and blob {id: u32 pk, data: string}; reducers by id:
REDUCERS = ["insert_counter", "put_blob", "flood_error", "big_log", "timers", "leak_iters", "schedule_flood", "spin"]


def _table(name: str, ty: int) -> bytes:
    return (s(name) + struct.pack("<I", ty) + vec(struct.pack("<H", 0))
            + vec(some(s(f"{name}_id_idx_btree")) + some(s("id")) + b"\x00" + vec(struct.pack("<H", 0)))
            + vec(b"\x01" + b"\x00" + vec(struct.pack("<H", 0)))
            + vec() + b"\x01" + b"\x00" + vec() + b"\x00")


HOSTILE_DEF = b"\x02" + vec(
    b"\x00" + vec(b"\x02" + product(("id", U32), ("n", U64)), b"\x02" + product(("id", U32), ("data", STRING))),
    b"\x01" + vec(vec() + s("Counter") + struct.pack("<I", 0) + b"\x01",
                  vec() + s("Blob") + struct.pack("<I", 1) + b"\x01"),
    b"\x02" + vec(_table("counter", 0), _table("blob", 1)),
    b"\x03" + vec(
        s("insert_counter") + product(("id", U32), ("n", U64)) + b"\x01" + UNIT + STRING,
        s("put_blob") + product(("id", U32), ("data", STRING)) + b"\x01" + UNIT + STRING,
        *[s(n) + vec() + b"\x01" + UNIT + STRING for n in REDUCERS[2:]],
    ),
)

_data, _describe = describe_module(HOSTILE_DEF)

# Linear memory (96 pages, 6 MiB): 0..4095 scratch, 4096.. the module def, from 1 MiB the argument buffer
# (up to 4 MiB) and the bytes the floods write.
HOSTILE_WAT = f"""
(module {IMPORTS}
  (memory (export "memory") 96)
  {_data}
  (data (i32.const 256) "counter")
  (data (i32.const 272) "blob")
  (data (i32.const 320) "insert failed")
  (data (i32.const 400) "span")
  {_describe}
  (func $insert_args (param $args i32) (param $err i32) (param $table i32) (param $tlen i32) (result i32)
    ;; read the whole argument (the row's BSATN) to 1 MiB and insert it into table $table
    (i32.store (i32.const 68) (i32.const 4194304))
    (drop (call $source_read (local.get $args) (i32.const 1048576) (i32.const 68)))
    (drop (call $table_id (local.get $table) (local.get $tlen) (i32.const 72)))
    (if (call $insert (i32.load (i32.const 72)) (i32.const 1048576) (i32.const 68))
      (then (i32.store (i32.const 64) (i32.const 13))
            (drop (call $sink_write (local.get $err) (i32.const 320) (i32.const 64)))
            (return (i32.const 1))))
    (i32.const 0))
  (func (export "__call_reducer__") (param $id i32) (param i64 i64 i64 i64 i64 i64 i64)
        (param $args i32) (param $err i32) (result i32)
    (local $i i32)
    (if (i32.eq (local.get $id) (i32.const 0))
      (then (return (call $insert_args (local.get $args) (local.get $err) (i32.const 256) (i32.const 7)))))
    (if (i32.eq (local.get $id) (i32.const 1))
      (then (return (call $insert_args (local.get $args) (local.get $err) (i32.const 272) (i32.const 4)))))
    (if (i32.eq (local.get $id) (i32.const 2))
      (then (loop $flood  ;; 1 MiB at a time into the error sink, without end
              (i32.store (i32.const 64) (i32.const 1048576))
              (drop (call $sink_write (local.get $err) (i32.const 1048576) (i32.const 64)))
              (br $flood))))
    (if (i32.eq (local.get $id) (i32.const 3))
      (then (loop $logs  ;; 200 log lines of 4 MiB each
              (call $log (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)
                         (i32.const 1048576) (i32.const 4194304))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $logs (i32.lt_u (local.get $i) (i32.const 200))))
            (return (i32.const 0))))
    (if (i32.eq (local.get $id) (i32.const 4))
      (then (loop $t (drop (call $timer (i32.const 400) (i32.const 4))) (br $t))))
    (if (i32.eq (local.get $id) (i32.const 5))
      (then (drop (call $table_id (i32.const 256) (i32.const 7) (i32.const 72)))
            (loop $it (drop (call $scan (i32.load (i32.const 72)) (i32.const 76))) (br $it))))
    (if (i32.eq (local.get $id) (i32.const 6))
      (then (loop $later  ;; queue calls of an unknown reducer with 64 KiB arguments, without end
              (call $later (i32.const 400) (i32.const 4) (i32.const 1048576) (i32.const 65536))
              (br $later))))
    (if (i32.eq (local.get $id) (i32.const 7))
      (then (loop $spin (br $spin))))  ;; loops until the call time limit stops it
    unreachable))
"""

def module_with_describe(body: str, memory_pages: int = 1, extra: str = "") -> str:
    """A module whose `__describe_module__` runs `body` (with `$sink` in scope)."""
    return f"""
(module {IMPORTS}
  (memory (export "memory") {memory_pages})
  {extra}
  (func (export "__describe_module__") (param $sink i32) {body})
  (func (export "__call_reducer__") (param i32 i64 i64 i64 i64 i64 i64 i64 i32 i32) (result i32) unreachable))
"""


DESCRIBE_FLOOD_WAT = module_with_describe("""
    (loop $flood
      (i32.store (i32.const 64) (i32.const 65536))
      (drop (call $sink_write (local.get $sink) (i32.const 1024) (i32.const 64)))
      (br $flood))""", memory_pages=2)
DESCRIBE_LOOP_WAT = module_with_describe("(loop $spin (br $spin))")


__all__ = ["Bystander", "PingProbe", "Server", "wasm"]
