"""The SpacetimeDB-compatible host: runs a module's wasm against the datastore (in-process API)."""

from .abi import LogRecord
from .database import Database, DatabaseInfo, ModuleLoadError, ReducerNotFound, ReducerOutcome
from .module_def import ModuleDef, ModuleDefError, decode_module_def
from .wasm import Limits, Trap

__all__ = [
    "Database", "DatabaseInfo", "Limits", "LogRecord", "ModuleDef", "ModuleDefError", "ModuleLoadError",
    "ReducerNotFound", "ReducerOutcome", "Trap", "decode_module_def",
]
