"""Checks that a .wasm is what a real SpacetimeDB 2.x server accepts: a core module whose only imports are
spacetime_10.x functions with the exact signatures, using only MVP + mutable-global + sign-ext features,
exporting `memory` and the required functions."""

from __future__ import annotations

import wasmtime as wt

from .. import abi_spec
from . import wasm


class InvalidModule(ValueError):
    """The wasm would be refused by a SpacetimeDB server; the message says why."""


def _feature_engine() -> wt.Engine:
    cfg = wt.Config()
    # Everything past MVP except mutable globals and sign-ext (which wasmtime always enables) is off.
    # Order matters: dependent proposals must be off before what they depend on.  reference-types stays on:
    # this wasmtime build cannot turn it off (component-model-async needs it); the linker never emits it for MVP.
    for flag in ("wasm_component_model", "wasm_stack_switching", "wasm_gc", "wasm_function_references",
                 "wasm_exceptions", "wasm_simd", "wasm_relaxed_simd", "wasm_threads", "wasm_tail_call",
                 "wasm_multi_memory", "wasm_memory64", "wasm_bulk_memory",
                 "wasm_multi_value", "wasm_wide_arithmetic", "wasm_custom_page_sizes"):
        try:
            setattr(cfg, flag, False)
        except (AttributeError, wt.WasmtimeError):
            pass
    return wt.Engine(cfg)


def validate_module(data: bytes, *, check_features: bool = True) -> wasm.ModuleInfo:
    """Raise InvalidModule with every problem found; return the parsed module info when it is fine."""
    try:
        info = wasm.module_info(data)
    except wasm.WasmFormatError as e:
        raise InvalidModule(str(e)) from None
    problems: list[str] = []
    for imp in info.imports:
        where = f"{imp.module}.{imp.name}"
        if imp.kind != wasm.KIND_FUNC:
            problems.append(f"import {where} is not a function (memory, tables and globals can't be imported)")
            continue
        want = abi_spec.IMPORTS.get((imp.module, imp.name))
        if want is None:
            if imp.module.startswith("wasi"):
                problems.append(f"import {where}: WASI is not available in SpacetimeDB modules")
            else:
                problems.append(f"import {where} is not a SpacetimeDB ABI function (spacetime_10.0..10.5)")
        elif imp.type is None or (imp.type.params, imp.type.results) != want:
            problems.append(f"import {where} has signature {imp.type}, expected {wasm.FuncType(*want)}")
    if not any(i.module.startswith("spacetime_") for i in info.imports):
        problems.append("no spacetime_10.x import: the server could not determine the module's ABI version")
    exports = {e.name: e for e in info.exports}
    if exports.get("memory") is None or exports["memory"].kind != wasm.KIND_MEMORY:
        problems.append("the module must export its linear memory as `memory`")
    for name, want in abi_spec.REQUIRED_EXPORTS.items():
        e = exports.get(name)
        if e is None:
            problems.append(f"required export {name} is missing")
        elif (ty := info.export_type(e)) is None or (ty.params, ty.results) != want:
            problems.append(f"export {name} has signature {ty}, expected {wasm.FuncType(*want)}")
    for name, e in exports.items():
        want = abi_spec.OPTIONAL_EXPORTS.get(name)
        if name.startswith(abi_spec.PREINIT_PREFIX):
            want = abi_spec.PREINIT_SIGNATURE
        if want is not None and name != "_initialize":
            ty = info.export_type(e)
            if ty is None or (ty.params, ty.results) != want:
                problems.append(f"export {name} has signature {ty}, expected {wasm.FuncType(*want)}")
    if check_features and not problems:
        try:
            wt.Module.validate(_feature_engine(), data)
        except wt.WasmtimeError as e:
            problems.append(f"uses a wasm feature beyond MVP + mutable-global + sign-ext: {str(e).splitlines()[0]}")
    if problems:
        raise InvalidModule("; ".join(problems))
    return info
