"""A small synchronous wrapper for scripts and notebooks: the asyncio connection runs in a background thread.

    from client_sdk.sync import connect
    with connect("http://127.0.0.1:3000", "quickstart", bindings=quickstart_client) as conn:
        conn.subscribe(["SELECT * FROM user"])
        conn.call("set_name", "Alice")            # blocks; raises ReducerFailedError with the module's message
        print(conn.db.user.count())                # the cache (read it from this thread between calls)

Callbacks run on the background thread. Every blocking call takes `timeout` (seconds, default: the
connection's request timeout plus a margin).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .connection import DbConnection, DbConnectionBuilder
from .subscriptions import SubscriptionHandle


class SyncConnection:
    def __init__(self, builder: Any, timeout: float | None = 30.0):
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="spacetime-client", daemon=True)
        self._thread.start()
        try:
            self.conn: DbConnection = self._run(builder.connect())
        except BaseException:
            self._stop()
            raise

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        t = timeout if timeout is not None else self._timeout
        try:
            return fut.result(None if t is None else t + 1.0)
        except TimeoutError:
            fut.cancel()
            raise

    async def _await(self, make: Callable[[], Any]) -> Any:
        return await make()

    def _do(self, make: Callable[[], Any], timeout: float | None) -> Any:
        return self._run(self._await(make), timeout)

    # ------------------------------------------------------------------ API
    @property
    def db(self) -> Any:
        return self.conn.db

    @property
    def identity(self) -> Any:
        return self.conn.identity

    @property
    def token(self) -> str | None:
        return self.conn.token

    @property
    def reducers(self) -> Any:
        """`conn.reducers.<name>(...)` as on an async connection (typed with bindings), blocking until the call
        ends: returns the ReducerEvent or raises ReducerError.  `on_<name>(cb)` registers callbacks as there."""
        return _Blocking(self, self.conn.reducers)

    @property
    def procedures(self) -> Any:
        """`conn.procedures.<name>(...)`, blocking: returns the procedure's decoded return value."""
        return _Blocking(self, self.conn.procedures)

    def subscribe(self, queries: str | Iterable[str], timeout: float | None = None) -> SubscriptionHandle:
        """Subscribe and block until the rows are in the cache."""
        qs = [queries] if isinstance(queries, str) else list(queries)
        return self._do(lambda: self.conn.subscription_builder().subscribe(qs).applied(timeout), timeout)

    def unsubscribe(self, handle: SubscriptionHandle, timeout: float | None = None) -> None:
        self._do(lambda: handle.unsubscribe(timeout), timeout)

    def call(self, reducer: str, *args: Any, timeout: float | None = None) -> Any:
        """Call a reducer and block until it ends; returns the ReducerEvent or raises ReducerError."""
        return self._do(lambda: self.conn.call_reducer(reducer, *args, timeout=timeout), timeout)

    def call_procedure(self, procedure: str, *args: Any, timeout: float | None = None) -> Any:
        """Call a procedure and block until it returns; returns its decoded value or raises ProcedureError."""
        return self._do(lambda: self.conn.call_procedure(procedure, *args, timeout=timeout), timeout)

    def query(self, sql: str, timeout: float | None = None) -> dict[str, list[Any]]:
        """A one-off query: {table: [rows]}."""
        return self._do(lambda: self.conn.one_off_query(sql, timeout=timeout), timeout)

    def until(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Block until `predicate()` is truthy (checked on the connection's thread after every message it
        applies) and return its value: `conn.until(lambda: conn.db.message.count() == 2, timeout=5)`."""
        return self._do(lambda: self.conn.until(predicate, timeout), timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        if self._thread.is_alive():
            try:
                self._run(self.conn.disconnect(timeout), timeout)
            finally:
                self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Blocking:
    """`SyncConnection.reducers` / `.procedures`: each call runs on the connection's loop and blocks for its result;
    callback registration (`on_*`, `remove_on_*`) passes through."""

    def __init__(self, sync: SyncConnection, remote: Any):
        self._sync = sync
        self._remote = remote

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._remote, name)
        if name.startswith(("on_", "remove_on_")) or not callable(fn):
            return fn

        def call(*args: Any, timeout: float | None = None) -> Any:
            return self._sync._do(lambda: fn(*args, timeout=timeout), timeout)

        return call


def connect(uri: str, database: str, *, bindings: Any = None, token: str | None = None,
            token_file: str | None = None, timeout: float | None = 30.0,
            configure: Callable[[DbConnectionBuilder], Any] | None = None) -> SyncConnection:
    """Connect (blocking). `bindings`: a generated bindings package (or its DbConnection class);
    `configure(builder)` may set anything else on the builder."""
    cls = getattr(bindings, "DbConnection", bindings) or DbConnection

    def make() -> DbConnectionBuilder:
        b = cls.builder().with_uri(uri).with_database_name(database).with_token(token)
        if token_file is not None:
            b.with_token_file(token_file)
        if timeout is not None:
            b.with_timeouts(request=timeout)
        if configure is not None:
            configure(b)
        return b

    return SyncConnection(_Deferred(make), timeout)


class _Deferred:
    """Builds the builder inside the loop thread (a DbConnection must be created in its loop)."""

    def __init__(self, make: Callable[[], DbConnectionBuilder]):
        self._make = make

    async def connect(self) -> DbConnection:
        return await self._make().connect()
