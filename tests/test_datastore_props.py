"""Property tests of harness.datastore against brute-force models (hypothesis)."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from harness.datastore import (
    UNBOUNDED,
    Bound,
    Datastore,
    Excluded,
    Included,
    IndexSchema,
    NoSuchRow,
    TableSchema,
    UniqueAlreadyExists,
)

try:
    from .test_datastore_helpers import Codec, People
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from test_datastore_helpers import Codec, People

# -- prefix + range scans vs brute force ----------------------------------------------------------
# row = (id, a, b, c); index over (a, b, c); b is ordered descending through a key_fn.
KEY_FNS = (None, lambda v: -v, None)
VAL = st.integers(0, 3)
ROW = st.tuples(VAL, VAL, VAL)


def sort_key(row: tuple) -> tuple:
    return (row[1], -row[2], row[3])


def bound_st() -> st.SearchStrategy[Bound]:
    return st.one_of(st.just(UNBOUNDED), VAL.map(Included), VAL.map(Excluded), st.integers(-1, 4).map(Included))


def in_bounds(v: int, start: Bound, end: Bound, key: Any) -> bool:
    kv = key(v)
    if isinstance(start, Included) and kv < key(start.value):
        return False
    if isinstance(start, Excluded) and kv <= key(start.value):
        return False
    if isinstance(end, Included) and kv > key(end.value):
        return False
    return not (isinstance(end, Excluded) and kv >= key(end.value))


def matches(row: tuple, prefix: tuple, start: Bound, end: Bound) -> bool:
    cols = row[1:]
    k = len(prefix)
    if cols[:k] != prefix:
        return False
    fn = KEY_FNS[k]
    return in_bounds(cols[k], start, end, fn if fn is not None else (lambda v: v))


def abc_table() -> tuple[Datastore, int, int, Codec]:
    codec = Codec("u32", "u8", "u8", "u8")
    ds = Datastore()
    tid = ds.create_table(
        TableSchema(
            "t",
            ("id", "a", "b", "c"),
            codec.decode,
            codec.encode,
            indexes=(IndexSchema("abc", (1, 2, 3), key_fns=KEY_FNS),),
        )
    )
    return ds, tid, ds.index_id("abc"), codec


def check_part(part: list[tuple], expected: list[tuple]) -> None:
    assert sorted(part) == sorted(expected)
    keys = [sort_key(r) for r in part]
    assert keys == sorted(keys), "each part must be in key order"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    committed=st.lists(ROW, max_size=25),
    tx_rows=st.lists(ROW, max_size=10),
    delete_mask=st.lists(st.booleans(), min_size=25, max_size=25),
    k=st.integers(0, 2),
    prefix=st.tuples(VAL, VAL),
    start=bound_st(),
    end=bound_st(),
)
def test_range_scan_matches_brute_force(
    committed: list, tx_rows: list, delete_mask: list, k: int, prefix: tuple, start: Bound, end: Bound
) -> None:
    ds, tid, iid, codec = abc_table()
    base = [(i,) + r for i, r in enumerate(committed)]
    tx = ds.begin()
    for r in base:
        tx.insert(tid, codec.encode(r))
    tx.commit()
    tx = ds.begin()
    new = [(100 + i,) + r for i, r in enumerate(tx_rows)]
    for r in new:
        tx.insert(tid, codec.encode(r))
    gone = [r for r, d in zip(base, delete_mask, strict=False) if d]
    tx.delete_all_by_eq(tid, [codec.encode(r) for r in gone])
    live = [r for r in base if r not in gone]
    p = prefix[:k]
    got = tx.index_range(iid, p, start, end)
    exp_tx = [r for r in new if matches(r, p, start, end)]
    exp_committed = [r for r in live if matches(r, p, start, end)]
    assert len(got) == len(exp_tx) + len(exp_committed)
    check_part(got[: len(exp_tx)], exp_tx)
    check_part(got[len(exp_tx) :], exp_committed)
    assert tx.index_range_bsatn(iid, p, start, end) == [codec.encode(r) for r in got]
    # delete exactly what the scan returns
    assert tx.delete_by_range(iid, p, start, end) == len(got)
    assert sorted(tx.scan(tid)) == sorted(r for r in live + new if not matches(r, p, start, end))
    tx.commit()
    with ds.read() as view:
        assert view.index_range(iid, p, start, end) == []
        full = view.index_range(iid, (), UNBOUNDED, UNBOUNDED)
        assert [sort_key(r) for r in full] == sorted(sort_key(r) for r in full)


# -- whole datastore vs a model, across commits and rollbacks ---------------------------------------
NAMES = ["a", "b", "c", "d", "e"]
IDS = st.integers(0, 6)  # 0 fires the sequence


class DatastoreMachine(RuleBasedStateMachine):
    """person(id pk auto_inc, name unique, age btree, city hash) vs dict models of committed + tx state."""

    def __init__(self) -> None:
        super().__init__()
        self.p = People()
        self.committed: dict[int, tuple] = {}  # pk -> row
        self.visible: dict[int, tuple] | None = None  # the tx's view, None when no tx is open
        self.tx = None
        self.seq = 1
        self.snap = self.p.ds.snapshot_state()

    # helpers
    def _id(self, id_: int) -> int:
        if id_ == 0:
            id_, self.seq = self.seq, self.seq + 1
        return id_

    def _by_name(self, name: str) -> tuple | None:
        return next((r for r in self.visible.values() if r[1] == name), None)

    # lifecycle
    @precondition(lambda self: self.tx is None)
    @rule()
    def begin(self) -> None:
        self.tx = self.p.ds.begin()
        self.visible = dict(self.committed)

    @precondition(lambda self: self.tx is not None)
    @rule()
    def commit(self) -> None:
        old = set(self.committed.values())
        data = self.tx.commit()
        self.committed = self.visible
        new = set(self.committed.values())
        delta = data.tables.get(self.p.tid)
        ins = set(delta.inserts.values()) if delta else set()
        dels = set(delta.deletes.values()) if delta else set()
        assert ins == new - old and dels == old - new
        if delta:
            assert all(self.p.enc(v) == b for b, v in delta.inserts.items())
        self.tx, self.visible = None, None
        self.snap = self.p.ds.snapshot_state()

    @precondition(lambda self: self.tx is not None)
    @rule()
    def rollback(self) -> None:
        self.tx.rollback()
        self.tx, self.visible = None, None
        state = self.p.ds.snapshot_state()
        assert state["tables"] == self.snap["tables"]  # rows bit-identical, same order

    # writes
    @precondition(lambda self: self.tx is not None)
    @rule(id_=IDS, name=st.sampled_from(NAMES), age=st.integers(0, 3), city=st.sampled_from("xy"))
    def insert(self, id_: int, name: str, age: int, city: str) -> None:
        row = (self._id(id_), name, age, city)
        raw = self.p.enc((id_, name, age, city))
        if row in self.visible.values():
            expect = "noop"
        elif row[0] in self.visible or self._by_name(name) is not None:
            expect = "unique"
        else:
            expect = "ok"
        try:
            res = self.tx.insert(self.p.tid, raw)
        except UniqueAlreadyExists:
            assert expect == "unique"
            return
        assert expect in ("ok", "noop"), expect
        assert res.values == row and res.generated == (((0, row[0]),) if id_ == 0 else ())
        self.visible[row[0]] = row

    @precondition(lambda self: self.tx is not None)
    @rule(id_=IDS, name=st.sampled_from(NAMES), age=st.integers(0, 3), by_pk=st.booleans())
    def update(self, id_: int, name: str, age: int, by_pk: bool) -> None:
        row = (self._id(id_), name, age, "x")
        old = self.visible.get(row[0]) if by_pk else self._by_name(name)
        if old is None:
            expect = "missing"
        elif old == row:
            expect = "noop"
        else:
            other = self._by_name(name) if by_pk else self.visible.get(row[0])
            expect = "unique" if other is not None and other != old else "ok"
        index = self.p.pk if by_pk else self.p.by_name
        try:
            self.tx.update(self.p.tid, index, self.p.enc((id_, name, age, "x")))
        except NoSuchRow:
            assert expect == "missing"
            return
        except UniqueAlreadyExists:
            assert expect == "unique"
            return
        assert expect in ("ok", "noop"), expect
        del self.visible[old[0]]
        self.visible[row[0]] = row

    @precondition(lambda self: self.tx is not None)
    @rule(id_=st.integers(1, 6))
    def delete_pk(self, id_: int) -> None:
        n = self.tx.delete_by_point(self.p.pk, (id_,))
        assert n == (1 if self.visible.pop(id_, None) else 0)

    @precondition(lambda self: self.tx is not None)
    @rule(lo=st.integers(0, 3), hi=st.integers(0, 3))
    def delete_age_range(self, lo: int, hi: int) -> None:
        n = self.tx.delete_by_range(self.p.by_age, (), Included(lo), Excluded(hi))
        doomed = [k for k, r in self.visible.items() if lo <= r[2] < hi]
        assert n == len(doomed)
        for k in doomed:
            del self.visible[k]

    @precondition(lambda self: self.tx is not None)
    @rule(city=st.sampled_from("xyz"))
    def delete_city(self, city: str) -> None:
        doomed = [k for k, r in self.visible.items() if r[3] == city]
        assert self.tx.delete_by_point(self.p.by_city, (city,)) == len(doomed)
        for k in doomed:
            del self.visible[k]

    @precondition(lambda self: self.tx is not None and self.visible)
    @rule(data=st.data())
    def delete_eq(self, data: st.DataObject) -> None:
        rows = data.draw(st.lists(st.sampled_from(sorted(self.visible.values())), max_size=3))
        assert self.tx.delete_all_by_eq(self.p.tid, [self.p.enc(r) for r in rows]) == len(set(rows))
        for r in rows:
            self.visible.pop(r[0], None)

    @precondition(lambda self: self.tx is not None)
    @rule()
    def clear(self) -> None:
        assert self.tx.clear(self.p.tid) == len(self.visible)
        self.visible = {}

    # invariants
    @invariant()
    def view_matches_model(self) -> None:
        if self.tx is not None:
            self._check(self.tx, self.visible)
        with self.p.ds.read() as r:
            self._check(r, self.committed, committed_only=True)

    def _check(self, view: Any, model: dict[int, tuple], committed_only: bool = False) -> None:
        p = self.p
        rows = sorted(model.values())
        assert view.row_count(p.tid) == len(rows)
        assert sorted(view.scan(p.tid)) == rows
        assert sorted(view.scan_bsatn(p.tid)) == sorted(p.enc(r) for r in rows)
        by_age = view.index_range(p.by_age, (), UNBOUNDED, UNBOUNDED)
        assert sorted(by_age) == rows
        if committed_only:
            assert [r[2] for r in by_age] == sorted(r[2] for r in rows)
            assert view.index_range(p.pk, (), UNBOUNDED, UNBOUNDED) == rows
        for name in NAMES:
            assert view.index_point(p.by_name, (name,)) == [r for r in rows if r[1] == name]
        for city in "xy":
            assert sorted(view.index_point(p.by_city, (city,))) == [r for r in rows if r[3] == city]


DatastoreMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestDatastoreMachine = DatastoreMachine.TestCase


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 3)), max_size=12, unique_by=lambda t: t[0]))
def test_snapshot_restore_and_replay_round_trip(people: list) -> None:
    src = People()
    replica = People()
    restored = People()
    log = []
    for i, (name, age) in enumerate(people):
        tx = src.ds.begin()
        tx.insert(src.tid, src.row(0, name, age))
        if i % 3 == 2:
            tx.delete_by_point(src.by_name, (people[i - 1][0],))
        log.append(tx.commit().to_plain())
    for plain in log:
        replica.ds.apply(replica.ds.txdata_from_plain(plain))
    restored.ds.restore_state(src.ds.snapshot_state())
    assert replica.ds.snapshot_state() == src.ds.snapshot_state()
    assert restored.ds.snapshot_state() == src.ds.snapshot_state()
