"""`spacetime-py generate`: typed Python client bindings for a module.

    from client_sdk.codegen import generate, module_def_from_server
    generate(module_def_from_server("http://127.0.0.1:3000", "chat"), "my_bindings/")

The module definition comes from a server's `GET /v1/database/{name}/schema?version=10`, or (in the author tools,
which have a host to run it) from a built wasm: `harness.host.describe.module_def_from_wasm`.
"""

from __future__ import annotations

from pathlib import Path

from spacetime_core.module_def import ModuleDef

from .python import HEADER, CodegenError, generate_python, write_package
from .schema_json import module_def_from_schema_json, module_def_from_server


def generate(mdef: ModuleDef, out_dir: str | Path, lang: str = "python") -> list[Path]:
    """Write the bindings package for `mdef` into `out_dir` (overwriting an earlier generation)."""
    if lang != "python":
        raise CodegenError(f"unsupported language {lang!r} (only python)")
    return write_package(generate_python(mdef), out_dir)


__all__ = ["HEADER", "CodegenError", "generate", "generate_python", "module_def_from_schema_json",
           "module_def_from_server", "write_package"]
