"""`spacetime-py init`: a module project that builds and whose own tests pass, and a client project whose
test runs against that module; names are checked and nothing is overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

pytestmark = pytest.mark.slow


def run_pytest(project: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("SPACETIME_PY_BACKEND", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                          capture_output=True, text=True, env=env, timeout=300)


def test_init_module_and_client_projects_build_and_pass_their_tests(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["init", "my-game", "--dir", str(tmp_path / "my-game")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    game = tmp_path / "my-game"
    assert (game / "my_game" / "__init__.py").is_file() and (game / "tests" / "test_my_game.py").is_file()
    assert "spacetime-py build my_game" in (game / "README.md").read_text()
    r = runner.invoke(main, ["build", str(game / "my_game")], catch_exceptions=False)
    assert r.exit_code == 0 and (game / "my_game" / "target" / "module.wasm").is_file(), r.output
    out = run_pytest(game)
    assert out.returncode == 0 and "3 passed" in out.stdout, out.stdout + out.stderr

    r = runner.invoke(main, ["init", "viewer", "--client", "--module", str(game / "my_game"),
                             "--dir", str(tmp_path / "viewer")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    viewer = tmp_path / "viewer"
    assert (viewer / "viewer" / "client.py").is_file()
    out = run_pytest(viewer)
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout + out.stderr


def test_init_refuses_a_used_folder_and_a_bad_name(tmp_path):
    runner = CliRunner()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    r = runner.invoke(main, ["init", "taken", "--dir", str(tmp_path / "taken")])
    assert r.exit_code == 1 and "already exists" in r.output and "Traceback" not in r.output
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    r = runner.invoke(main, ["init", "!!", "--dir", str(tmp_path / "x")])
    assert r.exit_code == 1 and "not usable as a project name" in r.output and not (tmp_path / "x").exists()
