"""Fan-out of committed transactions to many subscribers (harness/server/subscriptions.py, websocket.py).

* Clients with the same subscriptions share one computed update per commit (``_signatures``); the groups follow
  every subscribe, unsubscribe and disconnect, so nobody gets an update for a query it dropped or misses one
  for a query it added.
* A confirmed client's message that is not yet durable does not wake the event loop: the connection waits for
  the fsync with the executor, and the durability thread's wake-up is the one that sends it.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from harness.host import Database
from harness.server.executor import executor_for, stop_executor
from harness.server.subscriptions import attach
from harness.server.websocket import Connection
from spacetime_core.protocol import ReducerResult, TransactionUpdate, decode_server
from spacetime_core.sats import ConnectionId, Identity
from tests.test_server_ws_common import OWNER, bsatn_str, module_wasm


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    return module_wasm(tmp_path_factory.mktemp("fanmod"))


class _Client:
    """A subscriber as the manager sees it: what was pushed to it, decoded."""

    def __init__(self) -> None:
        self.identity = Identity.from_bytes(os.urandom(32))
        self.connection_id = ConnectionId.from_bytes(os.urandom(16))
        self.token = "t"
        self.got: list = []

    def push(self, body: bytes) -> None:
        self.got.append(decode_server(body))

    def take(self) -> list:
        out, self.got = self.got, []
        return out


def _names(msgs: list) -> dict[int, set[str]]:
    """Person names inserted per query set id, over the TransactionUpdates in ``msgs``."""
    out: dict[int, set[str]] = {}
    for m in msgs:
        if isinstance(m, ReducerResult):
            m = m.result.value.transaction_update
        if not isinstance(m, TransactionUpdate):
            continue
        for qs in m.query_sets:
            for tu in qs.tables:
                for rows in tu.rows:
                    for row in rows.value.inserts.rows():
                        n = int.from_bytes(row[4:8], "little")
                        out.setdefault(qs.query_set_id, set()).add(row[8:8 + n].decode())
    return out


def test_groups_follow_subscribe_unsubscribe_and_disconnect(wasm):
    db = Database.create(wasm, owner=OWNER)
    mgr = attach(db)
    all_q, only_b = "SELECT * FROM person", "SELECT * FROM person WHERE name = 'b'"
    same = [_Client() for _ in range(5)]  # one group: the same query in set 1
    other, late = _Client(), _Client()
    for c in [*same, other, late]:
        assert mgr.connect(c) is None
        c.take()
    for c in same:
        mgr.subscribe(c, 1, 1, [all_q])
    mgr.subscribe(other, 1, 2, [only_b])
    for c in [*same, other]:
        c.take()  # SubscribeApplied

    def add(name: str, caller: _Client | None = None) -> None:
        if caller is None:
            assert db.call_reducer("add", bsatn_str(name)).committed
        else:
            mgr.call_reducer(caller, 9, "add", bsatn_str(name))

    add("a")
    assert all(_names(c.take()) == {1: {"a"}} for c in same)
    assert other.take() == [] and late.take() == []  # `other`'s query does not see "a"; `late` has none
    add("b", caller=same[0])  # the caller's part rides in its ReducerResult, the others get an update
    r = same[0].take()
    assert len(r) == 1 and isinstance(r[0], ReducerResult) and _names(r) == {1: {"b"}}
    assert all(_names(c.take()) == {1: {"b"}} for c in same[1:])
    assert _names(other.take()) == {2: {"b"}}

    mgr.unsubscribe(same[1], 2, 1, False)  # leaves the group
    mgr.subscribe(late, 3, 5, [all_q, only_b])  # a new shape: set 5 with both queries
    mgr.subscribe(other, 4, 6, [all_q])  # `other` now holds two sets
    for c in (same[1], late, other):
        c.take()
    mgr.disconnect(same[2])
    same[2].take()
    add("b")
    assert same[1].take() == [] and same[2].take() == []
    assert all(_names(c.take()) == {1: {"b"}} for c in (same[0], *same[3:]))
    assert _names(late.take()) == {5: {"b"}}
    assert _names(other.take()) == {2: {"b"}, 6: {"b"}}
    add("c")
    assert _names(other.take()) == {6: {"c"}} and _names(late.take()) == {5: {"c"}}
    db.close()


class _CountingLoop:
    """Stands in for the event loop: counts the wake-ups other threads ask it for (and runs nothing)."""

    def __init__(self) -> None:
        self.calls: list = []

    def call_soon_threadsafe(self, fn, *args) -> None:
        self.calls.append((fn, args))


def test_a_confirmed_message_wakes_the_loop_once_after_its_fsync(wasm, tmp_path):
    db = Database.create(wasm, owner=OWNER, data_dir=tmp_path / "db", durability="group")
    gate = threading.Event()
    real_barrier = db.commitlog.commit_barrier
    db.commitlog.commit_barrier = lambda: (gate.wait(30), real_barrier())[1]
    ex = executor_for(db)
    loop = _CountingLoop()
    mk = lambda confirmed: Connection(OWNER, ConnectionId.from_bytes(os.urandom(16)), "t", "None",  # noqa: E731
                                      False, loop, db, ex, confirmed)  # type: ignore[arg-type]
    confirmed, fast = mk(True), mk(False)
    try:
        assert db.call_reducer("add", bsatn_str("x")).committed  # written; its fsync waits for the gate
        assert db.committer.durable_offset < db.written_offset

        def from_other_thread() -> None:  # the executor or durability side pushes, never the loop's thread
            confirmed.push(b"confirmed")
            fast.push(b"fast")

        t = threading.Thread(target=from_other_thread)
        t.start()
        t.join()
        # The unconfirmed client is woken at once; the confirmed one waits for the fsync without a wake-up.
        assert [args for _fn, args in loop.calls] == [()] and loop.calls[0][0] == fast.wake
        assert confirmed in ex._waiting
        loop.calls.clear()
        gate.set()
        assert db.committer.wait_durable(db.written_offset, 10)
        for _ in range(100):  # the listener runs right after the durable offset is published
            if loop.calls:
                break
            threading.Event().wait(0.01)
        assert len(loop.calls) == 1
        fn, (conns,) = loop.calls[0]
        assert conns == [confirmed]
        assert confirmed._take() == [b"confirmed"]  # what the wake-up sends: durable now
    finally:
        gate.set()
        stop_executor(db)
        db.close()


def test_fanout_over_websocket_to_many_confirmed_subscribers(wasm, tmp_path):
    """End to end: 30 confirmed subscribers of one query each get every update, once, in commit order."""
    from spacetime_core.protocol import Subscribe, SubscribeApplied
    from tests.test_server_ws_common import RawClient, ServerThread

    db = Database.create(wasm, owner=OWNER, data_dir=tmp_path / "db", durability="group")
    srv = ServerThread({"d": db}).start()

    async def go() -> None:
        subs = [await RawClient.connect(srv.ws_url("d", "compression=None")) for _ in range(30)]
        caller = await RawClient.connect(srv.ws_url("d", "compression=None"))
        for c in (*subs, caller):
            await c.recv()  # InitialConnection
        for c in subs:
            await c.send(Subscribe(1, 1, ["SELECT * FROM person"]))
        for c in subs:
            assert isinstance(await c.recv(), SubscribeApplied)
        for k in range(5):
            await caller.call(k, "add", bsatn_str(f"p{k}"))
        for k in range(5):
            r = await caller.recv()
            assert isinstance(r, ReducerResult) and r.request_id == k and r.result.tag == "Ok"
        for c in subs:
            got = [_names([await c.recv()]) for _ in range(5)]
            assert got == [{1: {f"p{k}"}} for k in range(5)]
        assert db.committer.durable_offset >= db.written_offset
        for c in (*subs, caller):
            await c.close()

    try:
        asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        srv.stop()
        db.close()
