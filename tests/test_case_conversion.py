"""The server's case-conversion policy (issue 9): under the default snake_case policy of a V10 module def the
real SpacetimeDB server names tables, columns (also nested struct fields) snake_case, sum variants lowerCamelCase
and types PascalCase, keeps explicit names and reducer parameter names, and re-exports that validated def from
`/schema?version=10`.  examples/sdk_test_case_conversion (upstream's sdk-test-case-conversion in Python) names
everything in a case that changes; tests/data/transcripts/sdk_test_case_conversion.json is the real server's
answer to a scenario over it (replayed in test_transcripts.py), and upstream's `case-conversion-client` passes
against both servers (docs/compatibility.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client_sdk.codegen import generate_python, module_def_from_schema_json
from harness.host.describe import module_def_from_wasm
from harness.server.schema import schema_json
from spacetime_core import names
from spacetime_core.module_def import convert_typespace
from spacetime_core.sats import (
    I32,
    STRING,
    U8,
    U32,
    ArrayType,
    ProductType,
    RefType,
    SumType,
    Typespace,
)
from spacetime_core.sats import types as st

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sdk_test_case_conversion"
LIVE = pytest.mark.spacetime_module("../examples/sdk_test_case_conversion")


@pytest.fixture(scope="module")
def mdef():
    from module_sdk.build import build

    out = Path(__import__("tempfile").mkdtemp()) / "cc.wasm"
    return module_def_from_wasm(build(EXAMPLE, out).output.read_bytes())


@pytest.mark.parametrize("source, snake, camel, pascal", [
    # upstream's own table (schema/src/def/validate/v10.rs, test_case_conversion_snake_case_policy)
    ("BasketId", "basket_id", "basketId", "BasketId"),
    ("fruitName", "fruit_name", "fruitName", "FruitName"),
    ("color_label", "color_label", "colorLabel", "ColorLabel"),
    ("RedApple", "red_apple", "redApple", "RedApple"),
    ("metaInfo", "meta_info", "metaInfo", "MetaInfo"),
    # digits are words of their own, acronyms end before a capitalised word
    ("Player1Id", "player_1_id", "player1Id", "Player1Id"),
    ("Active1", "active_1", "active1", "Active1"),
    ("OneU8", "one_u_8", "oneU8", "OneU8"),
    ("HTTPRequest", "http_request", "httpRequest", "HttpRequest"),
])
def test_names_convert_like_convert_case(source, snake, camel, pascal):
    assert (names.canonical_snake(source), names.canonical_camel(source), names.canonical_pascal(source)) == \
        (snake, camel, pascal)


def test_typespace_conversion_renames_fields_and_variants_but_not_special_types():
    status = SumType([("Active1", st.UNIT), ("BannedUntil", U32)])
    info = ProductType([("AgeValue1", U8), ("scoreTotal", ArrayType(SumType([("SomeThing", I32)])))])
    row = ProductType([("Player1Id", U32), ("Status", RefType(0)), ("When", st.SCHEDULE_AT),
                       ("Maybe", st.option_type(STRING)), ("Who", st.IDENTITY)])
    out = convert_typespace(Typespace([status, info, row])).types
    assert [n for n, _ in out[0].elements] == ["active1", "bannedUntil"]
    assert [n for n, _ in out[1].elements] == ["age_value_1", "score_total"]
    assert [n for n, _ in out[1].elements[1][1].elem.elements] == ["someThing"]
    assert [n for n, _ in out[2].elements] == ["player_1_id", "status", "when", "maybe", "who"]
    # ScheduleAt keeps Interval/Time, Option some/none, Identity __identity__: their names are the format
    assert out[2].elements[2][1] == st.SCHEDULE_AT and out[2].elements[3][1].is_option()
    assert out[2].elements[4][1].is_identity()


def test_module_def_has_the_names_clients_see(mdef):
    tables = {t.name: t for t in mdef.tables}
    assert set(tables) == {"Player1Canonical", "person_2"}  # explicit name kept, accessor converted
    assert tables["Player1Canonical"].column_names == ("player_1_id", "player_name", "current_level_2",
                                                        "status_3_field")
    assert tables["person_2"].column_aliases == ("Person2Id", "FirstName", "playerRef", "personInfo")
    ts = mdef.typespace
    status = ts.types[tables["Player1Canonical"].row_type.elements[3][1].index]
    assert [n for n, _ in status.elements] == ["active1", "bannedUntil"]
    info = ts.types[tables["person_2"].row_type.elements[3][1].index]
    assert [n for n, _ in info.elements] == ["age_value_1", "score_total"]
    assert [(r.name, [n for n, _ in r.params.elements]) for r in mdef.reducers] == [
        ("create_player_1", ["Player1Name", "Start2Level"]),  # parameters keep their names
        ("add_person_2", ["First3Name", "playerRef", "AgeValue", "ScoreTotal"]),
        ("banPlayer1", ["Player1Id", "BanUntil6"])]
    assert [v.name for v in mdef.views] == ["Level2Person"]
    # the module's own names are still there for what needs them (accessors, SQL aliases)
    assert [n for n, _ in mdef.source_typespace.types[status_ref(mdef)].elements] == ["Active1", "BannedUntil"]


def status_ref(mdef) -> int:
    return next(t.ref for t in mdef.types if t.name == "Player2Status")


def test_schema_v10_is_the_validated_def_and_reads_back_the_same(mdef):
    body = schema_json(mdef, 10)
    sections = {k: v for s in body["sections"] for k, v in s.items()}
    assert "CaseConversionPolicy" not in sections  # the names are final
    assert sections["ExplicitNames"]["entries"] == [
        {"Table": {"source_name": "person2", "canonical_name": "person_2"}},
        {"Table": {"source_name": "player1", "canonical_name": "Player1Canonical"}},
        {"Function": {"source_name": "CreatePlayer1", "canonical_name": "create_player_1"}},
        {"Function": {"source_name": "AddPerson2", "canonical_name": "add_person_2"}},
        {"Function": {"source_name": "BanPlayer1", "canonical_name": "banPlayer1"}},
        {"Function": {"source_name": "person_at_level_2", "canonical_name": "Level2Person"}}]
    player = next(t for t in sections["Tables"] if t["source_name"] == "player1")
    assert [c["source_name"] for c in player["constraints"]] == [{"some": "Player1Canonical_player_1_id_key"}]
    assert [s["source_name"] for s in player["sequences"]] == [{"some": "Player1Canonical_player_1_id_seq"}]
    back = module_def_from_schema_json(json.loads(json.dumps(body)))  # re-validating changes nothing
    assert sorted((t.name, t.column_names) for t in back.tables) == sorted((t.name, t.column_names)
                                                                         for t in mdef.tables)
    assert [r.name for r in back.reducers] == [r.name for r in mdef.reducers]
    assert generate_python(back) == generate_python(mdef)


def test_real_servers_schema_matches_ours():
    """The real server's `/schema?version=10` for this example (captured in the transcript) is ours, up to the
    order of upstream's hash-map lists."""
    from tests.transcripts.compare import _unordered_v10

    recorded = json.loads((ROOT / "tests/data/transcripts/sdk_test_case_conversion.json").read_text())
    [real] = [s["body"] for s in recorded["steps"] if s["step"] == "schema v10"]
    [real9] = [s["body"] for s in recorded["steps"] if s["step"] == "schema v9"]
    from module_sdk.build import build

    out = Path(__import__("tempfile").mkdtemp()) / "cc.wasm"
    mdef = module_def_from_wasm(build(EXAMPLE, out).output.read_bytes())
    assert _unordered_v10(schema_json(mdef, 10)) == _unordered_v10(real)
    assert schema_json(mdef, 9) == real9


# ------------------------------------------------------------------------------------------- a live server



@pytest.mark.slow
@LIVE
def test_rows_show_converted_names_and_sql_takes_source_names(spacetime_db):
    spacetime_db.call("create_player_1", "ann", 2)
    spacetime_db.call("add_person_2", "cy", 1, 30, 7)
    spacetime_db.call("banPlayer1", 1, 99)
    [raw] = spacetime_db.sql_raw("SELECT * FROM Player1Canonical")
    status = raw["schema"]["elements"][3]["algebraic_type"]["Sum"]["variants"]
    assert [v["name"]["some"] for v in status] == ["active1", "bannedUntil"]
    assert spacetime_db.sql("SELECT * FROM player1") == [
        {"player_1_id": 1, "player_name": "ann", "current_level_2": 2, "status_3_field": {"bannedUntil": 99}}]
    assert spacetime_db.sql("SELECT * FROM person_2") == [
        {"person_2_id": 1, "first_name": "cy", "player_ref": 1, "person_info": {"age_value_1": 30, "score_total": 7}}]
    # the module's own names: tables, columns (answered under the name asked for) and views
    assert spacetime_db.sql("SELECT p.FirstName FROM person2 p WHERE p.playerRef = 1") == [{"FirstName": "cy"}]
    assert spacetime_db.sql("SELECT first_name FROM person_at_level_2") == [{"first_name": "cy"}]
    with pytest.raises(Exception, match="no such table: `player_1_canonical`"):
        spacetime_db.sql("SELECT * FROM player_1_canonical")


@pytest.mark.slow
@LIVE
def test_calls_go_by_canonical_name_and_clients_see_converted_rows(spacetime_db):
    from client_sdk.http import HttpError

    with pytest.raises(HttpError, match="No such procedure"):
        spacetime_db.call("CreatePlayer1", "x", 1)
    with pytest.raises(HttpError, match="No such procedure"):
        spacetime_db.call("ban_player_1", 1, 1)
    with spacetime_db.connect(subscribe=["SELECT * FROM Player1Canonical", "SELECT * FROM Level2Person"]) as conn:
        conn.call("create_player_1", "ann", 2)
        conn.call("add_person_2", "cy", 1, 30, 7)
        conn.call("banPlayer1", 1, 5)
        # without generated bindings a sum is a SumValue(tag, value): tag 1 is `bannedUntil`
        [row] = conn.until(lambda: [r for r in conn.db.Player1Canonical if r.status_3_field.tag == 1], timeout=10)
        assert (row.player_1_id, row.player_name, row.status_3_field.value) == (1, "ann", 5)
        [person] = conn.until(lambda: list(conn.db.Level2Person), timeout=10)
        assert (person.first_name, person.person_info) == ("cy", (30, 7))


@pytest.mark.slow
@LIVE
def test_generated_bindings_use_the_converted_names(spacetime_db, tmp_path, monkeypatch):
    from client_sdk.codegen import generate

    generate(spacetime_db.module.module_def, tmp_path / "cc_bind")
    monkeypatch.syspath_prepend(str(tmp_path))
    import cc_bind as b

    with spacetime_db.connect(bindings=b, subscribe=["SELECT * FROM Player1Canonical",
                                                     "SELECT * FROM Level2Person"]) as conn:
        conn.call("create_player_1", "ann", 2)
        conn.call("add_person_2", "cy", 1, 30, 7)
        conn.call("banPlayer1", 1, 5)
        [row] = conn.until(lambda: [r for r in conn.db.Player1Canonical
                                    if r.status_3_field == b.Player2Status.bannedUntil(5)], timeout=10)
        assert row == b.Player1(player_1_id=1, player_name="ann", current_level_2=2,
                                status_3_field=b.Player2Status.bannedUntil(5))
        [person] = conn.until(lambda: list(conn.db.Level2Person), timeout=10)
        assert person.person_info == b.Person3Info(age_value_1=30, score_total=7)
        assert b.Player2Status.active1 is not None and not hasattr(b.Player2Status, "Active1")


def test_a_variant_that_converts_to_a_keyword_gets_usable_bindings(tmp_path, monkeypatch):
    """`Dir.In` is `in` on the server: the generated class spells it `in_` and still publishes `in`."""
    from client_sdk.codegen import generate
    from spacetime_core.sats import SumValue, encode
    from spacetime_core.sats.annotations import type_of
    from tests.test_server_http import build_source

    src = ("from module_sdk import reducer, sum_type, table, u32\n\n"
           "@sum_type\nclass Dir:\n    In: None\n    Out: u32\n\n"
           "@table(public=True)\nclass Move:\n    id: u32\n    dir: Dir\n\n"
           "@reducer\ndef go(ctx, d: Dir) -> None:\n    ctx.db.move.insert(Move(id=1, dir=d))\n")
    mdef = module_def_from_wasm(build_source(tmp_path, "kw", src))
    dir_t = mdef.typespace.types[next(t.ref for t in mdef.types if t.name == "Dir")]
    assert [n for n, _ in dir_t.elements] == ["in", "out"]
    generate(mdef, tmp_path / "kw_bind")
    monkeypatch.syspath_prepend(str(tmp_path))
    import kw_bind as b

    client_t = type_of(b.Dir)
    assert [n for n, _ in client_t.elements] == ["in", "out"]
    assert encode(client_t, b.Dir.in_) == encode(dir_t, SumValue(0)) and b.Dir.out(3).value == 3


def test_two_columns_that_convert_to_one_name_are_refused(tmp_path):
    """`fooBar` and `foo_bar` are both `foo_bar` on the server (the real one fails to create the table)."""
    from harness.host.database import ModuleLoadError
    from tests.test_server_http import build_source

    src = "from module_sdk import table, u32\n\n@table(public=True)\nclass T:\n    fooBar: u32\n    foo_bar: u32\n"
    with pytest.raises(ModuleLoadError, match="table 't': two columns are named 'foo_bar' \\(after case conversion\\)"):
        module_def_from_wasm(build_source(tmp_path, "dup", src))
