"""Group commit for one database: a durability thread that fsyncs the commit log in batches.

Under ``durability="group"`` a transaction is appended (``os.write``: it survives SIGKILL) while the database
lock is held, and the lock is released without waiting for the disk.  This thread then calls
``CommitLog.commit_barrier()`` — one fsync covering every transaction appended so far — and announces the new
durable offset to listeners (the server releases confirmed results with it) and to ``wait_durable`` callers.

Batching.  While one fsync runs, the next transactions pile up and share the next one.  That alone makes
batches tiny when an fsync is quick (~0.1 ms on a VM disk) next to the work of a transaction: under load the
thread fsyncs after nearly every transaction and spends ~50 µs of CPU (mostly kernel) each time, CPU the
database and event loop threads lack on a small machine.  So the thread adapts: if transactions arrived while
its last fsync ran (there is concurrent load, so waiting gathers more), the next fsync starts no earlier than
``max_delay`` after the previous one started, or as soon as ``batch_target`` transactions are pending.  If
nothing arrived during the last fsync (an idle database, a single client waiting for its answer), the next
fsync starts at once: a lone call never waits for the delay.  A transaction's fsync thus starts at most
``max_delay`` after the fsync running when it arrived started (or when that one ends, if it takes longer), and
while the load lasts there is at most one fsync per ``max_delay``.  Upstream SpacetimeDB fsynced on a fixed
timer before (50 ms, then 10 ms) and now fsyncs after every batch it drains, as we did before.

Rule: a transaction at tx offset ``o`` is durable once ``durable_offset >= o``; nothing that reveals it may be
acknowledged as durable before that (see docs/durability.md).  An fsync error fails the commit log (no later
append succeeds) and stops the thread: nothing after the failure is ever reported durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from harness.commitlog import CommitLog

log = logging.getLogger(__name__)

MAX_DELAY_S = 0.002  # under load, at most one fsync per 2 ms (0: fsync again as soon as one ends)
BATCH_TARGET = 256  # ... unless this many transactions are already waiting for one


class GroupCommitter:
    """The durability thread of one commit log opened with ``durability="group"``."""

    def __init__(self, commitlog: CommitLog, name: str = "durability", *, max_delay: float | None = None,
                 batch_target: int | None = None) -> None:
        self.commitlog = commitlog
        self.durable_offset = commitlog.durable_offset
        self.error: BaseException | None = None
        self.batches = 0  # fsyncs done (for benchmarks: transactions per fsync = offsets / batches)
        self.delayed = 0  # fsyncs that waited for more transactions first
        self.max_delay = MAX_DELAY_S if max_delay is None else max_delay
        self.batch_target = BATCH_TARGET if batch_target is None else batch_target
        self._listeners: list[Callable[[int], None]] = []
        self._dirty = threading.Event()
        self._hurry = threading.Event()  # set while delaying: enough transactions wait, fsync now
        self._delaying = False
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """``fn(durable_offset)`` on the durability thread after every fsync that advanced it (keep it short)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[int], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def notify(self) -> None:
        """A transaction was appended: fsync soon (cheap; called under the database lock).

        When the flag is already set the thread has not yet cleared it, so its next barrier (after the clear)
        covers this append too: skip `Event.set`, which takes a lock and notifies every time."""
        if not self._dirty.is_set():
            self._dirty.set()
        elif self._delaying and self.commitlog.next_offset - self.durable_offset > self.batch_target:
            self._hurry.set()

    def wait_durable(self, offset: int, timeout: float | None = None) -> bool:
        """Block until tx ``offset`` is durable; False on timeout, fsync failure or shutdown."""
        if self.durable_offset < offset:
            self._dirty.set()  # whoever appended it may not have called notify (e.g. a module update's marker)
        with self._cv:
            return self._cv.wait_for(lambda: self.durable_offset >= offset or self.error is not None or self._stop,
                                     timeout) and self.durable_offset >= offset

    def _run(self) -> None:
        busy = False  # transactions arrived during the last fsync
        started = 0.0  # when the last fsync started
        while True:
            self._dirty.wait()
            if busy and not self._stop:
                wait = started + self.max_delay - time.monotonic()
                if wait > 0:
                    self._hurry.clear()  # (a late set from the previous delay)
                    self._delaying = True
                    if not self._stop and self.commitlog.next_offset - self.durable_offset <= self.batch_target:
                        self._hurry.wait(wait)
                    self._delaying = False
                    self.delayed += 1
            self._dirty.clear()
            if self._stop:
                return
            started = time.monotonic()
            try:
                durable = self.commitlog.commit_barrier()
            except Exception as e:  # noqa: BLE001 - the log is failed; nothing more becomes durable
                log.error("commit log fsync failed; no further transaction will be acknowledged: %s", e)
                with self._cv:
                    self.error = e
                    self._cv.notify_all()
                return
            busy = self.commitlog.last_offset > durable
            if durable <= self.durable_offset:
                continue
            self.batches += 1
            with self._cv:
                self.durable_offset = durable
                self._cv.notify_all()
            for fn in list(self._listeners):
                try:
                    fn(durable)
                except Exception:  # noqa: BLE001 - a listener must not stop durability
                    log.exception("durability listener failed")

    def stop(self) -> None:
        """Finish the pending fsync and stop the thread (the commit log's close fsyncs the rest)."""
        self._stop = True
        self._dirty.set()
        self._hurry.set()
        self._thread.join()
        with self._cv:
            self._cv.notify_all()
