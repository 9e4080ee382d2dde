"""examples/sdk_test_procedure_concurrency: upstream's procedure-concurrency test module in Python, driven the way
upstream's Rust suite `procedure-concurrency-client` drives it (docs/compatibility.md has that client's results
on both servers): a procedure waiting between two transactions lets reducers commit in between, and a sleeping
scheduled procedure holds the scheduler.  Also: procedures run concurrently with each other, up to the
`procedure_instances` limit."""

from __future__ import annotations

import threading
import time

import pytest

from harness.host import Database
from harness.limits import LIMITS
from spacetime_core.sats import Identity

pytestmark = [pytest.mark.slow, pytest.mark.spacetime_module("../examples/sdk_test_procedure_concurrency")]

SUBSCRIBE = "SELECT * FROM procedure_concurrency_row"


def contexts(conn) -> list[str]:
    """The rows' insertion contexts, in insertion order."""
    return [r.insertion_context for r in sorted(conn.db.procedure_concurrency_row, key=lambda r: r.insertion_order)]


def in_background(fn, *args) -> threading.Thread:
    errors: list = []

    def run():
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised by join_ok
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.errors = errors
    t.start()
    return t


def join_ok(t: threading.Thread) -> None:
    t.join(30)
    assert not t.is_alive(), "the procedure call did not return"
    if t.errors:
        raise t.errors[0]


def test_a_reducer_of_another_client_commits_while_a_procedure_waits(spacetime_db):
    with spacetime_db.connect(subscribe=SUBSCRIBE) as proc_conn, spacetime_db.connect(subscribe=SUBSCRIBE) as other:
        call = in_background(proc_conn.call_procedure, "procedure_sleep_between_inserts")
        other.until(lambda: contexts(other) == ["procedure_before"], timeout=10)
        other.call("insert_reducer_row")
        join_ok(call)
        for conn in (proc_conn, other):
            conn.until(lambda c=conn: len(contexts(c)) == 3, timeout=10)
            assert contexts(conn) == ["procedure_before", "reducer", "procedure_after"]


def test_the_same_client_can_call_a_reducer_while_its_procedure_waits(spacetime_db):
    with spacetime_db.connect(subscribe=SUBSCRIBE) as conn:
        call = in_background(conn.call_procedure, "procedure_sleep_between_inserts")
        conn.until(lambda: contexts(conn) == ["procedure_before"], timeout=10)
        conn.call("insert_reducer_row")
        join_ok(call)
        conn.until(lambda: len(contexts(conn)) == 3, timeout=10)
        assert contexts(conn) == ["procedure_before", "reducer", "procedure_after"]


def test_a_scheduled_reducer_runs_while_a_procedure_waits(spacetime_db):
    with spacetime_db.connect(subscribe=SUBSCRIBE) as conn:
        conn.call_procedure("procedure_schedule_reducer_between_inserts")
        conn.until(lambda: len(contexts(conn)) == 3, timeout=10)
        assert contexts(conn) == ["procedure_before", "scheduled_reducer", "procedure_after"]


def test_a_sleeping_scheduled_procedure_holds_the_scheduler(spacetime_db):
    """As upstream (a behaviour it means to change): the reducer scheduled 2 s later runs only after the
    scheduled procedure that sleeps 10 s has returned."""
    with spacetime_db.connect(subscribe=SUBSCRIBE) as conn:
        conn.call("schedule_procedure_then_reducer")
        conn.until(lambda: len(contexts(conn)) == 3, timeout=30)
        assert contexts(conn) == ["scheduled_procedure_before", "scheduled_procedure_after", "scheduled_reducer"]
    rows = spacetime_db.sql("SELECT * FROM scheduled_procedure_row")
    assert rows == []  # a one-shot row is deleted (before its procedure runs)


# ------------------------------------------------------------------ procedures run concurrently (harness fix)


def before_rows(db: Database) -> int:
    return sum(1 for r in db.row_dicts("procedure_concurrency_row") if r["insertion_context"] == "procedure_before")


def wait_for(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def host_db(spacetime_module, monkeypatch):
    def make(instances: int) -> Database:
        monkeypatch.setattr(LIMITS, "procedure_instances", instances)
        return Database.create(spacetime_module.wasm, owner=Identity.from_bytes(bytes([7]) * 32), durability="none")

    made: list[Database] = []
    yield lambda n: made.append(make(n)) or made[-1]
    for d in made:
        d.close()


def test_two_procedures_wait_at_the_same_time(host_db):
    db = host_db(4)
    calls = [in_background(db.call_procedure, "procedure_sleep_between_inserts") for _ in range(2)]
    assert wait_for(lambda: before_rows(db) == 2), "the second procedure did not start while the first waited"
    assert db.call_reducer("insert_reducer_row").committed  # both see it and finish
    for c in calls:
        join_ok(c)
    assert sorted(r["insertion_context"] for r in db.row_dicts("procedure_concurrency_row")) == [
        "procedure_after", "procedure_after", "procedure_before", "procedure_before", "reducer"]


def test_procedure_instances_limits_how_many_run_at_once(host_db):
    db = host_db(1)
    first = in_background(db.call_procedure, "procedure_sleep_between_inserts")
    assert wait_for(lambda: before_rows(db) == 1)
    second = in_background(db.call_procedure, "procedure_sleep_between_inserts")
    assert not wait_for(lambda: before_rows(db) == 2, timeout=0.5)  # waits for the only instance
    assert db.procedures_running == 1
    assert db.call_reducer("insert_reducer_row").committed
    join_ok(first)
    join_ok(second)  # then ran, found the reducer's row at once
    assert before_rows(db) == 2 and db.procedures_running == 0
