"""Mistakes a new module author makes, and the message each one gets: the build (or the failing call) names the
user's file and line and says what to write instead, with no SDK internals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from module_sdk.build import BuildError, build

from .test_server_http import LiveServer

pytestmark = pytest.mark.slow


def build_error(tmp: Path, text: str, name: str = "mod.py") -> str:
    src = tmp / name
    src.write_text(textwrap.dedent(text))
    with pytest.raises(BuildError) as e:
        build(src, tmp / "out.wasm")
    return str(e.value)


def test_reducer_without_ctx_fails_the_build_at_its_line(tmp_path):
    msg = build_error(tmp_path, """\
        from module_sdk import reducer

        @reducer
        def add(name: str) -> None:
            pass
        """)
    assert 'mod.py", line 3' in msg
    assert "reducer add (mod.py:3): the first parameter is the context, but 'name' is annotated str" in msg
    assert "def add(ctx: ReducerContext, name: ...)" in msg
    assert "module_sdk/" not in msg


def test_scheduled_reducer_without_ctx_is_named_before_the_schedule_check(tmp_path):
    msg = build_error(tmp_path, """\
        from module_sdk import ScheduleAt, primary_key, reducer, table, u64

        @table(scheduled=lambda: tick)
        class Timer:
            id: u64 = primary_key(auto_inc=True)
            at: ScheduleAt

        @reducer
        def tick(row: Timer) -> None:
            pass
        """)
    assert "reducer tick (mod.py:8): the first parameter is the context, but 'row' is annotated Timer" in msg


def test_reducer_annotated_with_a_return_type_fails_the_build(tmp_path):
    msg = build_error(tmp_path, """\
        from module_sdk import ReducerContext, reducer, u64

        @reducer
        def bump(ctx: ReducerContext) -> u64:
            return 1
        """)
    assert "reducer bump (mod.py:3) is annotated -> u64, but a reducer returns nothing" in msg
    assert "@procedure" in msg


def test_an_unsupported_column_type_names_the_field_and_what_to_use(tmp_path):
    msg = build_error(tmp_path, """\
        from module_sdk import primary_key, table, u64

        @table
        class Item:
            id: u64 = primary_key()
            tags: dict[str, int]
        """)
    assert 'mod.py", line 3' in msg
    assert ("table item (mod.py:3): Item.tags: unsupported annotation dict[str, int]: SpacetimeDB has no map type; "
            "use list[Entry] of a @product class Entry") in msg


def test_unsupported_annotations_say_what_to_use_instead():
    from spacetime_core.sats import product, type_of

    with pytest.raises(TypeError, match=r"unsupported annotation tuple\[int, str\]: use a @product class"):
        type_of(tuple[int, str])
    with pytest.raises(TypeError, match=r"unsupported annotation set\[int\]: not a SATS type \(use a marker"):
        type_of(set[int])

    @product
    class P:
        a: int
        b: dict

    with pytest.raises(TypeError, match=r"<locals>\.P\.b: unsupported annotation dict: SpacetimeDB has no map type"):
        P.__sats_type__  # noqa: B018 - computed on first access


def test_a_stdlib_module_the_runtime_lacks_is_named_by_module_not_by_a_cache_path(tmp_path):
    msg = build_error(tmp_path, "import module_sdk\nimport sqlite3\n")
    assert 'mod.py", line 2' in msg and "    import sqlite3" in msg
    assert ("hint: '_sqlite3' is a standard-library C module that the module runtime does not include; the "
            "standard library's sqlite3/dbapi2.py imports it.") in msg
    assert ".cache" not in msg and "stdlib-" not in msg


def test_reading_a_file_at_import_says_a_module_has_no_filesystem(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    msg = build_error(tmp_path, """\
        import module_sdk

        CONFIG = open("config.json").read()
        """)
    assert 'mod.py", line 3' in msg and "FileNotFoundError" in msg
    assert "hint: a module is WebAssembly without a filesystem, when it is built and when it runs" in msg


def test_a_parameter_default_fails_the_build_since_callers_pass_every_argument(tmp_path):
    msg = build_error(tmp_path, """\
        from module_sdk import ReducerContext, reducer, u32

        @reducer
        def add(ctx: ReducerContext, name: str, age: u32 = 18, level: u32 = 1) -> None:
            pass
        """)
    assert ("reducer add (mod.py:3): parameter 'age' has a default value, but callers always pass every argument "
            "(SpacetimeDB has no optional parameters); remove the default, or make it Option[T] and pass null") in msg


def test_context_annotations_and_none_returns_still_build(tmp_path):
    src = tmp_path / "ok.py"
    src.write_text(textwrap.dedent("""\
        from __future__ import annotations
        from module_sdk import ProcedureContext, ReducerContext, init, procedure, reducer, u32

        @init
        def setup(ctx) -> None:
            pass

        @reducer
        def a(ctx: ReducerContext, n: u32) -> None:
            pass

        @procedure
        def p(ctx: ProcedureContext) -> u32:
            return 1
        """))
    assert build(src, tmp_path / "ok.wasm").output.exists()


def host_db(tmp: Path, text: str):
    """Build `text` and create a database of it in the in-process host; (db, owner)."""
    import os

    from harness.host import Database
    from spacetime_core.sats import Identity

    src = tmp / "mod.py"
    src.write_text(textwrap.dedent(text))
    owner = Identity.from_bytes(os.urandom(32))
    return Database.create(build(src, tmp / "mod.wasm").output.read_bytes(), owner=owner), owner


def run_calls(tmp: Path, text: str, *calls: tuple[str, list]) -> list:
    """Build `text`, create a database in the in-process host and make each reducer call; the outcomes."""
    db, owner = host_db(tmp, text)
    return [db.call_reducer(name, args, sender=owner) for name, args in calls]


def test_find_on_a_column_without_an_index_says_how_to_declare_one(tmp_path):
    add, edit, typo, table = run_calls(tmp_path, """\
        from module_sdk import ReducerContext, index, reducer, table, u32, u64

        @table
        class Note:
            id: u64
            text: str
            size: u32 = index()

        @reducer
        def add(ctx: ReducerContext, id: u64) -> None:
            ctx.db.note.insert(Note(id=id, text="", size=0))

        @reducer
        def edit(ctx: ReducerContext, id: u64) -> None:
            ctx.db.note.id.find(id)

        @reducer
        def typo(ctx: ReducerContext) -> None:
            ctx.db.note.sizes.filter(1)

        @reducer
        def table_typo(ctx: ReducerContext) -> None:
            ctx.db.notes.count()
        """, ("add", [1]), ("edit", [1]), ("typo", []), ("table_typo", []))
    assert add.committed
    assert edit.error == ("AttributeError: table note has no index 'id': column 'id' is not indexed (indexes: "
                          "size). Declare it id: ... = primary_key() (or unique(), index()) to look rows up by it, "
                          "or scan: [r for r in ctx.db.note if r.id == value]")
    assert typo.error == ("AttributeError: table note has no attribute or index 'sizes' (indexes: size; columns: "
                          "id, text, size)")
    assert table.error.startswith("AttributeError: ctx.db has no table 'notes' (tables: note)")


def test_run_prints_views_as_well_as_tables(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    src = tmp_path / "shop.py"
    src.write_text(textwrap.dedent("""\
        from module_sdk import (AnonymousViewContext, Option, ReducerContext, ViewContext, anonymous_view,
                                primary_key, reducer, table, u32, view)

        @table
        class Item:
            id: u32 = primary_key()
            price: u32

        @reducer
        def add(ctx: ReducerContext, id: u32, price: u32) -> None:
            ctx.db.item.insert(Item(id=id, price=price))

        @anonymous_view
        def cheap(ctx: AnonymousViewContext) -> list[Item]:
            return [i for i in ctx.db.item.iter() if i.price < 10]

        @view
        def broken(ctx: ViewContext) -> Option[Item]:
            return "not an item"
        """))
    r = CliRunner().invoke(main, ["run", str(src), "--call", "add 1 5", "--call", "add 2 50"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "view cheap (anonymous)" in out
    cheap = out[out.index("view cheap"):]
    assert "│ 1  │ 5     │" in cheap and "│ 2  │ 50    │" not in cheap and "│ 2  │ 50    │" in out
    assert "view broken (as the caller): view `broken` failed: view broken returned 'not an item'" in out


def test_index_and_context_mistakes_say_what_each_kind_offers(tmp_path):
    db, owner = host_db(tmp_path, """\
        from module_sdk import (AnonymousViewContext, ProcedureContext, ReducerContext, anonymous_view, index,
                                primary_key, procedure, reducer, table, u32, u64)

        @table(public=True)
        class Person:
            id: u64 = primary_key(auto_inc=True)
            age: u32 = index()

        @reducer
        def by_age(ctx: ReducerContext) -> None:
            ctx.db.person.age.find(3)

        @reducer
        def update_by_age(ctx: ReducerContext) -> None:
            ctx.db.person.age.update(Person(id=1, age=3))

        @anonymous_view
        def writes(ctx: AnonymousViewContext) -> list[Person]:
            ctx.db.person.insert(Person(age=1))
            return []

        @anonymous_view
        def deletes(ctx: AnonymousViewContext) -> list[Person]:
            ctx.db.person.id.delete(1)
            return []

        @procedure
        def direct(ctx: ProcedureContext) -> u64:
            return ctx.db.person.count()

        @procedure
        def unannotated(ctx: ProcedureContext):
            return 5
        """)
    find = db.call_reducer("by_age", [], sender=owner)
    assert find.error == ("AttributeError: index person_age_idx_btree has no find: find needs a unique column "
                          "(primary_key() or unique()); this index has filter(value)")
    upd = db.call_reducer("update_by_age", [], sender=owner)
    assert upd.error.startswith("AttributeError: index person_age_idx_btree has no update: it goes through the "
                                "primary key (ctx.db.<table>.<primary key column>.update(row))")
    assert db.call_view("writes").error == ("AttributeError: table person is read-only here: a view reads tables "
                                            "and cannot insert")
    assert db.call_view("deletes").error == ("AttributeError: index person_id_idx_btree is read-only here: a view "
                                             "reads tables and cannot delete")
    assert db.call_procedure("direct", [], sender=owner).status != "returned"
    assert db.call_procedure("unannotated", [], sender=owner).status != "returned"
    logs = "\n".join(r.message for r in db.logs())
    assert ("AttributeError: ProcedureContext has no db: no transaction is open in a procedure; read and write in "
            "one with ctx.with_tx(lambda tx: tx.db.<table>...)") in logs
    assert ("procedure unannotated returned 5, which does not fit its return type: TypeError: a procedure without "
            "a return annotation returns None; annotate it (e.g. -> u32) to return a value") in logs


def test_a_traceback_counts_sdk_frames_between_the_users_frames_too(tmp_path):
    db, _owner = host_db(tmp_path, """\
        from module_sdk import AnonymousViewContext, Query, anonymous_view, primary_key, table, u32

        @table(public=True)
        class Order:
            id: u32 = primary_key()
            amount: u32

        @anonymous_view
        def big(ctx: AnonymousViewContext) -> Query[Order]:
            return ctx.from_.order.where(lambda o: o.amout > 100)
        """)
    assert not db.call_view("big").ok
    text = next(r.message for r in db.logs() if "view big failed" in r.message)
    lines = text.splitlines()
    assert lines[1:] == ['Traceback (most recent call last):',
                         '  File "mod.py", line 10, in big',
                         '    return ctx.from_.order.where(lambda o: o.amout > 100)',
                         '  (2 frames inside module_sdk)',
                         '  File "mod.py", line 10, in <lambda>',
                         '    return ctx.from_.order.where(lambda o: o.amout > 100)',
                         '  (1 frame inside module_sdk)',
                         "AttributeError: table `order` has no column 'amout' (columns: id, amount)"], text


def test_returning_err_from_a_reducer_rolls_back_and_says_to_raise(tmp_path):
    db, owner = host_db(tmp_path, """\
        from module_sdk import Err, ReducerContext, primary_key, reducer, table, u32

        @table(public=True)
        class T:
            id: u32 = primary_key()

        @reducer
        def put(ctx: ReducerContext, n: u32):
            ctx.db.t.insert(T(id=n))
            if n > 5:
                return Err("too big")
        """)
    assert db.call_reducer("put", [1], sender=owner).committed
    out = db.call_reducer("put", [9], sender=owner)
    assert not out.committed
    assert out.error == ("reducer put returned Err('too big') (rolled back): to fail a reducer, raise "
                         "SenderError('too big')")
    assert db.row_dicts("t") == [{"id": 1}]


def test_run_prints_the_hosts_error_record_without_a_fake_file_and_line(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    src = tmp_path / "boom.py"
    src.write_text(textwrap.dedent("""\
        from module_sdk import ReducerContext, reducer

        @reducer
        def boom(ctx: ReducerContext) -> None:
            raise KeyError("gone")
        """))
    r = CliRunner().invoke(main, ["run", str(src), "--call", "boom"], catch_exceptions=False)
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert "error boom.py:5 reducer boom failed" in lines            # the module's record, at the user's line
    assert "error KeyError: 'gone'" in lines                          # the host's record, as `logs` shows it
    assert "__spacetimedb__" not in r.output and ":None" not in r.output


GAME = """\
from module_sdk import (AnonymousViewContext, ProcedureContext, ReducerContext, anonymous_view, i32, primary_key,
                        procedure, reducer, sum_type, table, u32)


@table(public=True)
class Unit:
    id: u32 = primary_key()


@anonymous_view
def units(ctx: AnonymousViewContext) -> list[Unit]:
    return list(ctx.db.unit.iter())


@sum_type
class Kind:
    Tool: str
    Other: None


@reducer
def spawn(ctx: ReducerContext, x: i32, y: i32) -> None:
    pass


@reducer
def tag(ctx: ReducerContext, kind: Kind) -> None:
    pass


@procedure
def roll(ctx: ProcedureContext, sides: u32) -> u32:
    return sides


@reducer
def level2(ctx: ReducerContext, n: u32) -> None:
    print("level", n)


@procedure
def broken(ctx: ProcedureContext) -> u32:
    raise ValueError("the dice fell off the table")
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("newcomer-server")).start()
    yield s
    s.stop()


@pytest.fixture()
def cli(tmp_path, live, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.setenv("SPACETIME_PY_CONFIG", str(tmp_path / "cli.json"))
    monkeypatch.setenv("SPACETIME_PY_SERVER", live.url)

    def run(*args):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def test_call_with_wrong_arguments_names_the_parameter_and_the_signature(cli, tmp_path):
    (tmp_path / "game.py").write_text(GAME)
    assert cli("publish", "game", "-p", str(tmp_path / "game.py")).exit_code == 0
    assert cli("call", "game", "spawn", "1", "2").exit_code == 0
    cases = {
        ("spawn", "1"): "error: invalid arguments for reducer spawn: spawn(x: I32, y: I32) takes 2 arguments, got 1",
        ("spawn", "1", "2", "3"): "spawn(x: I32, y: I32) takes 2 arguments, got 3",
        ("spawn", "a", "1"): "error: invalid arguments for reducer spawn: argument 'x' of spawn(x: I32, y: I32): "
                             "expected an integer, got 'a'",
        ("spawn", "1", "99999999999"): "argument 'y' of spawn(x: I32, y: I32): 99999999999 is out of range for I32",
        ("tag", '{"tol": "x"}'): "argument 'kind' of tag(kind: Kind): unknown variant 'tol' (expected one of tool, "
                                 "other)",
        ("roll",): "error: invalid arguments for procedure roll: roll(sides: U32) takes 1 argument, got 0",
    }
    for args, expected in cases.items():
        r = cli("call", "game", *args)
        assert r.exit_code == 1 and expected in r.output, (args, r.output)
        assert "Traceback" not in r.output and "line 1 column" not in r.output, r.output


def test_a_token_saved_for_a_server_that_restarted_with_a_new_key_is_replaced(cli, live, tmp_path):
    import json

    from client_sdk.http import SpacetimeHttp, normalize_server

    other = LiveServer(tmp_path / "other").start()  # another data dir: another signing key
    try:
        _, foreign = SpacetimeHttp(other.url).create_identity()
    finally:
        other.stop()
    url = normalize_server(live.url)
    cfg = tmp_path / "cli.json"
    cfg.write_text(json.dumps({"tokens": {url: foreign}}))
    (tmp_path / "game.py").write_text(GAME)
    r = cli("publish", "renewed", "-p", str(tmp_path / "game.py"))
    assert r.exit_code == 0, r.output
    assert f"note: {url} does not accept the token saved for it" in r.output
    saved = json.loads(cfg.read_text())["tokens"][url]
    assert saved != foreign
    r = cli("logs", "renewed")                       # the new identity owns the database it published
    assert r.exit_code == 0 and "note:" not in r.output, r.output


def test_dev_publishes_as_the_cli_identity_so_other_verbs_act_as_the_owner(tmp_path, monkeypatch):
    """`spacetime-py dev` in one terminal, `spacetime-py logs` in another: the database is the CLI identity's, and
    dev's fresh server (a new key) does not leave a stale token behind."""
    import json
    import threading
    import time

    from click.testing import CliRunner

    from client_sdk.http import SpacetimeHttp
    from harness.cli import main

    from .test_server_http_cli import _free_port

    cfg = tmp_path / "cli.json"
    monkeypatch.setenv("SPACETIME_PY_CONFIG", str(cfg))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cfg.write_text(json.dumps({"tokens": {url: "stale.token.from-an-earlier-dev-run"}}))
    (tmp_path / "game.py").write_text(GAME)
    seen: dict = {}

    def as_the_cli_user():
        deadline = time.time() + 30
        while time.time() < deadline and "logs" not in seen:
            try:
                token = json.loads(cfg.read_text())["tokens"][url]
                api = SpacetimeHttp(url, token=token)
                if api.ping() and api.resolve("devgame"):
                    seen["logs"] = api.logs("devgame")   # owner only
            except Exception as e:  # noqa: BLE001 - not up yet
                seen["last"] = repr(e)
                time.sleep(0.1)

    t = threading.Thread(target=as_the_cli_user, daemon=True)
    t.start()
    r = CliRunner().invoke(main, ["dev", str(tmp_path / "game.py"), "devgame", "--listen-addr", f"127.0.0.1:{port}",
                                  "--interval", "0.1", "--max-cycles", "30"], catch_exceptions=False)
    t.join(5)
    assert r.exit_code == 0 and "published devgame" in r.output, r.output
    assert "logs" in seen, seen
    assert any("Database initialized" in line.get("message", "") for line in seen["logs"])
    assert "note:" not in r.output


def test_query_builder_typos_list_the_columns_and_tables():
    from module_sdk.query import From

    frm = From({"order": ("order", {"id": "id", "amount": "amount", "status": "status"})})
    with pytest.raises(AttributeError) as e:
        frm.order.where(lambda o: o.amout > 100)
    assert str(e.value) == "table `order` has no column 'amout' (columns: id, amount, status)"
    with pytest.raises(AttributeError) as e:
        frm.orders  # noqa: B018
    assert str(e.value) == "no table with the accessor 'orders' (tables: order)"


def test_sync_client_typed_calls_block_and_a_procedure_called_as_a_reducer_says_so(cli, live, tmp_path):
    from client_sdk.errors import ClientError
    from client_sdk.sync import connect

    (tmp_path / "game.py").write_text(GAME)
    assert cli("publish", "syncgame", "-p", str(tmp_path / "game.py")).exit_code == 0
    with connect(live.url, "syncgame", timeout=10) as bare:
        with pytest.raises(ClientError, match=r"^cannot call reducer 'spawn': this connection has no module bindings"):
            bare.call("spawn", 1, 2)
    from client_sdk.codegen.schema_json import module_def_from_schema_json
    from client_sdk.http import SpacetimeHttp

    mdef = module_def_from_schema_json(SpacetimeHttp(live.url).schema("syncgame"))
    with connect(live.url, "syncgame", timeout=10, configure=lambda b: b.with_module(mdef)) as conn:
        with pytest.raises(ClientError) as e:
            conn.call("roll", 6)
        assert str(e.value) == "'roll' is a procedure, not a reducer: call it with call_procedure('roll', ...) " \
                               "(conn.procedures.roll(...))"
        with pytest.raises(ClientError, match=r"^no reducer 'spwn' in this module's bindings; did you mean 'spawn'"):
            conn.call("spwn", 1, 2)
        assert conn.call_procedure("roll", 6) == 6
        assert conn.procedures.roll(7) == 7                 # blocks and returns the value, as call_procedure
        event = conn.reducers.spawn(1, 2)                    # blocks until the reducer ran
        assert event.status == "committed", event
        with pytest.raises(AttributeError, match="'spawn' is a reducer, not a procedure"):
            conn.procedures.spawn  # noqa: B018


def test_call_by_the_python_name_of_a_function_the_server_renamed_says_why(cli, tmp_path):
    (tmp_path / "game.py").write_text(GAME)
    assert cli("publish", "renamed", "-p", str(tmp_path / "game.py")).exit_code == 0
    r = cli("call", "renamed", "level2", "5")                # published as level_2 (upstream's snake_case)
    assert r.exit_code == 1
    assert ("no reducer or procedure named 'level2'; did you mean 'level_2'? (database renamed); the server "
            "publishes level2 as level_2 (its snake_case policy), and clients call it that") in r.output
    assert cli("call", "renamed", "level_2", "5").exit_code == 0
    assert "level 5" in cli("logs", "renamed").output


def test_call_of_a_failing_procedure_points_at_the_log(cli, tmp_path):
    (tmp_path / "game.py").write_text(GAME)
    assert cli("publish", "broken", "-p", str(tmp_path / "game.py")).exit_code == 0
    r = cli("call", "broken", "broken")
    assert r.exit_code == 1
    assert "500: The module instance encountered a fatal error" in r.output      # upstream's answer, unchanged
    assert "the module's log has the reason: spacetime-py logs broken" in r.output
    assert "ValueError: the dice fell off the table" in cli("logs", "broken").output


def test_init_readme_publish_call_sql_commands_work_as_written(cli, tmp_path, monkeypatch):
    import shlex

    from module_sdk.scaffold import create_module_project

    create_module_project(tmp_path / "My_Game", "My_Game")
    monkeypatch.chdir(tmp_path / "My_Game")
    readme = (tmp_path / "My_Game" / "README.md").read_text()
    steps = [shlex.split(line.split("  #")[0]) for line in readme.splitlines()
             if line.startswith(("spacetime-py publish", "spacetime-py call", "spacetime-py sql"))]
    assert [s[1] for s in steps] == ["publish", "call", "sql"] and steps[0][2] == "my-game"
    for step in steps:
        r = cli(*step[1:])
        assert r.exit_code == 0, (step, r.output)
    assert '"Ada"' in r.output


def test_start_on_a_taken_port_says_so_in_one_line(tmp_path):
    import socket

    from click.testing import CliRunner

    from harness.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for verb in (["start", "--data-dir", str(tmp_path / "d")], ["dev", str(tmp_path)]):
            r = CliRunner().invoke(main, [*verb, "--listen-addr", f"127.0.0.1:{port}"], catch_exceptions=False)
            assert r.exit_code == 1
            assert r.output.strip() == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use; another "
                                        "server is running there (stop it, or choose another port with "
                                        "--listen-addr)"), r.output


def test_no_server_running_says_so_and_how_to_start_one(tmp_path, monkeypatch):
    import json
    import socket

    from click.testing import CliRunner

    from harness.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    cfg = tmp_path / "cli.json"
    monkeypatch.setenv("SPACETIME_PY_CONFIG", str(cfg))
    for saved in ({}, {"tokens": {url: "a.saved.token"}}):  # first contact (identity), and a later call
        cfg.write_text(json.dumps(saved))
        r = CliRunner().invoke(main, ["call", "--server", url, "game", "spawn", "1", "2"], catch_exceptions=False)
        assert r.exit_code == 1
        assert r.output.startswith(f"error: cannot reach {url}: [Errno 111] Connection refused; is a server running "
                                   "there? `spacetime-py start` starts one"), r.output
        assert "urlopen" not in r.output


def test_describe_lists_procedures_and_views_too(cli, tmp_path):
    (tmp_path / "game.py").write_text(GAME)
    assert cli("publish", "described", "-p", str(tmp_path / "game.py")).exit_code == 0
    lines = cli("describe", "described").output.splitlines()
    assert "reducer spawn(x: I32, y: I32)" in lines and "reducer level_2(n: U32)" in lines
    assert "procedure roll(sides: U32) -> U32" in lines and "procedure broken() -> U32" in lines
    assert "view units -> Array<Unit>  [anonymous]" in lines


def test_a_wrong_sum_payload_is_located_by_variant_name():
    from spacetime_core.sats import Option, f64, i64, product, sum_type, type_of
    from spacetime_core.sats.satsjson import SatsJsonError, value_from_json

    dims = product(type("Dims", (), {"__annotations__": {"width": f64, "depth": f64}}))
    category = sum_type(type("Category", (), {"__annotations__": {"Food": i64, "Furniture": dims}}))
    t = type_of(category)
    with pytest.raises(SatsJsonError) as e:
        value_from_json(t, {"Furniture": {"width": 1.0}}, None, "category")
    assert str(e.value) == "missing field 'depth' (at category.Furniture)"
    with pytest.raises(SatsJsonError) as e:
        value_from_json(type_of(Option[int]), {"some": "x"}, None, "note")
    assert str(e.value) == "expected an integer, got 'x' (at note.some)"


def test_publish_outside_a_module_folder_names_the_option(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("publish", "nothing-here")
    assert r.exit_code == 1
    assert f"{tmp_path}: no __init__.py, module.py, main.py or lib.py in this folder" in r.output
    assert "name another with -p PATH, or a .wasm with -b" in r.output


def test_generate_takes_the_module_source_with_p_and_refuses_a_py_as_wasm(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    (tmp_path / "game.py").write_text(GAME)
    r = CliRunner().invoke(main, ["generate", "-o", str(tmp_path / "out"), "--module-wasm", str(tmp_path / "game.py")])
    assert r.exit_code == 2
    assert "game.py is the module's source: pass it as -p/--module-path (it is built first)" in r.output
    r = CliRunner().invoke(main, ["generate", "-o", str(tmp_path / "out"), "-p", str(tmp_path / "game.py")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "def spawn(self, x: i32, y: i32" in (tmp_path / "out" / "reducers.py").read_text()


def test_a_401_for_someone_elses_database_keeps_the_saved_identity(cli, live, tmp_path):
    import json

    from client_sdk.http import SpacetimeHttp, normalize_server

    (tmp_path / "game.py").write_text(GAME)
    owner = SpacetimeHttp(live.url)
    _, owner.token = owner.create_identity()
    r = cli("build", str(tmp_path / "game.py"))
    assert r.exit_code == 0, r.output
    owner.publish((tmp_path / "target" / "game.wasm").read_bytes(), "someone-elses")
    cfg = tmp_path / "cli.json"
    assert cli("publish", "mine", "-p", str(tmp_path / "game.py")).exit_code == 0   # the CLI's own identity
    mine = json.loads(cfg.read_text())["tokens"][normalize_server(live.url)]
    r = cli("publish", "someone-elses", "-p", str(tmp_path / "game.py"))
    assert r.exit_code == 1 and "401" in r.output and "note:" not in r.output, r.output
    assert json.loads(cfg.read_text())["tokens"][normalize_server(live.url)] == mine


# What the real SpacetimeDB 2.8.3 server answered to an incompatible republish (captured with this CLI).
REAL_SERVER_REJECTION = ("Database update rejected: Errors occurred:\nChanging the type of column ticks in table stats "
                         "from U64 to U32 requires a manual migration\n\nAdding a column label to table stats requires "
                         "a default value annotation")


def test_an_incompatible_republish_names_delete_data_on_either_server(cli, tmp_path, monkeypatch):
    from client_sdk.http import HttpError, SpacetimeHttp

    v1 = tmp_path / "v1.py"
    v1.write_text("from module_sdk import primary_key, table, u32, u64\n\n@table\nclass Stats:\n"
                  "    id: u32 = primary_key()\n    ticks: u64\n")
    v2 = tmp_path / "v2.py"
    v2.write_text(v1.read_text().replace("ticks: u64", "ticks: u32"))
    assert cli("publish", "stats", "-p", str(v1)).exit_code == 0
    r = cli("publish", "stats", "-p", str(v2))                     # our server's own answer names the flag once
    assert r.exit_code == 1 and "column 'ticks' changed type from U64 to U32" in r.output
    assert "--delete-data" in r.output and "publish anyway" not in r.output

    def rejected(self, wasm, name, clear=False):
        raise HttpError(400, REAL_SERVER_REJECTION)

    monkeypatch.setattr(SpacetimeHttp, "publish", rejected)
    r = cli("publish", "stats", "-p", str(v2))
    assert r.exit_code == 1
    assert r.output.splitlines()[-2:] == [
        '(a column added to a table with data needs a default: `label: str = ""` or default(...))',
        "(to delete the data and publish anyway: spacetime-py publish stats --delete-data ...)"]


def test_a_visibility_filter_with_a_typo_is_refused_at_publish_as_on_the_real_server(cli, tmp_path):
    good = tmp_path / "chat.py"
    good.write_text("from module_sdk import Identity, client_visibility_filter, primary_key, table, u64\n\n"
                    "@table(public=True)\nclass Message:\n    id: u64 = primary_key(auto_inc=True)\n"
                    "    sender: Identity\n\n"
                    'client_visibility_filter("SELECT * FROM message WHERE sender = :sender")\n')
    bad = tmp_path / "chat_typo.py"
    bad.write_text(good.read_text().replace("WHERE sender", "WHERE sendr"))
    expected = ("400: Failed to create or update the database: failed to create row-level security: `SELECT * FROM "
                "message WHERE sendr = :sender`: `message` does not have a field `sendr`")
    r = cli("publish", "rls-typo", "-p", str(bad))                   # create
    assert r.exit_code == 1 and expected in r.output, r.output
    assert cli("publish", "rls-typo", "-p", str(good)).exit_code == 0
    for extra in ([], ["--delete-data", "-y"]):                       # update, and replace
        r = cli("publish", "rls-typo", "-p", str(bad), *extra)
        assert r.exit_code == 1 and expected in r.output, r.output
