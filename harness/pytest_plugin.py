"""pytest plugin (entry point `spacetime_py`): end-to-end tests of a module against a SpacetimeDB server.

    @pytest.mark.spacetime_module("../my_module")      # relative to the test file
    def test_add(spacetime_db):
        spacetime_db.call("add", "Alice", 30)
        assert spacetime_db.sql("SELECT name FROM person") == [{"name": "Alice"}]
        assert any("added Alice" in m for m in spacetime_db.log_messages())
        with spacetime_db.connect(subscribe=["SELECT * FROM person"]) as conn:
            assert conn.db.person.count() == 1

Backend: `--spacetime-backend=local|docker` (else $SPACETIME_PY_BACKEND, else local).  `local` is spacetime-py's
own server; `docker` the real SpacetimeDB from docker-compose.yml, and every test that needs it is skipped when
no Docker engine is reachable.  Fixtures: `spacetime_backend` (session), `spacetime_module_path` (override it
instead of using the marker), `spacetime_module` (the built module, built once per session per path),
`spacetime_db` (a fresh database per test).  See docs/testing.md.

Imports stay light: the server, build and client load when a fixture first needs them.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.backends import Backend

BACKEND_CHOICES = ("local", "docker")
ENV_BACKEND = "SPACETIME_PY_BACKEND"
MARKER = "spacetime_module"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("spacetime", "SpacetimeDB module tests (spacetime-py)")
    group.addoption("--spacetime-backend", choices=BACKEND_CHOICES, default=None,
                    help=f"server the spacetime_* fixtures use: local (spacetime-py's own, default) or docker "
                         f"(the real SpacetimeDB, via docker-compose.yml; skipped without a Docker engine). "
                         f"Default: ${ENV_BACKEND} or local.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(path): the module (file or folder, relative to the test file) "
                                       "that spacetime_module / spacetime_db build and publish")


def backend_name(config: pytest.Config) -> str:
    name = config.getoption("--spacetime-backend") or os.environ.get(ENV_BACKEND) or "local"
    name = name.strip().lower()
    if name not in BACKEND_CHOICES:
        raise ValueError(f"${ENV_BACKEND}={name!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    return name


def pytest_report_header(config: pytest.Config) -> str | None:
    try:
        return f"spacetime backend: {backend_name(config)}"
    except ValueError as e:
        return f"spacetime backend: {e}"


# ------------------------------------------------------------------------------------------- backend

@pytest.fixture(scope="session")
def spacetime_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The running server (a `harness.backends.Backend`), one per session.  Skips when it cannot run here."""
    from harness.backends import BackendUnavailable, make_backend

    try:
        name = backend_name(request.config)
    except ValueError as e:
        pytest.fail(str(e), pytrace=False)
    kwargs: dict[str, Any] = {"data_dir": tmp_path_factory.mktemp("spacetime-local")} if name == "local" else {}
    backend = make_backend(name, **kwargs)
    try:
        backend.start()
    except BackendUnavailable as e:
        pytest.skip(f"spacetime backend {name!r} unavailable: {e.reason}")
    try:
        yield backend
    finally:
        backend.stop()


# ------------------------------------------------------------------------------------------- module

@dataclass
class BuiltModule:
    """A module built once per session: its source `path`, the `.wasm` file and bytes."""

    path: Path
    wasm_path: Path
    _module_def: Any = field(default=None, repr=False)

    @property
    def wasm(self) -> bytes:
        return self.wasm_path.read_bytes()

    @property
    def module_def(self) -> Any:
        """The module's ModuleDef (tables, reducers), read from the wasm."""
        if self._module_def is None:
            from harness.host.describe import module_def_from_wasm

            self._module_def = module_def_from_wasm(self.wasm_path)
        return self._module_def


class _ModuleCache:
    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._built: dict[Path, BuiltModule | str] = {}

    def get(self, path: Path) -> BuiltModule:
        if path not in self._built:
            from module_sdk.build import BuildError, build

            out = self.out_dir / f"{len(self._built)}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', path.name)}.wasm"
            try:
                self._built[path] = BuiltModule(path, build(path, out).output)
            except BuildError as e:  # remembered: one failing build, not one per test
                self._built[path] = f"building {path} failed:\n{e}"
        got = self._built[path]
        if isinstance(got, str):
            pytest.fail(got, pytrace=False)
        return got


@pytest.fixture(scope="session")
def _spacetime_module_cache(tmp_path_factory: pytest.TempPathFactory) -> _ModuleCache:
    return _ModuleCache(tmp_path_factory.mktemp("spacetime-modules"))


@pytest.fixture
def spacetime_module_path() -> str | Path | None:
    """Override (in a conftest.py or test module) to name the module for every test there; relative paths are
    taken from the rootdir.  The `spacetime_module(path)` marker, when present, wins."""
    return None


@pytest.fixture
def spacetime_module(request: pytest.FixtureRequest, spacetime_module_path: str | Path | None,
                     _spacetime_module_cache: _ModuleCache) -> BuiltModule:
    """The test's module, built (once per session per path) from the marker's or `spacetime_module_path`'s path."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        raw = marker.args[0] if marker.args else marker.kwargs.get("path")
        if raw is None:
            pytest.fail(f"@pytest.mark.{MARKER} needs a path: @pytest.mark.{MARKER}('path/to/module')", pytrace=False)
        base = Path(str(request.node.path)).parent
    elif spacetime_module_path is not None:
        raw, base = spacetime_module_path, request.config.rootpath
    else:
        pytest.fail(f"{request.node.nodeid}: no module to test: mark it with @pytest.mark.{MARKER}('path/to/module') "
                    "or override the spacetime_module_path fixture", pytrace=False)
    path = Path(raw).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.exists():
        pytest.fail(f"spacetime module {raw!r} not found (looked for {path})", pytrace=False)
    return _spacetime_module_cache.get(path)


# ------------------------------------------------------------------------------------------- database

class SpacetimeTestDb:
    """A freshly published database.  Calls go over the server's HTTP API as the database owner unless
    `token=` (from `new_identity()`) says otherwise; failures raise `client_sdk.http.HttpError`."""

    def __init__(self, backend: Backend, name: str, identity: str, module: BuiltModule):
        self.backend = backend
        self.name = name
        self.identity = identity
        self.module = module
        self._conns: list[Any] = []

    @property
    def url(self) -> str:
        return self.backend.url

    def call(self, reducer: str, *args: Any, token: str | None = None) -> Any:
        """Call a reducer (returns None) or procedure (its result, decoded as `sql` decodes cells); args are
        SATS-JSON values (a sum `{"Variant": payload}`, an option `{"some": x}` or None)."""
        result = self.backend.call(self.name, reducer, *args, token=token)
        mdef = self.module.module_def
        proc = next((p for p in mdef.procedures if reducer in (p.name, p.source_name)), None)
        if proc is None or result is None:
            return result
        return decode_value(proc.return_type, result, mdef.typespace)

    def sql(self, query: str, *, token: str | None = None) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name, values decoded by their types: products are dicts by field name,
        sums `{"Variant": payload}` (unit payload None), options the value or None, identities / timestamps /
        durations the spacetime_core.sats objects, bytes `bytes`.  Several statements: their rows one after
        another.  `sql_raw` gives the server's SATS-JSON unchanged."""
        from spacetime_core.sats.satsjson import type_from_json

        ts = self.module.module_def.typespace
        rows: list[dict[str, Any]] = []
        for result in self.sql_raw(query, token=token):
            elements = result["schema"]["elements"]
            cols = [_column_name(e, i) for i, e in enumerate(elements)]
            types = [type_from_json(e["algebraic_type"]) for e in elements]
            rows.extend({c: decode_value(t, v, ts) for c, t, v in zip(cols, types, row)} for row in result["rows"])
        return rows

    def until(self, predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Call `predicate()` until it returns something truthy and return that (e.g. `spacetime_db.until(lambda:
        spacetime_db.sql("SELECT * FROM job WHERE done = true"))` for a scheduled reducer).  After `timeout`
        seconds raises TimeoutError with the last value or exception.  For what a client sees, use
        `conn.until(...)`, which re-checks after every message the client applies."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = predicate()
                if last:
                    return last
            except AssertionError as e:
                last = e
            if time.monotonic() >= deadline:
                raise TimeoutError(f"spacetime_db.until: not true within {timeout} s (last: {last!r})")
            time.sleep(interval)

    def sql_raw(self, query: str, *, token: str | None = None) -> list[dict]:
        """The server's answer as is: one {"schema", "rows", ...} per statement."""
        return self.backend.sql(self.name, query, token=token)

    def logs(self, num_lines: int | None = None) -> list[dict]:
        """The module log records ({"level", "message", "filename", "line_number", ...}), oldest first."""
        return self.backend.logs(self.name, num_lines)

    def log_messages(self, num_lines: int | None = None) -> list[str]:
        return [r.get("message", "") for r in self.logs(num_lines)]

    def new_identity(self) -> tuple[str, str]:
        """A fresh (identity hex, token) to call or connect as someone else."""
        return self.backend.new_identity()

    def builder(self, *, bindings: Any = None, token: str | None = None):
        """A `DbConnectionBuilder` for this database (async tests): `conn = await spacetime_db.builder().connect()`.
        Without `bindings` (a generated package) rows are classes made from the module's definition."""
        from client_sdk.connection import DbConnection

        cls = getattr(bindings, "DbConnection", bindings) or DbConnection
        b = cls.builder().with_uri(self.url).with_database_name(self.name).with_token(token)
        if bindings is None:
            b.with_module(self.module.module_def)
        return b

    def connect(self, *, bindings: Any = None, token: str | None = None, subscribe: str | list[str] | None = None,
                timeout: float = 30.0):
        """A connected `client_sdk.sync.SyncConnection` (closed after the test, or use `with`).  `subscribe`:
        queries to subscribe to (and wait for) before returning."""
        from client_sdk.sync import connect

        mdef = None if bindings is not None else self.module.module_def
        conn = connect(self.url, self.name, bindings=bindings, token=token, timeout=timeout,
                       configure=(lambda b: b.with_module(mdef)) if mdef is not None else None)
        self._conns.append(conn)
        if subscribe:
            conn.subscribe(subscribe, timeout=timeout)
        return conn

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self._conns.clear()

    def __repr__(self) -> str:
        return f"<SpacetimeTestDb {self.name} at {self.backend.url}>"


def decode_value(t: Any, v: Any, typespace: Any = None) -> Any:
    """A SATS-JSON value (either form) of type `t` as plain Python, variants by name (see `SpacetimeTestDb.sql`)."""
    from spacetime_core.sats.satsjson import value_from_json

    return _plain(t, value_from_json(t, v, typespace), typespace)


def _plain(t: Any, v: Any, ts: Any) -> Any:
    from spacetime_core.sats.satsjson import _product_fields, _sum_parts
    from spacetime_core.sats.types import TAG_ARRAY, TAG_PRODUCT, TAG_REF, TAG_SUM
    from spacetime_core.sats.values import Err, Ok, Some

    while t.tag == TAG_REF:
        t = ts.resolve(t)
    s = t.special
    if s == "option":
        return None if v is None else _plain(t.elements[0][1], v.value if isinstance(v, Some) else v, ts)
    if s == "result":
        i = 1 if isinstance(v, Err) else 0
        return {t.elements[i][0]: _plain(t.elements[i][1], v.value if isinstance(v, (Ok, Err)) else v, ts)}
    if s == "unit":
        return None
    if s is not None:  # Identity, ConnectionId, Timestamp, TimeDuration, Uuid, ScheduleAt: the SDK's objects
        return v
    if t.tag == TAG_PRODUCT:
        return {n if n is not None else str(i): _plain(et, x, ts)
                for i, ((n, et), x) in enumerate(zip(t.elements, _product_fields(t, v)))}
    if t.tag == TAG_SUM:
        i, payload = _sum_parts(t, v)
        n, et = t.elements[i]
        return {n if n is not None else str(i): _plain(et, payload, ts)}
    if t.tag == TAG_ARRAY and t.elem.tag != 7:  # 7: U8 (bytes stay bytes)
        return [_plain(t.elem, x, ts) for x in v]
    return v


def _column_name(element: dict, index: int) -> str:
    name = element.get("name")
    if isinstance(name, dict):
        name = name.get("some")
    return name if isinstance(name, str) else str(index)


def database_name(nodeid_name: str) -> str:
    """A fresh, valid database name derived from the test's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", nodeid_name.lower()).strip("-")[:40].strip("-")
    return f"{slug or 'test'}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def spacetime_db(request: pytest.FixtureRequest, spacetime_backend: Backend, spacetime_module: BuiltModule):
    """The module published as a new database on the backend for this test (deleted afterwards)."""
    name = database_name(request.node.name)
    identity = spacetime_backend.publish(name, spacetime_module.wasm_path)
    db = SpacetimeTestDb(spacetime_backend, name, identity, spacetime_module)
    try:
        yield db
    finally:
        db.close()
        try:
            spacetime_backend.delete(name)
        except Exception:  # noqa: BLE001 - the server may be gone already
            pass
