"""Differential transcripts (issue 9): replay the scenarios recorded against the real SpacetimeDB server
(tests/data/transcripts, made by ``python -m tests.transcripts.capture``) against ``spacetime-py start`` and
compare the normalised answers step by step.

Every difference is a failure with a diff, except the known deviations listed in KNOWN (each also described in
docs/compatibility.md, "Differences found by transcripts"); a known deviation that no longer occurs fails too, so
the list shrinks as the server is fixed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.hostile import Server
from tests.transcripts.capture import build_modules, capture
from tests.transcripts.compare import Deviation, compare
from tests.transcripts.scenarios import SCENARIOS

DATA = Path(__file__).parent / "data" / "transcripts"

KNOWN = [
    Deviation("*", "A call #* raw args *", ".received.*.InternalError", "BSATN decode error wording differs"),
]


@pytest.fixture(scope="module")
def wasms(tmp_path_factory):
    return build_modules(list(SCENARIOS), tmp_path_factory.mktemp("transcript-wasm"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("transcripts") / "data")
    yield srv
    srv.stop()


@pytest.mark.parametrize("module", list(SCENARIOS))
def test_transcript_matches_real_server(module, wasms, server):
    recorded = json.loads((DATA / f"{module}.json").read_text())
    assert recorded["server_version"].startswith("SpacetimeDB standalone v2.8.3")
    ours = asyncio.run(capture(f"http://127.0.0.1:{server.port}", module, wasms[module]))
    known = [d for d in KNOWN if d.module in ("*", module)]
    problems, used = compare(module, recorded["steps"], ours, known)
    assert not problems, f"{module}: our server answers differently from the real one:\n\n" + "\n\n".join(problems)
    specific = {d for d in known if d.module == module}
    assert specific <= used, f"known deviations that no longer occur (remove them): {specific - used}"


@pytest.mark.parametrize("module", list(SCENARIOS))
def test_codegen_reads_the_real_servers_schema(module, wasms):
    """`spacetime-py generate` from a real server's `/schema?version=10` gives the same bindings as from the wasm
    (the real server writes index algorithms as `{"BTree": [0]}`)."""
    from client_sdk.codegen import generate_python, module_def_from_schema_json
    from harness.host.describe import module_def_from_wasm

    recorded = json.loads((DATA / f"{module}.json").read_text())
    [v10] = [s["body"] for s in recorded["steps"] if s["step"] == "schema v10"]
    real, ours = generate_python(module_def_from_schema_json(v10)), generate_python(module_def_from_wasm(wasms[module]))
    assert real == ours


def test_row_level_security_order_is_not_compared():
    """Upstream keeps row-level security in a hash map: two captures from the same real server list the filters
    (schema v9 and v10, and the `Creating row level security` log lines) in different orders. Only the order is
    ignored; a different filter is still a difference."""
    a, b = "SELECT * FROM one_u_8", "SELECT * FROM users WHERE identity = :sender"

    def steps(first: str, second: str) -> list[dict]:
        log = [{"message": "Creating table `t`"}, {"message": f"Creating row level security `{first}`"},
               {"message": f"Creating row level security `{second}`"}, {"message": "Database initialized"}]
        return [{"step": "schema v9", "body": {"row_level_security": [{"sql": first}, {"sql": second}]}},
                {"step": "schema v10", "body": {"sections": [{"RowLevelSecurity": [{"sql": first}, {"sql": second}]}]}},
                {"step": "logs", "body_lines": log}]

    assert compare("m", steps(a, b), steps(b, a)) == ([], set())
    problems, _ = compare("m", steps(a, b), steps(b, "SELECT * FROM other"))
    assert [p.split(" differs")[0] for p in problems] == ["step 'schema v9'", "step 'schema v10'", "step 'logs'"]
    # a log line that is not a row-level-security line keeps its place
    swapped = steps(a, b)
    swapped[2]["body_lines"][0], swapped[2]["body_lines"][3] = swapped[2]["body_lines"][3], swapped[2]["body_lines"][0]
    assert compare("m", steps(a, b), swapped)[0]
