"""examples/sdk_test_procedure: upstream's procedure test module in Python, driven the way upstream's Rust suite
`procedure-client` drives it (docs/compatibility.md has that client's results on both servers): procedure
return values, a failing procedure, transactions inside procedures, outbound HTTP and a scheduled procedure."""

from __future__ import annotations

import json

import pytest

from client_sdk.errors import ProcedureError

pytestmark = [pytest.mark.slow, pytest.mark.spacetime_module("../examples/sdk_test_procedure")]

DNS_ERROR = ("error sending request for url (http://foo.invalid/): client error (Connect): dns error: "
             "failed to lookup address information: ")


def test_procedures_return_typed_values(spacetime_db):
    with spacetime_db.connect() as conn:
        assert conn.call_procedure("return_primitive", 1, 2) == 3
        assert tuple(conn.call_procedure("return_struct", 1234, "foo")) == (1234, "foo")
        a, b = conn.call_procedure("return_enum_a", 1234), conn.call_procedure("return_enum_b", "foo")
        assert (a.tag, a.value) == (0, 1234) and (b.tag, b.value) == (1, "foo")  # ReturnEnum::A(u32), ::B(String)
    assert spacetime_db.call("return_primitive", 40, 2) == 42  # and over HTTP


def test_a_failing_procedure_fails_for_its_caller_and_logs_why(spacetime_db):
    with spacetime_db.connect() as conn:
        with pytest.raises(ProcedureError):
            conn.call_procedure("will_panic")
        assert conn.call_procedure("return_primitive", 1, 1) == 2  # the next call gets a working instance
    assert any("This procedure is expected to panic" in m for m in spacetime_db.log_messages())


def test_with_tx_commits_and_try_with_tx_rolls_back(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM my_table") as conn:
        inserted: list = []
        conn.db.my_table.on_insert(lambda _ctx, row: inserted.append(tuple(row.field)))  # ReturnStruct {a, b}
        conn.call_procedure("insert_with_tx_rollback")  # the module asserts it sees no row afterwards
        assert conn.db.my_table.count() == 0
        conn.call_procedure("insert_with_tx_commit")  # ... and here one
        conn.until(lambda: inserted, timeout=10)
        assert inserted == [(42, "magic")]


def test_procedure_reads_its_own_schema_over_http(spacetime_db):
    schema = json.loads(spacetime_db.call("read_my_schema", spacetime_db.url + "/"))
    procs = [e["Procedure"]["name"] for e in schema["misc_exports"] if "Procedure" in e]
    assert "read_my_schema" in procs and "sorted_uuids_insert" in procs


def test_failed_http_request_is_worded_as_upstream(spacetime_db):
    with spacetime_db.connect() as conn:
        error = conn.call_procedure("invalid_request")
    assert error.startswith(DNS_ERROR), error


def test_scheduled_procedure_runs_a_second_later(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM proc_inserts_into") as conn:
        conn.call("schedule_proc")
        [row, *_] = conn.until(lambda: list(conn.db.proc_inserts_into), timeout=10)
    assert (row.x, row.y) == (42, 24)
    elapsed_us = row.procedure_ts.micros - row.reducer_ts.micros
    assert 1_000_000 <= elapsed_us <= 2_000_000


def test_uuid_v7s_of_one_transaction_sort_in_insertion_order(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM pk_uuid") as conn:
        conn.call_procedure("sorted_uuids_insert")
        rows = conn.until(lambda: conn.db.pk_uuid.count() == 1000 and list(conn.db.pk_uuid), timeout=10)
    uuids = [r.u for r in rows]
    assert len(set(uuids)) == 1000
    assert {str(u)[14] for u in uuids} == {"7"}  # version nibble
    assert [r["u"] for r in spacetime_db.sql("SELECT u FROM pk_uuid")] == sorted(uuids)


def test_scheduled_procedure_in_the_host_fires_at_its_time_and_repeats(spacetime_module):
    """`schedule_proc` schedules with an interval (Rust's `Duration.into()`), so the row stays and fires again."""
    from harness.host import Database
    from spacetime_core.sats import Identity

    db = Database.create(spacetime_module.wasm, owner=Identity.from_bytes(bytes([9]) * 32), durability="none")
    try:
        out = db.call_reducer("schedule_proc")
        assert out.committed
        start = out.timestamp.micros
        assert db.scheduler.run_due(start + 500_000) == []  # not yet due
        [first] = db.scheduler.run_due(start + 1_500_000)  # due 1 s after the commit
        assert first.ok, first.error
        [second] = db.scheduler.run_due(start + 3_000_000)
        assert second.ok
        rows = db.row_dicts("proc_inserts_into")
        assert [(r["x"], r["y"]) for r in rows] == [(42, 24), (42, 24)]
        # the procedure runs at the time the scheduler fires it (never before its due time)
        assert sorted(r["procedure_ts"].micros - r["reducer_ts"].micros for r in rows) == [1_500_000, 3_000_000]
        assert len(db.rows("scheduled_proc_table")) == 1
    finally:
        db.close()


def test_http_call_of_a_procedure_logs_the_reducer_miss_as_upstream(spacetime_db):
    """The real server's `/call` tries a reducer of that name first and logs the miss at error level under the
    procedure's name, then runs the procedure; bad arguments add its invalid-arguments line."""
    from client_sdk.http import HttpError

    nonexistent = ('External attempt to call nonexistent reducer "return_primitive" failed. Have you run '
                   "`spacetime generate` recently?")
    assert spacetime_db.call("return_primitive", 1, 2) == 3
    assert {"level": "Error", "function": "return_primitive", "message": nonexistent}.items() <= \
        spacetime_db.logs()[-1].items()
    with pytest.raises(HttpError) as e:
        spacetime_db.call("return_primitive", "x", 2)
    assert e.value.status == 400
    assert spacetime_db.log_messages()[-2:] == [
        nonexistent, 'External attempt to call procedure "return_primitive" failed, invalid arguments.\n'
                     "This is likely due to a mismatched client schema, have you run `spacetime generate` recently?"]
