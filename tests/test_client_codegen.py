"""`spacetime-py generate`: deterministic, ruff-clean, importable bindings; from a wasm and from a server's schema
JSON; regeneration replaces files it wrote earlier; the committed examples/quickstart_client is up to date."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from client_sdk.codegen import generate, generate_python, module_def_from_schema_json
from client_sdk.codegen.python import HEADER
from harness.cli import main as cli
from harness.host.describe import module_def_from_wasm

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def build(name: str) -> bytes:
    from module_sdk.build import build as build_module

    return build_module(ROOT / "examples" / name).output.read_bytes()


@pytest.fixture(scope="module")
def quickstart_wasm() -> bytes:
    return build("quickstart")


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return subprocess.run([exe, *args], capture_output=True, text=True)


def test_quickstart_bindings_content_and_determinism(quickstart_wasm, tmp_path):
    mdef = module_def_from_wasm(quickstart_wasm)
    files = generate_python(mdef)
    assert generate_python(module_def_from_wasm(quickstart_wasm)) == files
    assert sorted(files) == ["__init__.py", "reducers.py", "tables.py", "types.py"]
    assert all(src.startswith(HEADER) for src in files.values())
    assert "@product\nclass User:\n" in files["types.py"] and "    name: Option[str]\n" in files["types.py"]
    assert "    identity: UniqueIndex[User, Identity]\n" in files["tables.py"]
    assert "    def set_name(self, name: str, *, timeout: float | None = None) -> asyncio.Task[ReducerEvent]:" \
        in files["reducers.py"]
    assert "identity_connected" not in files["reducers.py"]  # lifecycle reducers are not callable
    # committed bindings are current
    committed = {p.name: p.read_text() for p in (ROOT / "examples" / "quickstart_client").glob("*.py")}
    assert committed == files


def test_generated_code_is_ruff_clean_formatted_and_importable(quickstart_wasm, tmp_path):
    sdk_test = build("sdk_test") if (ROOT / "examples" / "sdk_test").exists() else None
    for name, wasm in [("qs_bind", quickstart_wasm), ("sdk_bind", sdk_test)]:
        if wasm is None:
            continue
        generate(module_def_from_wasm(wasm), tmp_path / name)
    r = ruff("check", "--no-cache", "--isolated", "--line-length", "120", "--select", "E,F,W,I,B,UP", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    r = ruff("format", "--no-cache", "--isolated", "--check", "--line-length", "120", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import qs_bind as b; c = b.MODULE.tables['user']; "
            "assert c.primary_key == 0 and c.row_type.cls is b.User; "
            "assert b.DbConnection.TABLE_HANDLES['user'] is b.UserTable")
    if sdk_test is not None:
        code += "; import sdk_bind; assert len(sdk_bind.MODULE.tables) > 50"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": ""})
    assert out.returncode == 0, out.stderr


def test_cli_regenerates_over_an_earlier_generation(quickstart_wasm, tmp_path):
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(quickstart_wasm)
    out = tmp_path / "bind"
    out.mkdir()
    (out / "stale.py").write_text(HEADER + "x = 1\n")
    (out / "mine.py").write_text("# not generated\n")
    res = CliRunner().invoke(cli, ["generate", "--lang", "python", "--out-dir", str(out), "--module-wasm", str(wasm)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.py")) == ["__init__.py", "mine.py", "reducers.py", "tables.py",
                                                        "types.py"]
    before = {p.name: p.read_bytes() for p in out.glob("*.py")}
    res = CliRunner().invoke(cli, ["generate", "--out-dir", str(out), "--module-wasm", str(wasm)])
    assert res.exit_code == 0 and {p.name: p.read_bytes() for p in out.glob("*.py")} == before
    res = CliRunner().invoke(cli, ["generate", "--out-dir", str(out)])
    assert res.exit_code != 0 and "--module-wasm" in res.output


def test_module_def_from_schema_json_matches_the_wasm(quickstart_wasm):
    from harness.server.schema import schema_json

    mdef = module_def_from_wasm(quickstart_wasm)
    back = module_def_from_schema_json(json.loads(json.dumps(schema_json(mdef, 10))))
    # the server re-exports its validated def (canonical names, ExplicitNames), not the module's bytes
    assert back.raw != mdef.raw and generate_python(back) == generate_python(mdef)
    def tables(m):
        return sorted((t.name, t.column_names) for t in m.tables)
    assert tables(back) == tables(mdef)
    assert [(r.name, r.lifecycle) for r in back.reducers] == [(r.name, r.lifecycle) for r in mdef.reducers]


def test_client_cli_reads_servers_not_wasm(quickstart_wasm, tmp_path):
    """`spacetime-py-client generate` (the client distribution, no host) takes --server only; the author CLI
    above also reads a .wasm."""
    from client_sdk.codegen.cli import main as client_cli

    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(quickstart_wasm)
    res = CliRunner().invoke(client_cli, ["generate", "--out-dir", str(tmp_path / "b"), "--module-wasm", str(wasm)])
    assert res.exit_code == 2 and "No such option" in res.output and "--module-wasm" in res.output
    res = CliRunner().invoke(client_cli, ["generate", "--out-dir", str(tmp_path / "b")])
    assert res.exit_code == 2 and "--server" in res.output
    res = CliRunner().invoke(client_cli, ["generate", "--out-dir", str(tmp_path / "b"), "--server", "http://127.0.0.1:9"])
    assert res.exit_code == 2 and "--database" in res.output
