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
import struct
from collections.abc import Callable
from pathlib import Path

import lz4.block
import wasmtime as wt

from . import wasm
from .toolchain import WASMTIME_VERSION, cache_dir, digest

HostFunc = Callable[..., object]
MAX_SEGMENTS = 50_000  # engines refuse more than 100k data segments
SEGMENT_GAP = 8  # merge runs separated by fewer zero bytes: each segment costs ~5 bytes of header
# runtime/unpack.c: the export that says where `struct stdb_packed` (4 x u32) lives, and the unpacker (every host
# export runs it first); the build drops both from the output
PACKED_AT, PACKED_SIZE = "stdb_packed_at", 16
BUILD_ONLY_EXPORTS = (PACKED_AT, "stdb_unpack")
LZ4_LEVEL = 6  # HC level: 9 saves ~13 KB more on sdk_test for 6x the time (0.3 s), 1 costs +45 KB


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
        self.stack_top, self.data_start = _stack_layout(raw, self.mutable)
        self.engine = wt.Engine(wt.Config())
        self.module = self._load_compiled()
        self.static = _static_data(raw)
        self._code_refs: set[int] | None = None

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
        packed_at = exports[PACKED_AT](store) if PACKED_AT in exports else None
        if "_initialize" in exports:
            exports["_initialize"](store)
        status = exports[init](store)
        if status:
            raise SnapshotError(f"{init} returned {status}")
        memory = exports["memory"]
        values = {i: exports[f"__snap_g{i}"].value(store) for i in self.mutable}
        pages = memory.size(store)
        image = bytearray(memory.read(store, 0, pages * 65536))
        self._clear_dead_stack(image, values)
        self._keep_shared_strings(image)
        drop = {init, "_initialize", "_start", *BUILD_ONLY_EXPORTS, *drop_exports}
        return self._emit(bytes(image), pages, values, drop, packed_at)

    def _clear_dead_stack(self, image: bytearray, values: dict[int, int]) -> None:
        """Zero the C stack's dead bytes (left by calls that returned during init).

        wasm-ld puts the shadow stack first (addresses 0 .. __stack_pointer's start value, below all static
        data) and its pointer is the first mutable global.  When init has returned the pointer is back at its
        start and every byte below it is dead.  Anything else (another layout) is left alone."""
        if not self.mutable or self.stack_top is None:
            return
        sp = values.get(self.mutable[0])
        if sp == self.stack_top and sp <= self.data_start:
            image[:sp] = bytes(sp)

    def _code_pointers(self) -> set[int]:
        """Every value an `i32.const` in the code section could hold that lies in the static data (a superset: any
        0x41 byte is read as one), computed once per runtime and cached on disk."""
        if self._code_refs is None:
            lo, hi = self.static[0][0], self.static[-1][0] + len(self.static[-1][1])
            path = cache_dir() / f"strrefs-{digest(self.raw, 'i32.const', str(lo), str(hi))}.bin"
            try:
                raw = path.read_bytes()
                self._code_refs = set(struct.unpack(f"<{len(raw) // 4}I", raw))
            except OSError:
                code = dict(wasm.sections(self.raw)).get(wasm.SEC_CODE, b"")
                refs = set()
                for m in re.finditer(b"\x41", code):
                    try:
                        v = _read_sleb_at(code, m.end())[0] & 0xFFFFFFFF
                    except IndexError:
                        continue
                    if lo <= v < hi:
                        refs.add(v)
                tmp = Path(f"{path}.tmp")
                tmp.write_bytes(struct.pack(f"<{len(refs)}I", *sorted(refs)))
                tmp.replace(path)
                self._code_refs = refs
        return self._code_refs

    def _keep_shared_strings(self, image: bytearray) -> None:
        """Undo the init's zeroing of static strings where another string still lives.

        The runtime zeroes libpython's docstrings in place (`strip_builtin_docs` in runtime/spacetime.c), but the
        linker merges string literals and stores a string that is the tail of another inside it ("exception text"
        holds the member name "text").  Any pointer (an `i32.const` in the code, an aligned word of the static
        data before or after init) into the middle of a zeroed string gets that string's tail back."""
        if not self.static:
            return
        lo = self.static[0][0] & ~3
        hi = self.static[-1][0] + len(self.static[-1][1])
        before = bytearray(hi - lo)  # the static data as linked (segments may be split and unaligned)
        for addr, data in self.static:
            before[addr - lo : addr - lo + len(data)] = data
        n = (hi - lo) // 4
        refs = set(self._code_pointers())
        refs.update(struct.unpack_from(f"<{n}I", before, 0))  # aligned words, before and after init
        refs.update(struct.unpack_from(f"<{n}I", image, lo))
        for p in sorted(r for r in refs if lo < r < hi):
            k = p - lo
            if not image[p] and before[k] and before[k - 1]:  # points into the middle of a zeroed string
                end = before.find(0, k)
                end = len(before) if end < 0 else end
                image[p : lo + end] = before[k:end]

    def _emit(self, image: bytes, pages: int, values: dict[int, int], drop: set[str],
              packed_at: int | None = None) -> bytes:
        packed = _pack(image, packed_at) if packed_at is not None else None
        if packed is None:  # a runtime without the unpacker: the image's non-zero runs as they are
            segments = [(a, image[a:b]) for a, b in _nonzero_runs(image)]
        else:
            segments, end = packed
            pages = max(pages, -(-end // 65536))
        data = wasm.vec([_segment(a, b) for a, b in segments])
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


def _segment(addr: int, data: bytes) -> bytes:
    """An active data segment of memory 0 at `addr`."""
    return b"\0\x41" + wasm.sleb(addr if addr < 2**31 else addr - 2**32) + b"\x0b" + wasm.uleb(len(data)) + data


def _pack(image: bytes, packed_at: int) -> tuple[list[tuple[int, bytes]], int] | None:
    """The image as one LZ4 block plus the `stdb_packed` record that tells the runtime where (runtime/unpack.c),
    and the end of the memory the block needs; None when packing would not help or cannot be placed.

    The block covers the image's first to last non-zero byte and ends `margin` bytes past the image, so the
    runtime decodes it in place (output never overtakes input: see unpack.c) and every byte lands at its
    snapshot address."""
    nz = re.search(rb"[^\x00]", image)
    if nz is None or image[packed_at : packed_at + PACKED_SIZE].strip(b"\0"):
        return None
    lo = nz.start()
    hi = len(image.rstrip(b"\0"))
    block = lz4.block.compress(image[lo:hi], mode="high_compression", compression=LZ4_LEVEL, store_size=False)
    end = hi + len(block) // 255 + 64
    src = end - len(block)
    if len(block) >= hi - lo or src < packed_at + PACKED_SIZE and packed_at < end:
        return None
    record = struct.pack("<4I", src, len(block), lo, hi - lo)
    return [(src, block), (packed_at, record)], end


def _stack_layout(raw: bytes, mutable: list[int]) -> tuple[int | None, int]:
    """(start value of the first mutable i32 global (the stack pointer), lowest data segment address)."""
    secs = dict(wasm.sections(raw))
    globs = wasm.parse_globals(secs.get(wasm.SEC_GLOBAL, b"\0"))
    top = None
    if mutable:
        vt, _, init = globs[mutable[0]]
        if vt == 0x7F and init[:1] == b"\x41":  # i32.const
            top = _read_sleb(init, 1)
    lowest = 2**32
    body = secs.get(wasm.SEC_DATA, b"\0")
    n, p = wasm.read_uleb(body, 0)
    for _ in range(n):
        flags, p = wasm.read_uleb(body, p)
        if flags != 0 or body[p] != 0x41:  # not an active i32.const segment: don't guess
            return None, 0
        addr, p = _read_sleb_at(body, p + 1)
        p += 1  # end
        size, p = wasm.read_uleb(body, p)
        p += size
        lowest = min(lowest, addr & 0xFFFFFFFF)
    return top, lowest


def _static_data(raw: bytes) -> list[tuple[int, bytes]]:
    """The active data segments of a module as (address, bytes), by address."""
    body = dict(wasm.sections(raw)).get(wasm.SEC_DATA, b"\0")
    n, p = wasm.read_uleb(body, 0)
    out = []
    for _ in range(n):
        flags, p = wasm.read_uleb(body, p)
        if flags != 0 or body[p] != 0x41:
            return []
        addr, p = _read_sleb_at(body, p + 1)
        size, p = wasm.read_uleb(body, p + 1)
        out.append((addr & 0xFFFFFFFF, body[p : p + size]))
        p += size
    return sorted(out)


def _read_sleb_at(b: bytes, p: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        x = b[p]
        p += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            if x & 0x40:
                result -= 1 << shift
            return result, p


def _read_sleb(b: bytes, p: int) -> int:
    return _read_sleb_at(b, p)[0]


def _nonzero_runs(image: bytes) -> list[list[int]]:
    """The data segments: runs of non-zero bytes, merged across gaps of up to SEGMENT_GAP zeros (cheaper than a
    segment header).  If that leaves more than MAX_SEGMENTS, the narrowest remaining gaps are merged too."""
    limit = SEGMENT_GAP
    while True:
        runs, at = [], 0
        for m in re.finditer(b"\\x00{%d,}" % (limit + 1), image):  # the gaps that separate segments
            a, b = m.span()
            if a > at:
                runs.append([at, a])
            at = b
        if at < len(image):
            runs.append([at, len(image)])
        if len(runs) <= MAX_SEGMENTS:
            return runs
        gaps = sorted((runs[i + 1][0] - runs[i][1] for i in range(len(runs) - 1)), reverse=True)
        limit = gaps[MAX_SEGMENTS - 1]  # keep only the MAX_SEGMENTS - 1 widest gaps


def _refuse(name: str) -> HostFunc:
    def trap(caller, *args):
        raise SnapshotError(f"the module called {name} while it was being built; move that call into a reducer")

    return trap
