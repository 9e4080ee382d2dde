"""A built module's definition, read by running it: the host instantiates the wasm (no tables, no init) and
decodes what `__describe_module__` returns.  Author tools use it for `generate --module-wasm`; a client without
the host reads a server's /schema instead (client_sdk.codegen.module_def_from_server)."""

from __future__ import annotations

from pathlib import Path

from spacetime_core.module_def import ModuleDef
from spacetime_core.sats import Identity

from .database import Database


def module_def_from_wasm(wasm: str | Path | bytes) -> ModuleDef:
    """The validated definition of the module in `wasm` (a path or the bytes)."""
    data = wasm if isinstance(wasm, bytes) else Path(wasm).read_bytes()
    zero = Identity.from_bytes(bytes(32))
    db = Database(data, identity=zero, owner=zero)
    try:
        return db.mdef
    finally:
        db.close()
