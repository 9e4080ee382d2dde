"""`spacetime-py generate`: typed Python client bindings for a module.

    from client_sdk.codegen import generate, module_def_from_wasm
    generate(module_def_from_wasm("target/module.wasm"), "my_bindings/")

The module definition comes from a built wasm (`__describe_module__`, read by `harness.host`) or from a server's
`GET /v1/database/{name}/schema?version=10`.
"""

from __future__ import annotations

from pathlib import Path

from spacetime_core.module_def import ModuleDef

from .python import HEADER, CodegenError, generate_python, write_package
from .schema_json import module_def_from_schema_json, module_def_from_server


def module_def_from_wasm(wasm: str | Path | bytes) -> ModuleDef:
    """Instantiate the module in the local host (no tables, no init) and decode what it describes."""
    from harness.host import Database
    from spacetime_core.sats import Identity

    data = wasm if isinstance(wasm, bytes) else Path(wasm).read_bytes()
    zero = Identity.from_bytes(bytes(32))
    db = Database(data, identity=zero, owner=zero)
    try:
        return db.mdef
    finally:
        db.close()


def generate(mdef: ModuleDef, out_dir: str | Path, lang: str = "python") -> list[Path]:
    """Write the bindings package for `mdef` into `out_dir` (overwriting an earlier generation)."""
    if lang != "python":
        raise CodegenError(f"unsupported language {lang!r} (only python)")
    return write_package(generate_python(mdef), out_dir)


__all__ = ["HEADER", "CodegenError", "generate", "generate_python", "module_def_from_schema_json",
           "module_def_from_server", "module_def_from_wasm", "write_package"]
