"""Mistakes a new module author makes, and the message each one gets: the build (or the failing call) names the
user's file and line and says what to write instead, with no SDK internals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from module_sdk.build import BuildError, build

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


def run_calls(tmp: Path, text: str, *calls: tuple[str, list]) -> list:
    """Build `text`, create a database in the in-process host and make each call; the outcomes."""
    import os

    from harness.host import Database
    from spacetime_core.sats import Identity

    src = tmp / "mod.py"
    src.write_text(textwrap.dedent(text))
    owner = Identity.from_bytes(os.urandom(32))
    db = Database.create(build(src, tmp / "mod.wasm").output.read_bytes(), owner=owner)
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
