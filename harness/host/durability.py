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

A lone transaction, fsynced where it committed.  When a database's transactions come from one thread that
then has nothing else to do (the server's executor thread after a batch, with no more work queued), waking
this thread for the fsync and waiting for it to wake the event loop costs two thread hand-offs (each a
futex wake-up and, on a busy machine, a wait for a core) on top of the fsync.  Such a thread wraps its work
in ``deferred_notify()`` (its appends do not wake this thread) and afterwards calls ``sync_inline()``: if no
load was seen (see above) and this thread is not fsyncing, it fsyncs and publishes on the calling thread;
otherwise, or if the caller has more work, ``flush_deferred()`` hands the fsync to this thread as before.

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

_tls = threading.local()  # .deferred: committers whose notify() the current thread postpones (deferred_notify)

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
        self._barrier = threading.Lock()  # one fsync + publish at a time (this thread or sync_inline)
        self.busy = False  # transactions arrived during the last fsync: load, so batch (and no inline fsync)
        self.inline = 0  # fsyncs done by sync_inline on a committing thread
        self._started = 0.0  # when the last fsync started (either thread)
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
        covers this append too: skip `Event.set`, which takes a lock and notifies every time.  Inside
        ``deferred_notify()`` the thread is not woken: the caller will ``sync_inline`` or ``flush_deferred``."""
        deferred = getattr(_tls, "deferred", None)
        if deferred is not None:
            deferred.add(self)
            return
        self._wake()

    def _wake(self) -> None:
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

    def sync_inline(self) -> bool:
        """Fsync everything written so far on the calling thread and publish it (listeners run here), unless
        there is load (``busy``), this thread is fsyncing or delaying, or the log failed: then return False and
        the caller must ``notify`` as usual.  For a thread that committed and has nothing else to do."""
        if self.busy or self._stop or self.error is not None or self._delaying:
            return False
        if not self._barrier.acquire(blocking=False):
            return False
        try:
            target = self.commitlog.last_offset
            if target <= self.durable_offset:
                return True
            if not self._sync_publish():
                return True  # failed: error is set and waiters were told; nothing more becomes durable
            self.inline += 1
            if self.commitlog.last_offset > target:  # appended by another thread during the fsync: load
                self.busy = True
                self._wake()
            return True
        finally:
            self._barrier.release()

    def _sync_publish(self) -> bool:
        """(holding _barrier) One commit barrier, then the new durable offset to waiters and listeners."""
        self._started = time.monotonic()
        try:
            durable = self.commitlog.commit_barrier()
        except Exception as e:  # noqa: BLE001 - the log is failed; nothing more becomes durable
            log.error("commit log fsync failed; no further transaction will be acknowledged: %s", e)
            with self._cv:
                self.error = e
                self._cv.notify_all()
            self._stop = True
            self._dirty.set()  # the durability thread ends
            return False
        if durable <= self.durable_offset:
            return True
        self.batches += 1
        with self._cv:
            self.durable_offset = durable
            self._cv.notify_all()
        for fn in list(self._listeners):
            try:
                fn(durable)
            except Exception:  # noqa: BLE001 - a listener must not stop durability
                log.exception("durability listener failed")
        return True

    def note_load(self) -> None:
        """The committing thread got more work while ``sync_inline`` fsynced: treat it as load (the next fsync
        is delayed as if transactions had arrived during this one)."""
        self.busy = True

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            if self.busy and not self._stop:
                wait = self._started + self.max_delay - time.monotonic()
                if wait > 0:
                    self._hurry.clear()  # (a late set from the previous delay)
                    self._delaying = True
                    if not self._stop and self.commitlog.next_offset - self.durable_offset <= self.batch_target:
                        self._hurry.wait(wait)
                    self._delaying = False
                    self.delayed += 1
            with self._barrier:
                self._dirty.clear()
                if self._stop:
                    return
                target = self.commitlog.last_offset
                if target <= self.durable_offset:
                    self.busy = False  # already fsynced (by sync_inline) and nothing since: no load
                    continue
                if not self._sync_publish():
                    return
                self.busy = self.commitlog.last_offset > self.durable_offset

    def stop(self) -> None:
        """Finish the pending fsync and stop the thread (the commit log's close fsyncs the rest)."""
        self._stop = True
        self._dirty.set()
        self._hurry.set()
        self._thread.join()
        with self._cv:
            self._cv.notify_all()


class deferred_notify:
    """``with deferred_notify() as pending:`` — appends on this thread inside the block do not wake any
    durability thread; ``pending`` collects their committers, and the caller must then ``sync_inline()`` each or
    ``flush_deferred(pending)`` (or both: a committer that declined to sync inline is flushed)."""

    def __enter__(self) -> set[GroupCommitter]:
        self._outer = getattr(_tls, "deferred", None)
        if self._outer is not None:  # nested: the outer block owns the pending set
            return self._outer
        _tls.deferred = set()
        return _tls.deferred

    def __exit__(self, *exc: object) -> None:
        if self._outer is None:
            pending = _tls.deferred
            _tls.deferred = None
            flush_deferred(pending)  # whatever the caller did not handle (also on an exception)


def flush_deferred(pending: set[GroupCommitter]) -> None:
    """Wake the durability threads of ``pending`` for what they have not yet fsynced, and clear it."""
    for c in pending:
        if c.commitlog.last_offset > c.durable_offset:
            c._wake()
    pending.clear()
