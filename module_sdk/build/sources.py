"""Finds the Python sources a module imports, on the build host, for the interpreter inside wasm.

Search order: the user's module root, extra --path roots, the installed `module_sdk` and `spacetime_core`
packages (the guest SDK and the shared core it is built on), the wasm
CPython's standard library, then the host's site-packages (pure-Python dependencies only).  Origins sent
into the module are short relative names (`chat/__init__.py`, `<stdlib>/json/decoder.py`), so the
snapshot does not depend on where it was built and log records show readable file names.
"""

from __future__ import annotations

import ast
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from .prebuilt import module_stdlib_dir

SDK_ROOT = Path(__file__).resolve().parent.parent.parent  # the folder that contains module_sdk/ and spacetime_core/
SDK_PACKAGES = ("module_sdk", "spacetime_core")  # bundled into every module from the installed SDK
# parts of those packages that run on the build host, never inside a module
HOST_ONLY = ("module_sdk.build", "spacetime_core.protocol", "spacetime_core.module_def")


def is_sdk(name: str) -> bool:
    return name.partition(".")[0] in SDK_PACKAGES
EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")


@dataclass
class Found:
    name: str
    origin: str  # relative, stable name shown inside the module
    path: Path
    is_package: bool
    user: bool  # user code (scanned for lazy imports)

    def source(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class Unsupported:
    """A module that exists but cannot run inside the module (a compiled extension)."""

    name: str
    path: Path


@dataclass
class SourceResolver:
    user_roots: list[Path]
    extra_roots: list[Path] = field(default_factory=list)
    use_site_packages: bool = True
    misses: list[str] = field(default_factory=list)
    unsupported: dict[str, Unsupported] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._roots: list[tuple[str, Path, bool]] = [("", r, True) for r in self.user_roots]
        self._roots += [(f"<path{i}>/", r, True) for i, r in enumerate(self.extra_roots)]
        self._stdlib = module_stdlib_dir()
        site = []
        if self.use_site_packages:
            for key in ("purelib", "platlib"):
                p = Path(sysconfig.get_paths()[key])
                if p.is_dir() and p not in site:
                    site.append(p)
        self._site = site
        self.by_origin: dict[str, Path] = {}

    def find(self, name: str) -> Found | None:
        if is_sdk(name):
            if name.startswith(HOST_ONLY):
                return self._miss(name)
            return self._look(name, [("", SDK_ROOT, False)]) or self._miss(name)
        found = self._look(name, self._roots) or self._look(name, [("<stdlib>/", self._stdlib, False)])
        if found is None and self._site:
            found = self._look(name, [(f"<site{i}>/", p, False) for i, p in enumerate(self._site)])
        return found or self._miss(name)

    def _miss(self, name: str) -> None:
        self.misses.append(name)
        return None

    def _look(self, name: str, roots: list[tuple[str, Path, bool]]) -> Found | None:
        rel = name.replace(".", "/")
        for label, root, user in roots:
            pkg = root / rel / "__init__.py"
            mod = root / f"{rel}.py"
            for path, is_pkg in ((pkg, True), (mod, False)):
                if path.is_file():
                    origin = label + path.relative_to(root).as_posix()
                    self.by_origin[origin] = path
                    return Found(name, origin, path, is_pkg, user)
            parent = (root / rel).parent
            if parent.is_dir():
                stem = rel.rsplit("/", 1)[-1]
                for ext in parent.glob(f"{stem}.*"):
                    if ext.suffix in EXTENSION_SUFFIXES:
                        self.unsupported[name] = Unsupported(name, ext)
        return None


def lazy_imports(found: Found, source: bytes) -> list[str]:
    """Modules imported inside functions of a user file: the build imports them eagerly, because after the
    snapshot there is no importer left to serve them."""
    try:
        tree = ast.parse(source, str(found.path))
    except SyntaxError:
        return []  # the interpreter inside wasm reports syntax errors with the user's line numbers
    package = found.name if found.is_package else found.name.rpartition(".")[0]
    names: list[str] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if nested and isinstance(child, ast.Import):
                names.extend(a.name for a in child.names)
            elif nested and isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".") if package else []
                    if child.level > 1:
                        parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                if base:
                    names.append(base)
                    # `from pkg import name` may name a submodule; the boot skips candidates that aren't modules
                    names.extend(f"{base}.{a.name}" for a in child.names if a.name != "*")
            visit(child, inner)

    visit(tree, False)
    return names
