"""Checks that a .wasm is what a real SpacetimeDB 2.x server accepts: a core module whose only imports are
spacetime_10.x functions with the exact signatures, exporting `memory` and the required functions, using
only the wasm features the server's wasmtime enables.

Two feature levels: `server_features` is what upstream's engine accepts (wasmtime 39 defaults built without
the `gc`, `threads` and `component-model` cargo features: wasm 2.0 — bulk-memory, multi-value,
nontrapping-fptoint, reference-types, simd — plus multi-memory, relaxed-simd, tail-call, extended-const,
memory64); our host and server accept exactly that.  `strict=True` (our own build output) also refuses
everything past MVP + mutable-global + sign-ext, so what we build loads on every server version."""

from __future__ import annotations

import wasmtime as wt

from .. import abi_spec
from . import wasm


class InvalidModule(ValueError):
    """The wasm would be refused by a SpacetimeDB server; the message says why."""


SERVER_FEATURES_ID = "wasmtime39-nogc-nothreads-nocm"


def server_features(cfg: wt.Config) -> wt.Config:
    """Set `cfg`'s wasm features to those of upstream's engine (crates/core/src/host/wasmtime/mod.rs leaves
    wasmtime's defaults; the crate is built without gc, threads and component-model)."""
    # Dependent proposals go off before what they depend on.
    for flag in ("wasm_component_model", "wasm_stack_switching", "wasm_gc", "wasm_function_references",
                 "wasm_exceptions", "wasm_threads", "wasm_wide_arithmetic", "wasm_custom_page_sizes"):
        setattr(cfg, flag, False)
    cfg.gc_support = False  # GC_TYPES off: externref/anyref are refused, funcref tables are fine
    for flag in ("wasm_bulk_memory", "wasm_multi_value", "wasm_reference_types", "wasm_simd", "wasm_relaxed_simd",
                 "wasm_tail_call", "wasm_multi_memory", "wasm_memory64"):
        setattr(cfg, flag, True)
    return cfg


_ENGINES: dict[bool, wt.Engine] = {}


def _feature_engine(strict: bool) -> wt.Engine:
    eng = _ENGINES.get(strict)
    if eng is None:
        eng = _ENGINES[strict] = wt.Engine(_strict_config() if strict else server_features(wt.Config()))
    return eng


def _strict_config() -> wt.Config:
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
    return cfg


def validate_module(data: bytes, *, strict: bool = False) -> wasm.ModuleInfo:
    """Raise InvalidModule with every problem found; return the parsed module info when it is fine.

    `strict` (the build's check of its own output) limits features to MVP + mutable-global + sign-ext;
    otherwise the module may use whatever a real server's wasmtime accepts."""
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
    if not problems:
        try:
            wt.Module.validate(_feature_engine(strict), data)
        except wt.WasmtimeError as e:
            what = "beyond MVP + mutable-global + sign-ext" if strict else "a SpacetimeDB server does not enable"
            problems.append(f"uses a wasm feature {what}: {str(e).splitlines()[0]}")
    if problems:
        raise InvalidModule("; ".join(problems))
    return info
