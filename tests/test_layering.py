"""One dependency direction between the packages, checked on every import statement (also those inside functions).

    spacetime_core  <-  module_sdk (guest SDK + build)  <-  harness (host, server, author tools)
    spacetime_core  <-  client_sdk                       <-  harness tools (CLI, pytest plugin, backends)

The client distribution ships only client_sdk + spacetime_core, so the client must not reach anything else; the
server must not need the client; code that runs inside a module must not need the host.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("spacetime_core", "module_sdk", "client_sdk", "harness")

# (package or subpackage, project packages it may not import)
RULES = [
    ("spacetime_core", ("module_sdk", "client_sdk", "harness")),
    ("client_sdk", ("module_sdk", "harness")),
    ("module_sdk", ("client_sdk", "harness")),
    ("harness.server", ("client_sdk",)),
    ("harness.host", ("client_sdk", "harness.server", "harness.cli")),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if a.name != "*"]
    return out


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    found = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            mod = module_name(path, root)
            for lineno, target in imports(path, root):
                for owner, forbidden in RULES:
                    if under(mod, owner) and any(under(target, f) for f in forbidden):
                        found.append(f"{path.relative_to(root).as_posix()}:{lineno}: {mod} imports {target}")
    return sorted(set(found))


def test_every_package_depends_only_downward():
    assert violations() == []


def test_the_checker_sees_relative_and_nested_imports(tmp_path):
    """The rule check is not vacuous: imports inside functions and relative imports are resolved and reported."""
    fake = tmp_path / "module_sdk"
    (fake / "sub").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "sub" / "__init__.py").write_text("from spacetime_core import sats\nfrom . import ok\n")
    (fake / "sub" / "ok.py").write_text("from .. import sub\n")
    assert violations(tmp_path, ("module_sdk",)) == []
    (fake / "sub" / "bad.py").write_text("def f():\n    from harness.host import Database\n")
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "server.py").write_text("from client_sdk import http\n")
    assert violations(tmp_path, ("module_sdk", "harness")) == [
        "harness/server.py:1: harness.server imports client_sdk",
        "harness/server.py:1: harness.server imports client_sdk.http",
        "module_sdk/sub/bad.py:2: module_sdk.sub.bad imports harness.host",
        "module_sdk/sub/bad.py:2: module_sdk.sub.bad imports harness.host.Database",
    ]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_package_is_scanned(pkg):
    assert any(True for _ in (ROOT / pkg).rglob("*.py"))
