"""Scheduled reducers and procedures (shared/spec/module-abi.md §12): a row in a scheduled table is a pending call.

Inserting a row schedules its reducer at `Time(ts)` or every `Interval(d)` (measured from the later of the
inserting call's timestamp and now); deleting the row cancels it.  A `Time` row is deleted in the same
transaction as the call it triggers; an `Interval` row stays and fires again.  The schedule is derived
from table contents only, so it survives restarts: `rebuild()` re-reads every scheduled table.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass

from harness.datastore import ScheduleAtDelayTooLong, TxData

MAX_DELAY_US = ((1 << 36) - 1) * 1000  # delays of 2^36-1 ms or more are refused (errno 13)


@dataclass(frozen=True)
class ScheduledTable:
    table_id: int
    name: str
    at_column: int
    reducer_id: int  # -1 when the table schedules a procedure
    procedure: str | None = None  # the procedure it schedules (upstream schedules reducers or procedures)


def now_us() -> int:
    return int(time.time() * 1e6)


class Scheduler:
    """A heap of due times over the rows of scheduled tables; `run_due` fires what is due."""

    def __init__(self, database):
        self.db = database
        self.tables: dict[int, ScheduledTable] = {}
        self._heap: list[tuple[int, int, int, bytes]] = []  # (due_us, seq, table_id, row bytes)
        self._live: dict[tuple[int, bytes], int] = {}  # (table_id, row) -> seq of its current heap entry
        self._seq = itertools.count()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, table: ScheduledTable) -> None:
        self.tables[table.table_id] = table

    def row_check(self, table: ScheduledTable):
        """Refuse a row whose delay is too long before anything is written (datastore row_check hook)."""

        def check(row: tuple) -> None:
            at = row[table.at_column]
            delay = at.value.micros - now_us() if at.is_time() else at.value.micros
            if delay >= MAX_DELAY_US:
                raise ScheduleAtDelayTooLong(f"{table.name}: schedule delay of {delay / 1e6:.0f}s is too long")

        return check

    # ---------------------------------------------------------------- tracking rows

    def on_commit(self, txdata: TxData, call_ts_us: int) -> None:
        for tid, delta in txdata.tables.items():
            if tid not in self.tables:
                continue
            for row in delta.deletes:
                self._live.pop((tid, row), None)
            for row, values in delta.inserts.items():
                self._add(tid, row, values, max(call_ts_us, now_us()))
        if self._heap:
            self._wake.set()

    def rebuild(self) -> None:
        """Derive the whole schedule from the scheduled tables (after recovery)."""
        self._heap.clear()
        self._live.clear()
        start = now_us()
        with self.db.datastore.read() as r:
            for tid in self.tables:
                for row, values in r.scan_items(tid):
                    self._add(tid, row, values, start)

    def _add(self, tid: int, row: bytes, values: tuple, base_us: int) -> None:
        at = values[self.tables[tid].at_column]
        due = at.value.micros if at.is_time() else base_us + at.value.micros
        seq = next(self._seq)
        self._live[(tid, row)] = seq
        heapq.heappush(self._heap, (due, seq, tid, row))

    def next_due(self) -> int | None:
        while self._heap:
            due, seq, tid, row = self._heap[0]
            if self._live.get((tid, row)) == seq:
                return due
            heapq.heappop(self._heap)  # cancelled or superseded
        return None

    # ---------------------------------------------------------------- firing

    def run_due(self, now: int | None = None) -> list:
        """Fire every scheduled call due at `now`; returns their outcomes."""
        now = now_us() if now is None else now
        outcomes = []
        while True:
            due = self.next_due()
            if due is None or due > now:
                return outcomes
            _, seq, tid, row = heapq.heappop(self._heap)
            del self._live[(tid, row)]
            table = self.tables[tid]
            with self.db.datastore.read() as r:
                values = next((v for b, v in r.scan_items(tid) if b == row), None)
            if values is None:
                continue
            at = values[table.at_column]
            one_shot = at.is_time()
            ts = _ts(max(due, now))
            if table.procedure is not None:
                # as upstream: the row goes first, in a transaction of its own (a procedure is never retried),
                # then the procedure runs here, holding the scheduler until it returns
                if one_shot:
                    self.db._delete_rows(table.procedure, tid, [row], ts)
                outcome = self.db.call_procedure(table.procedure, row, sender=self.db.identity, timestamp=ts)
            else:
                outcome = self.db._call(
                    table.reducer_id, row, self.db.identity.to_bytes(), bytes(16), ts,
                    before_commit=(lambda tx, tid=tid, row=row: tx.delete_all_by_eq(tid, [row])) if one_shot else None,
                )
            outcomes.append(outcome)
            if not one_shot and (tid, row) not in self._live:
                with self.db.datastore.read() as r:  # the row may have been deleted by the call itself
                    still = any(b == row for b, _ in r.scan_items(tid))
                if still:
                    self._live[(tid, row)] = s = next(self._seq)
                    heapq.heappush(self._heap, (max(due + at.value.micros, now), s, tid, row))

    # ---------------------------------------------------------------- background thread

    def start(self) -> None:
        if self._thread is None and self.tables:
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = self.next_due()
            wait = 1.0 if due is None else max(0.0, (due - now_us()) / 1e6)
            if wait > 0:
                self._wake.wait(timeout=min(wait, 1.0))
                self._wake.clear()
                continue
            try:
                self.run_due()
            except Exception as e:  # noqa: BLE001 - a scheduler fault must not kill the thread; it is logged
                self.db._host_log(f"scheduler: {type(e).__name__}: {e}")


def _ts(micros: int):
    from spacetime_core.sats import Timestamp

    return Timestamp(micros)
