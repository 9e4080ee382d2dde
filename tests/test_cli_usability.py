"""The CLI as a new user meets it: one argument syntax for `call` and `run --call` (each argument a JSON value,
sums by variant name), "did you mean" for a misspelt reducer, no tracebacks for user mistakes, values and types
printed as the spacetime CLI prints them, and a migration refusal that names the real flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from spacetime_core.sats import Identity, Option, TimeDuration, Timestamp, f64, product, sum_type, type_of, u32
from spacetime_core.sats.satn import format_type, format_value

from .test_server_http import LiveServer

ROOT = Path(__file__).resolve().parents[1]
LOBBY = ROOT / "tests" / "data" / "lobbymod"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("ux-server")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def lobby_wasm(tmp_path_factory) -> Path:
    from module_sdk.build import build

    return build(LOBBY, tmp_path_factory.mktemp("ux") / "lobby.wasm").output


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

    return run


def test_run_call_takes_call_syntax_sums_by_name_and_reports_mistakes_without_tracebacks(cli):
    r = cli("run", str(LOBBY),
            "--call", 'add_lobby 1 arena {"team": 4}',        # bare text for a String, a sum by variant name
            "--call", 'add_lobby 2 "two words" solo',         # a unit variant by its bare name
            "--call", 'add_lobby 4 y {"Team": 1}',            # the source name: variants are lowerCamelCase
            "--call", "ad_lobby 3 x Solo",                     # misspelt
            "--call", 'add_lobby [3, "x"]',                    # the old array syntax
            "--call", 'add_lobby 3 x {"Duo": 1}',              # no such variant
            "--call", "summary 1", "--call", "summary 9",      # a procedure returning Option
            ok=False)
    out = r.output
    assert r.exit_code == 1 and "Traceback" not in out, out
    assert "error: no reducer or procedure named 'ad_lobby'; did you mean 'add_lobby'?" in out
    assert "add_lobby(id: U64, name: String, mode: Mode) takes 3 arguments, got 1" in out
    assert "argument 'mode' of add_lobby" in out and "unknown variant 'Duo'" in out
    assert "unknown variant 'Team' (expected one of solo, team)" in out
    assert 'summary: returned' in out and '(some = (name = "arena", players = 0))' in out
    assert "(none = ())" in out
    assert '"arena"' in out and "(team = 4)" in out and '"two words"' in out and "(solo = ())" in out
    assert "SumValue" not in out


def test_call_sql_describe_render_like_spacetime_and_suggest_names(cli, lobby_wasm):
    cli("publish", "lobbies", "-b", str(lobby_wasm))
    cli("call", "lobbies", "add_lobby", "7", "arena", '{"team": 4}')
    cli("call", "lobbies", "add_lobby", "8", '"solo room"', "solo")
    r = cli("call", "lobbies", "add_lobi", "1", ok=False)
    assert r.exit_code == 1 and "did you mean 'add_lobby'?" in r.output and "Traceback" not in r.output
    r = cli("sql", "lobbies", "SELECT * FROM lobby")
    assert "(team = 4)" in r.output and "(solo = ())" in r.output and '"arena"' in r.output, r.output
    assert "[0," not in r.output and "[1," not in r.output
    r = cli("describe", "lobbies")
    assert "    mode: Mode" in r.output and "reducer add_lobby(id: U64, name: String, mode: Mode)" in r.output
    assert "Ref(" not in r.output and "&" not in r.output
    r = cli("call", "lobbies", "summary", "7")
    assert json.loads(r.output) is not None


def test_migration_refusal_names_the_delete_data_flag(cli, tmp_path):
    from .test_server_http import build_source

    src = "from module_sdk import table, u32\n\n@table(public=True)\nclass T:\n    a: {}\n"
    v1 = build_source(tmp_path, "m1", src.format("u32"))
    v2 = build_source(tmp_path, "m2", src.format("str"))
    (tmp_path / "v1.wasm").write_bytes(v1)
    (tmp_path / "v2.wasm").write_bytes(v2)
    cli("publish", "mig", "-b", str(tmp_path / "v1.wasm"))
    r = cli("publish", "mig", "-b", str(tmp_path / "v2.wasm"), ok=False)
    assert r.exit_code == 1 and "--delete-data" in r.output and "clear=True" not in r.output.split("(")[0]



@sum_type
class Shape:
    Empty: None
    Circle: f64


@product
class Row:
    name: str
    shape: Shape
    nick: Option[str]
    blob: bytes
    at: Timestamp
    took: TimeDuration
    xs: list[u32]

def test_satn_formats_values_and_types_as_the_spacetime_cli():
    t = Row.__sats_type__
    v = Row("a", Shape.Circle(1.0), None, b"\x01\xff", Timestamp(1_500_000), TimeDuration(-3), [1, 2])
    assert format_value(t, v) == ('(name = "a", shape = (Circle = 1), nick = (none = ()), blob = 0x01ff, '
                                  "at = 1970-01-01T00:00:01.500+00:00, took = -0.000003, xs = [1, 2])")
    assert format_value(Shape.__sats_type__, Shape.Empty) == "(Empty = ())"
    assert format_value(type_of(Option[str]), "x") == '(some = "x")'
    assert format_value(type_of(Timestamp), Timestamp(0)) == "1970-01-01T00:00:00+00:00"
    assert format_value(type_of(Identity), Identity.from_bytes(bytes(32))) == "0x" + "00" * 32
    assert format_value(type_of(f64), 0.1) == "0.1" and format_value(type_of(f64), float("inf")) == "inf"
    assert format_type(t) == ("(name: String, shape: (Empty: () | Circle: F64), nick: Option<String>, "
                              "blob: Array<U8>, at: Timestamp, took: TimeDuration, xs: Array<U32>)")
