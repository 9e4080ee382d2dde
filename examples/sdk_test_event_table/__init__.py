"""Upstream's `modules/sdk-test-event-table` in Python: the module its Rust SDK suite `event-table-client` runs
against.

`test_event` is an event table: subscribers receive its rows as inserts of the transaction that wrote them,
and nothing is stored (a later transaction, or a new subscription, sees an empty table).
"""

from module_sdk import ReducerContext, reducer, table, u64


@table(accessor='test_event', public=True, event=True)
class TestEvent:
    name: str
    value: u64


@reducer
def emit_test_event(ctx: ReducerContext, name: str, value: u64) -> None:
    ctx.db.test_event.insert(TestEvent(name=name, value=value))


@reducer
def emit_multiple_test_events(ctx: ReducerContext) -> None:
    for name, value in (("a", 1), ("b", 2), ("c", 3)):
        ctx.db.test_event.insert(TestEvent(name=name, value=value))


@reducer
def noop(ctx: ReducerContext) -> None:
    """Does nothing: lets a client observe a later transaction."""
