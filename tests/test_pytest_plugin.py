"""harness.pytest_plugin run the way a module author uses it: a small test file executed with pytester against
examples/quickstart on the local backend (reducer call, SQL, logs, client connect, fresh database per test,
marker and fixture override), and with `--spacetime-backend=docker`, which must skip cleanly when no Docker
engine is reachable (as on a machine with only the docker client)."""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

# In-process pytester runs drop the modules a run imported; import the server, client and build here once so
# native bindings (cryptography, wasmtime) are not imported twice.
import client_sdk.codegen  # noqa: F401
import client_sdk.sync  # noqa: F401
import harness.server.app  # noqa: F401
import module_sdk.build  # noqa: F401
from harness.backends import BackendUnavailable, DockerBackend, LocalBackend, make_backend
from module_sdk.build.toolchain import cache_dir

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"

USER_TESTS = f'''
import pytest

from client_sdk.http import HttpError

pytestmark = pytest.mark.spacetime_module({str(QUICKSTART)!r})


def test_reducer_sql_logs(spacetime_db):
    spacetime_db.call("send_message", "hello from pytest")
    rows = spacetime_db.sql("SELECT text FROM message")
    assert rows == [{{"text": "hello from pytest"}}]
    assert any("hello from pytest" in m for m in spacetime_db.log_messages())
    with pytest.raises(HttpError, match="Messages must not be empty"):
        spacetime_db.call("send_message", "")
    assert spacetime_db.name and spacetime_db.url.startswith("http://")


def test_fresh_database_per_test(spacetime_db):
    assert spacetime_db.sql("SELECT * FROM message") == []


def test_client_connect(spacetime_db):
    with spacetime_db.connect(subscribe=["SELECT * FROM user", "SELECT * FROM message"]) as conn:
        me = conn.db.user.identity.find(conn.identity)
        assert me is not None and me.online
        conn.call("set_name", "Alice")
        conn.call("send_message", "hi over the websocket")
        assert conn.db.user.identity.find(conn.identity).name == "Alice"
        assert [m.text for m in conn.db.message] == ["hi over the websocket"]
    names = [r["name"] for r in spacetime_db.sql("SELECT * FROM user")]
    assert "Alice" in names  # an Option[str] column: the value, not [0, "Alice"]


def test_other_identity(spacetime_db):
    from spacetime_core.sats import Identity

    identity, token = spacetime_db.new_identity()
    spacetime_db.call("send_message", "from someone else", token=token)
    (row,) = spacetime_db.sql("SELECT * FROM message")
    assert row["sender"] == Identity.from_hex(identity)
    assert spacetime_db.sql_raw("SELECT sender FROM message")[0]["rows"] == [[["0x" + identity]]]


def test_backend_is_shared(spacetime_backend, spacetime_db):
    assert spacetime_db.backend is spacetime_backend and spacetime_backend.name == "{{backend}}"
'''

INNER_ENV = {
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",    # load the plugin with -p whether or not it is installed
    "SPACETIME_PY_CACHE": str(cache_dir()),   # pytester moves HOME; keep the build caches (runtime, compiled code)
}


def run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str):
    for k, v in INNER_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SPACETIME_PY_BACKEND", raising=False)
    monkeypatch.delenv("SPACETIME_PY_DOCKER_URL", raising=False)
    # no:faulthandler: an inline session's faulthandler re-registers its SIGILL handler over wasmtime's, and every
    # later wasm trap in this process (`unreachable` raises SIGILL) would then kill the outer test run.
    return pytester.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:faulthandler",
                              "-rs", *args)


def test_local_backend_end_to_end(pytester, monkeypatch):
    pytester.makepyfile(test_chat=USER_TESTS.replace("{backend}", "local"))
    result = run_inner(pytester, monkeypatch, "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["spacetime backend: local"])


LOBBY_TESTS = f'''
import threading

import pytest

pytestmark = pytest.mark.spacetime_module({str(ROOT / "tests" / "data" / "lobbymod")!r})


def test_values_by_name(spacetime_db):
    spacetime_db.call("add_lobby", 1, "arena", {{"team": 4}})
    spacetime_db.call("add_lobby", 2, "quiet", "solo")
    rows = spacetime_db.sql("SELECT * FROM lobby")
    assert sorted(rows, key=lambda r: r["id"]) == [
        {{"id": 1, "name": "arena", "players": 0, "mode": {{"team": 4}}}},
        {{"id": 2, "name": "quiet", "players": 0, "mode": {{"solo": None}}}},
    ]
    assert spacetime_db.call("summary", 1) == {{"name": "arena", "players": 0}}   # a procedure: by field name
    assert spacetime_db.call("summary", 99) is None                                 # Option: None


def test_until_a_client_sees_it(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM lobby") as conn:
        other = spacetime_db.connect()
        threading.Timer(0.2, lambda: other.call("add_lobby", 5, "late", {{"team": 2}})).start()
        row = conn.until(lambda: conn.db.lobby.name.find("late"), timeout=10)
        assert row.id == 5
        with pytest.raises(TimeoutError):
            conn.until(lambda: conn.db.lobby.count() > 5, timeout=0.3)
    assert spacetime_db.until(lambda: spacetime_db.sql("SELECT * FROM lobby WHERE id = 5"))[0]["name"] == "late"
    with pytest.raises(TimeoutError, match="not true within"):
        spacetime_db.until(lambda: spacetime_db.sql("SELECT * FROM lobby WHERE id = 6"), timeout=0.2)
'''


def test_decoded_values_procedure_results_and_until(pytester, monkeypatch):
    pytester.makepyfile(test_lobby=LOBBY_TESTS)
    result = run_inner(pytester, monkeypatch, "-v")
    result.assert_outcomes(passed=2)


def test_docker_backend_skips_without_engine(pytester, monkeypatch):
    reason = DockerBackend().unavailable_reason()
    if reason is None:
        pytest.skip("a Docker engine is reachable here; this test covers machines without one")
    pytester.makepyfile(test_chat=USER_TESTS.replace("{backend}", "docker"))
    result = run_inner(pytester, monkeypatch, "--spacetime-backend=docker")
    result.assert_outcomes(skipped=5)
    result.stdout.fnmatch_lines(["*SKIPPED*spacetime backend 'docker' unavailable:*"])
    assert "error" not in result.stdout.str().lower().split("short test summary")[-1].replace("errors", "")
    # the environment variable selects it too (the option wins over it)
    monkeypatch.setenv("SPACETIME_PY_BACKEND", "docker")
    result = pytester.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:faulthandler",
                                "-rs", "-k", "shared")
    result.assert_outcomes(skipped=1, deselected=4)
    result = pytester.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:faulthandler",
                                "--spacetime-backend=local",
                                "-k", "fresh")
    result.assert_outcomes(passed=1, deselected=4)


def test_fixture_override_and_missing_module(pytester, monkeypatch):
    pytester.makeconftest(f'''
import pytest

@pytest.fixture
def spacetime_module_path():
    return {str(QUICKSTART)!r}
''')
    pytester.makepyfile(test_override='''
import pytest

def test_uses_conftest_module(spacetime_module, spacetime_db):
    assert spacetime_module.path.name == "quickstart"
    assert spacetime_module.wasm[:4] == b"\\0asm"
    assert {t.name for t in spacetime_module.module_def.tables} >= {"user", "message"}

@pytest.mark.spacetime_module("no/such/module")
def test_marker_wins(spacetime_db):
    pass
''')
    result = run_inner(pytester, monkeypatch)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*spacetime module 'no/such/module' not found*"])


def test_no_module_is_a_clear_error(pytester, monkeypatch):
    pytester.makepyfile(test_nomod="def test_x(spacetime_db):\n    pass\n")
    result = run_inner(pytester, monkeypatch)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no module to test: mark it with @pytest.mark.spacetime_module*"])


# ------------------------------------------------------------------------------------------- backends directly

def test_local_backend_api(tmp_path):
    with LocalBackend(tmp_path / "data") as b:
        assert b.running and b.url.startswith("http://127.0.0.1:")
        ident = b.publish("chat", QUICKSTART)                  # a source path is built
        assert len(ident) == 64
        b.call("chat", "send_message", "direct")
        assert b.sql("chat", "SELECT text FROM message")[0]["rows"] == [["direct"]]
        assert any(r["message"].endswith(": direct") for r in b.logs("chat"))
        b.publish("chat", QUICKSTART, clear=True)
        assert b.sql("chat", "SELECT * FROM message")[0]["rows"] == []
        other, token = b.new_identity()
        assert other != b.owner_identity and token
    assert not b.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = b.url


def test_make_backend_names():
    assert isinstance(make_backend("local"), LocalBackend)
    assert isinstance(make_backend("docker"), DockerBackend)
    with pytest.raises(ValueError, match="unknown spacetime backend"):
        make_backend("podman")


def _fake_docker(tmp_path: Path, script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_docker_unavailable_reasons(tmp_path, monkeypatch):
    monkeypatch.delenv("SPACETIME_PY_DOCKER_URL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "docker CLI 'docker' not found" in DockerBackend().unavailable_reason()
    with pytest.raises(BackendUnavailable, match="not found on PATH"):
        DockerBackend().start()
    bin_dir = _fake_docker(tmp_path, 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2\n'
                                     "exit 1\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    reason = DockerBackend().unavailable_reason()
    assert reason.startswith("Docker engine not reachable") and "Cannot connect to the Docker daemon" in reason


def test_docker_backend_with_fake_engine(tmp_path, monkeypatch):
    """The command flow of DockerBackend without compose (`docker run` fallback), against a fake docker whose
    `run` starts spacetime-py's server: start, publish/call over HTTP, stop removes the container."""
    monkeypatch.delenv("SPACETIME_PY_DOCKER_URL", raising=False)
    state = tmp_path / "state"
    state.mkdir()
    server = f"{sys.executable} -m harness.cli start"
    FREE_PORT = "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"  # noqa: N806
    bin_dir = _fake_docker(tmp_path, f'''
echo "$@" >> {state}/calls
case "$1" in
  info) echo 28.2.2 ;;
  compose) exit 1 ;;
  run) port=$({sys.executable} -c "{FREE_PORT}")
       echo $port > {state}/port
       {server} --listen-addr 127.0.0.1:$port --data-dir {state}/data > {state}/log 2>&1 &
       echo $! > {state}/pid; echo cafe ;;
  port) echo "127.0.0.1:$(cat {state}/port)" ;;
  rm) kill $(cat {state}/pid) ;;
  *) exit 2 ;;
esac
''')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    b = DockerBackend(image="example/spacetime:test", start_timeout=60)
    try:
        b.start()
        port = (state / "port").read_text().strip()
        assert b.url == f"http://127.0.0.1:{port}"
        b.publish("chat", QUICKSTART)
        b.call("chat", "send_message", "via docker flow")
        assert b.sql("chat", "SELECT text FROM message")[0]["rows"] == [["via docker flow"]]
    finally:
        b.stop()
    calls = (state / "calls").read_text().splitlines()
    run = next(c for c in calls if c.startswith("run "))
    assert "example/spacetime:test start --listen-addr 0.0.0.0:3000" in run and "-p 127.0.0.1::3000" in run
    assert calls[-1].startswith("rm -f -v spacetime-py-test-")


# ------------------------------------------------------------------------------------------- packaging

def test_entry_point_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"spacetime_py": "harness.pytest_plugin"}
    eps = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "spacetime_py"]
    if not eps:
        pytest.skip("the installed metadata predates the entry point (re-run `pip install -e .`)")
    assert eps[0].value == "harness.pytest_plugin"


def test_compose_file_matches_backend_defaults():
    from harness.backends.docker import DEFAULT_IMAGE, EMBEDDED_COMPOSE

    text = (ROOT / "docker-compose.yml").read_text()
    assert f"${{SPACETIME_PY_DOCKER_IMAGE:-{DEFAULT_IMAGE}}}" in text
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert body == EMBEDDED_COMPOSE.splitlines()
