"""`spacetime-py replay`: a committed transaction re-run on the state before it (wasm or the module's source run
natively), with its logs, the original inputs from the commit record, and a check of its writes; the data dir
is never changed; what cannot be replayed is said plainly."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.commitlog.record import TxRecord
from harness.host import Database
from harness.host.replay import ReplayError, find_database_dir, replay_transaction
from spacetime_core.sats import Identity

pytestmark = pytest.mark.slow

SOURCE = """\
from module_sdk import ReducerContext, log, reducer, table, u32


@table(public=True)
class Counter:
    n: u32


@reducer
def bump(ctx: ReducerContext, by: u32) -> None:
    total = sum(c.n for c in ctx.db.counter.iter()) + by
    log.info(f"total {total}")
    ctx.db.counter.insert(Counter(n=total))
"""


def tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    from module_sdk.build import build

    tmp = tmp_path_factory.mktemp("replay")
    (tmp / "counter").mkdir()
    (tmp / "counter" / "__init__.py").write_text(SOURCE)
    wasm = build(tmp / "counter", tmp / "counter.wasm").output.read_bytes()
    owner = Identity.from_bytes(bytes(range(32)))
    db = Database.create(wasm, owner=owner, data_dir=tmp / "db")
    offsets = [db.call_reducer("bump", [by], sender=owner).tx_offset for by in (1, 2, 3)]
    db.close()
    return tmp, offsets, owner


def test_replay_runs_the_call_on_the_state_before_it_and_changes_nothing(history):
    tmp, (t0, t1, t2), owner = history
    before = tree(tmp / "db")
    res = replay_transaction(tmp / "db", t1)
    assert (res.reducer, res.args, res.status, res.same_writes) == ("bump", (2,), "committed", True)
    assert res.caller == owner.to_hex()
    assert [r.message for r in res.logs] == ["total 3"]  # 1 (tx 0) + 2: the state before tx 1, not after tx 2
    assert tree(tmp / "db") == before
    assert TxRecord.decode(b"\x01" + bytes(16) + bytes(4) + bytes(12)).inputs == b""  # version-1 records still read


def test_native_replay_of_edited_source_gives_the_exception_with_the_users_frame(history, tmp_path):
    tmp, (t0, t1, t2), _ = history
    edited = tmp_path / "counter"
    edited.mkdir()
    (edited / "__init__.py").write_text(SOURCE.replace('    log.info(f"total {total}")\n',
                                                       '    log.info(f"total {total}")\n'
                                                       '    if by == 2:\n        raise ValueError("boom")\n'))
    res = replay_transaction(tmp / "db", t1, native=edited)
    assert res.status == "failed" and "ValueError: boom" in res.error and not res.same_writes
    tb = res.exception.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_filename == str(edited / "__init__.py") and tb.tb_lineno == 14
    assert [r.message for r in res.logs if r.message.startswith("total")] == ["total 3"]


def test_replay_cli_and_what_cannot_be_replayed(history):
    tmp, (t0, t1, t2), _ = history
    runner = CliRunner()
    r = runner.invoke(main, ["replay", "--data-dir", str(tmp / "db"), "--offset", str(t2)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "total 7" in r.output  # rows 1 and 3 before it, + 3 and "bump(3,)" in r.output and "committed" in r.output
    assert "writes: same as recorded" in r.output
    r = runner.invoke(main, ["replay", "--data-dir", str(tmp / "db"), "--offset", "99"])
    assert r.exit_code == 1 and "no transaction 99" in r.output and "Traceback" not in r.output
    with pytest.raises(ReplayError, match="neither a database's data dir nor a server data dir"):
        find_database_dir(tmp, "x")
    (tmp / "srv" / "databases").mkdir(parents=True)
    (tmp / "srv" / "registry.json").write_text('{"databases": {"ab12": {"names": ["game"]}}}')
    assert find_database_dir(tmp / "srv", "game") == tmp / "srv" / "databases" / "ab12"
    with pytest.raises(ReplayError, match=r"no database 'gmae' .*\(databases: game\)"):
        find_database_dir(tmp / "srv", "gmae")


