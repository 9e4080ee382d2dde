"""Name resolution and type checking: parsed SQL -> conjunctive queries over table slots (`CQ`).

A `CQ` is `SELECT ... FROM r0 JOIN r1 ... WHERE c0 AND c1 ...`: relations ("slots"), equi-join edges and
typed predicate trees whose column references are (slot, column).  Literals are typed against the column
on the other side of each comparison (sql-subset.md §1.1); `:sender` becomes a constant.  Row-level
security replaces a relation by each of its table's filters (a union of CQs), see `expand_rls`.
"""

from __future__ import annotations

import operator as _op
import struct
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from spacetime_core.sats import BOOL, IDENTITY, ConnectionId, Identity, Timestamp, Uuid
from spacetime_core.sats.types import INT_RANGES, TAG_F32, TAG_F64
from spacetime_core.sats.values import _parse_rfc3339

from .errors import SqlError
from .parser import Cmp, Col, Lit, Logic, Param, Select, parse_subscription

# ---------------------------------------------------------------------------------------------------- types


def fmt_type(t) -> str:
    """Upstream's `fmt_algebraic_type` text for a type."""
    if t.is_primitive():
        return t.name
    if t.is_ref():
        return f"&{t.index}"
    if t.is_array():
        return f"Array<{fmt_type(t.elem)}>"
    if t.is_product():
        return "(" + ", ".join(f"{n if n is not None else i}: {fmt_type(ty)}"
                               for i, (n, ty) in enumerate(t.elements)) + ")"
    if t.is_sum():
        if not t.variants:
            return "(|)"
        return "(" + " | ".join(f"{n}: {fmt_type(ty)}" if n is not None else fmt_type(ty)
                                for n, ty in t.variants) + ")"
    return repr(t)


def _bool_t():
    return BOOL


def comparable(t) -> bool:
    return (t.is_bool() or t.is_integer() or t.is_float() or t.is_string() or t.is_bytes() or t.is_identity()
            or t.is_connection_id() or t.is_timestamp() or t.is_uuid())


def column_index(columns: tuple[str, ...], aliases: tuple[str, ...]) -> dict[str, int]:
    """Column position by name: the canonical names, and the module's own (source) names, which win a clash
    as in upstream's `get_column_by_name_or_alias` (`SELECT FirstName ...` for the column `first_name`)."""
    index = {c: i for i, c in enumerate(columns)}
    index.update((a, i) for i, a in enumerate(aliases))
    return index


class TableInfo:
    """What SQL needs to know about one table."""

    is_view = False

    def __init__(self, db, tdef):
        ts = db.mdef.typespace
        self.name = tdef.name
        self.tdef = tdef
        self.id = db.table_id(tdef.name)
        self.public = tdef.public
        self.is_event = tdef.is_event
        self.columns = tuple(tdef.column_names)
        self.declared_types = tuple(ty for _, ty in tdef.row_type.elements)
        self.types = tuple(ts.resolve(ty) if ty.is_ref() else ty for ty in self.declared_types)
        self.col_index = column_index(self.columns, tdef.column_aliases)
        # column -> (index_id, algo, n_columns): indexes usable for an equality lookup on that column
        self.lookup: dict[int, tuple[int, str, int]] = {}
        # every index's columns, in order: a subscription join may probe an index whose last column is the
        # join column (sql/subscription.py)
        self.index_columns: tuple[tuple[int, ...], ...] = tuple(
            tuple(ix.columns) for ix in db.datastore.schema(self.id).indexes)
        for ix in db.datastore.schema(self.id).indexes:
            algo = getattr(ix.algo, "name", str(ix.algo)).lower()
            c0 = ix.columns[0]
            if len(ix.columns) == 1 or algo == "btree":
                best = self.lookup.get(c0)
                if best is None or len(ix.columns) < best[2]:
                    self.lookup[c0] = (ix.index_id, algo, len(ix.columns))

    def column(self, name: str) -> int:
        i = self.col_index.get(name)
        if i is None:
            raise SqlError(f"`{self.name}` does not have a field `{name}`")
        return i


class Catalog:
    """Table lookup for one database, cached per module definition."""

    def __init__(self, db):
        self.db = db
        self.mdef = db.mdef
        self.tables: dict[str, TableInfo] = {}
        for t in db.mdef.tables:
            self.tables[t.name] = TableInfo(db, t)
        for t in db.mdef.tables:  # upstream's SQL also finds a table by its source name (before case conversion)
            self.tables.setdefault(t.source_name, self.tables[t.name])
        self.views: dict[str, object] = {}  # name -> ViewInfo (views.py), built on first use
        self._view_defs = {v.name: v for v in getattr(db.mdef, "views", ())}
        self._view_aliases = {v.source_name: v.name for v in self._view_defs.values()}  # ... and a view's
        self.rls_sql: dict[str, list[str]] = {}
        self._rls_checked: dict[str, list[Select]] | None = None

    def table(self, name: str, owner: bool) -> TableInfo:
        t = self.tables.get(name)
        if t is None and name not in self._view_defs:
            name = self._view_aliases.get(name, name)
        if t is None and name in self._view_defs:
            t = self.view(name)
        if t is None or (not owner and not t.public):
            raise SqlError(f"no such table: `{name}`. If the table exists, it may be marked private.")
        return t

    def view(self, name: str) -> TableInfo:
        """The view `name` as a virtual table (harness/sql/views.py)."""
        v = self.views.get(name)
        if v is None:
            from .views import ViewInfo

            vdef = self._view_defs[name]
            v = self.views[name] = ViewInfo(self.db, vdef, -1 - list(self._view_defs).index(name))
        if v.has_params:
            raise SqlError(f"view `{name}` takes parameters and cannot be queried")
        return v

    def rls(self) -> dict[str, list[Select]]:
        """Parsed RLS filters by returned table name."""
        if self._rls_checked is None:
            out: dict[str, list[Select]] = {}
            for sql in getattr(self.db.mdef, "row_level_security", ()) or ():
                ast = parse_subscription(sql)
                tables = ast.tables
                ret = tables[0].name if ast.proj.table is None else next(
                    (t.name for t in tables if t.var == ast.proj.table), ast.proj.table)
                out.setdefault(ret, []).append(ast)
            self._rls_checked = out
        return self._rls_checked


def catalog(db) -> Catalog:
    cat = getattr(db, "_sql_catalog", None)
    if cat is None or cat.db is not db or cat.mdef is not db.mdef:  # rebuilt after a module update
        cat = Catalog(db)
        try:
            db._sql_catalog = cat
        except AttributeError:
            pass
    return cat


# ---------------------------------------------------------------------------------------------------- literals


def _hex_bytes(text: str) -> bytes:
    h = text[2:] if text[:2] in ("0x", "0X") else text
    if len(h) % 2:
        h = "0" + h
    return bytes.fromhex(h)


def _fixed_hex(text: str, n: int) -> bytes:
    """Big-endian hex of at most n bytes -> n little-endian bytes."""
    b = _hex_bytes(text)
    if len(b) > n:
        raise ValueError
    return (bytes(n - len(b)) + b)[::-1]


def parse_literal(lit: Lit, ty, *, dml: bool = False):
    """The value of `lit` as type `ty`, or SqlError "The literal expression `…` cannot be parsed as type `…`"."""
    k, text = lit.kind, lit.text
    shown = text[2:] if k == "hex" and text[:2] in ("0x", "0X") else text  # upstream shows the digits only
    bad = SqlError(f"The literal expression `{shown}` cannot be parsed as type `{fmt_type(ty)}`")
    try:
        if ty.is_integer():
            if k != "num":
                raise bad
            d = Decimal(text)
            if not d.is_finite() or abs(d.adjusted()) > 100 or d != d.to_integral_value():
                raise bad
            v = int(d)
            lo, hi = INT_RANGES[ty.tag]
            if not lo <= v <= hi:
                raise bad
            return v
        if ty.is_float():
            if k != "num":
                raise bad
            v = float(text)
            if ty.tag == TAG_F32:
                if abs(v) > 3.4028235677973366e38:
                    return float("inf") if v > 0 else float("-inf")
                return struct.unpack("<f", struct.pack("<f", v))[0]
            assert ty.tag == TAG_F64
            return v
        if ty.is_string():
            if k != "str":
                raise bad
            return text
        if ty.is_bool():
            if k != "bool":
                raise bad
            return text == "true"
        if ty.is_bytes():
            if k == "hex" or (k == "str" and not dml):
                return _hex_bytes(text)
            raise bad
        if ty.is_identity():  # a hex literal needs every digit, as upstream's Identity::from_hex
            if (k == "hex" and len(shown) == 64) or (k == "str" and not dml):
                return Identity.from_bytes(_fixed_hex(text, 32))
            raise bad
        if ty.is_connection_id():
            if (k == "hex" and len(shown) == 32) or (k == "str" and not dml):
                return ConnectionId.from_bytes(_fixed_hex(text, 16))
            raise bad
        if ty.is_timestamp():
            if k == "str" and not dml:
                return Timestamp(_parse_rfc3339(text))
            raise bad
        if ty.is_uuid():
            if k == "str" and not dml:
                return Uuid.parse(text)
            raise bad
    except SqlError:
        raise
    except (ValueError, TypeError, InvalidOperation, OverflowError, struct.error):
        raise bad from None
    raise bad


# ---------------------------------------------------------------------------------------------------- IR
# Typed predicate trees: ("col", slot, col) | ("const", value) | ("cmp", op, a, b) | ("and"|"or", (items...))


@dataclass
class Rel:
    table: TableInfo
    var: str


@dataclass
class CQ:
    """A conjunctive query: relations, equi-join edges (slot_a, col_a, slot_b, col_b), conjuncts (IR)."""

    rels: list[Rel]
    joins: list[tuple[int, int, int, int]] = field(default_factory=list)
    conds: list[tuple] = field(default_factory=list)
    ret: int = 0  # slot whose rows a subscription / `t.*` returns

    def key(self) -> tuple:
        return (tuple(r.table.name for r in self.rels), tuple(self.joins), repr(self.conds), self.ret)


def conjuncts(ir) -> list[tuple]:
    if ir is None:
        return []
    if ir[0] == "and":
        return [c for x in ir[1] for c in conjuncts(x)]
    if ir == ("const", True):
        return []
    return [ir]


def remap(ir, m: dict[int, int]):
    tag = ir[0]
    if tag == "col":
        return ("col", m[ir[1]], ir[2])
    if tag == "const":
        return ir
    if tag == "cmp":
        return ("cmp", ir[1], remap(ir[2], m), remap(ir[3], m))
    return (tag, tuple(remap(x, m) for x in ir[1]))


def ir_slots(ir) -> frozenset[int]:
    tag = ir[0]
    if tag == "col":
        return frozenset((ir[1],))
    if tag == "const":
        return frozenset()
    if tag == "cmp":
        return ir_slots(ir[2]) | ir_slots(ir[3])
    return frozenset().union(*(ir_slots(x) for x in ir[1]))


class Binder:
    """Resolves names of one SELECT/UPDATE/DELETE against the catalog and types its expressions."""

    def __init__(self, cat: Catalog, tables, *, owner: bool, sender: Identity, joined: bool):
        self.cat = cat
        self.sender = sender
        self.rels: list[Rel] = []
        self.vars: dict[str, int] = {}
        self.joined = joined
        self.has_param = False
        for tref in tables:
            info = cat.table(tref.name, owner)
            if tref.var in self.vars:
                raise SqlError(f"Duplicate name `{tref.var}`")
            self.vars[tref.var] = len(self.rels)
            self.rels.append(Rel(info, tref.var))

    def col(self, c: Col) -> tuple[int, int]:
        if c.table is None:
            if self.joined:
                raise SqlError("Names must be qualified when using joins")
            slot = 0
        else:
            slot = self.vars.get(c.table)
            if slot is None:
                raise SqlError(f"`{c.table}` is not in scope")
        return slot, self.rels[slot].table.column(c.name)

    def col_type(self, slot: int, col: int):
        return self.rels[slot].table.types[col]

    def expr(self, e, expected=None, depth: int = 0):
        """Type `e` (expected type or None) -> (type, IR)."""
        if depth > 2_500:
            raise SqlError("Recursion limit exceeded, `type_expr`")
        if isinstance(e, Lit):
            if expected is None:
                raise SqlError("Cannot resolve type for literal expression")
            return expected, ("const", parse_literal(e, expected))
        if isinstance(e, Col):
            slot, col = self.col(e)
            ty = self.col_type(slot, col)
            if expected is not None and ty != expected:
                raise SqlError(f"Unexpected type: (expected) {fmt_type(expected)} != {fmt_type(ty)} (inferred)")
            return ty, ("col", slot, col)
        if isinstance(e, Param):
            if e.name != "sender":
                raise SqlError(f"`:{e.name}` is not in scope")
            self.has_param = True
            if expected is None or expected.is_identity():
                return (expected or IDENTITY), ("const", self.sender)
            if expected.is_bytes():
                return expected, ("const", self.sender.to_bytes())
            raise SqlError(f"Unexpected type: (expected) {fmt_type(expected)} != {fmt_type(IDENTITY)} (inferred)")
        if isinstance(e, Logic):
            if expected is not None and expected != BOOL:
                raise SqlError(f"Unexpected type: (expected) {fmt_type(expected)} != Bool (inferred)")
            items, stack = [], [e]
            while stack:  # flatten a left-deep AND/OR chain without recursion
                x = stack.pop()
                if isinstance(x, Logic) and x.op == e.op:
                    stack.append(x.rhs)
                    stack.append(x.lhs)
                else:
                    items.append(x)
            return BOOL, (e.op.lower(), tuple(self.expr(x, BOOL, depth + 1)[1] for x in items))
        if isinstance(e, Cmp):
            if expected is not None and expected != BOOL:
                raise SqlError(f"Unexpected type: (expected) {fmt_type(expected)} != Bool (inferred)")
            if isinstance(e.lhs, Lit) and isinstance(e.rhs, Lit):
                raise SqlError("Cannot resolve type for literal expression")
            if isinstance(e.lhs, Lit):
                ty, b = self.expr(e.rhs, None, depth + 1)
                _, a = self.expr(e.lhs, ty, depth + 1)
            else:
                ty, a = self.expr(e.lhs, None, depth + 1)
                _, b = self.expr(e.rhs, ty, depth + 1)
            if not comparable(ty):
                raise SqlError(f"Invalid binary operator `{e.op}` for type `{fmt_type(ty)}`")
            if a[0] == "const" and b[0] == "const":
                return BOOL, ("const", _CMP[e.op](a[1], b[1]))
            return BOOL, ("cmp", e.op, a, b)
        raise SqlError(f"Unsupported expression: {e}")

    def where(self, e) -> list[tuple]:
        if e is None:
            return []
        if isinstance(e, Lit) and e.kind == "bool":
            return [] if e.text == "true" else [("const", False)]
        _, ir = self.expr(e, _bool_t())
        return conjuncts(ir)

    def cq(self, sel: Select) -> CQ:
        q = CQ(list(self.rels))
        for j in sel.joins:
            if j.on is None:
                continue
            a, b = j.on
            sa, ca = self.col(a)
            sb, cb = self.col(b)
            ta, tb = self.col_type(sa, ca), self.col_type(sb, cb)
            if ta != tb:
                raise SqlError(f"Unexpected type: (expected) {fmt_type(ta)} != {fmt_type(tb)} (inferred)")
            if not comparable(ta):
                raise SqlError(f"Invalid binary operator `=` for type `{fmt_type(ta)}`")
            q.joins.append((sa, ca, sb, cb))
        q.conds = self.where(sel.where)
        return q


_CMP = {"=": _op.eq, "<>": _op.ne, "<": _op.lt, "<=": _op.le, ">": _op.gt, ">=": _op.ge}


# ---------------------------------------------------------------------------------------------------- RLS


def expand_rls(cat: Catalog, q: CQ, sender: Identity, *,
               _active: frozenset[str] = frozenset()) -> tuple[list[CQ], bool]:
    """Replace every relation whose table has RLS filters by each filter (a union); recursive, a table's
    own filters are not re-applied inside them.  Returns (CQs, whether any filter used :sender)."""
    rules = cat.rls()
    out = [q]
    has_param = False
    for slot, rel in enumerate(q.rels):
        name = rel.table.name
        if name not in rules or name in _active:
            continue
        nxt: list[CQ] = []
        for cur in out:
            for ast in rules[name]:
                fq, fp = _filter_cq(cat, ast, sender, _active | {name})
                has_param |= fp
                for f in fq:
                    nxt.append(_substitute(cur, slot, f))
        out = nxt
    return out, has_param


def _filter_cq(cat: Catalog, ast: Select, sender: Identity, active: frozenset[str]) -> tuple[list[CQ], bool]:
    b = Binder(cat, ast.tables, owner=True, sender=sender, joined=len(ast.tables) > 1)
    q = b.cq(ast)
    q.ret = 0 if ast.proj.table is None else b.vars.get(ast.proj.table, 0)
    # the filter's other relations are subject to their own RLS (its own table is not re-expanded)
    subs, p = expand_rls(cat, q, sender, _active=active)
    return subs, b.has_param or p


def _substitute(q: CQ, slot: int, f: CQ) -> CQ:
    """q with relation `slot` restricted by filter f (f.ret has the same table)."""
    m = {f.ret: slot}
    rels = list(q.rels)
    for i, r in enumerate(f.rels):
        if i != f.ret:
            m[i] = len(rels)
            rels.append(replace(r, var=f"{r.var}#{len(rels)}"))
    joins = list(q.joins) + [(m[a], ca, m[b], cb) for a, ca, b, cb in f.joins]
    conds = list(q.conds) + [remap(c, m) for c in f.conds]
    return CQ(rels, joins, conds, q.ret)
