"""Automatic schema migration on republish (the simple subset of upstream's auto-migrate rules).

Allowed (applied without losing data):
  * add a table; add, remove or change an index that backs no unique constraint
  * add a column at the END of a table, when the module def carries a default value for it
    (existing rows get the default: BSATN of a product is its fields concatenated, so old row + default bytes)
  * change table visibility (public/private)
  * add, remove or change reducers, procedures, views, row-level-security rules, type names
Refused (MigrationError lists every one; republish with --delete-data / clear=True to drop the data instead):
  * remove a table; remove, rename, reorder or retype a column; add a column without a default or not at the end
  * change a primary key, add or remove a unique constraint, add/remove/change a sequence (auto_inc)
  * add, remove or change a table's schedule; turn a table into an event table or back
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spacetime_core.module_def import ModuleDef, TableDef
from spacetime_core.sats import ArrayType, PrimitiveType, ProductType, RefType, SumType, decoder, resolve


class MigrationError(Exception):
    """The new module needs a migration this host cannot do automatically; nothing was changed."""

    def __init__(self, incompatible: list[str]):
        self.incompatible = list(incompatible)
        lines = "\n".join(f"  - {c}" for c in self.incompatible)
        super().__init__(f"the new module is not compatible with the existing data "
                         f"({len(self.incompatible)} incompatible change(s)); to delete the data instead, "
                         f"publish with --delete-data (`spacetime-py publish --delete-data`; "
                         f"`update_module(wasm, clear=True)` in Python):\n{lines}")


@dataclass
class MigrationPlan:
    changes: list[str] = field(default_factory=list)  # human-readable, in order
    incompatible: list[str] = field(default_factory=list)
    appended: dict[str, bytes] = field(default_factory=dict)  # table -> default bytes to append to each row

    @property
    def ok(self) -> bool:
        return not self.incompatible


def same_type(a, ts_a, b, ts_b, seen: set | None = None) -> bool:
    """Structural equality of two types from two typespaces (names of fields/variants included)."""
    seen = set() if seen is None else seen
    if isinstance(a, RefType) and isinstance(b, RefType):
        key = (a.index, b.index)
        if key in seen:
            return True
        seen.add(key)
    a, b = resolve(a, ts_a), resolve(b, ts_b)
    if type(a) is not type(b):
        return False
    if isinstance(a, PrimitiveType):
        return a == b
    if isinstance(a, ArrayType):
        return same_type(a.elem, ts_a, b.elem, ts_b, seen)
    if isinstance(a, (ProductType, SumType)):
        return len(a.elements) == len(b.elements) and all(
            na == nb and same_type(ta, ts_a, tb, ts_b, seen)
            for (na, ta), (nb, tb) in zip(a.elements, b.elements, strict=True))
    return a == b


def _type_name(ty, ts) -> str:
    try:
        return repr(resolve(ty, ts))
    except Exception:  # noqa: BLE001 - only for a message
        return repr(ty)


def plan(old: ModuleDef, new: ModuleDef) -> MigrationPlan:
    out = MigrationPlan()
    old_tables = {t.name: t for t in old.tables}
    new_tables = {t.name: t for t in new.tables}
    for name in sorted(old_tables.keys() - new_tables.keys()):
        out.incompatible.append(f"table {name!r} was removed")
    for name in sorted(new_tables.keys() - old_tables.keys()):
        out.changes.append(f"add table {name!r}")
    for name in sorted(old_tables.keys() & new_tables.keys()):
        _table(old_tables[name], old, new_tables[name], new, out)
    for kind, a, b in (("reducer", old.reducers, new.reducers), ("procedure", old.procedures, new.procedures),
                       ("view", old.views, new.views)):
        an, bn = {f.name: f for f in a}, {f.name: f for f in b}
        out.changes += [f"add {kind} {n!r}" for n in sorted(bn.keys() - an.keys())]
        out.changes += [f"remove {kind} {n!r}" for n in sorted(an.keys() - bn.keys())]
        for n in sorted(an.keys() & bn.keys()):
            if not same_type(an[n].params, old.typespace, bn[n].params, new.typespace):
                out.changes.append(f"change parameters of {kind} {n!r}")
    return out


def _table(o: TableDef, om: ModuleDef, n: TableDef, nm: ModuleDef, out: MigrationPlan) -> None:
    t = o.name
    bad = out.incompatible.append
    ocols, ncols = o.row_type.elements, n.row_type.elements
    for i, (_oname, oty) in enumerate(ocols):
        if i >= len(ncols):
            bad(f"table {t!r}: column {o.column_names[i]!r} was removed")
            continue
        nty = ncols[i][1]
        if o.column_names[i] != n.column_names[i]:
            if o.column_names[i] in n.column_names:
                bad(f"table {t!r}: column {o.column_names[i]!r} moved from position {i} to "
                    f"{n.column_names.index(o.column_names[i])}")
            else:
                bad(f"table {t!r}: column {o.column_names[i]!r} was removed or renamed to {n.column_names[i]!r}")
        elif not same_type(oty, om.typespace, nty, nm.typespace):
            bad(f"table {t!r}: column {o.column_names[i]!r} changed type from {_type_name(oty, om.typespace)} "
                f"to {_type_name(nty, nm.typespace)}")
    appended = []
    for i in range(len(ocols), len(ncols)):
        cname = n.column_names[i]
        if cname in o.column_names:
            continue  # reported as a move above
        default = n.default_values.get(i)
        if default is None:
            bad(f"table {t!r}: new column {cname!r} has no default value (a column added to a table with data "
                "needs one, and must be the last)")
            continue
        try:
            _, end = decoder(ncols[i][1], nm.typespace)(default, 0)
            if end != len(default):
                raise ValueError("trailing bytes")
        except Exception as e:  # noqa: BLE001 - any decode failure is the module's fault
            bad(f"table {t!r}: the default value of new column {cname!r} does not decode: {e}")
            continue
        appended.append(default)
        out.changes.append(f"table {t!r}: add column {cname!r} with its default value")
    if appended and len(appended) == len(ncols) - len(ocols):
        out.appended[t] = b"".join(appended)
    if o.primary_key != n.primary_key:
        bad(f"table {t!r}: primary key changed from {_col(o, o.primary_key)} to {_col(n, n.primary_key)}")
    ou = {tuple(sorted(c)) for c in o.unique}
    nu = {tuple(sorted(c)) for c in n.unique}
    for c in sorted(nu - ou):
        bad(f"table {t!r}: unique constraint on {_cols(n, c)} was added")
    for c in sorted(ou - nu):
        bad(f"table {t!r}: unique constraint on {_cols(o, c)} was removed")
    oseq = {s.column: (s.start, s.min_value, s.max_value, s.increment) for s in o.sequences}
    nseq = {s.column: (s.start, s.min_value, s.max_value, s.increment) for s in n.sequences}
    for c in sorted(oseq.keys() | nseq.keys()):
        if c not in nseq:
            bad(f"table {t!r}: auto_inc sequence on {_col(o, c)} was removed")
        elif c not in oseq:
            bad(f"table {t!r}: auto_inc sequence on {_col(n, c)} was added")
        elif oseq[c] != nseq[c]:
            bad(f"table {t!r}: auto_inc sequence on {_col(n, c)} changed")
    osch = (o.schedule.reducer, o.schedule.at_column) if o.schedule else None
    nsch = (n.schedule.reducer, n.schedule.at_column) if n.schedule else None
    if osch != nsch:
        bad(f"table {t!r}: schedule changed from {osch} to {nsch}")
    if o.is_event != n.is_event:
        bad(f"table {t!r}: event-table flag changed to {n.is_event}")
    oix = {ix.name: ix for ix in o.indexes}
    nix = {ix.name: ix for ix in n.indexes}
    for name in sorted(nix.keys() - oix.keys()):
        out.changes.append(f"table {t!r}: add index {name!r}")
    for name in sorted(oix.keys() - nix.keys()):
        out.changes.append(f"table {t!r}: remove index {name!r}")
    for name in sorted(oix.keys() & nix.keys()):
        if (oix[name].algo, oix[name].columns) != (nix[name].algo, nix[name].columns):
            out.changes.append(f"table {t!r}: rebuild index {name!r}")
    if o.public != n.public:
        out.changes.append(f"table {t!r}: make {'public' if n.public else 'private'}")


def _col(t: TableDef, c: int | None) -> str:
    return "none" if c is None else repr(t.column_names[c]) if c < len(t.column_names) else str(c)


def _cols(t: TableDef, cols) -> str:
    return "(" + ", ".join(_col(t, c) for c in cols) + ")"
