"""Fast crossings between Python and wasm on the PyPI `wasmtime` package.

The package's plain API costs ~70 µs to call `__call_reducer__` and ~7 µs per host import (it rebuilds
type objects on every call; shared/reference/wasmtime-py-host-costs.md).  Here imports are
`wasmtime_func_new_unchecked` callbacks that read their arguments straight from the raw value slots,
and exports are called with `wasmtime_func_call_unchecked` on a preallocated slot buffer: ~1 µs per
export call and well under 1 µs per import.

One Engine per process (function types are bound to an engine), whose epoch a ticker advances every 10 ms
so that a runaway call can be interrupted.

The GIL during a call.  Releasing it while wasm runs (`ctypes.CDLL`) lets other threads run Python during the
call, but each host import must then take it back, and under load (the event loop busy on another thread) each
take is a wait: seven imports per keynote transfer made the call cost ~25 µs more under load than alone.  With
`SPACETIME_PY_WASM_GIL=hold` a call holds the GIL (`ctypes.PyDLL`) while it is short.  That needs a ticker that
never takes the GIL: on Linux the epoch is advanced by a POSIX timer that calls
`wasmtime_engine_increment_epoch` straight from a native thread (`_native_ticker`); by default, and where there
is no such timer, a Python thread ticks and every call releases the GIL.  A held call gets an epoch callback every
tick; running Python there honours another thread's request for the GIL (CPython's switch interval), so a long
call hands the GIL over at least every ~10 ms, and once a call of an instance has run `HOLD_LIMIT_S` its calls
release the GIL for the next `RELEASE_FOR_S`: a long reducer then runs beside the event loop and other
databases again.  Why it is not the default (benchmarks/README.md, "Holding the GIL through short calls"): the
keynote load gains 14-32 % TPS, but the event loop and the durability thread then wait longer for the GIL, and
with 100 subscribers the fan-out p99 went from ~12 to ~30 ms.

Limits follow upstream's engine (crates/core/src/host/wasmtime/): wasmtime's default 512 KiB native stack
for wasm code, fuel metering with a fresh budget of 120e9 units (`FunctionBudget::DEFAULT_BUDGET`, "roughly
one minute") per export call, no linear-memory limit beyond wasm32's 4 GiB, and an epoch callback that only
logs a warning each second a call keeps running.  `Limits.timeout_s` / `memory_bytes` add stricter local
caps (tests use them); they are off by default so local runs predict production.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
import threading
import time
from collections.abc import Callable
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    addressof,
    byref,
    c_int,
    c_long,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
    cast,
)
from dataclasses import dataclass
from operator import and_
from pathlib import Path

import wasmtime as wt
from wasmtime import _ffi

from harness.limits import LIMITS
from module_sdk.build.toolchain import WASMTIME_VERSION, cache_dir, digest
from module_sdk.build.validate import SERVER_FEATURES_ID, server_features

_LIB = ctypes.CDLL(_ffi.filename)
_new_unchecked = _LIB.wasmtime_func_new_unchecked
_new_unchecked.argtypes = [c_void_p] * 6
_new_unchecked.restype = None
_set_epoch_deadline = _LIB.wasmtime_context_set_epoch_deadline
_set_epoch_deadline.argtypes = [c_void_p, c_uint64]
_set_epoch_deadline.restype = None
_trap_new = _LIB.wasmtime_trap_new
_trap_new.argtypes = [c_void_p, c_size_t]
_trap_new.restype = c_void_p
_set_fuel = _LIB.wasmtime_context_set_fuel
_set_fuel.argtypes = [c_void_p, c_uint64]
_set_fuel.restype = c_void_p  # wasmtime_error_t*
# For export calls, without argtypes: called with ctypes objects made once per export, they skip
# the per-call argument conversion (~0.1 µs each).  The two setters hold the GIL (PyDLL): they only store a value.
_call_fast = _LIB["wasmtime_func_call_unchecked"]  # item access: a separate function object, argtypes stay None
_call_fast.restype = c_void_p  # wasmtime_error_t*
_PYLIB = ctypes.PyDLL(_ffi.filename)
_call_held = _PYLIB["wasmtime_func_call_unchecked"]  # the same call, GIL held (module docstring)
_call_held.restype = c_void_p
_set_fuel_fast = _PYLIB["wasmtime_context_set_fuel"]
_set_fuel_fast.restype = c_void_p
_set_epoch_deadline_fast = _PYLIB["wasmtime_context_set_epoch_deadline"]
_set_epoch_deadline_fast.restype = None
_error_new = _LIB.wasmtime_error_new
_error_new.argtypes = [ctypes.c_char_p]
_error_new.restype = c_void_p
# wasmtime_error_t *(*)(wasmtime_context_t *, void *data, uint64_t *delta, wasmtime_update_deadline_kind_t *kind)
EPOCH_CALLBACK = CFUNCTYPE(c_void_p, c_void_p, c_void_p, POINTER(c_uint64), POINTER(ctypes.c_uint8))
_deadline_callback = _LIB.wasmtime_store_epoch_deadline_callback
_deadline_callback.argtypes = [c_void_p, EPOCH_CALLBACK, c_void_p, c_void_p]
_deadline_callback.restype = None
log = logging.getLogger(__name__)

CALLBACK = CFUNCTYPE(c_size_t, c_void_p, c_void_p, POINTER(c_uint32), c_size_t)
EPOCH_TICK_S = 0.01
TICKS_PER_SECOND = 100
HOLD_LIMIT_S = 0.005  # a call that has run this long while holding the GIL ...
RELEASE_FOR_S = 1.0  # ... makes its instance's calls release the GIL for this long
GIL_GAP_S = 0.0002  # a long held call lets go of the GIL this long every tick
MAX_WASM_STACK = 512 * 1024  # wasmtime's default, which upstream keeps; overflow traps
DEFAULT_FUEL = 120_000_000_000  # upstream FunctionBudget::DEFAULT_BUDGET: 2e9 per second x 60
SLOT = 16  # bytes per wasmtime_val_raw_t


class Trap(Exception):
    """The wasm call trapped (or a host import asked it to); the instance must be discarded."""

    def __init__(self, message: str, kind: str = "trap", cause: BaseException | None = None):
        super().__init__(message)
        self.kind = kind  # "timeout" | "out_of_fuel" | "stack_overflow" | "memory" | "host" | "trap"
        self.cause = cause


class HostTrap(Exception):
    """Raised by an import implementation to trap the guest (bad pointer, invalid UTF-8, ...)."""


@dataclass(frozen=True)
class Limits:
    fuel: int | None = DEFAULT_FUEL  # wasm instructions per export call, as upstream; running out traps
    timeout_s: float | None = None  # optional wall-clock cap per export call (upstream has none: it only logs)
    memory_bytes: int | None = None  # optional linear memory cap (upstream has none beyond wasm32's 4 GiB)


_ENGINE: wt.Engine | None = None
_ENGINE_LOCK = threading.Lock()
ENGINE_CONFIG = f"cranelift=speed;epoch=1;fuel=1;memory_may_move=0;stack={MAX_WASM_STACK};features={SERVER_FEATURES_ID}"


def engine() -> wt.Engine:
    """The process-wide engine (epoch interruption on; a ticker thread advances the epoch)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            cfg = server_features(wt.Config())  # accept exactly what a real server accepts
            cfg.cranelift_opt_level = "speed"
            cfg.epoch_interruption = True
            cfg.consume_fuel = True
            cfg.memory_may_move = False  # lets a memoryview over linear memory stay valid across memory.grow
            cfg.max_wasm_stack = MAX_WASM_STACK
            _ENGINE = wt.Engine(cfg)
            global HOLD_GIL
            if HOLD_GIL and not _native_ticker(_ENGINE):
                HOLD_GIL = False
            if not NATIVE_TICKER:
                threading.Thread(target=_tick, args=(_ENGINE,), name="wasm-epoch", daemon=True).start()
        return _ENGINE


def enable_held_calls() -> bool:
    """Make Instances created from now on hold the GIL during short calls, as ``SPACETIME_PY_WASM_GIL=hold`` does
    at start-up (tests, benchmarks).  False where there is no native ticker (then nothing changes)."""
    global HOLD_GIL
    eng = engine()
    with _ENGINE_LOCK:
        if not NATIVE_TICKER and not _native_ticker(eng):
            return False
        HOLD_GIL = True
        return True


# Opt-in (SPACETIME_PY_WASM_GIL=hold): calls hold the GIL while short (module docstring).  Never without a
# native ticker.
HOLD_GIL = os.environ.get("SPACETIME_PY_WASM_GIL", "release") == "hold"
NATIVE_TICKER = False


def _tick(eng: wt.Engine) -> None:
    while True:
        time.sleep(EPOCH_TICK_S)
        eng.increment_epoch()


class _SigEvent(Structure):  # struct sigevent (Linux): sigev_value, signo, notify, then the SIGEV_THREAD union
    _fields_ = [("value", c_void_p), ("signo", c_int), ("notify", c_int), ("function", c_void_p),
                ("attribute", c_void_p), ("_pad", c_int * 8)]


class _TimeSpec(Structure):
    _fields_ = [("sec", c_long), ("nsec", c_long)]


def _native_ticker(eng: wt.Engine) -> bool:
    """Advance ``eng``'s epoch every EPOCH_TICK_S without Python: a POSIX timer whose SIGEV_THREAD notification
    function is ``wasmtime_engine_increment_epoch`` itself, its argument (a ``union sigval``, passed like a
    pointer) the engine.  glibc and musl run it on a thread of their own that never touches the GIL, so a call
    holding the GIL is still interrupted.  False where there is no such timer (then a Python thread ticks)."""
    global NATIVE_TICKER
    if not sys.platform.startswith("linux") or ctypes.sizeof(c_void_p) != 8:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timer_create, libc.timer_settime
    except (OSError, AttributeError):
        try:
            librt = ctypes.CDLL("librt.so.1", use_errno=True)
            create, settime = librt.timer_create, librt.timer_settime
        except (OSError, AttributeError):
            return False
    create.argtypes = [c_int, POINTER(_SigEvent), POINTER(c_void_p)]
    settime.argtypes = [c_void_p, c_int, POINTER(_TimeSpec * 2), c_void_p]
    ev = _SigEvent()
    ev.value = cast(eng.ptr(), c_void_p).value
    ev.notify = 2  # SIGEV_THREAD
    ev.function = cast(_LIB.wasmtime_engine_increment_epoch, c_void_p).value
    timer = c_void_p()
    if create(1, byref(ev), byref(timer)) != 0:  # CLOCK_MONOTONIC
        return False
    ns = int(EPOCH_TICK_S * 1e9)
    period = (_TimeSpec * 2)(_TimeSpec(0, ns), _TimeSpec(0, ns))  # it_interval, it_value
    if settime(timer, 0, byref(period), None) != 0:
        return False
    NATIVE_TICKER = True
    return True


def compile_module(data: bytes) -> wt.Module:
    """Compile, or load from the on-disk cache keyed by wasm hash + wasmtime version + engine config.

    The cache keeps the most recently used compiled modules up to `LIMITS.compiled_cache_bytes`: each is
    ~2.5x its wasm (7-8 MB for a Python module), and `spacetime-py dev` or a test suite makes a new one per
    edit, so without a bound it grows by gigabytes."""
    path = cache_dir() / "modules" / f"{digest(data, WASMTIME_VERSION, ENGINE_CONFIG)}.cwasm"
    eng = engine()
    if path.is_file():
        try:
            module = wt.Module.deserialize_file(eng, str(path))
            try:
                os.utime(path)  # recently used: pruned last
            except OSError:
                pass
            return module
        except wt.WasmtimeError:
            path.unlink(missing_ok=True)
    module = wt.Module(eng, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.{id(module)}.tmp")
    tmp.write_bytes(module.serialize())
    tmp.replace(path)
    prune_module_cache(path.parent, keep=path)
    return module


def prune_module_cache(folder: Path, keep: Path | None = None, budget: int | None = None) -> int:
    """Delete the least recently used `*.cwasm` in `folder` until the rest fit in `budget` bytes (default
    `LIMITS.compiled_cache_bytes`); `keep` (the one just written) is never deleted.  Returns bytes freed.
    Safe while other processes use the cache: a deleted file that is mapped stays readable to them."""
    budget = LIMITS.compiled_cache_bytes if budget is None else budget
    entries = []
    for p in folder.glob("*.cwasm"):
        try:
            st = p.stat()
        except OSError:  # deleted meanwhile by another process
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    freed = 0
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= budget:
            break
        if p == keep:
            continue
        p.unlink(missing_ok=True)
        total -= size
        freed += size
    return freed


ImportImpl = Callable[[ctypes._Pointer], None]  # reads args from p[4*i], writes a result to p[0]


class Instance:
    """One store + instance whose imports are Python functions taking the raw slot pointer.

    `imports` maps (module, name) to impl(p).  An impl may raise HostTrap (or anything else) to trap the
    guest; the exception comes back out of `call` as `Trap` with `.cause` set.
    """

    def __init__(self, module: wt.Module, imports: dict[tuple[str, str], ImportImpl], limits: Limits | None = None):
        limits = limits or Limits()
        self.limits = limits
        self.store = wt.Store(engine())
        if limits.memory_bytes:
            self.store.set_limits(memory_size=limits.memory_bytes)
        self._ctx = cast(self.store._context(), c_void_p).value
        self._call_start = time.monotonic()
        self._held = False  # the running call holds the GIL (module docstring)
        self._release_until = 0.0  # calls release the GIL until then (a held call ran past HOLD_LIMIT_S)
        self._warned = (0.0, 0)  # (call start, whole second) last logged as long-running
        self._epoch_cb = EPOCH_CALLBACK(self._on_epoch)  # must outlive the store
        _deadline_callback(cast(self.store.ptr(), c_void_p).value, self._epoch_cb, None, None)
        self._pending: list[BaseException] = []
        self._callbacks = []  # CFUNCTYPE objects must outlive the store
        externs = []
        for imp in module.imports:
            impl = imports.get((imp.module, imp.name))
            if impl is None:
                raise LinkError(f"unknown import {imp.module}.{imp.name}")
            externs.append(self._host_func(imp.type, impl, f"{imp.module}.{imp.name}"))
        self._set_deadline()
        self.instance = wt.Instance(self.store, module, externs)
        self.exports = self.instance.exports(self.store)
        mem = self.exports.get("memory") if "memory" in self.exports else None
        self.memory: wt.Memory | None = mem if isinstance(mem, wt.Memory) else None
        self.mv = memoryview(b"")
        self.refresh_memory()

    def _host_func(self, functype: wt.FuncType, impl: ImportImpl, name: str) -> wt.Func:
        pending = self._pending

        def callback(env, caller, p, n):
            try:
                impl(p)
                return 0
            except BaseException as e:  # noqa: BLE001 - an exception escaping a ctypes callback crashes the process
                e.add_note(f"in host import {name}")
                pending.append(e)
                msg = f"host import {name} failed: {type(e).__name__}: {e}".encode()
                return _trap_new(msg, len(msg)) or 0

        cb = CALLBACK(callback)
        self._callbacks.append(cb)
        out = _ffi.wasmtime_func_t()
        _new_unchecked(self._ctx, cast(functype.ptr(), c_void_p).value, cast(cb, c_void_p).value, None, None,
                       addressof(out))
        return wt.Func._from_raw(out)

    def refresh_memory(self) -> memoryview:
        """Re-view linear memory after the guest may have grown it (the base never moves)."""
        if self.memory is None:
            return self.mv
        base = cast(self.memory.data_ptr(self.store), c_void_p).value
        size = self.memory.data_len(self.store)
        self.mv = memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B")
        return self.mv

    def _set_deadline(self) -> None:
        """Start a call: a fresh fuel budget (per call, as upstream) and a fresh clock."""
        err = _set_fuel(self._ctx, (1 << 64) - 1 if self.limits.fuel is None else self.limits.fuel)
        if err:
            raise wt.WasmtimeError._from_ptr(cast(err, POINTER(_ffi.wasmtime_error_t)))
        self.restart_clock()

    def restart_clock(self) -> None:
        """Restart the wall clock (after the call blocked in the host); the epoch callback is due in a second
        or at the timeout.  Fuel is not refilled."""
        self._call_start = time.monotonic()
        _set_epoch_deadline(self._ctx, 1 if self._held else self._ticks_to_next_check(0.0))

    def _ticks_to_next_check(self, elapsed: float) -> int:
        t = self.limits.timeout_s
        if t is not None and t - elapsed < 1.0:
            return max(1, int((t - elapsed) / EPOCH_TICK_S) + 1)
        return TICKS_PER_SECOND

    def _on_epoch(self, ctx, data, delta, kind) -> int | None:
        """Epoch deadline reached: log like upstream ("Wasm has been running for ..."), and stop the call only
        when a local `timeout_s` is set and exceeded."""
        try:
            now = time.monotonic()
            elapsed = now - self._call_start
            t = self.limits.timeout_s
            if t is not None and elapsed >= t:
                return _error_new(f"wasm interrupt: ran for {elapsed:.2f}s, over the {t}s limit".encode())
            seen = (self._call_start, int(elapsed))  # a held call comes back every tick: log each second once
            if elapsed >= 1.0 and seen != self._warned:
                self._warned = seen
                log.warning("Wasm has been running for %.1fs", elapsed)
            if self._held:
                # Back next tick, and let a thread waiting for the GIL have it now: this call is long.
                if elapsed >= HOLD_LIMIT_S:
                    self._release_until = now + RELEASE_FOR_S
                    time.sleep(GIL_GAP_S)
                delta[0] = 1
            else:
                delta[0] = self._ticks_to_next_check(elapsed)
            kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
            return None
        except BaseException as e:  # noqa: BLE001 - an exception escaping a ctypes callback crashes the process
            return _error_new(f"epoch callback failed: {e}".encode())

    def export(self, name: str, exact: str | None = None) -> Callable[..., int | None]:
        """A fast caller for export `name`: f(*int_args) -> i32/i64 result or None.  Arguments wrap to their
        wasm type; with `exact` (one struct code per param: I = u32, Q = u64, q = i64) the caller promises
        values in range instead and saves the wrapping (out-of-range values raise struct.error)."""
        func = self.exports[name]
        if not isinstance(func, wt.Func):
            raise KeyError(f"export {name} is not a function")
        ty = func.type(self.store)
        params = [str(p) for p in ty.params]
        results = [str(r) for r in ty.results]
        if exact is not None:
            if len(exact) != len(params) or any(c not in ("I" if p == "i32" else "Qq") for c, p in zip(exact, params)):
                raise ValueError(f"exact={exact!r} does not match the params of {name}: {params}")
            fmt = struct.Struct("<" + "".join(c + ("12x" if c == "I" else "8x") for c in exact))
        else:
            fmt = struct.Struct("<" + "".join("Q8x" if p == "i64" else "I12x" for p in params))
        masks = tuple((1 << 64) - 1 if p == "i64" else 0xFFFFFFFF for p in params)
        nslots = max(len(params), len(results), 1)
        raw = (ctypes.c_ubyte * (SLOT * nslots))()
        trap = POINTER(_ffi.wasm_trap_t)()
        argv = (c_void_p(self._ctx), c_void_p(addressof(func._func)), c_void_p(addressof(raw)), c_size_t(nslots),
                c_void_p(addressof(trap)))
        result_fmt = {"i32": "<i", "i64": "<q"}.get(results[0]) if results else None
        pack_into = fmt.pack_into
        unpack_from = struct.Struct(result_fmt).unpack_from if result_fmt else None
        pending, ctx = self._pending, argv[0]
        fuel = c_uint64((1 << 64) - 1 if self.limits.fuel is None else self.limits.fuel)
        ticks = c_uint64(self._ticks_to_next_check(0.0))  # limits are frozen: the first deadline is the same every call
        one_tick = c_uint64(1)
        monotonic = time.monotonic
        hold = HOLD_GIL  # engine() has decided it (an Instance exists)

        def call(*args):
            if exact is None:
                pack_into(raw, 0, *map(and_, args, masks))
            else:
                pack_into(raw, 0, *args)
            # _set_deadline, inlined: a fresh fuel budget and wall clock per call
            e = _set_fuel_fast(ctx, fuel)
            if e:
                raise wt.WasmtimeError._from_ptr(cast(e, POINTER(_ffi.wasmtime_error_t)))
            self._call_start = now = monotonic()
            if hold and now >= self._release_until:
                _set_epoch_deadline_fast(ctx, one_tick)
                self._held = True
                err = _call_held(*argv)
                self._held = False
            else:
                _set_epoch_deadline_fast(ctx, ticks)
                err = _call_fast(*argv)
            if err or trap:
                self._raise(err, trap)
            if pending:  # an import failed without trapping (should not happen): surface it
                e = pending.pop()
                pending.clear()
                raise Trap(f"host error: {e}", "host", e)
            return unpack_from(raw)[0] if unpack_from else None

        return call

    def _raise(self, err: int | None, trap) -> None:
        if err:
            msg = str(wt.WasmtimeError._from_ptr(cast(err, POINTER(_ffi.wasmtime_error_t))))
        else:
            msg = str(wt.Trap._from_ptr(trap))  # takes ownership of the trap
            ctypes.memset(addressof(trap), 0, ctypes.sizeof(trap))
        cause = self._pending.pop() if self._pending else None
        self._pending.clear()
        if cause is not None:
            where = cause.__notes__[-1] if getattr(cause, "__notes__", None) else "in a host import"
            raise Trap(f"{type(cause).__name__}: {cause} ({where})", "host", cause)
        low = msg.lower()
        if "interrupt" in low:
            kind = "timeout"
        elif "fuel" in low:
            kind = "out_of_fuel"
        elif "stack" in low and ("exhausted" in low or "overflow" in low):
            kind = "stack_overflow"
        elif "out of bounds memory" in low or "memory" in low and "grow" in low:
            kind = "memory"
        else:
            kind = "trap"
        text = trap_text(msg)
        if kind == "timeout":
            text = f"the call exceeded its time limit of {self.limits.timeout_s:g} s ({text})"
        raise Trap(text, kind)


def trap_text(msg: str) -> str:
    """The line of a wasmtime error that says what happened: its `Caused by:` line when there is one (the first
    line is then just "error while executing at wasm backtrace:"), else the first line."""
    lines = [line.strip() for line in str(msg).splitlines() if line.strip()]
    if not lines:
        return "wasm trap"
    for i, line in enumerate(lines):
        if line.startswith("Caused by:") and i + 1 < len(lines):
            return lines[i + 1].lstrip("0123456789: ")
    return lines[0]


class LinkError(Exception):
    """The module imports something this host does not provide."""


__all__ = ["DEFAULT_FUEL", "MAX_WASM_STACK", "HostTrap", "Instance", "Limits", "LinkError", "Trap", "compile_module",
           "prune_module_cache",
           "engine", "trap_text"]
