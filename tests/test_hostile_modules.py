"""Hostile modules against a real `spacetime-py start` (issue 11): each misbehaviour is refused or stopped with a
clear 4xx/530 message, while the server stays up, /v1/ping stays fast, another database is untouched and the
server's memory stays under a stated cap."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from tests.hostile import (
    DESCRIBE_FLOOD_WAT,
    DESCRIBE_LOOP_WAT,
    IMPORTS,
    Bystander,
    PingProbe,
    Server,
    module_with_describe,
    publish_hostile,
    survived,
    wasm,
)
from tests.test_host_wat import STRING, UNIT, s, vec, wat_string

RSS_GROWTH_CAP_MIB = 200  # what one attack may add to the server's resident memory


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("hostile-modules") / "data",
                 {"call_timeout_ms": "1500", "log_file_bytes": "8m"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def bystander(server):
    return Bystander(server)


@pytest.fixture(scope="module")
def hostile(server):
    return publish_hostile(server, "hostile")


def attacked(server: Server, bystander: Bystander, probe: PingProbe, rss_before: float) -> None:
    survived(server, bystander, probe, rss_before, RSS_GROWTH_CAP_MIB)


def test_describe_writing_without_end_is_refused_anonymously(server, bystander):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.publish(wasm(DESCRIBE_FLOOD_WAT))  # no token, POST: anyone can do this
    assert status == 400, body
    assert b"sink_bytes" in body and b"Traceback" not in body
    attacked(server, bystander, probe, before)


def test_reducer_writing_its_error_without_end_gets_530(server, bystander, hostile):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.call("hostile", "flood_error", [], hostile)
    assert status == 530, body
    assert b"sink_bytes" in body and len(body) < 4096
    attacked(server, bystander, probe, before)
    assert server.call("hostile", "insert_counter", [1, 1], hostile)[0] == 200  # the database still works


def test_slow_publish_does_not_stall_other_databases(server, bystander):
    """describe loops until the call time limit (1.5 s here): lookups and calls elsewhere are not held up."""
    result = {}

    def publish():
        result["out"] = server.publish(wasm(DESCRIBE_LOOP_WAT), "slowpoke", server.token())

    before = server.rss_mib()
    with PingProbe(server, bystander, interval=0.02) as probe:
        t = threading.Thread(target=publish)
        t.start()
        t.join(30)
    status, body = result["out"]
    assert status == 400 and b"time limit" in body, body
    assert len(probe.latencies) > 10  # the probe really ran while describe looped
    attacked(server, bystander, probe, before)
    assert server.request("GET", "/v1/database/slowpoke")[0] == 404


@pytest.mark.parametrize("wat, words", [
    (module_with_describe("", memory_pages=20000), [b"instantiated", b"memory"]),  # 1.25 GiB minimum > 512 MiB cap
    (module_with_describe("", extra="(start $s) (func $s unreachable)"), [b"instantiated"]),
    (module_with_describe("", extra="(start $s) (func $s (loop $l (br $l)))"), [b"instantiated"]),
], ids=["memory-minimum-over-cap", "start-traps", "start-loops"])
def test_modules_that_cannot_start_get_a_clear_400(server, bystander, wat, words):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.publish(wasm(wat), None)
    assert status == 400, body
    for w in words:
        assert w in body.lower(), body
    assert b"Traceback" not in body
    attacked(server, bystander, probe, before)


def test_huge_log_lines_are_cut_and_log_memory_is_bounded(server, bystander, hostile):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.call("hostile", "big_log", [], hostile)  # 200 lines of 4 MiB each
    assert status == 200, body
    status, body = server.request("GET", "/v1/database/hostile/logs", headers={"Authorization": f"Bearer {hostile}"})
    assert status == 200
    lines = [json.loads(x) for x in body.splitlines()]
    big = [x for x in lines if "log_line_bytes" in x["message"]]
    assert len(big) >= 10
    assert all(len(x["message"].encode()) < 64 * 1024 * 7 for x in big)  # 64 KiB of NULs, JSON-escaped
    assert len(body) <= 17 * 1024 * 1024  # log_memory_bytes (16 MiB) of lines kept in memory
    assert lines[-1]["message"] == big[-1]["message"]  # the newest lines are served, across a rotation
    # On disk every log file (the served one and the database's own) stays under log_file_bytes (8 MiB here)
    # plus one cut line, and only it and its one older generation remain: 200 lines of ~400 KiB JSON were written.
    files = [p for p in server.data_dir.rglob("*") if p.is_file() and (".ndjson" in p.name or "module_logs" in p.name)]
    assert any(p.name.endswith(".1") for p in files), files
    assert all(p.stat().st_size <= 8 * 1024 * 1024 + 512 * 1024 for p in files), [(p, p.stat().st_size) for p in files]
    assert len(files) <= 2 * 3, files  # two generations of two logs of `hostile`, and the bystander's logs
    attacked(server, bystander, probe, before)


@pytest.mark.parametrize("reducer, limit", [("timers", b"open_timers"), ("leak_iters", b"open_iterators"),
                                            ("schedule_flood", b"immediate_queue_bytes")])
def test_handles_opened_without_end_trap_with_530(server, bystander, hostile, reducer, limit):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.call("hostile", reducer, [], hostile)
    assert status == 530, body
    assert limit in body
    attacked(server, bystander, probe, before)


def test_a_log_follower_that_never_reads_is_dropped(server, bystander, hostile):
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(f"GET /v1/database/hostile/logs?follow=true&num_lines=0 HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {hostile}\r\n\r\n".encode())
    time.sleep(0.3)
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        for _ in range(3):  # 3 x 200 lines of ~384 KiB (64 KiB of NULs, JSON-escaped): ~225 MiB if all were queued
            status, body = server.call("hostile", "big_log", [], hostile)
            assert status == 200, body
    attacked(server, bystander, probe, before)
    assert probe.rss_peak - before < 120, (before, probe.rss_peak)
    sock.settimeout(0.5)
    deadline, ended, tail, total = time.monotonic() + 10, False, b"", 0
    while time.monotonic() < deadline and not ended:
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        total += len(data)
        tail = (tail + data)[-16:]
        ended = not data or tail.endswith(b"\r\n0\r\n\r\n")  # closed, or the chunked stream ended
    sock.close()
    assert ended, f"the follower that never read was not dropped ({total} bytes read, ends {tail!r})"


def _describe_writing(def_bytes: bytes, total: int | None = None) -> bytes:
    """A module whose describe writes `def_bytes` (then zeros up to `total` bytes) in one sink write."""
    n = total or len(def_bytes)
    pages = (4096 + n) // 65536 + 1
    return wasm(f"""
(module {IMPORTS}
  (memory (export "memory") {pages})
  (data (i32.const 4096) "{wat_string(def_bytes)}")
  (func (export "__describe_module__") (param $sink i32)
    (i32.store (i32.const 64) (i32.const {n}))
    (drop (call $sink_write (local.get $sink) (i32.const 4096) (i32.const 64))))
  (func (export "__call_reducer__") (param i32 i64 i64 i64 i64 i64 i64 i64 i32 i32) (result i32) unreachable))
""")


def test_a_definition_declaring_too_many_entries_is_refused(server, bystander):
    """300,000 reducers fit in 6 MiB of definition (well under module_def_bytes) but would take ~200 MiB of host
    objects: refused with 400 naming module_def_items before they are built; over module_def_bytes is refused
    before decoding at all."""
    reducers = [s(f"r{i}") + vec() + b"\x01" + UNIT + STRING for i in range(300_000)]
    many = _describe_writing(b"\x02" + vec(b"\x03" + vec(*reducers)))
    huge = _describe_writing(b"\x02" + struct.pack("<I", 1), total=9 << 20)  # 9 MiB > the 8 MiB default
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.publish(many, timeout=120)
        assert status == 400, body
        assert b"300000 reducers" in body and b"module_def_items" in body, body
        status, body = server.publish(huge, timeout=120)
        assert status == 400, body
        assert b"module_def_bytes" in body, body
    attacked(server, bystander, probe, before)  # unrefused, the 300,000 reducers alone take ~220 MiB more
