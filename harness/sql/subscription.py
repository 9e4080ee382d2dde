"""Subscription queries: compile once, evaluate initially and incrementally per transaction.

    plan = compile_subscription(db, "SELECT * FROM person WHERE age > 18", sender)
    with db.datastore.read() as rt:
        rows = plan.initial(rt)                      # BSATN rows (a bag)
    ...after a commit that produced `txdata`:
    with db.datastore.read() as rt:
        inserts, deletes = plan.delta(txdata, rt)    # computed from txdata's changed rows only

`QueryCache` shares one plan among all subscribers of the same query (same normalized AST, same
visibility, and the same sender only if the query or an applied RLS filter uses `:sender`), so a
transaction is evaluated once per distinct query, however many clients subscribed to it.
"""

from __future__ import annotations

import threading
from collections import Counter

from spacetime_core.sats import Identity

from .check import CQ, Binder, catalog, expand_rls, ir_slots
from .engine import Fragment
from .errors import SqlError
from .parser import parse_subscription
from .vars import row_limit
from .views import ViewReadTx, materialize, placeholder, views_of


class SubscriptionPlan:
    """One subscription query, possibly several fragments after RLS expansion (their results are a union)."""

    def __init__(self, sql: str, key: tuple, table, fragments: list[Fragment], sender_dependent: bool, *,
                 views: dict | None = None, sender: Identity | None = None, db=None):
        self._db = db
        self.views = views or {}  # view id -> ViewInfo: evaluated by calling the views (views.py)
        self.sender = sender
        self._last: Counter | None = None  # a view query's result after the last commit (diffed per commit)
        self._reads: frozenset[int] | None = None  # tables its last evaluation read (None: unknown)
        self.sql = sql
        self.key = key
        self.table = table
        self.table_name: str = table.name
        self.table_id: int = table.id
        self.is_event: bool = table.is_event
        self.fragments = fragments
        self.sender_dependent = sender_dependent
        self.table_ids = frozenset().union(*(f.table_ids for f in fragments)) if fragments else frozenset()
        self.is_join = any(f.n > 1 for f in fragments)
        self._memo: tuple[object, tuple[list[bytes], list[bytes]]] | None = None
        self._memo_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SubscriptionPlan({self.sql!r}, table={self.table_name!r}, fragments={len(self.fragments)})"

    def touches(self, txdata) -> bool:
        """Can this transaction change the query's result?  (Cheap pre-check.)  A query over a view: one that
        changed a table read by its last evaluation (the views' reads and the query's own tables)."""
        if self.views:
            reads = self._reads
            return bool(txdata.tables) if reads is None else not reads.isdisjoint(txdata.tables)
        return not self.table_ids.isdisjoint(txdata.tables)

    def initial(self, read_tx) -> list[bytes]:
        """Current matching rows (BSATN, in table column order); a row reachable n ways appears n times."""
        if self.views:
            reads: set[int] = set()
            self._reads = None
            read_tx = ViewReadTx(read_tx, materialize(self._db, self.views, self.sender, reads))
            self._reads = frozenset(reads | {t for t in self.table_ids if t >= 0})
        out: list[bytes] = []
        for f in self.fragments:
            out.extend(f.initial(read_tx))
        if self.views:
            self._last = Counter(out)
        return out

    def delta(self, txdata, read_tx_after) -> tuple[list[bytes], list[bytes]]:
        """(inserts, deletes) the transaction caused, netted per row, from the changed rows only.

        `read_tx_after` must see the state right after `txdata` committed (e.g. the same read view used for
        all plans of that transaction).  The result for the last `txdata` object is memoized, so calling this
        once per subscriber costs one evaluation."""
        memo = self._memo
        if memo is not None and memo[0] is txdata:
            return memo[1]
        with self._memo_lock:
            memo = self._memo
            if memo is not None and memo[0] is txdata:
                return memo[1]
            result = self._delta(txdata, read_tx_after)
            self._memo = (txdata, result)
            return result

    def _delta(self, txdata, rt) -> tuple[list[bytes], list[bytes]]:
        if not self.touches(txdata):
            return [], []
        if self.views:  # re-evaluate and diff against the previous result
            old = self._last or Counter()
            new = Counter(self.initial(rt))
            counts = new
            counts.subtract(old)
        else:
            counts = Counter()
            for f in self.fragments:
                f.delta_counts(txdata, rt, counts)
        ins: list[bytes] = []
        dels: list[bytes] = []
        for row, c in counts.items():
            if c > 0:
                ins.extend([row] * c)
            elif c < 0:
                dels.extend([row] * -c)
        return ins, dels

    def estimate(self, read_tx) -> int:
        """Rows the initial evaluation would scan (for the row_limit check): table scans count fully,
        index lookups as the number of rows they return."""
        total = 0
        for f in self.fragments:
            plan = f._order(placeholder(read_tx, self.views) if self.views else read_tx, {}) \
                if not f.always_false else []
            est = 1
            for s, m, info in plan:
                t = f.tables[s]
                if m == "scan" and t.is_view:
                    est *= 1  # not known without calling the view
                elif m == "scan":
                    est *= read_tx.row_count(t.id) if not t.is_event else 0
                elif m == "hash":
                    est *= max(1, read_tx.row_count(t.id))
                elif m == "const_index":
                    from .engine import index_items

                    est *= len(index_items(read_tx, info[0], info[1], info[2]))
            total += est if plan else 0
        return total


def _is_owner(db, sender: Identity) -> bool:
    return sender == getattr(db, "owner", None)


def _subscription_cq(db, sql: str, sender: Identity, owner: bool):
    """Parse, resolve and check one subscription query -> (ast, CQ, return table, binder)."""
    ast = parse_subscription(sql)
    tables = ast.tables
    if len(tables) > 2:
        raise SqlError(f"Invalid number of tables in subscription: {len(tables)}")
    joined = len(tables) > 1
    if joined and ast.proj.table is None:
        raise SqlError("SELECT * is not supported for joins")
    cat = catalog(db)
    b = Binder(cat, tables, owner=owner, sender=sender, joined=joined)
    if ast.proj.table is not None:
        if ast.proj.table not in b.vars:
            raise SqlError(f"`{ast.proj.table}` is not in scope")
        ret = b.vars[ast.proj.table]
    else:
        ret = 0
    q = b.cq(ast)
    q.ret = ret
    if joined:
        _check_index_join(q, ast)
    return ast, q, b.rels[ret].table, b, cat


def _check_index_join(q: CQ, ast) -> None:
    """Refuse a join upstream cannot run as an index join (its subscriptions allow no other).

    Upstream plans `FROM a JOIN b ON a.x = b.y` as a hash join probing `b`, swapped to probe `a` when `a` is
    an unfiltered table and `b` is filtered (a WHERE conjunct on `b` alone, or a view: upstream filters a
    view's rows by caller), then turns it into an index join if the probed side has an index whose last
    column is its join column and whose other columns are fixed by `col = constant` conjuncts on that side."""
    if not q.joins:
        raise SqlError("Subscriptions require indexes on join columns")
    single = [(ir_slots(c), c) for c in q.conds]
    for sa, ca, sb, cb in q.joins:
        cols = {sa: ca, sb: cb}
        lhs, rhs = 0, 1
        if not _filtered(q, single, lhs) and _filtered(q, single, rhs):
            lhs, rhs = rhs, lhs
        t = q.rels[rhs].table
        fixed = {c[2][2] if c[2][0] == "col" else c[3][2] for s, c in single if s == {rhs} and _col_eq_const(c)}
        if not any(ix[-1] == cols[rhs] and set(ix[:-1]) <= fixed for ix in t.index_columns):
            raise SqlError("Subscriptions require indexes on join columns")
        if t.is_event:
            raise SqlError("Event tables cannot be used as the lookup table in subscription joins")


def _filtered(q: CQ, single, slot: int) -> bool:
    return q.rels[slot].table.is_view or any(s == {slot} for s, _ in single)


def _col_eq_const(c) -> bool:
    return c[0] == "cmp" and c[1] == "=" and {c[2][0], c[3][0]} == {"col", "const"}


def compile_subscription(db, sql: str, sender: Identity, *, owner: bool | None = None) -> SubscriptionPlan:
    """Compile one subscription-SQL query for `sender` (owner: defaults to sender == db.owner).

    Raises SqlError for anything the subscription dialect rejects; non-owners cannot see private tables
    and get the module's row-level-security filters applied."""
    if owner is None:
        owner = _is_owner(db, sender)
    ast, q, table, b, cat = _subscription_cq(db, sql, sender, owner)
    sender_dependent = b.has_param
    if owner:
        cqs = [q]
    else:
        cqs, rls_param = expand_rls(cat, q, sender)
        sender_dependent |= rls_param
    views = views_of(cqs)
    sender_dependent |= any(v.sender_dependent for v in views.values())
    key = (repr(ast), owner, sender.to_hex() if sender_dependent else None)
    plan = SubscriptionPlan(sql, key, table, [Fragment(c) for c in cqs], sender_dependent, views=views,
                            sender=sender, db=db)
    limit = row_limit(db)
    if limit is not None and not owner:
        with db.datastore.read() as rt:
            est = plan.estimate(rt)
        if est > limit:
            raise SqlError(f"Estimated cardinality ({est} rows) exceeds limit ({limit} rows)")
    return plan


class QueryCache:
    """Deduplicating registry of subscription plans for one database.

        cache = QueryCache(db)
        plan = cache.subscribe(sql, sender)        # compile or reuse; counts references
        ...
        updates = cache.evaluate(txdata, read_tx)  # {plan: (inserts, deletes)} for plans that changed
        cache.unsubscribe(plan)

    Identical queries (same normalized AST) share one plan unless they depend on the sender (`:sender`
    or a sender-dependent RLS filter), in which case each sender gets one plan.  `evaluate` touches each
    distinct plan once per transaction, and only plans reading a changed table.
    """

    def __init__(self, db):
        self.db = db
        self._plans: dict[tuple, SubscriptionPlan] = {}
        self._refs: Counter = Counter()
        self._by_request: dict[tuple, tuple] = {}
        self._by_table: dict[int, set[tuple]] = {}
        self._any_table: set[tuple] = set()  # plans over views: evaluated after every commit
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._plans)

    def plans(self) -> list[SubscriptionPlan]:
        return list(self._plans.values())

    def get(self, sql: str, sender: Identity, *, owner: bool | None = None) -> SubscriptionPlan:
        """The shared plan for this query and sender (compiled unless subscribed already); no reference taken.
        Only subscribed plans are remembered, so one-off queries leave nothing behind."""
        return self._get(sql, sender, owner)[0]

    def _get(self, sql: str, sender: Identity, owner: bool | None) -> tuple[SubscriptionPlan, tuple]:
        if owner is None:
            owner = _is_owner(self.db, sender)
        ast_key = repr(parse_subscription(sql))
        with self._lock:
            req = (ast_key, owner, sender.to_hex())
            key = self._by_request.get(req)
            if key is not None and key in self._plans:
                return self._plans[key], req
            plan = compile_subscription(self.db, sql, sender, owner=owner)
            existing = self._plans.get(plan.key)
            return (existing if existing is not None else plan), req

    def subscribe(self, sql: str, sender: Identity, *, owner: bool | None = None) -> SubscriptionPlan:
        with self._lock:
            plan, req = self._get(sql, sender, owner)
            if plan.key not in self._plans:
                self._plans[plan.key] = plan
                for tid in plan.table_ids:
                    self._by_table.setdefault(tid, set()).add(plan.key)
                if plan.views:
                    self._any_table.add(plan.key)
            self._by_request[req] = plan.key
            self._refs[plan.key] += 1
            return plan

    def unsubscribe(self, plan: SubscriptionPlan) -> None:
        with self._lock:
            self._refs[plan.key] -= 1
            if self._refs[plan.key] > 0:
                return
            del self._refs[plan.key]
            self._plans.pop(plan.key, None)
            self._any_table.discard(plan.key)
            for tid in plan.table_ids:
                keys = self._by_table.get(tid)
                if keys is not None:
                    keys.discard(plan.key)
                    if not keys:
                        del self._by_table[tid]
            self._by_request = {r: k for r, k in self._by_request.items() if k != plan.key}

    def evaluate(self, txdata, read_tx_after) -> dict[SubscriptionPlan, tuple[list[bytes], list[bytes]]]:
        """Deltas of every registered plan the transaction changed (each plan evaluated once)."""
        with self._lock:
            keys: set[tuple] = set(self._any_table) if txdata.tables else set()
            for tid in txdata.tables:
                keys |= self._by_table.get(tid, set())
            plans = [self._plans[k] for k in keys]
        out = {}
        for plan in plans:
            ins, dels = plan.delta(txdata, read_tx_after)
            if ins or dels:
                out[plan] = (ins, dels)
        return out
