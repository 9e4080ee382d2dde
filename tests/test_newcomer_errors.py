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
