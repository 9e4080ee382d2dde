"""The build side of module_sdk: runs on the build host, never inside a module."""

from .build import BuildError, BuildResult, ModuleProject, build
from .runtime import ensure_runtime
from .validate import InvalidModule, validate_module

__all__ = ["BuildError", "BuildResult", "InvalidModule", "ModuleProject", "build", "ensure_runtime", "validate_module"]
