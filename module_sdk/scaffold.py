"""`spacetime-py init`: a new module project (module, tests on the pytest plugin, README) or a client project
(a script on client_sdk, its test, README), each ready to build / run / test as written.

Host-side only (the CLI); modules never import it.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path


class ScaffoldError(ValueError):
    """The project cannot be created as asked (bad name, folder not empty); the message says why."""


def package_name(name: str) -> str:
    """`my-game` -> `my_game`: a Python package name for the project."""
    s = re.sub(r"\W+", "_", name.strip().lower()).strip("_")
    if not s:
        raise ScaffoldError(f"{name!r} is not usable as a project name (use letters, digits, - or _)")
    if s[0].isdigit() or keyword.iskeyword(s):
        s = f"m_{s}"
    return s


def database_name(name: str) -> str:
    """`my_game` -> `my-game`: a database name servers accept (lowercase letters, digits, single hyphens)."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-") or "my-module"


def _target(dest: Path) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ScaffoldError(f"{dest} already exists and is not an empty folder; choose another name or --dir")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _write(files: dict[str, str], dest: Path) -> list[Path]:
    out = []
    for rel, text in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        out.append(p)
    return out


def create_module_project(dest: Path, name: str) -> list[Path]:
    """A module project in `dest`: `<pkg>/__init__.py`, `tests/test_<pkg>.py`, `README.md`, `.gitignore`."""
    pkg = package_name(name)
    dest = _target(dest)
    return _write({
        f"{pkg}/__init__.py": MODULE.replace("@NAME@", name),
        f"tests/test_{pkg}.py": MODULE_TESTS.replace("{pkg}", pkg),
        "README.md": MODULE_README.replace("{name}", name).replace("{pkg}", pkg).replace("{db}", database_name(name)),
        ".gitignore": "target/\n__pycache__/\n.pytest_cache/\n",
        "pyproject.toml": PYPROJECT.replace("{pkg}", pkg),
    }, dest)


def create_client_project(dest: Path, name: str, module: Path | None = None) -> list[Path]:
    """A client project in `dest`: `<pkg>/client.py` (+ `__main__`), `tests/test_client.py`, `README.md`.
    `module`: the module the client talks to, for the tests (a path; stored relative to `tests/`)."""
    pkg = package_name(name)
    dest = _target(dest)
    if module is not None:
        rel = Path(_relpath(module.resolve(), (dest / "tests").resolve()))
        marker = f"pytestmark = pytest.mark.spacetime_module({rel.as_posix()!r})"
    else:
        marker = ("# The module this client talks to (a path relative to this file):\n"
                  "MODULE = os.environ.get(\"SPACETIME_MODULE\")\n"
                  "pytestmark = [pytest.mark.spacetime_module(MODULE or \".\"),\n"
                  "              pytest.mark.skipif(not MODULE, reason=\"set SPACETIME_MODULE=path/to/module "
                  "(or init --client --module PATH)\")]")
    return _write({
        f"{pkg}/__init__.py": f'"""{name}: a client of a SpacetimeDB database."""\n',
        f"{pkg}/client.py": CLIENT,
        f"{pkg}/__main__.py": f"from {pkg}.client import main\n\nmain()\n",
        "tests/test_client.py": CLIENT_TESTS.replace("{pkg}", pkg).replace("{marker}", marker),
        "README.md": CLIENT_README.replace("{name}", name).replace("{pkg}", pkg),
        ".gitignore": "__pycache__/\n.pytest_cache/\nmodule_bindings/\n",
        "pyproject.toml": PYPROJECT.replace("{pkg}", pkg),
    }, dest)


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target, start)


PYPROJECT = '''[project]
name = "{pkg}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["spacetime-py"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
'''

MODULE = '''"""@NAME@: a SpacetimeDB module in Python.

Build:  spacetime-py build .            (from this folder: target/module.wasm)
Try it: spacetime-py run . --call 'add Alice' --call say_hello
"""

from module_sdk import ReducerContext, SenderError, Timestamp, log, primary_key, reducer, table, u64


@table(public=True)
class Person:
    id: u64 = primary_key(auto_inc=True)
    name: str
    joined: Timestamp


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    """Add a person; an empty name is refused with a message the caller sees."""
    if not name:
        raise SenderError("name must not be empty")
    ctx.db.person.insert(Person(id=0, name=name, joined=ctx.timestamp))
    log.info(f"added {name}")


@reducer
def say_hello(ctx: ReducerContext) -> None:
    for person in ctx.db.person.iter():
        log.info(f"Hello, {person.name}!")
    log.info("Hello, World!")
'''

MODULE_TESTS = '''"""End-to-end tests: each test gets a fresh database of the module on a local server
(`pytest --spacetime-backend=docker` runs them against the real SpacetimeDB)."""

import pytest

from client_sdk.http import HttpError

pytestmark = pytest.mark.spacetime_module("../{pkg}")


def test_add(spacetime_db):
    spacetime_db.call("add", "Alice")
    assert [row["name"] for row in spacetime_db.sql("SELECT * FROM person")] == ["Alice"]
    assert any("added Alice" in m for m in spacetime_db.log_messages())


def test_empty_name_is_refused(spacetime_db):
    with pytest.raises(HttpError, match="name must not be empty"):
        spacetime_db.call("add", "")
    assert spacetime_db.sql("SELECT * FROM person") == []


def test_a_client_sees_new_people(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM person") as conn:
        spacetime_db.call("add", "Bob")
        person = conn.until(lambda: next(iter(conn.db.person), None), timeout=10)
        assert person.name == "Bob"
'''

MODULE_README = '''# {name}

A [SpacetimeDB](https://spacetimedb.com) module written in Python with spacetime-py.

```bash
spacetime-py build {pkg}                         # -> {pkg}/target/module.wasm
spacetime-py run {pkg} --call 'add Alice' --call say_hello   # run it in the local host, print tables and logs
pytest                                           # tests/ on a local server (--spacetime-backend=docker: the real one)
spacetime-py start &                             # a local server; or --server URL for a real one
spacetime-py publish {db} -p {pkg}
spacetime-py call {db} add '"Ada"'
spacetime-py sql {db} "SELECT * FROM person"
spacetime-py generate --lang python --out-dir module_bindings --module-wasm {pkg}/target/module.wasm
```

Arguments of `call` and `run --call` are JSON values, one per argument (bare text works for strings).
'''

CLIENT = '''"""Connect to a database, subscribe to its public tables and print them (and, with --watch, each change).

Typed bindings for a module: spacetime-py generate --lang python --out-dir module_bindings --server URL
--database NAME, then `from module_bindings import DbConnection` gives `conn.db.<table>` with typed rows.
"""

from __future__ import annotations

import argparse
import asyncio

from client_sdk.codegen import module_def_from_server
from client_sdk.connection import DbConnection


async def snapshot(uri: str, database: str, watch: float = 0.0) -> dict[str, list]:
    """Every public table's rows; with `watch` > 0, print inserts for that many seconds first."""
    mdef = module_def_from_server(uri, database)
    conn = await DbConnection.builder().with_uri(uri).with_database_name(database).with_module(mdef).connect()
    try:
        tables = sorted(t.name for t in mdef.tables if t.public and not t.is_event)
        if not tables:
            return {}
        handles = {h.table_name: h for h in conn.db if h.table_name in tables}
        for name, handle in handles.items():
            handle.on_insert(lambda ctx, row, name=name: print(f"+ {name}: {row}"))
        await conn.subscription_builder().subscribe([f"SELECT * FROM {t}" for t in tables])
        if watch:
            await asyncio.sleep(watch)
        return {name: list(handle) for name, handle in handles.items()}
    finally:
        await conn.disconnect()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("database")
    p.add_argument("--server", default="http://127.0.0.1:3000")
    p.add_argument("--watch", type=float, default=0.0, help="seconds to keep printing inserts")
    args = p.parse_args(argv)
    for name, rows in asyncio.run(snapshot(args.server, args.database, args.watch)).items():
        print(f"{name}: {len(rows)} row(s)")
'''

CLIENT_TESTS = '''"""The client against a fresh database of its module on a local server."""

import asyncio
import os

import pytest

from {pkg}.client import snapshot

{marker}


def test_snapshot_lists_the_public_tables(spacetime_db):
    rows = asyncio.run(snapshot(spacetime_db.url, spacetime_db.name))
    public = {t.name for t in spacetime_db.module.module_def.tables if t.public and not t.is_event}
    assert set(rows) == public
'''

CLIENT_README = '''# {name}

A Python client of a SpacetimeDB database (spacetime-py's `client_sdk`).

```bash
python -m {pkg} DATABASE --server http://127.0.0.1:3000 [--watch 10]
spacetime-py generate --lang python --out-dir module_bindings --server http://127.0.0.1:3000 --database DATABASE
SPACETIME_MODULE=../path/to/module pytest      # or create it with: spacetime-py init --client NAME --module PATH
```
'''
