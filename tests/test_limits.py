"""harness.limits: every limit is documented, and settable by name, environment and size suffix."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from harness.limits import LIMITS, Limits, load_env, parse_size, set_limit

DOC = (Path(__file__).parent.parent / "docs" / "limits.md").read_text()


@pytest.mark.parametrize("name", [f.name for f in fields(Limits)])
def test_every_limit_has_a_row_in_docs_limits_md(name):
    assert f"| `{name}` |" in DOC, f"docs/limits.md has no row for {name}"


def test_sizes_counts_env_and_unknown_names(monkeypatch):
    assert parse_size("64k") == 64 << 10 and parse_size("16MiB") == 16 << 20 and parse_size("1_000") == 1000
    with pytest.raises(ValueError):
        parse_size("0")
    for f in fields(Limits):
        monkeypatch.setattr(LIMITS, f.name, getattr(LIMITS, f.name))  # restored after the test
    set_limit("ws-inflight-messages", "7")
    load_env({"SPACETIME_PY_QUERY_TEXT_BYTES": "2k", "SPACETIME_PY_DURABLE_WAIT_MS": "1500"})
    assert (LIMITS.ws_inflight_messages, LIMITS.query_text_bytes, LIMITS.durable_wait_ms) == (7, 2048, 1500)
    with pytest.raises(ValueError, match="known: .*subscription_queries"):
        set_limit("subscriptions", "1")
    with pytest.raises(ValueError, match="module_def_items"):
        set_limit("module_def_items", "-3")


def test_module_definitions_are_refused_past_their_byte_and_entry_limits():
    from harness.host import ModuleDefError, decode_module_def
    from tests.test_host_wat import STRING, UNIT, s, vec

    def reducers(n: int) -> bytes:
        return b"\x02" + vec(b"\x03" + vec(*[s(f"r{i}") + vec() + b"\x01" + UNIT + STRING for i in range(n)]))

    assert len(decode_module_def(reducers(100), max_items=100).reducers) == 100
    with pytest.raises(ModuleDefError, match="declares 101 reducers, more than 100 .limit module_def_items."):
        decode_module_def(reducers(101), max_items=100)
    with pytest.raises(ModuleDefError, match="declares 101 types"):
        decode_module_def(b"\x02" + vec(b"\x00" + vec(*[b"\x02" + vec()] * 101)), max_items=100)
    with pytest.raises(ModuleDefError, match="declares 3 sections"):
        decode_module_def(b"\x02" + vec(*[b"\x03" + vec()] * 3), max_items=2)
    data = reducers(10)
    with pytest.raises(ModuleDefError, match=f"is {len(data)} bytes, more than 100 .limit module_def_bytes."):
        decode_module_def(data, max_bytes=100)


def test_a_log_file_rotates_at_log_file_bytes_and_reads_as_one_log(monkeypatch, tmp_path):
    from harness.host.logs import LogFile, read_lines

    monkeypatch.setattr(LIMITS, "log_file_bytes", 1000)
    log = LogFile(tmp_path / "db.ndjson")
    for i in range(100):
        log.write(f"line {i:03d} " + "x" * 30)  # 40 bytes each
    old, new = tmp_path / "db.ndjson.1", tmp_path / "db.ndjson"
    assert old.stat().st_size <= 1000 and new.stat().st_size <= 1000
    kept = log.lines()
    assert kept[-1].startswith("line 099") and len(kept) >= 25  # the newest lines, oldest first, no gaps
    assert [int(x[5:8]) for x in kept] == list(range(100 - len(kept), 100))
    assert read_lines(new, 3) == kept[-3:] and log.tail(200) == kept[-5:]
    log.close()
    again = LogFile(new)  # reopened (a restart): appends to the current generation
    again.write("after restart")
    assert again.lines(2) == [kept[-1], "after restart"]
    again.remove()
    assert not old.exists() and not new.exists()


def test_the_compiled_module_cache_keeps_the_most_recently_used_within_its_budget(monkeypatch, tmp_path):
    import os

    import wasmtime as wt

    from harness.host.wasm import compile_module, prune_module_cache

    folder = tmp_path / "unit"
    folder.mkdir()
    for i, name in enumerate(["old", "mid", "new"]):
        p = folder / f"{name}.cwasm"
        p.write_bytes(b"x" * 100)
        os.utime(p, (1000 + i, 1000 + i))
    (folder / "other.txt").write_bytes(b"y" * 1000)  # not a compiled module: never touched
    assert prune_module_cache(folder, keep=folder / "old.cwasm", budget=250) == 100  # "old" is kept
    assert sorted(p.name for p in folder.iterdir()) == ["new.cwasm", "old.cwasm", "other.txt"]

    # compile_module: a cache hit refreshes its entry, so the module used last survives the next compile
    monkeypatch.setenv("SPACETIME_PY_CACHE", str(tmp_path / "cache"))
    mods = [wt.wat2wasm(f'(module (func (export "f{i}") (result i32) i32.const {i}))') for i in range(3)]
    compile_module(mods[0])
    compile_module(mods[1])
    [entry0] = [p for p in (tmp_path / "cache" / "modules").glob("*.cwasm") if p.stat().st_mtime == min(
        q.stat().st_mtime for q in (tmp_path / "cache" / "modules").glob("*.cwasm"))]
    size = entry0.stat().st_size
    os.utime(entry0, (1, 1))
    compile_module(mods[0])  # a hit: used now
    monkeypatch.setattr(LIMITS, "compiled_cache_bytes", 2 * size + size // 2)  # room for two
    compile_module(mods[2])
    left = sorted((tmp_path / "cache" / "modules").glob("*.cwasm"))
    assert len(left) == 2 and entry0 in left  # mods[1], the least recently used, went
