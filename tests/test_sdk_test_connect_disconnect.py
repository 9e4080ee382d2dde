"""examples/sdk_test_connect_disconnect: upstream's connect/disconnect test module in Python, driven the way
upstream's Rust client `connect_disconnect_client` drives it (docs/compatibility.md has its results on both
servers): the lifecycle reducers record each connection and each disconnection.  (HTTP calls and SQL connect
too, on both servers, so these tests look only through WebSocket subscriptions.)"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.spacetime_module("../examples/sdk_test_connect_disconnect")]


def test_a_client_sees_its_connect_and_after_reconnecting_its_disconnect(spacetime_db):
    first = spacetime_db.connect(subscribe="SELECT * FROM connected")
    me, token = first.identity, first.token
    assert [r.identity for r in first.db.connected] == [me]
    first.close()
    with spacetime_db.connect(token=token, subscribe=["SELECT * FROM disconnected",
                                                      "SELECT * FROM connected"]) as again:
        assert again.identity == me
        assert [r.identity for r in again.db.disconnected] == [me]
        assert [r.identity for r in again.db.connected] == [me]  # tables are sets: the same row again is a no-op


def test_each_identity_gets_its_own_rows(spacetime_db):
    _, token = spacetime_db.new_identity()
    a = spacetime_db.connect()
    with spacetime_db.connect(token=token, subscribe="SELECT * FROM disconnected") as b:
        assert b.db.disconnected.count() == 0
        a.close()
        b.until(lambda: b.db.disconnected.count() == 1, timeout=10)
        assert [r.identity for r in b.db.disconnected] == [a.identity]


def test_an_http_call_connects_even_when_it_is_refused(spacetime_db):
    """As on the real server (its `/call` runs inside `with_connection`): a call naming a lifecycle reducer, or
    nothing at all, still opens and closes the caller's connection, so client_connected and
    client_disconnected run before the error is answered."""
    from client_sdk.http import HttpError

    def disconnects() -> int:
        return spacetime_db.sql("SELECT COUNT(*) AS n FROM disconnected")[0]["n"]

    before = disconnects()
    with pytest.raises(HttpError) as e:
        spacetime_db.call("identity_connected")
    assert (e.value.status, e.value.text) == (400, "can't directly call special OnConnect lifecycle reducer")
    assert disconnects() == before + 1
    _, token = spacetime_db.new_identity()  # a row per identity: the table is a set
    with pytest.raises(HttpError) as e:
        spacetime_db.call("no_such_function", token=token)
    assert (e.value.status, e.value.text) == (404, "No such procedure")
    assert disconnects() == before + 2
