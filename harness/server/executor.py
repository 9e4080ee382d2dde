"""One executor thread per database: where the server runs module code and everything that takes the
database lock for a WebSocket client.

Why a thread per database: module code must never run on the event loop (a reducer that loops forever would
freeze every connection), one busy database must never stall another (each has its own thread), and a call
should not pay a hop through a shared pool plus a wake-up of the loop per call.  So the event loop queues work
with ``submit`` (no waiting) and the executor thread runs it in order; whatever the work pushes to connections
(``Connection.push``) is collected for the batch, and after the batch the loop is woken once
(``call_soon_threadsafe``) for all the connections that got messages, instead of once per call.

Durability (group commit): the executor also owns the database's list of connections waiting for the durable
offset (``wait_for_durable``: a confirmed connection registers when a message is pushed before its offset is
durable, instead of joining the batch's wake-up); the durability thread calls ``_on_durable`` after each fsync,
which wakes them, again with one ``call_soon_threadsafe`` per batch.  A lone batch (nothing else queued before
or after it) that committed is fsynced on the executor thread itself before the loop is woken (``_sync_lone``),
without the durability thread; the executor role passes to a spare thread for the length of that fsync, so work that
arrives meanwhile is not held by the disk.  See docs/durability.md for what is acknowledged when.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.host.durability import deferred_notify, flush_deferred

log = logging.getLogger(__name__)

BATCH_MAX = 64  # jobs run before the loop is woken for their results (bounds the latency a batch adds)
FLUSH_AFTER_S = 0.002  # within a batch, results older than this are sent without waiting for the batch end
IDLE_EXIT_S = 10.0  # an idle executor thread ends (a new one starts on the next submit)

_local = threading.local()  # .wake: the set of connections to wake after the current batch (executor threads)


def pending_wakes() -> set | None:
    """The current executor batch's wake set, when called on an executor thread inside a batch."""
    return getattr(_local, "wake", None)


def _wake_all(conns) -> None:
    for c in conns:
        c.wake()


def wake_later(conns) -> None:
    """Wake ``conns`` (objects with ``wake()`` and ``_loop``) with one ``call_soon_threadsafe`` per loop."""
    by_loop: dict[Any, list] = {}
    for c in conns:
        by_loop.setdefault(c._loop, []).append(c)
    for loop, cs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_wake_all, cs)
        except RuntimeError:  # loop closed
            pass


class DatabaseExecutor:
    """The executor thread of one database (see the module docstring)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.jobs_run = 0
        self.batches = 0
        self._q: collections.deque = collections.deque()
        lock = threading.Lock()
        self._cv = threading.Condition(lock)  # the executor thread waits here for jobs
        self._spare_cv = threading.Condition(lock)  # a spare thread waits here to be handed the executor role
        self._stopped = False
        self._spares = 0  # threads parked on _spare_cv
        self._handoffs = 0  # executor roles handed to spares and not yet picked up
        self._threads: set[threading.Thread] = set()  # live threads (for stop)
        self.inline_fsyncs = 0
        self._waiting: set = set()  # connections whose outbox head waits for durability
        self._durable_futs: list = []  # (offset, loop, future) of `durable()` callers
        self._wait_lock = threading.Lock()
        self._name = "db-" + getattr(getattr(db, "identity", None), "to_hex", lambda: "x")()[:8]
        self._owner: threading.Thread | str | None = None  # the thread running jobs ("handoff": a spare's turn)
        committer = getattr(db, "committer", None)
        if committer is not None:
            committer.add_listener(self._on_durable)

    # ------------------------------------------------------------------ submitting (event loop side)

    def submit(self, fn: Callable, *args: Any) -> None:
        """Queue ``fn(*args)`` (fire and forget; its results travel through ``Connection.push``)."""
        with self._cv:
            if self._stopped:
                raise RuntimeError("the database executor is stopped")
            self._q.append((fn, args, None))
            self._kick()

    def call(self, fn: Callable, *args: Any) -> asyncio.Future:
        """Queue ``fn(*args)`` and return a future for its result (for rare calls: connect, disconnect)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._stopped:
                raise RuntimeError("the database executor is stopped")
            self._q.append((fn, args, (loop, fut)))
            self._kick()
        return fut

    # ------------------------------------------------------------------ the thread

    def _kick(self) -> None:
        """(holding _cv, a job was queued) wake the executor thread, or give the role to a spare, or start one."""
        if self._owner is None:
            if self._spares:
                self._spares -= 1
                self._handoffs += 1
                self._owner = "handoff"
                self._spare_cv.notify()
            else:
                t = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._owner = t
                self._threads.add(t)
                t.start()
        elif len(self._q) == 1:
            self._cv.notify()

    def _run(self) -> None:
        me = threading.current_thread()
        try:
            while self._serve(me) and self._park(me):
                pass
        finally:
            with self._cv:
                self._threads.discard(me)

    def _serve(self, me: threading.Thread) -> bool:
        """Run batches while this thread holds the executor role.  False: the role ended (idle or stopped);
        True: the role was given up for an inline fsync and someone else took it (this thread may park)."""
        while True:
            with self._cv:
                if not self._q and not self._stopped:
                    self._cv.wait(IDLE_EXIT_S)
                if not self._q:  # idle (or stopped): end; the next submit starts a new thread
                    self._owner = None
                    return False
                n = min(len(self._q), BATCH_MAX)
                jobs = [self._q.popleft() for _ in range(n)]
                lone = not self._q  # nothing else waits: this batch may fsync its own commits (see below)
            wake: set = set()
            _local.wake = wake
            with deferred_notify() if lone else _NO_DEFER as pending:
                try:
                    self._run_jobs(jobs, wake, pending)
                finally:
                    _local.wake = None
                self.jobs_run += len(jobs)
                self.batches += 1
                if pending and not self._sync_lone(me, wake, pending):
                    return True
            if wake:
                wake_later(wake)

    def _run_jobs(self, jobs: list, wake: set, pending: set | None) -> None:
        flushed = time.perf_counter()
        for fn, args, fut in jobs:
            try:
                res = fn(*args)
                exc = None
            except BaseException as e:  # noqa: BLE001 - delivered to the caller or logged
                res, exc = None, e
            if fut is not None:
                _resolve(fut, res, exc)
            elif exc is not None:
                log.error("database work failed", exc_info=exc)
            if time.perf_counter() - flushed > FLUSH_AFTER_S:  # a slow job: don't hold results or the fsync
                if pending:
                    flush_deferred(pending)
                if wake:
                    wake_later(wake)
                    wake.clear()
                flushed = time.perf_counter()

    def _sync_lone(self, me: threading.Thread, wake: set, pending: set) -> bool:
        """After a lone batch that committed: if still nothing is queued, fsync here (``sync_inline``) before
        waking the loop, so a single call's result goes event loop -> this thread -> event loop, without the
        hand-offs to and from the durability thread.  Under load (more work queued, or the durability thread
        busy) the durability thread fsyncs as usual (``deferred_notify``'s exit wakes it).

        The executor role is given up during the fsync, so work submitted meanwhile runs at once on another
        thread (a parked spare, else a new one) instead of waiting for the disk: a slow or stuck fsync holds
        only the confirmed results it covers, never the database.  Returns False when the role was taken by
        then (this thread then parks as a spare)."""
        committers = [c for c in pending if not c.busy]
        with self._cv:
            if self._q or not committers or self._stopped:
                return True
            self._owner = None
        early = [c for c in wake if getattr(c, "_db", 0) is None]  # unconfirmed readers need no fsync
        if early:
            wake.difference_update(early)
            wake_later(early)
        _local.wake = wake  # what the fsync makes sendable joins this batch's one wake-up (``_on_durable``)
        try:
            for c in committers:
                if c.sync_inline():
                    pending.discard(c)
                    self.inline_fsyncs += 1
        finally:
            _local.wake = None
        with self._cv:  # take the role back before the results go out (the client's next call needs it)
            kept = self._owner is None
            if kept:
                self._owner = me
        if not kept:
            for c in committers:  # work arrived during the fsync: load (the next fsync batches)
                c.note_load()
        if wake:
            wake_later(wake)
            wake.clear()
        return kept

    def _park(self, me: threading.Thread) -> bool:
        """Wait as a spare until handed the executor role (True) or idle/stopped (False: the thread ends)."""
        with self._cv:
            self._spares += 1
            while True:
                if self._handoffs:
                    self._handoffs -= 1
                    self._owner = me
                    return True
                if self._stopped or not self._spare_cv.wait(IDLE_EXIT_S) and not self._handoffs:
                    self._spares -= 1
                    return False

    def stop(self) -> None:
        """Run what is queued, then end the thread (idempotent)."""
        with self._cv:
            self._stopped = True
            self._cv.notify()
            self._spare_cv.notify_all()
            threads = list(self._threads)
        committer = getattr(self.db, "committer", None)
        if committer is not None:
            committer.remove_listener(self._on_durable)
        for t in threads:
            if threading.current_thread() is not t:
                t.join(timeout=30)

    # ------------------------------------------------------------------ durability waits

    def durable_offset(self) -> int | None:
        committer = getattr(self.db, "committer", None)
        return None if committer is None else committer.durable_offset

    def wait_for_durable(self, conn: Any, offset: int) -> bool:
        """Register ``conn`` to be woken when ``offset`` is durable; False if it already is (no wait)."""
        with self._wait_lock:
            d = self.durable_offset()
            if d is None or d >= offset:
                return False
            self._waiting.add(conn)
            return True

    def durable(self, offset: int | None) -> asyncio.Future:
        """(event loop) A future that becomes True once tx ``offset`` is durable (at once without group commit).
        It never resolves if the commit log failed: callers bound the wait."""
        fut = asyncio.get_running_loop().create_future()
        committer = getattr(self.db, "committer", None)
        with self._wait_lock:
            d = self.durable_offset()
            if offset is None or d is None or d >= offset:
                fut.set_result(True)
                return fut
            self._durable_futs.append((offset, fut.get_loop(), fut))
        committer.notify()
        return fut

    def _on_durable(self, offset: int) -> None:
        with self._wait_lock:
            conns, self._waiting = self._waiting, set()
            ready = [(lp, f) for o, lp, f in self._durable_futs if o <= offset]
            if ready:
                self._durable_futs = [x for x in self._durable_futs if x[0] > offset]
        if conns:
            batch = pending_wakes()
            if batch is not None:  # an inline fsync on the executor thread: woken after it takes the role back
                batch.update(conns)
            else:
                wake_later(conns)
        for lp, f in ready:
            try:
                lp.call_soon_threadsafe(_set_true, f)
            except RuntimeError:  # loop closed
                pass


class _NoDefer:
    """Stands in for ``deferred_notify()`` when a batch is not lone: appends notify the durability thread."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_DEFER = _NoDefer()


def _set_true(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(True)


def _resolve(fut_info, res, exc) -> None:
    loop, fut = fut_info

    def set_result() -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(res)

    try:
        loop.call_soon_threadsafe(set_result)
    except RuntimeError:  # loop closed
        pass


_executors_lock = threading.Lock()


def executor_for(db: Any) -> DatabaseExecutor:
    """The executor of ``db`` (kept on the database object, so it lives and dies with it)."""
    with _executors_lock:
        ex = getattr(db, "_server_executor", None)
        if ex is None or ex._stopped:
            ex = DatabaseExecutor(db)
            db._server_executor = ex
        return ex


def stop_executor(db: Any) -> None:
    """Run what ``db``'s executor has queued and stop it (server shutdown)."""
    ex = getattr(db, "_server_executor", None)
    if ex is not None:
        ex.stop()
