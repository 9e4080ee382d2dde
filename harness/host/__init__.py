"""The SpacetimeDB-compatible host: runs a module's wasm against the datastore (in-process API)."""

from spacetime_core.module_def import ModuleDef, ModuleDefError, decode_module_def

from .abi import LogRecord
from .database import (
    Database,
    DatabaseInfo,
    ModuleLoadError,
    ProcedureOutcome,
    ReducerNotFound,
    ReducerOutcome,
    UpdateResult,
    ViewOutcome,
)
from .migrate import MigrationError
from .wasm import Limits, Trap

__all__ = [
    "Database", "DatabaseInfo", "Limits", "LogRecord", "MigrationError", "ModuleDef", "ModuleDefError",
    "ModuleLoadError", "ProcedureOutcome", "ReducerNotFound", "ReducerOutcome", "Trap", "UpdateResult",
    "ViewOutcome", "decode_module_def",
]
