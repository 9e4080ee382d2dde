"""examples/sdk_test_event_table: upstream's event-table test module in Python, driven the way upstream's Rust
suite `event-table-client` drives it (docs/compatibility.md has that client's results on both servers): event
rows reach subscribers as inserts of their transaction and are never stored."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.spacetime_module("../examples/sdk_test_event_table")]


def recorder(conn) -> list:
    seen: list = []
    conn.db.test_event.on_insert(lambda ctx, row: seen.append((row.name, row.value, conn.db.test_event.count())))
    return seen


def test_an_event_arrives_as_an_insert_and_is_not_cached(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM test_event") as conn:
        assert conn.db.test_event.count() == 0
        seen = recorder(conn)
        conn.call("emit_test_event", "hello", 42)
        conn.until(lambda: seen, timeout=10)
        assert seen == [("hello", 42, 0)]  # count() inside the callback: event rows are not cached
        assert list(conn.db.test_event) == []


def test_every_event_of_one_transaction_arrives(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM test_event") as conn:
        seen = recorder(conn)
        conn.call("emit_multiple_test_events")
        conn.until(lambda: len(seen) == 3, timeout=10)
        assert [(n, v) for n, v, _ in seen] == [("a", 1), ("b", 2), ("c", 3)]


def test_events_do_not_persist(spacetime_db):
    with spacetime_db.connect(subscribe="SELECT * FROM test_event") as conn:
        seen = recorder(conn)
        conn.call("emit_test_event", "hello", 42)
        conn.call("noop")  # a later transaction brings no stale event
        assert [(n, v) for n, v, _ in seen] == [("hello", 42)]
    with spacetime_db.connect(subscribe="SELECT * FROM test_event") as late:  # nothing stored for newcomers
        assert late.db.test_event.count() == 0
