"""Per-database subscription manager: connected clients, their query sets, and the fan-out of every
committed transaction (client-protocol.md sections 7-8).

Threading and ordering.  Everything that reads or changes subscription state runs while holding the
database's reducer lock (``db._lock``, re-entrant), so a query set's ``SubscribeApplied`` reflects exactly the
state that later ``TransactionUpdate``s are relative to, and every client receives messages in transaction
order.  Messages are handed to a client as encoded ``ServerMessage`` bodies through ``client.push(body)``,
which must be thread-safe and keep order (``harness.server.websocket`` does that with a deque drained by the
connection's writer task); the methods here are blocking and meant to run in a worker thread.

Fan-out.  After each committed transaction (whoever started it: a WebSocket client, HTTP ``/call``, the
scheduler, a lifecycle reducer) ``on_commit`` evaluates every *distinct* subscribed query plan once with the
SQL layer's incremental ``plan.delta(txdata, read_tx_after)``, then builds one ``TransactionUpdate`` per
affected client (only affected query sets and tables; clients with nothing affected get nothing).  Identical
update shapes (same query set ids over the same plans, e.g. many TS clients each subscribed with set 0) are
encoded once.  The reducer's caller gets its part inside ``ReducerResult`` instead.

Commit hook: ``attach`` registers with ``Database.add_commit_listener``, which the host calls right after
every commit (reducers, SQL DML, the scheduler, lifecycle reducers, procedures) while still holding the
database lock, so updates go out in commit order and exactly once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.limits import LIMITS
from spacetime_core.protocol import (
    EventTableRows,
    InitialConnection,
    OneOffQueryResult,
    PersistentTableRows,
    ProcedureResult,
    ProcedureStatus,
    QueryRows,
    QuerySetUpdate,
    ReducerOk,
    ReducerOutcome,
    ReducerResult,
    SingleTableRows,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TableUpdateRows,
    TransactionUpdate,
    UnsubscribeApplied,
    encode_server,
    reducer_error_bytes,
    row_list,
)
from spacetime_core.sats import ConnectionId, Err, Identity, Ok, TimeDuration, Timestamp, decode

from .auth import payload_text

log = logging.getLogger(__name__)



def _sql_layer():
    """``(QueryCache, compile_subscription)`` from ``harness.sql``, or ``(None, None)`` while it has not landed
    (then only ``SELECT * FROM t`` works, through ``_fallback_compile``)."""
    try:
        from harness.sql import QueryCache, compile_subscription
    except ImportError as e:  # pragma: no cover - only while harness.sql is incomplete
        log.warning("harness.sql unavailable (%s): only `SELECT * FROM t` subscriptions are supported", e)
        return None, None
    return QueryCache, compile_subscription


class Client(Protocol):
    """What the manager needs from a connection."""

    identity: Identity
    connection_id: ConnectionId

    def push(self, body: bytes) -> None:
        """Queue one encoded ServerMessage for sending (thread-safe, order-preserving)."""


class FatalClientError(Exception):
    """A protocol-level execution error that closes the connection (code 1011), e.g. a reused live
    query_set_id."""


@dataclass
class _PlanEntry:
    plan: Any
    table_name: str
    is_event: bool
    refs: int = 0


@dataclass
class _QuerySet:
    query_set_id: int
    plans: list[_PlanEntry]


@dataclass
class _ClientState:
    client: Any
    sets: dict[int, _QuerySet] = field(default_factory=dict)


_managers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_managers_lock = threading.Lock()


def attach(db) -> SubscriptionManager:
    """The subscription manager of ``db`` (created and hooked into its commits on first use)."""
    with _managers_lock:
        mgr = _managers.get(db)
        if mgr is None:
            mgr = _managers[db] = SubscriptionManager(db)
            mgr._install_hook()
        return mgr


class SubscriptionManager:
    def __init__(self, db) -> None:
        self.db = db
        self.lock = db._lock  # the database's reducer lock (RLock)
        self.clients: dict[int, _ClientState] = {}
        self._plans: dict[Any, _PlanEntry] = {}  # plan key -> entry, only plans with live subscriptions
        self._pending_call: tuple[Any, int] | None = None  # (client, request_id) of the running reducer call
        cache_cls, _compile = _sql_layer()
        self._cache = cache_cls(db) if cache_cls is not None else None  # shares one plan per distinct query
        self.evaluations = 0  # plan.delta calls, for tests and benchmarks
        self._groups: dict[tuple, list] | None = None  # _signatures(); None: to be rebuilt
        self.closed = False

    # ------------------------------------------------------------------ commit hook (adapter)

    def _install_hook(self) -> None:
        """Every commit (reducers, SQL DML, scheduler, lifecycle, procedures) goes through the host's listeners."""
        self.db.add_commit_listener(lambda outcome: self.on_commit(outcome.txdata, outcome.timestamp))

    # ------------------------------------------------------------------ clients

    def connect(self, client) -> str | None:
        """Run ``client_connected``; on success register the client and queue ``InitialConnection``.
        Returns None, or the error text when the module rejected the client."""
        with self.lock:
            out = self.db.client_connected(client.identity, client.connection_id,
                                           jwt_payload=payload_text(getattr(client, "token", None)))
            if not out.committed:
                return out.error or "client_connected failed"
            self.clients[id(client)] = _ClientState(client)
            self._regroup()
            client.push(encode_server(InitialConnection(client.identity, client.connection_id, client.token)))
            return None

    def disconnect(self, client) -> None:
        """Drop the client's query sets and run ``client_disconnected`` (other subscribers see its effects)."""
        with self.lock:
            st = self.clients.pop(id(client), None)
            if st is None:
                return
            self._regroup()
            for qs in st.sets.values():
                self._release(qs)
            try:
                out = self.db.client_disconnected(client.identity, client.connection_id)
                if not out.committed:
                    log.info("client_disconnected failed for %s: %s", client.identity, out.error)
            except Exception:  # noqa: BLE001 - a broken module must not break the server's cleanup
                log.exception("client_disconnected raised")

    def client_count(self) -> int:
        return len(self.clients)

    # ------------------------------------------------------------------ plans

    def _acquire(self, sql: str, sender: Identity) -> _PlanEntry:
        """The shared plan entry for ``sql`` as seen by ``sender``, with one more reference."""
        if self._cache is not None:
            plan = self._cache.subscribe(sql, sender)
        else:
            plan = _fallback_compile(self.db, sql, sender)
        key = _plan_key(plan)
        e = self._plans.get(key)
        if e is None:
            e = self._plans[key] = _PlanEntry(plan, plan.table_name, self._is_event(plan))
        e.refs += 1
        return e

    def _drop(self, e: _PlanEntry) -> None:
        e.refs -= 1
        if self._cache is not None:
            self._cache.unsubscribe(e.plan)
        if e.refs <= 0:
            self._plans.pop(_plan_key(e.plan), None)

    def _release(self, qs: _QuerySet) -> None:
        for e in qs.plans:
            self._drop(e)

    def _one_off_plan(self, sql: str, sender: Identity):
        if self._cache is not None:
            return self._cache.get(sql, sender)
        return _fallback_compile(self.db, sql, sender)

    def _is_event(self, plan) -> bool:
        v = getattr(plan, "is_event", None)
        if v is not None:
            return bool(v)
        try:
            return bool(self.db.mdef.table(plan.table_name).is_event)
        except KeyError:
            return False

    # ------------------------------------------------------------------ requests

    def subscribe(self, client, request_id: int, query_set_id: int, query_strings: list[str]) -> None:
        with self.lock:
            st = self._state(client)
            if query_set_id in st.sets:
                raise FatalClientError(f"query set {query_set_id} is already subscribed")
            refused = _over_limits(st, query_strings)
            if refused is not None:
                client.push(encode_server(SubscriptionError(request_id, query_set_id, refused)))
                return
            entries: list[_PlanEntry] = []
            sql = None
            try:
                seen: set[str] = set()
                for sql in query_strings:
                    if sql in seen:  # identical strings inside one set are deduplicated
                        continue
                    seen.add(sql)
                    e = self._acquire(sql, client.identity)
                    if any(x is e for x in entries):  # same query written differently
                        self._drop(e)
                        continue
                    entries.append(e)
                sql = None
                with self.db.datastore.read() as r:
                    tables = _nonempty([SingleTableRows(e.table_name, row_list(list(e.plan.initial(r))))
                                        for e in entries])
            except Exception as e:  # noqa: BLE001 - parse/type/plan errors are reported, not fatal
                for x in entries:
                    self._drop(x)
                text = _error_text(e) if sql is None else f"{_error_text(e)}, executing: `{sql}`"  # as upstream
                client.push(encode_server(SubscriptionError(request_id, query_set_id, text)))
                return
            st.sets[query_set_id] = _QuerySet(query_set_id, entries)
            self._regroup()
            client.push(encode_server(SubscribeApplied(request_id, query_set_id, QueryRows(tables))))

    def unsubscribe(self, client, request_id: int, query_set_id: int, send_dropped_rows: bool) -> None:
        with self.lock:
            st = self._state(client)
            qs = st.sets.get(query_set_id)
            if qs is None:
                # upstream's text shows its subscription key: ((identity, connection id), query set id)
                text = (f"Subscription not found: ((Identity({client.identity.to_hex()}), "
                        f"ConnectionId({client.connection_id.to_u128():032x})), QuerySetId {{ id: {query_set_id} }})")
                client.push(encode_server(SubscriptionError(request_id, query_set_id, text)))
                return
            rows = None
            if send_dropped_rows:
                try:
                    with self.db.datastore.read() as r:
                        rows = QueryRows(_nonempty([SingleTableRows(e.table_name,
                                                                    row_list(list(e.plan.initial(r))))
                                                    for e in qs.plans]))
                except Exception as e:  # noqa: BLE001
                    log.exception("evaluating dropped rows failed")
                    rows = QueryRows([])
                    client.push(encode_server(SubscriptionError(request_id, query_set_id, _error_text(e))))
            del st.sets[query_set_id]
            self._release(qs)
            self._regroup()
            client.push(encode_server(UnsubscribeApplied(request_id, query_set_id, rows)))

    def one_off_query(self, client, request_id: int, sql: str) -> None:
        """One-off query in the subscription dialect: ``Ok(QueryRows)`` with one table, or ``Err(text)``."""
        with self.lock:
            try:
                _check_text(sql)
                plan = self._one_off_plan(sql, client.identity)
                with self.db.datastore.read() as r:
                    rows = list(plan.initial(r))
                result = Ok(QueryRows([SingleTableRows(plan.table_name, row_list(rows))]))
            except Exception as e:  # noqa: BLE001
                result = Err(_error_text(e))
            client.push(encode_server(OneOffQueryResult(request_id, result)))

    def call_reducer(self, client, request_id: int, reducer: str, args: bytes) -> None:
        """Run a reducer for ``client``: it gets one ``ReducerResult``; other affected subscribers get a
        ``TransactionUpdate`` from the commit hook."""
        db = self.db
        rdef = db.mdef.client_reducer(reducer)
        problem = None
        if rdef is None:
            problem = "no such reducer"  # upstream's words
            db.log_system(f'External attempt to call nonexistent reducer "{reducer}" failed. Have you run '
                          "`spacetime generate` recently?", reducer)
        elif rdef.lifecycle is not None:
            problem = f"can't directly call special {rdef.lifecycle} lifecycle reducer `{rdef.name}`"
        elif not rdef.client_callable and client.identity != self.db.owner:  # as /call
            problem = f"reducer `{rdef.name}` is not callable by clients"
        else:
            try:
                decode(rdef.params, bytes(args), db.mdef.typespace)
            except Exception as e:  # noqa: BLE001 - BsatnError and friends
                problem = f"invalid arguments for reducer {rdef.name}: {e}"
                db.log_system(f'External attempt to call reducer "{rdef.name}" failed, invalid arguments.\n'
                              "This is likely due to a mismatched client schema, have you run "
                              "`spacetime generate` recently?", rdef.name)
        if problem is not None:
            now = Timestamp(int(time.time() * 1e6))
            client.push(encode_server(ReducerResult(request_id, now, ReducerOutcome.InternalError(problem))))
            return
        with self.lock:
            # The commit hook answers the caller (ReducerResult Ok) right at the commit, before anything the
            # reducer scheduled to run immediately after it; failures are answered here.
            self._pending_call = (client, request_id)
            try:
                out = db.call_reducer(rdef.name, bytes(args), sender=client.identity,
                                      connection_id=client.connection_id)
                unanswered = self._pending_call is not None
            finally:
                self._pending_call = None
            if not unanswered:
                return
            ts = out.timestamp or Timestamp(int(time.time() * 1e6))
            if out.committed:  # no commit hook saw it (should not happen)
                res = ReducerOutcome.Ok(ReducerOk(b"", TransactionUpdate([])))
            elif out.status == "failed":
                res = ReducerOutcome.Err(reducer_error_bytes(out.error or ""))
            else:
                res = ReducerOutcome.InternalError(out.error or "the reducer failed")
            client.push(encode_server(ReducerResult(request_id, ts, res)))

    def call_procedure(self, client, request_id: int, procedure: str, args: bytes) -> None:
        db = self.db
        t0 = time.perf_counter()
        now = Timestamp(int(time.time() * 1e6))
        pdef = next((p for p in db.mdef.procedures if procedure in (p.name, p.source_name)), None)
        call = getattr(db, "call_procedure", None)
        if pdef is None:
            status = ProcedureStatus.InternalError(f"no such procedure: `{procedure}`")
        elif not callable(call):
            status = ProcedureStatus.InternalError("procedures are not supported by this host yet")
        else:
            try:
                decode(pdef.params, bytes(args), db.mdef.typespace)
            except Exception as e:  # noqa: BLE001
                status = ProcedureStatus.InternalError(f"invalid arguments for procedure {pdef.name}: {e}")
            else:
                status = self._run_procedure(call, client, pdef.name, bytes(args))
        dur = TimeDuration(int((time.perf_counter() - t0) * 1e6))
        client.push(encode_server(ProcedureResult(status, now, dur, request_id)))

    def _run_procedure(self, call, client, name: str, args: bytes):
        """Adapter for a future ``Database.call_procedure(name, args, sender=, connection_id=)`` returning an
        object with ``ok``/``committed``, ``value``/``return_value`` (BSATN bytes) and ``error``."""
        try:
            out = call(name, args, sender=client.identity, connection_id=client.connection_id)
        except Exception as e:  # noqa: BLE001
            return ProcedureStatus.InternalError(_error_text(e))
        ok = getattr(out, "ok", None)
        if ok is None:
            ok = getattr(out, "committed", True)
        if ok:
            value = getattr(out, "return_value", None)
            if value is None:
                value = getattr(out, "value", b"")
            return ProcedureStatus.Returned(bytes(value or b""))
        return ProcedureStatus.InternalError(str(getattr(out, "error", None) or "the procedure failed"))

    # ------------------------------------------------------------------ fan-out

    def on_commit(self, txdata, timestamp: Timestamp | None = None) -> None:
        """Send every affected subscriber its part of a committed transaction (call with ``db._lock`` held,
        right after the commit).  The client whose reducer call this is gets ``ReducerResult`` with its part."""
        pending, self._pending_call = self._pending_call, None
        caller = pending[0] if pending else None
        caller_update = TransactionUpdate([])
        if txdata is not None and not txdata.is_empty() and self._plans:
            try:
                caller_update = self._fan_out(txdata, caller) or caller_update
            except Exception:  # noqa: BLE001 - never break the reducer call that committed
                log.exception("subscription fan-out failed")
        if pending is not None:
            ts = timestamp or Timestamp(int(time.time() * 1e6))
            caller.push(encode_server(ReducerResult(pending[1], ts, ReducerOutcome.Ok(ReducerOk(b"", caller_update)))))

    def _fan_out(self, txdata, caller) -> TransactionUpdate | None:
        """Push TransactionUpdates to affected non-callers; return the caller's part."""
        changed = {d.table_name for d in txdata.tables.values()}
        results: dict[int, TableUpdateRows | None] = {}
        failed: dict[int, str] = {}
        with self.db.datastore.read() as r:
            for pid, e in list(self._plans.items()):
                if not _may_touch(e.plan, txdata, changed):
                    results[pid] = None
                    continue
                try:
                    ins, dels = e.plan.delta(txdata, r)
                    self.evaluations += 1
                except Exception as ex:  # noqa: BLE001 - the set is dropped with a SubscriptionError
                    failed[pid] = _error_text(ex)
                    results[pid] = None
                    continue
                if not ins and not dels:
                    results[pid] = None
                elif e.is_event:
                    results[pid] = TableUpdateRows.EventTable(EventTableRows(row_list(list(ins))))
                else:
                    results[pid] = TableUpdateRows.PersistentTable(
                        PersistentTableRows(row_list(list(ins)), row_list(list(dels))))
        if not failed and all(v is None for v in results.values()):
            return None  # nothing for anyone: skip the walk over every client (most commits under a load)
        if failed:
            for st in list(self.clients.values()):
                self._drop_failed(st, failed)
        bodies: dict[tuple, bytes] = {}
        caller_update = None
        for sig, members in self._signatures().items():
            shape = []
            for qsid, keys in sig:
                hit = tuple(k for k in keys if results.get(k) is not None)
                if hit:
                    shape.append((qsid, hit))
            if not shape:
                continue
            key = tuple(shape)
            body = bodies.get(key)
            for client in members:
                if client is caller:
                    caller_update = self._update(key, results)
                    continue
                if body is None:
                    body = bodies[key] = encode_server(self._update(key, results))
                client.push(body)
        return caller_update

    def _signatures(self) -> dict[tuple, list]:
        """Clients grouped by what they subscribed to (their query set ids and plans, in order): a commit's update
        is worked out once per group, not once per client (100 clients of one query are one group).  Rebuilt
        after a change to any client's query sets (``_regroup``); clients without query sets are left out."""
        groups = self._groups
        if groups is None:
            groups = {}
            for st in self.clients.values():
                if st.sets:
                    sig = tuple((qsid, tuple(_plan_key(e.plan) for e in qs.plans)) for qsid, qs in st.sets.items())
                    groups.setdefault(sig, []).append(st.client)
            self._groups = groups
        return groups

    def _regroup(self) -> None:
        """(lock held) A client or query set came or went: regroup before the next fan-out."""
        self._groups = None

    def _update(self, shape, results) -> TransactionUpdate:
        sets = []
        for qsid, hit in shape:
            by_table: dict[str, TableUpdate] = {}
            for pid in hit:
                e = self._plans[pid]
                tu = by_table.get(e.table_name)
                if tu is None:
                    tu = by_table[e.table_name] = TableUpdate(e.table_name, [])
                tu.rows.append(results[pid])
            sets.append(QuerySetUpdate(qsid, list(by_table.values())))
        return TransactionUpdate(sets)

    def _drop_failed(self, st: _ClientState, failed: dict[int, str]) -> None:
        for qsid, qs in list(st.sets.items()):
            err = next((failed[_plan_key(e.plan)] for e in qs.plans if _plan_key(e.plan) in failed), None)
            if err is not None:
                st.client.push(encode_server(SubscriptionError(None, qsid, err)))
                del st.sets[qsid]
                self._release(qs)
                self._regroup()

    def _state(self, client) -> _ClientState:
        st = self.clients.get(id(client))
        if st is None:
            st = self.clients[id(client)] = _ClientState(client)
        return st

    def subscriber_count(self) -> int:
        return sum(len(st.sets) for st in self.clients.values())


class QueryRefused(Exception):
    """A query over `query_text_bytes` or a subscription over `subscription_queries` (harness.limits)."""


def _check_text(sql: str) -> None:
    n = len(sql.encode("utf-8", "surrogatepass"))
    if n > LIMITS.query_text_bytes:
        raise QueryRefused(f"the query text is {n} bytes, more than {LIMITS.query_text_bytes} "
                           "(limit query_text_bytes)")


def _held(st: _ClientState) -> int:
    """Queries a client holds; an empty query set counts as one, so sets cannot be opened for free."""
    return sum(max(1, len(qs.plans)) for qs in st.sets.values())


def _over_limits(st: _ClientState, query_strings: list[str]) -> str | None:
    """Why a Subscribe is refused (before anything is compiled), or None."""
    try:
        for sql in query_strings:
            _check_text(sql)
    except QueryRefused as e:
        return str(e)
    total = _held(st) + max(1, len(set(query_strings)))
    if total > LIMITS.subscription_queries:
        return (f"this connection would hold {total} subscribed queries, more than {LIMITS.subscription_queries} "
                "(limit subscription_queries); unsubscribe some first")
    return None


def _plan_key(plan) -> Any:
    """Identity of a distinct query: harness.sql plans carry ``key`` (shared by all its subscribers)."""
    k = getattr(plan, "key", None)
    return k if k is not None else id(plan)


def _may_touch(plan, txdata, changed: set[str]) -> bool:
    """Cheap pre-check that lets fan-out skip plans the transaction cannot affect."""
    touches = getattr(plan, "touches", None)
    if callable(touches):
        return bool(touches(txdata))
    reads = getattr(plan, "read_tables", None)
    if isinstance(reads, (set, frozenset)):
        return bool(reads & changed)
    return True


def _nonempty(tables: list) -> list:
    """Upstream builds these answers from a database update, which lists only tables that have rows."""
    return [t for t in tables if len(t.rows)]


def _error_text(e: BaseException) -> str:
    s = str(e)
    return s if s else type(e).__name__


# ---------------------------------------------------------------------------------------------------------
# Fallback compiler (adapter): used only while harness.sql is absent.  `SELECT * FROM <table>` only.
# ---------------------------------------------------------------------------------------------------------

_SELECT_ALL = re.compile(r"^\s*select\s+\*\s+from\s+([A-Za-z_][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)


class _FallbackPlan:
    def __init__(self, db, table_name: str) -> None:
        self.table_name = table_name
        self.read_tables = frozenset({table_name})
        self._tid = db.table_id(table_name)

    def initial(self, read_tx) -> list[bytes]:
        return read_tx.scan_bsatn(self._tid)

    def delta(self, txdata, read_tx_after) -> tuple[list[bytes], list[bytes]]:
        d = txdata.tables.get(self._tid)
        if d is None:
            return [], []
        return list(d.inserts), list(d.deletes)


def _fallback_compile(db, sql: str, sender: Identity) -> _FallbackPlan:
    m = _SELECT_ALL.match(sql)
    if not m:
        raise ValueError(f"unsupported subscription query (harness.sql is not installed): {sql!r}")
    try:
        t = db.mdef.table(m.group(1))
    except KeyError:
        raise ValueError(f"no such table: `{m.group(1)}`") from None
    if not t.public and sender != db.owner:
        raise ValueError(f"table `{t.name}` is private")
    return _FallbackPlan(db, t.name)
