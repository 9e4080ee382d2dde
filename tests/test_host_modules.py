"""Our own Python modules (built with module_sdk.build) running in the harness host."""

from __future__ import annotations

import time

import pytest

from harness.host import Database
from module_sdk.build import build
from spacetime_core.sats import ConnectionId, Identity, Timestamp

pytestmark = pytest.mark.slow
OWNER = Identity.from_bytes(bytes(range(32)))
ALICE = Identity.from_bytes(bytes([7] * 32))
CONN = ConnectionId.from_bytes(bytes([1] * 16))


@pytest.fixture(scope="module")
def quickstart_wasm(tmp_path_factory):
    return build("examples/quickstart", tmp_path_factory.mktemp("qs") / "qs.wasm").output.read_bytes()


@pytest.fixture(scope="module")
def reminders_wasm(tmp_path_factory):
    return build("examples/reminders", tmp_path_factory.mktemp("rem") / "rem.wasm").output.read_bytes()


def test_quickstart_chat_flow(quickstart_wasm):
    db = Database.create(quickstart_wasm, owner=OWNER)
    assert {t.name: t.public for t in db.mdef.tables} == {"user": True, "message": True}
    assert db.client_connected(ALICE, CONN).committed
    assert db.row_dicts("user") == [{"identity": ALICE, "name": None, "online": True}]
    assert db.call_reducer("set_name", ["Alice"], sender=ALICE).committed
    out = db.call_reducer("send_message", ["hello"], sender=ALICE, timestamp=Timestamp(1_700_000_000_000_000))
    assert out.committed
    assert db.row_dicts("message") == [{"sender": ALICE, "sent": Timestamp(1_700_000_000_000_000), "text": "hello"}]
    assert db.client_disconnected(ALICE, CONN).committed
    assert db.row_dicts("user")[0]["online"] is False


def test_sender_error_rolls_back_and_reaches_the_caller(quickstart_wasm):
    db = Database.create(quickstart_wasm, owner=OWNER)
    out = db.call_reducer("set_name", ["Bob"], sender=ALICE)  # not connected: unknown user
    assert out.status == "failed" and out.error == "Cannot set name for unknown user"
    out = db.call_reducer("send_message", [""], sender=ALICE)
    assert out.status == "failed" and out.error == "Messages must not be empty"
    assert db.rows("message") == []
    assert db.call_reducer("send_message", ["after an error"], sender=ALICE).committed


def test_logs_carry_level_file_and_line(quickstart_wasm):
    db = Database.create(quickstart_wasm, owner=OWNER)
    db.client_connected(ALICE, CONN)
    db.call_reducer("set_name", ["Alice"], sender=ALICE)
    rec = [r for r in db.logs() if "sets name to Alice" in r.message][0]
    assert rec.level_name == "info"
    assert rec.filename == "quickstart/__init__.py" and rec.line > 0
    assert rec.function == "set_name"


def test_state_survives_reopen(quickstart_wasm, tmp_path):
    db = Database.create(quickstart_wasm, owner=OWNER, data_dir=tmp_path / "qs")
    db.client_connected(ALICE, CONN)
    for i in range(5):
        assert db.call_reducer("send_message", [f"m{i}"], sender=ALICE).committed
    before = sorted(db.rows("message"), key=repr)
    db.close()
    again = Database.open(tmp_path / "qs")
    assert sorted(again.rows("message"), key=repr) == before
    assert again.row_dicts("user")[0]["identity"] == ALICE


def test_init_runs_on_create_and_time_schedules_fire_once(reminders_wasm):
    db = Database.create(reminders_wasm, owner=OWNER)
    assert any(r.message == "reminders module initialized" for r in db.logs())
    t0 = Timestamp(1_800_000_000_000_000)
    assert db.call_reducer("remind_me", ["tea", 50], timestamp=t0).committed
    assert len(db.rows("reminder")) == 1
    assert db.scheduler.run_due(now=t0.micros + 10_000) == []  # not yet due
    fired = db.scheduler.run_due(now=t0.micros + 60_000)
    assert [o.reducer for o in fired] == ["remind"] and fired[0].committed
    assert [r["what"] for r in db.row_dicts("fired")] == ["tea"]
    assert db.rows("reminder") == []  # the Time row was deleted with the call
    assert db.scheduler.run_due(now=t0.micros + 10_000_000) == []


def test_interval_schedules_repeat_until_the_row_is_deleted(reminders_wasm):
    db = Database.create(reminders_wasm, owner=OWNER)
    base = Timestamp(int(time.time() * 1e6))
    assert db.call_reducer("start_heartbeat", [100], timestamp=base).committed
    due = db.scheduler.next_due()
    for k in range(3):
        assert [o.reducer for o in db.scheduler.run_due(now=due + k * 100_000)] == ["heartbeat"]
    assert len(db.rows("fired")) == 3 and len(db.rows("heartbeat")) == 1
    assert db.call_reducer("stop_heartbeat").committed
    assert db.scheduler.next_due() is None


def test_schedules_survive_restart(reminders_wasm, tmp_path):
    db = Database.create(reminders_wasm, owner=OWNER, data_dir=tmp_path / "r")
    t0 = Timestamp(1_800_000_000_000_000)
    db.call_reducer("remind_me", ["later", 1000], timestamp=t0)
    db.close()
    again = Database.open(tmp_path / "r")
    fired = again.scheduler.run_due(now=t0.micros + 2_000_000)
    assert [o.reducer for o in fired] == ["remind"]
    assert [r["what"] for r in again.row_dicts("fired")] == ["later"]
