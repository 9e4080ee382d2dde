"""Subscriptions: a builder for query sets, and the handle of one applied set.

    handle = await conn.subscription_builder().on_applied(cb).on_error(cb).subscribe(["SELECT * FROM user"])
    await handle.unsubscribe()

Each `subscribe` call is one query set (one `Subscribe` message with its own `query_set_id`). Rows matched by
several sets are reference-counted in the cache. After a reconnect every set that had not ended is sent
again and the cache is brought up to date by diffing (client_sdk.cache.ClientCache.begin_resync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from .errors import ConnectionClosedError, SubscriptionFailedError

if TYPE_CHECKING:
    from .connection import DbConnection

PENDING, ACTIVE, ENDING, ENDED = "pending", "active", "ending", "ended"


class SubscriptionHandle:
    """One query set. Await it (or `applied()`) to wait until the server has sent its rows."""

    def __init__(self, conn: DbConnection, query_set_id: int, queries: list[str],
                 on_applied: list[Callable[[Any], Any]], on_error: list[Callable[[Any, Exception], Any]]):
        self.conn = conn
        self.query_set_id = query_set_id
        self.queries = queries
        self.state = PENDING
        self.error: Exception | None = None
        self._on_applied = on_applied
        self._on_error = on_error
        self._on_end: list[Callable[[Any], Any]] = []
        loop = asyncio.get_running_loop()
        self._applied: asyncio.Future[SubscriptionHandle] = loop.create_future()
        self._ended: asyncio.Future[SubscriptionHandle] = loop.create_future()
        for f in (self._applied, self._ended):
            f.add_done_callback(_consume)
        self.resyncing = False  # re-sent after a reconnect, SubscribeApplied not seen yet

    def __repr__(self) -> str:
        return f"<SubscriptionHandle {self.query_set_id} {self.state} {self.queries!r}>"

    @property
    def is_active(self) -> bool:
        return self.state == ACTIVE

    @property
    def is_ended(self) -> bool:
        return self.state == ENDED

    async def applied(self, timeout: float | None = None) -> SubscriptionHandle:
        """Wait for SubscribeApplied; raises SubscriptionFailedError if refused, TimeoutError after `timeout`
        (default: the connection's request timeout)."""
        t = self.conn._timeout(timeout)
        async with asyncio.timeout(t):
            return await asyncio.shield(self._applied)

    def __await__(self) -> Generator[Any, None, SubscriptionHandle]:
        return self.applied().__await__()

    def unsubscribe(self, timeout: float | None = None) -> asyncio.Task[SubscriptionHandle]:
        """Send Unsubscribe (SendDroppedRows); the task finishes when UnsubscribeApplied has removed the rows."""
        return _task(self.conn._unsubscribe(self, timeout))

    def unsubscribe_then(self, on_end: Callable[[Any], Any], timeout: float | None = None) -> asyncio.Task:
        """Unsubscribe and call `on_end(ctx)` once the set's rows are gone."""
        self._on_end.append(on_end)
        return self.unsubscribe(timeout)

    async def ended(self, timeout: float | None = None) -> SubscriptionHandle:
        async with asyncio.timeout(self.conn._timeout(timeout)):
            return await asyncio.shield(self._ended)

    # -- called by the connection
    def _set_applied(self) -> None:
        self.state = ACTIVE
        if not self._applied.done():
            self._applied.set_result(self)

    def _set_failed(self, error: Exception) -> None:
        self.error = error
        self.state = ENDED
        for f in (self._applied, self._ended):
            if not f.done():
                f.set_exception(error)

    def _set_ended(self) -> None:
        self.state = ENDED
        if not self._applied.done():
            self._applied.set_exception(ConnectionClosedError("subscription ended before it was applied"))
        if not self._ended.done():
            self._ended.set_result(self)


class SubscriptionBuilder:
    """`conn.subscription_builder()`: set callbacks, then `subscribe(queries)`."""

    def __init__(self, conn: DbConnection):
        self._conn = conn
        self._on_applied: list[Callable[[Any], Any]] = []
        self._on_error: list[Callable[[Any, Exception], Any]] = []

    def on_applied(self, cb: Callable[[Any], Any]) -> SubscriptionBuilder:
        """`cb(ctx)` once the set's initial rows are in the cache (after their row callbacks)."""
        self._on_applied.append(cb)
        return self

    def on_error(self, cb: Callable[[Any, Exception], Any]) -> SubscriptionBuilder:
        """`cb(ctx, error)` if the server refuses the set, or drops it later."""
        self._on_error.append(cb)
        return self

    def subscribe(self, queries: str | Iterable[str]) -> SubscriptionHandle:
        """Subscribe to one query or a list of queries (one query set). Sent now if connected, else on connect.
        Returns the handle at once; `await` it to wait for the rows."""
        qs = [queries] if isinstance(queries, str) else list(queries)
        if not qs:
            raise ValueError("subscribe() needs at least one query")
        return self._conn._subscribe(qs, self._on_applied, self._on_error)

    def subscribe_to_all_tables(self) -> SubscriptionHandle:
        """`SELECT * FROM t` for every table the bindings know."""
        names = [t.name for t in self._conn._module.tables.values()]
        return self.subscribe([f"SELECT * FROM {n}" for n in names])


def _consume(f: asyncio.Future) -> None:
    if not f.cancelled():
        f.exception()


def _task(coro: Any) -> asyncio.Task:
    t = asyncio.ensure_future(coro)
    t.add_done_callback(_consume)
    return t


__all__ = ["SubscriptionBuilder", "SubscriptionHandle", "SubscriptionFailedError"]
