"""examples/keynote (upstream's keynote-2 transfer module) built to wasm and run in the host."""

from __future__ import annotations

import pytest

from harness.host import Database
from module_sdk.build import build
from spacetime_core.sats import Identity

OWNER = Identity.from_hex("11" * 32)


@pytest.fixture(scope="module")
def keynote_wasm(tmp_path_factory):
    return build("examples/keynote", tmp_path_factory.mktemp("kn") / "keynote.wasm").output.read_bytes()


def _balances(db: Database) -> dict[int, int]:
    return dict(db.rows("accounts"))


def test_schema_matches_upstream(keynote_wasm):
    db = Database.create(keynote_wasm, owner=OWNER)
    t = db.mdef.table("accounts")
    assert t.column_names == ("id", "balance") or list(t.column_names) == ["id", "balance"]
    assert t.public
    assert [r.name for r in db.mdef.reducers if r.lifecycle is None] == ["seed", "transfer"]


def test_seed_resets_and_transfer_moves_money(keynote_wasm):
    db = Database.create(keynote_wasm, owner=OWNER)
    assert db.call_reducer("seed", [3, 50]).committed
    assert db.call_reducer("transfer", [0, 2, 20]).committed
    assert _balances(db) == {0: 30, 1: 50, 2: 70}
    assert db.call_reducer("seed", [2, 7]).committed  # seed deletes what was there
    assert _balances(db) == {0: 7, 1: 7}


@pytest.mark.parametrize(("args", "error"), [
    ([0, 1, 11], "insufficient_funds"),
    ([0, 5, 1], "account_missing"),
    ([5, 0, 1], "account_missing"),
    ([1, 1, 1], "same_account"),
    ([0, 1, 0], "non_positive_amount"),
    ([0, 1, -3], "non_positive_amount"),
])
def test_failed_transfers_roll_back(keynote_wasm, args, error):
    db = Database.create(keynote_wasm, owner=OWNER)
    db.call_reducer("seed", [2, 10])
    out = db.call_reducer("transfer", args)
    assert out.status == "failed" and out.error == error
    assert _balances(db) == {0: 10, 1: 10}


def test_transfers_conserve_money_and_survive_reopen(keynote_wasm, tmp_path):
    db = Database.create(keynote_wasm, owner=OWNER, data_dir=tmp_path / "kn")
    db.call_reducer("seed", [10, 100])
    ok = 0
    for i in range(60):
        ok += db.call_reducer("transfer", [i % 10, (i * 7 + 3) % 10, 5 + (i * 37) % 150]).committed
    assert 0 < ok < 60  # some transfers overdraw and fail
    before = _balances(db)
    assert sum(before.values()) == 1000
    db.close()
    assert _balances(Database.open(tmp_path / "kn")) == before
