"""The official TypeScript client (npm `spacetimedb`, tests/peer) against the server: connect anonymously and
with a saved token, subscribe, call reducers, see another client's update, get a SenderError, unsubscribe.
Skipped when node/npm or tests/peer/node_modules are missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.host import Database
from spacetime_core.protocol import V2_BSATN, V3_BSATN
from tests.test_server_ws_common import OWNER, AppServerThread, ServerThread, module_wasm

PEER = Path(__file__).resolve().parent / "peer"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="node/npm not installed"),
    pytest.mark.skipif(not (PEER / "node_modules" / "spacetimedb").is_dir(),
                       reason="tests/peer/node_modules missing (run `npm ci` in tests/peer)"),
]


@pytest.fixture(scope="module", params=["v3", "v2-only-server", "http-app"])
def served(request, tmp_path_factory):
    wasm = module_wasm(tmp_path_factory.mktemp("wsmod"))
    if request.param == "http-app":  # the real server: HTTP token exchange, registry, shared tokens
        srv = AppServerThread(tmp_path_factory.mktemp("data"), wasm, "quickstart").start()
        yield srv, srv.databases["quickstart"]
        srv.stop()
        return
    db = Database.create(wasm, owner=OWNER)
    protocols = (V3_BSATN, V2_BSATN) if request.param == "v3" else (V2_BSATN,)
    srv = ServerThread({"quickstart": db}, protocols=protocols).start()
    yield srv, db
    srv.stop()
    db.close()


def run_node(script: str, *args: str, timeout: float = 90) -> list[dict]:
    p = subprocess.run(["node", script, *args], cwd=PEER, capture_output=True, text=True, timeout=timeout)
    steps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"node {script} failed:\n{p.stdout}\n{p.stderr}"
    return steps


def test_typescript_client_scenario(served):
    srv, db = served
    steps = {s["step"]: s for s in run_node("scenario.mjs", srv.url, "quickstart")}
    assert "done" in steps, steps
    assert steps["connect anonymously"]["tokenParts"] == 3
    assert steps["reconnect with the saved token"]["sameIdentity"] is True
    assert steps["subscribe and call a reducer"] == {"step": "subscribe and call a reducer", "before": [],
                                                     "after": ["Ada"]}
    seen = steps["the other client sees the update"]
    assert seen["inserted"] == ["Ada"] and seen["updated"] == [["Ada", "Ada L."]] and seen["bNames"] == ["Ada L."]
    assert steps["sender error"]["senderError"] == {"name": "SenderError", "message": "name must not be empty"}
    assert "kaboom" in steps["internal error"]["internal"]["message"]
    assert steps["many calls in flight"]["count"] == 21
    assert steps["unsubscribe"]["rowsAfter"] == 0 and steps["unsubscribe"]["ended"] is True
    # the SDK (>= 2.2 offers v3 then v2) negotiated the server's first choice, and asked for compression
    assert set(srv.endpoint.stats.protocols) == {srv.endpoint.protocols[0]}
    assert srv.endpoint.stats.compression["Gzip"] >= 1
    # every TS connection ran client_connected and client_disconnected
    deadline = time.time() + 10
    while db.rows("online") and time.time() < deadline:
        time.sleep(0.05)
    assert db.rows("online") == []
