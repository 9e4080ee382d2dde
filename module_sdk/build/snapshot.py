"""Pre-initialization ("snapshot") of a wasm module in pure Python, the way wizer does it.

The runtime starts CPython and imports the user's module once, at build time; we then write the
resulting linear memory and globals back into the module as data segments and drop the init exports.
A server instantiating the output gets a ready interpreter without running any Python.

Steps: export every mutable global (so their values can be read), instantiate, run `_initialize` and the
init export, read memory and globals, then re-emit the *original* module with memory min = the snapshot
size, globals initialized to their snapshot values and data = the non-zero runs of memory.
MVP modules only (no passive segments or multi-memory), which is what our runtime is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import wasmtime as wt

from . import wasm
from .toolchain import WASMTIME_VERSION, cache_dir, digest

HostFunc = Callable[..., object]
MAX_SEGMENTS = 50_000  # engines refuse more than 100k data segments
SEGMENT_GAP = 8  # merge runs separated by fewer zero bytes: each segment costs ~5 bytes of header


class SnapshotError(RuntimeError):
    """Pre-initialization failed inside the module."""


def _instrument(raw: bytes) -> tuple[bytes, list[int], int]:
    """The module with every defined mutable global also exported as `__snap_g<i>`."""
    secs = wasm.sections(raw)
    info = wasm.module_info(raw)
    globs = wasm.parse_globals(next((b for s, b in secs if s == wasm.SEC_GLOBAL), b"\0"))
    mutable = [i for i, g in enumerate(globs) if g[1]]
    exports = info.exports + [wasm.Export(f"__snap_g{i}", wasm.KIND_GLOBAL, info.imported_globals + i) for i in mutable]
    out = [(s, wasm.encode_exports(exports) if s == wasm.SEC_EXPORT else b) for s, b in secs]
    return wasm.emit(out), mutable, info.imported_globals


class Snapshotter:
    """Instantiates one base module (the runtime) repeatedly and snapshots it.

    The instrumented module is compiled once and the compiled code is cached on disk keyed by its hash and
    the wasmtime version, so a warm build pays milliseconds instead of Cranelift's seconds.
    """

    def __init__(self, raw: bytes):
        self.raw = raw
        self.instrumented, self.mutable, _ = _instrument(raw)
        self.engine = wt.Engine(wt.Config())
        self.module = self._load_compiled()

    def _load_compiled(self) -> wt.Module:
        path = cache_dir() / f"compiled-{digest(self.instrumented, WASMTIME_VERSION, 'snapshot')}.cwasm"
        if path.is_file():
            try:
                return wt.Module.deserialize_file(self.engine, str(path))
            except wt.WasmtimeError:
                path.unlink(missing_ok=True)
        module = wt.Module(self.engine, self.instrumented)
        tmp = Path(f"{path}.tmp")
        tmp.write_bytes(module.serialize())
        tmp.replace(path)
        return module

    def run(self, host: dict[tuple[str, str], HostFunc], init: str, drop_exports: tuple[str, ...] = ()) -> bytes:
        """Run `_initialize` then `init` (which must return 0) and return the snapshotted module bytes.

        `host` maps (module, name) to a Python function called as f(caller, *args); any other import traps.
        """
        store = wt.Store(self.engine)
        linker = wt.Linker(self.engine)
        for imp in self.module.imports:
            key = (imp.module, imp.name)
            fn = host.get(key) or _refuse(f"{imp.module}.{imp.name}")
            linker.define_func(imp.module, imp.name, imp.type, fn, access_caller=True)
        inst = linker.instantiate(store, self.module)
        exports = inst.exports(store)
        if "_initialize" in exports:
            exports["_initialize"](store)
        status = exports[init](store)
        if status:
            raise SnapshotError(f"{init} returned {status}")
        memory = exports["memory"]
        values = {i: exports[f"__snap_g{i}"].value(store) for i in self.mutable}
        pages = memory.size(store)
        image = memory.read(store, 0, pages * 65536)
        return self._emit(bytes(image), pages, values, {init, "_initialize", "_start", *drop_exports})

    def _emit(self, image: bytes, pages: int, values: dict[int, int], drop: set[str]) -> bytes:
        segments = _nonzero_runs(image)
        data = wasm.vec(
            [
                b"\0\x41" + wasm.sleb(a if a < 2**31 else a - 2**32) + b"\x0b" + wasm.uleb(b - a) + image[a:b]
                for a, b in segments
            ]
        )
        out = []
        for sid, body in wasm.sections(self.raw):
            if sid in (wasm.SEC_START, wasm.SEC_DATACOUNT):
                continue
            if sid == wasm.SEC_MEMORY:
                n, p = wasm.read_uleb(body, 0)
                flags = body[p]
                _, q = wasm.read_uleb(body, p + 1)
                maximum = b""
                if flags & 1:
                    mx, _ = wasm.read_uleb(body, q)
                    maximum = wasm.uleb(max(mx, pages))
                body = wasm.uleb(1) + bytes([flags & 1]) + wasm.uleb(pages) + maximum
            elif sid == wasm.SEC_GLOBAL:
                globs = wasm.parse_globals(body)
                body = wasm.vec(
                    [
                        bytes([vt, mut]) + (wasm.const_expr(vt, values[i]) if mut else init)
                        for i, (vt, mut, init) in enumerate(globs)
                    ]
                )
            elif sid == wasm.SEC_EXPORT:
                body = wasm.encode_exports([e for e in wasm.parse_exports(body) if e.name not in drop])
            elif sid == wasm.SEC_DATA:
                body = data
            out.append((sid, body))
        if not any(s == wasm.SEC_DATA for s, _ in out):
            at = max(k for k, (s, _) in enumerate(out) if s == wasm.SEC_CODE) + 1
            out.insert(at, (wasm.SEC_DATA, data))
        return wasm.emit(out)


def _nonzero_runs(image: bytes) -> list[list[int]]:
    gap = SEGMENT_GAP
    runs: list[list[int]] = []
    for m in re.finditer(rb"[^\x00]+", image):
        a, b = m.span()
        if runs and a - runs[-1][1] <= gap:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    while len(runs) > MAX_SEGMENTS:
        gap *= 2
        merged = [runs[0]]
        for a, b in runs[1:]:
            if a - merged[-1][1] <= gap:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        runs = merged
    return runs


def _refuse(name: str) -> HostFunc:
    def trap(caller, *args):
        raise SnapshotError(f"the module called {name} while it was being built; move that call into a reducer")

    return trap
