"""The runtime links only the part of wasi-libc it uses, compiled by the build itself (module_sdk/build/wasi_libc.py),
instead of zig's `-lc`, which compiles all of wasi-libc first.  The result must be the runtime `-lc` links, byte for
byte, and a runtime that outgrows the list must still build."""

from __future__ import annotations

import pytest

from module_sdk.build import runtime, toolchain, wasi_libc

needs_zig = pytest.mark.skipif(toolchain.installed_version("ziglang") != toolchain.ZIGLANG_VERSION,
                               reason="needs the pinned ziglang ([toolchain] extra)")


@needs_zig
def test_the_tables_name_sources_the_pinned_zig_ships_with_distinct_object_names():
    lib = toolchain.zig_lib_dir()
    missing = [s for _, srcs in wasi_libc.GROUPS for s in (*srcs, wasi_libc.CRT1) if not (lib / "libc" / s).is_file()]
    assert missing == []
    assert (lib / "compiler_rt.zig").is_file() and (lib / "c.zig").is_file()
    members = wasi_libc.archive_members()
    assert len(members) == len(set(members)) == 174  # a batch's clang writes objects by stem into one folder


def test_the_runtime_cache_key_covers_the_libc_tables(monkeypatch):
    before = runtime.source_runtime_key()
    flags, srcs = wasi_libc.GROUPS[-1]
    monkeypatch.setattr(wasi_libc, "GROUPS", (*wasi_libc.GROUPS[:-1], (flags, srcs[:-1])))
    assert runtime.source_runtime_key() != before


@needs_zig
@pytest.mark.slow
def test_the_partial_libc_gives_the_bytes_of_zigs_whole_libc_and_a_short_list_falls_back(tmp_path, monkeypatch,
                                                                                         capfd):
    monkeypatch.setenv("SPACETIME_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime.prebuilt, "available", lambda: False)
    partial = runtime.build_runtime().read_bytes()
    assert "whole wasi-libc" not in capfd.readouterr().err
    # drop strsignal.c (the last group): the partial link now misses a symbol, so the build links zig's whole libc
    monkeypatch.setattr(wasi_libc, "GROUPS", wasi_libc.GROUPS[:-1])
    whole = runtime.build_runtime().read_bytes()
    assert "linking with zig's whole wasi-libc" in capfd.readouterr().err
    assert whole == partial
