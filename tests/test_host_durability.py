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


def _appender(log, committer, stop, n_threads=3):
    """Threads appending records (and notifying, as the database does) until `stop` is set."""
    import threading

    lock = threading.Lock()

    def run():
        while not stop.is_set():
            with lock:  # the database lock: one append at a time
                log.append(b"x" * 40)
                committer.notify()
            time.sleep(0)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    return threads


def test_a_lone_transaction_is_not_held_by_the_commit_delay(tmp_path):
    from harness.commitlog import CommitLog
    from harness.host.durability import GroupCommitter

    log = CommitLog(tmp_path / "log", durability="group")
    committer = GroupCommitter(log, max_delay=60.0)  # a delay would make every wait below time out
    for _ in range(20):  # one caller, one transaction at a time: nothing arrives during an fsync
        offset = log.append(b"tx")
        committer.notify()
        assert committer.wait_durable(offset, timeout=10)
    assert committer.delayed == 0 and committer.batches == 20
    committer.stop()
    log.close()


def test_under_concurrent_load_the_commit_delay_batches_fsyncs(tmp_path):
    import threading

    from harness.commitlog import CommitLog
    from harness.host.durability import GroupCommitter

    log = CommitLog(tmp_path / "log", durability="group")
    committer = GroupCommitter(log, max_delay=0.05, batch_target=1 << 30)
    stop = threading.Event()
    t0 = time.monotonic()
    threads = _appender(log, committer, stop)
    time.sleep(0.6)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert committer.wait_durable(log.last_offset, timeout=10)  # everything written becomes durable
    # Busy: a delayed fsync starts >= 50 ms after the previous one; an undelayed one only follows a quiet fsync.
    assert committer.delayed >= 1
    assert committer.batches <= 2 * elapsed / 0.05 + 3, (committer.batches, log.next_offset)
    assert log.next_offset > 10 * committer.batches  # many transactions per fsync
    committer.stop()
    log.close()


def test_enough_waiting_transactions_cut_the_commit_delay_short(tmp_path):
    import threading

    from harness.commitlog import CommitLog
    from harness.host.durability import GroupCommitter

    log = CommitLog(tmp_path / "log", durability="group")
    committer = GroupCommitter(log, max_delay=60.0, batch_target=8)
    stop = threading.Event()
    threads = _appender(log, committer, stop)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert committer.delayed >= 2  # it did delay, and the batch target ended the 60 s delays
    assert committer.batches >= 3 and committer.durable_offset > 8
    # The last batch may be smaller than the target: it waits out the delay, so stop() cuts it short.
    stopper = threading.Thread(target=committer.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive(), "stop() waited for the commit delay"
    log.close()
    reopened = CommitLog(tmp_path / "log", durability="group")
    assert reopened.durable_offset == log.last_offset
    reopened.close()


def test_a_lone_commit_fsyncs_on_its_own_thread_without_waking_the_durability_thread(tmp_path):
    import threading

    from harness.commitlog import CommitLog
    from harness.host.durability import GroupCommitter, deferred_notify

    log = CommitLog(tmp_path / "log", durability="group")
    committer = GroupCommitter(log, max_delay=60.0)
    seen: list[tuple[int, str]] = []
    committer.add_listener(lambda off: seen.append((off, threading.current_thread().name)))
    real_barrier = log.commit_barrier
    barrier_threads: list[str] = []

    def barrier():
        barrier_threads.append(threading.current_thread().name)
        return real_barrier()

    log.commit_barrier = barrier
    for _ in range(5):
        with deferred_notify() as pending:
            offset = log.append(b"tx")
            committer.notify()
            assert pending == {committer} and committer.durable_offset < offset  # written, not yet fsynced
            assert committer.sync_inline()
            assert committer.durable_offset == offset  # fsynced and published before sync_inline returned
        assert seen[-1] == (offset, threading.current_thread().name)
    assert committer.inline == committer.batches == 5
    assert set(barrier_threads) == {threading.current_thread().name}  # the durability thread never fsynced
    committer.stop()
    log.close()
    reopened = CommitLog(tmp_path / "log", durability="group")
    assert reopened.durable_offset == offset
    reopened.close()


def test_under_load_a_committer_declines_to_fsync_inline_and_the_deferred_notify_wakes_its_thread(tmp_path):
    from harness.commitlog import CommitLog
    from harness.host.durability import GroupCommitter, deferred_notify

    log = CommitLog(tmp_path / "log", durability="group")
    committer = GroupCommitter(log, max_delay=0.001)
    committer.note_load()  # as when transactions arrived during the last fsync
    with deferred_notify():
        offset = log.append(b"tx")
        committer.notify()
        assert not committer.sync_inline()  # load: the durability thread batches (after its delay)
    # Leaving the block handed the fsync to the durability thread.
    assert committer.wait_durable(offset, timeout=10)
    assert committer.inline == 0 and committer.batches == 1
    committer.stop()
    log.close()


def test_a_failed_inline_fsync_is_never_reported_durable(tmp_path):
    from harness.commitlog import CommitLog
    from harness.host.durability import GroupCommitter, deferred_notify

    log = CommitLog(tmp_path / "log", durability="group")
    committer = GroupCommitter(log)

    def broken_barrier():
        raise OSError(5, "Input/output error")

    log.commit_barrier = broken_barrier
    with deferred_notify():
        offset = log.append(b"tx")
        committer.notify()
        committer.sync_inline()
    assert committer.error is not None and committer.durable_offset < offset
    assert not committer.wait_durable(offset, timeout=1)
    committer.stop()
