"""Evaluation of conjunctive queries (`check.CQ`) over a datastore read view, fully or incrementally.

`Fragment.run(rt, deltas)` enumerates the bindings of all slots: slots in `deltas` range over the given
signed rows (a transaction's inserts (+1) and deletes (-1)), other slots over the current state.  Join
order is chosen per call, starting from the smallest delta (or from an index lookup / the smallest table):
  * a slot joined to a bound slot on a column with an index -> one index lookup per binding;
  * joined on an unindexed column -> a hash table built from one scan of that table (O(|table|) per
    evaluation; subscriptions always have an index on at least one side, see subscription.py);
  * not joined (CROSS JOIN, /sql only) -> nested loop over a scan.
Bag semantics: a row returned through n join partners comes out n times (clients ref-count rows).

Incremental maintenance (`Fragment.delta`) is inclusion-exclusion over the changed slots S:
    Q(new) - Q(old) = sum over non-empty T subset of S of (-1)^(|T|+1) * Q(delta for T, new state elsewhere)
which for one table is just the filter over the changed rows, and for two tables is upstream's
dr*S' + R'*ds - dr*ds.  Only changed rows and index lookups are touched for indexed joins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import combinations

from harness.datastore import Included

from .check import _CMP, CQ, ir_slots


def compile_ir(ir):
    """IR tree -> fn(env) -> value (env: list of row tuples indexed by slot)."""
    tag = ir[0]
    if tag == "const":
        v = ir[1]
        return lambda env: v
    if tag == "col":
        s, c = ir[1], ir[2]
        return lambda env: env[s][c]
    if tag == "cmp":
        f = _CMP[ir[1]]
        a, b = ir[2], ir[3]
        if a[0] == "col" and b[0] == "const":
            s, c, v = a[1], a[2], b[1]
            return lambda env: f(env[s][c], v)
        if a[0] == "const" and b[0] == "col":
            v, s, c = a[1], b[1], b[2]
            return lambda env: f(v, env[s][c])
        if a[0] == "col" and b[0] == "col":
            s1, c1, s2, c2 = a[1], a[2], b[1], b[2]
            return lambda env: f(env[s1][c1], env[s2][c2])
        fa, fb = compile_ir(a), compile_ir(b)
        return lambda env: f(fa(env), fb(env))
    fns = [compile_ir(x) for x in ir[1]]
    if tag == "and":
        return lambda env: all(f(env) for f in fns)
    return lambda env: any(f(env) for f in fns)


def index_items(rt, iid: int, ncols: int, value) -> list[tuple[bytes, tuple]]:
    """(bsatn, values) of the rows whose first index column equals `value`."""
    try:
        if ncols == 1:
            t, rows = rt._point(iid, (value,))
        else:
            t, rows = rt._range(iid, (), Included(value), Included(value))
        return list(zip(rows, rt._values(t, rows)))
    except AttributeError:  # a read view without the internal helpers: two public calls
        if ncols == 1:
            return list(zip(rt.index_point_bsatn(iid, (value,)), rt.index_point(iid, (value,))))
        return list(zip(rt.index_range_bsatn(iid, (), Included(value), Included(value)),
                        rt.index_range(iid, (), Included(value), Included(value))))


class Fragment:
    """One compiled conjunctive query."""

    def __init__(self, cq: CQ):
        self.cq = cq
        self.n = len(cq.rels)
        self.tables = [r.table for r in cq.rels]
        self.ret = cq.ret
        self.always_false = any(c == ("const", False) for c in cq.conds)
        self.conds = [(ir_slots(c), compile_ir(c)) for c in cq.conds if c[0] != "const"]
        # join edges: slot -> [(my_col, other_slot, other_col)]
        self.edges: dict[int, list[tuple[int, int, int]]] = {i: [] for i in range(self.n)}
        for sa, ca, sb, cb in cq.joins:
            self.edges[sa].append((ca, sb, cb))
            self.edges[sb].append((cb, sa, ca))
            self.conds.append((frozenset((sa, sb)), compile_ir(("cmp", "=", ("col", sa, ca), ("col", sb, cb)))))
        # col = const conjuncts usable for an index lookup: slot -> [(col, value)]
        self.const_eq: dict[int, list[tuple[int, object]]] = {i: [] for i in range(self.n)}
        for c in cq.conds:
            if c[0] == "cmp" and c[1] == "=":
                a, b = c[2], c[3]
                if a[0] == "const":
                    a, b = b, a
                if a[0] == "col" and b[0] == "const":
                    self.const_eq[a[1]].append((a[2], b[1]))
        self.table_ids = frozenset(t.id for t in self.tables)

    # -- planning
    def _order(self, rt, deltas: dict) -> list[tuple[int, str, tuple]]:
        """[(slot, method, info)] with method in delta|delta_join|index|hash|scan|const_index."""
        remaining = set(range(self.n))
        plan = []
        bound: set[int] = set()

        def first_access(s):
            if s in deltas:
                return "delta", ()
            t = self.tables[s]
            if not t.is_event:
                for col, v in self.const_eq[s]:
                    lk = t.lookup.get(col)
                    if lk is not None:
                        return "const_index", (lk[0], lk[2], v)
            return "scan", ()

        while remaining:
            best = None
            for s in remaining:
                t = self.tables[s]
                edge = next(((mc, os, oc) for mc, os, oc in self.edges[s] if os in bound), None)
                if edge is not None:
                    mc = edge[0]
                    if s in deltas:
                        cand = (0, len(deltas[s]), s, "delta_join", edge)
                    elif not t.is_event and mc in t.lookup:
                        cand = (1, 0, s, "index", edge + t.lookup[mc][0::2])
                    else:
                        cand = (2, 0, s, "hash", edge)
                else:
                    m, info = first_access(s)
                    if m == "delta":
                        cand = (0 if not bound else 3, len(deltas[s]), s, m, info)
                    elif m == "const_index":
                        cand = (1 if not bound else 4, 0, s, m, info)
                    else:
                        size = len(self._event_rows.get(t.id, ())) if t.is_event else rt.row_count(t.id)
                        cand = (2 if not bound else 5, size, s, m, info)
                if best is None or cand[:2] < best[:2]:
                    best = cand
            _, _, s, m, info = best
            plan.append((s, m, info))
            bound.add(s)
            remaining.discard(s)
        return plan

    # -- evaluation
    def run(self, rt, deltas: dict | None = None, event_rows: dict | None = None) -> Iterator[tuple[bytes, list, int]]:
        """Yield (bsatn of the ret slot's row, env, weight) for every satisfying binding."""
        if self.always_false:
            return
        deltas = deltas or {}
        self._event_rows = event_rows or {}
        plan = self._order(rt, deltas)
        pos = {s: i for i, (s, _, _) in enumerate(plan)}
        checks: list[list] = [[] for _ in plan]
        for slots, fn in self.conds:
            checks[max(pos[s] for s in slots) if slots else 0].append(fn)
        n = self.n
        ret = self.ret
        if n == 1:
            s, m, info = plan[0]
            rows = self._rows(rt, s, m, info, deltas)
            fns = checks[0]
            env = [None]
            if not fns:
                for b, vals, w in rows:
                    env[0] = vals
                    yield b, env, w
                return
            if len(fns) == 1:
                f = fns[0]
                for b, vals, w in rows:
                    env[0] = vals
                    if f(env):
                        yield b, env, w
                return
            for b, vals, w in rows:
                env[0] = vals
                if all(f(env) for f in fns):
                    yield b, env, w
            return
        env: list = [None] * n
        benv: list = [None] * n
        access = [self._access(rt, s, m, info, deltas) for s, m, info in plan]
        slots = [s for s, _, _ in plan]

        def rec(i: int, w: int):
            if i == n:
                yield benv[ret], env, w
                return
            s = slots[i]
            fns = checks[i]
            for b, vals, sw in access[i](env):
                env[s] = vals
                benv[s] = b
                if all(f(env) for f in fns):
                    yield from rec(i + 1, w * sw)

        yield from rec(0, 1)

    def _state_items(self, rt, s: int) -> list[tuple[bytes, tuple]]:
        t = self.tables[s]
        if t.is_event:
            return self._event_rows.get(t.id, [])
        return rt.scan_items(t.id)

    def _rows(self, rt, s, m, info, deltas):
        if m == "delta":
            return deltas[s]
        if m == "const_index":
            iid, ncols, v = info
            return [(b, vals, 1) for b, vals in index_items(rt, iid, ncols, v)]
        return [(b, vals, 1) for b, vals in self._state_items(rt, s)]

    def _access(self, rt, s, m, info, deltas):
        if m in ("delta", "const_index", "scan"):
            rows = self._rows(rt, s, m, info, deltas)
            return lambda env: rows
        if m == "delta_join":
            mc, os_, oc = info
            table: dict = {}
            for r in deltas[s]:
                table.setdefault(r[1][mc], []).append(r)
            return lambda env: table.get(env[os_][oc], ())
        if m == "index":
            mc, os_, oc, iid, ncols = info
            return lambda env: [(b, vals, 1) for b, vals in index_items(rt, iid, ncols, env[os_][oc])]
        # hash join on an unindexed column: one scan of the table per evaluation
        mc, os_, oc = info
        table = {}
        for b, vals in self._state_items(rt, s):
            table.setdefault(vals[mc], []).append((b, vals, 1))
        return lambda env: table.get(env[os_][oc], ())

    def initial(self, rt) -> list[bytes]:
        out = []
        for b, _env, w in self.run(rt):
            out.extend([b] * w)
        return out

    def delta_counts(self, txdata, rt, counts: Counter) -> None:
        """Add this fragment's signed row multiplicities for the transaction to `counts`."""
        changed: dict[int, list] = {}
        event_rows: dict[int, list] = {}
        tables = txdata.tables
        for s, t in enumerate(self.tables):
            d = tables.get(t.id)
            if d is None:
                continue
            rows = [(b, v, 1) for b, v in d.inserts.items()]
            if t.is_event:
                event_rows[t.id] = list(d.inserts.items())
            else:
                rows.extend((b, v, -1) for b, v in d.deletes.items())
            if rows:
                changed[s] = rows
        if not changed:
            return
        keys = list(changed)
        for k in range(1, len(keys) + 1):
            sign = 1 if k % 2 else -1
            for subset in combinations(keys, k):
                for b, _env, w in self.run(rt, {s: changed[s] for s in subset}, event_rows):
                    counts[b] += sign * w
