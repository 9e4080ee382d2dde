"""Crash recovery: a writer killed with SIGKILL loses no acknowledged transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import wasmtime as wt

from harness.host import Database
from spacetime_core.sats import Identity
from tests.test_host_wat import WAT

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))

WRITER = textwrap.dedent("""
    import sys
    from harness.host import Database
    db = Database.open(sys.argv[1])
    i = int(sys.argv[2])
    while True:
        out = db.call_reducer("insert_counter", [i, i * 10])
        assert out.committed, out.error
        print(i, flush=True)   # acknowledged: the commit log fsynced it before call_reducer returned
        i += 1
""")


def test_reopen_restores_committed_state_exactly(tmp_path):
    db = Database.create(wt.wat2wasm(WAT), owner=OWNER, data_dir=tmp_path / "db")
    for i in range(20):
        assert db.call_reducer("insert_counter", [i, i]).committed
    assert db.call_reducer("fail").status == "failed"
    before = sorted(db.rows("counter"))
    db.close()
    again = Database.open(tmp_path / "db")
    assert sorted(again.rows("counter")) == before
    assert again.call_reducer("insert_counter", [100, 1]).committed


def test_sigkill_during_sustained_writes_loses_no_acknowledged_transaction(tmp_path):
    Database.create(wt.wat2wasm(WAT), owner=OWNER, data_dir=tmp_path / "db").close()
    acknowledged: list[int] = []
    start = 0
    for _round in range(2):  # kill, recover, write more, kill again
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "db"), str(start)],
                                stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
        deadline = time.time() + 20
        got = []
        while len(got) < 40 and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            got.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert len(got) >= 40, "writer did not get going"
        acknowledged += got
        db = Database.open(tmp_path / "db")
        keys = {k for k, _ in db.rows("counter")}
        missing = [k for k in acknowledged if k not in keys]
        assert not missing, f"acknowledged transactions lost: {missing[:5]}"
        assert all(n == k * 10 for k, n in db.rows("counter"))
        start = max(keys) + 1
        db.close()


def test_group_commit_batches_fsyncs_and_reports_durable_offsets(tmp_path):
    db = Database.create(wt.wat2wasm(WAT), owner=OWNER, data_dir=tmp_path / "db", durability="group")
    offsets = [db.call_reducer("insert_counter", [i, i]).tx_offset for i in range(200)]
    assert offsets == sorted(offsets) and offsets[-1] == db.written_offset
    assert db.wait_durable(offsets[-1], timeout=10)
    assert db.committer.durable_offset >= offsets[-1]
    assert 1 <= db.committer.batches <= 200  # one fsync per batch, never more than one per transaction
    db.close()
    assert len(Database.open(tmp_path / "db").rows("counter")) == 200


def test_a_failed_fsync_is_never_reported_durable(tmp_path):
    db = Database.create(wt.wat2wasm(WAT), owner=OWNER, data_dir=tmp_path / "db", durability="group")

    def broken_barrier():
        raise OSError(5, "Input/output error")

    db.commitlog.commit_barrier = broken_barrier
    out = db.call_reducer("insert_counter", [1, 1])
    assert out.committed
    assert not db.wait_durable(out.tx_offset, timeout=10)
    assert db.committer.error is not None
    db.close()
