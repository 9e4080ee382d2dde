"""The spacetime-py server verbs against a live server: publish, call, sql, logs, describe, delete (click runner,
token saved in a config file), `start` as a real process (SIGINT shuts it down cleanly) and `dev`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from client_sdk.http import SpacetimeHttp
from harness.cli import main

from .test_server_http import MODULE, LiveServer, build_source

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("cli-server")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def wasm_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-mod")
    build_source(tmp, "people", MODULE)
    return tmp / "people.wasm"


@pytest.fixture()
def cli(tmp_path, live, monkeypatch):
    monkeypatch.setenv("SPACETIME_PY_CONFIG", str(tmp_path / "cli.json"))
    monkeypatch.setenv("SPACETIME_PY_SERVER", live.url)
    runner = CliRunner()

    def run(*args, ok=True):
        r = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert r.exit_code == 0, r.output
        return r

    run.config = tmp_path / "cli.json"
    return run


def test_cli_verbs(cli, live, wasm_path):
    r = cli("publish", "clidb", "-b", str(wasm_path))
    assert "Created new database clidb" in r.output
    cfg = json.loads(cli.config.read_text())
    token = cfg["tokens"][live.url]
    assert cli("publish", "clidb", "-b", str(wasm_path)).output.startswith("Updated database clidb")
    cli("call", "clidb", "add", "Alice", "30")  # bare text for a String parameter
    cli("call", "clidb", "add", '"Bob"', "31")
    r = cli("call", "clidb", "add", "", "1", ok=False)
    assert r.exit_code == 1 and "530" in r.output and "name must not be empty" in r.output
    r = cli("call", "clidb", "nope", ok=False)
    assert r.exit_code == 1 and "no reducer or procedure named 'nope'; the module has: add, boom, double" in r.output
    assert "setup" not in r.output  # a lifecycle reducer is not callable
    # Functions are called by canonical name (`touch2` is published as `touch_2`), as with the real CLI.
    assert cli("call", "clidb", "touch_2").exit_code == 0
    r = cli("call", "clidb", "touch2", ok=False)
    assert r.exit_code == 1 and "no reducer or procedure named 'touch2'; did you mean 'touch_2'" in r.output
    if _has_sql():
        r = cli("sql", "clidb", "SELECT name, age FROM person")
        assert "Alice" in r.output and "Bob" in r.output and "(2 rows)" in r.output
        r = cli("sql", "clidb", "SELECT * FROM person", "--format", "json")
        assert json.loads(r.output)[0]["rows"]
    r = cli("logs", "clidb", "-n", "2")
    added, failed = r.output.strip().splitlines()
    assert added.endswith("added Bob")
    assert failed.endswith("Error: name must not be empty")  # the host logs a failed reducer, as upstream
    r = cli("logs", "clidb", "--format", "json")
    assert any(json.loads(x)["message"] == "initialised" for x in r.output.splitlines())
    r = cli("describe", "clidb")
    assert "table person (public)" in r.output and "table secret (private)" in r.output
    assert "reducer add(name: String, age: U32)" in r.output and "[Init]" in r.output
    r = cli("describe", "clidb", "reducer", "add", "--json")
    assert json.loads(r.output)["source_name"] == "add"
    assert json.loads(cli("describe", "clidb", "--json").output)["sections"]
    # another user (anonymous) may not read logs or delete
    r = cli("logs", "clidb", "--anonymous", ok=False)
    assert r.exit_code == 1 and "403" in r.output
    r = cli("delete", "clidb", "-y", "--anonymous", ok=False)
    assert r.exit_code == 1 and "403" in r.output
    assert SpacetimeHttp(live.url, token).resolve("clidb")
    cli("delete", "clidb", "-y")
    r = cli("call", "clidb", "add", "x", "1", ok=False)
    assert "404" in r.output


def _has_sql() -> bool:
    try:
        import harness.sql  # noqa: F401
    except ImportError:
        return False
    return True


def test_cli_publish_builds_from_source_and_clears(cli, tmp_path):
    mod = tmp_path / "src"
    mod.mkdir()
    (mod / "module.py").write_text(MODULE)
    cli("publish", "srcdb", "-p", str(mod))
    cli("call", "srcdb", "add", "Zed", "9")
    cli("publish", "srcdb", "-p", str(mod), "--delete-data", "-y")
    if _has_sql():
        assert "(0 rows)" in cli("sql", "srcdb", "SELECT * FROM person").output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ping(url: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    api = SpacetimeHttp(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if api.ping():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.1)
    raise AssertionError("server did not come up")


def test_start_process_sigint_and_restart(tmp_path, wasm_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "harness.cli", "start", "--listen-addr", f"127.0.0.1:{port}",
           "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        _wait_ping(url, proc)
        api = SpacetimeHttp(url)
        _, api.token = api.create_identity()
        api.publish(wasm_path.read_bytes(), "proc")
        api.call("proc", "add", ["Sig", 1])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        out = proc.stdout.read()
        assert f"listening on {url}" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        _wait_ping(url, proc)
        assert any(x["message"] == "added Sig" for x in api.logs("proc"))
        api.call("proc", "add", ["Again", 2])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dev_rebuilds_and_republishes_on_change(tmp_path, monkeypatch):
    monkeypatch.setenv("SPACETIME_PY_CONFIG", str(tmp_path / "cli.json"))
    mod = tmp_path / "devmod"
    mod.mkdir()
    (mod / "module.py").write_text(MODULE)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    seen: dict = {}

    def edit_when_up():
        api = SpacetimeHttp(url)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if api.ping() and api.resolve("devdb"):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        _, api.token = api.create_identity()
        seen["v1"] = api.schema("devdb")
        (mod / "module.py").write_text(MODULE + "\n\n@reducer\ndef extra(ctx: ReducerContext) -> None:\n"
                                                "    log.info('extra')\n")
        deadline = time.time() + 30
        while time.time() < deadline:
            sch = api.schema("devdb")
            if "extra" in json.dumps(sch):
                seen["v2"] = sch
                return
            time.sleep(0.2)

    t = threading.Thread(target=edit_when_up, daemon=True)
    t.start()
    r = CliRunner().invoke(main, ["dev", str(mod), "devdb", "--listen-addr", f"127.0.0.1:{port}",
                                  "--interval", "0.1", "--max-cycles", "40", "--data-dir", str(tmp_path / "d")],
                           catch_exceptions=False)
    t.join(5)
    assert r.exit_code == 0, r.output
    assert "published devdb" in r.output and "republished" in r.output, r.output
    assert "v2" in seen and "extra" not in json.dumps(seen["v1"])
    assert (tmp_path / "d" / "registry.json").is_file()
    assert Path(tmp_path / "d").exists()


def test_call_sends_special_types_in_their_typed_form():
    """A real server's JSON reader refuses a bare `"0x..."` for an Identity parameter ("expected a 1-element
    tuple"); `call` sends `{"__identity__": "0x..."}`, which both servers take."""
    from harness.cli.server import _cli_arg

    identity = {"Product": {"elements": [{"name": {"some": "__identity__"}, "algebraic_type": {"U256": []}}]}}
    stamp = {"Product": {"elements": [{"name": {"some": "__timestamp_micros_since_unix_epoch__"},
                                       "algebraic_type": {"I64": []}}]}}
    hexid = "0x" + "00" * 31 + "01"
    assert _cli_arg(hexid, identity) == {"__identity__": hexid}
    assert _cli_arg(json.dumps(hexid), identity) == {"__identity__": hexid}
    assert _cli_arg("5", stamp) == {"__timestamp_micros_since_unix_epoch__": 5}
    assert _cli_arg(json.dumps({"__identity__": hexid}), identity) == {"__identity__": hexid}  # already typed
    assert _cli_arg("7", {"U8": []}) == 7 and _cli_arg("true", identity) is True
