"""Unit tests of harness.datastore: constraints, errors, sequences, updates, deletes, scans, persistence."""

from __future__ import annotations

import threading
import time

import pytest

from harness.datastore import (
    I128_MAX,
    UNBOUNDED,
    BsatnDecodeError,
    Datastore,
    DatastoreError,
    Excluded,
    Included,
    IndexAlgo,
    IndexNotUnique,
    IndexSchema,
    NoSuchIndex,
    NoSuchRow,
    NoSuchTable,
    NotInTransaction,
    ReplayError,
    ScheduleAtDelayTooLong,
    SchemaError,
    SequenceSchema,
    TableSchema,
    TxAlreadyOpen,
    UniqueAlreadyExists,
    WrongIndexAlgo,
)

try:
    from .test_datastore_helpers import Codec, People, person_schema
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from test_datastore_helpers import Codec, People, person_schema


def snapshot(ds: Datastore) -> dict:
    return ds.snapshot_state()


# -- errors and catalogue -------------------------------------------------------------------------
def test_errnos() -> None:
    assert NotInTransaction.errno == 2
    assert BsatnDecodeError.errno == 3
    assert NoSuchTable.errno == 4
    assert NoSuchIndex.errno == 5
    assert WrongIndexAlgo.errno == 10
    assert UniqueAlreadyExists.errno == 12
    assert ScheduleAtDelayTooLong.errno == 13
    assert IndexNotUnique.errno == 14
    assert NoSuchRow.errno == 15
    for cls in (TxAlreadyOpen, SchemaError, ReplayError, DatastoreError):
        assert cls.errno is None
    assert issubclass(UniqueAlreadyExists, DatastoreError)


def test_lookups_by_name_and_alias() -> None:
    p = People()
    assert p.ds.table_id("person") == p.tid == p.ds.table_id("Person")
    assert p.ds.index_id("person_id") == p.pk
    tid, ix = p.ds.index_schema(p.by_city)
    assert tid == p.tid and ix.algo is IndexAlgo.HASH and not ix.unique
    assert p.ds.index_schema(p.by_name)[1].unique  # folded in from unique_constraints
    with pytest.raises(NoSuchTable):
        p.ds.table_id("nope")
    with pytest.raises(NoSuchIndex):
        p.ds.index_id("nope")
    with pytest.raises(NoSuchTable):
        p.ds.schema(1)
    tx = p.ds.begin()
    assert tx.table_id("person") == p.tid and tx.index_id("person_id") == p.pk
    with pytest.raises(NoSuchTable):
        tx.insert(999, b"")
    with pytest.raises(NoSuchTable):
        tx.row_count(999)
    with pytest.raises(NoSuchIndex):
        tx.index_point_bsatn(999, (1,))
    with pytest.raises(NoSuchIndex):
        tx.delete_by_range(999, (), UNBOUNDED, UNBOUNDED)
    tx.rollback()


@pytest.mark.parametrize(
    "change",
    [
        {"primary_key": 2},  # no unique index on age
        {"unique_constraints": ((2, 3),)},  # no index over {age, city}
        {"indexes": (IndexSchema("bad", (7,)),)},
        {"indexes": (IndexSchema("bad", ()),)},
        {"indexes": (IndexSchema("bad", (1, 1)),)},
        {"indexes": (IndexSchema("a", (1,)), IndexSchema("a", (2,)))},
        {"indexes": (IndexSchema("a", (1,), key_fns=(str, None)),)},
        {"sequences": (SequenceSchema(0), SequenceSchema(0))},
        {"sequences": (SequenceSchema(9),)},
        {"sequences": (SequenceSchema(0, increment=0),)},
        {"sequences": (SequenceSchema(0, start=5, max_value=4),)},
        {"sequences": (SequenceSchema(0, min_value=5, max_value=4),)},
    ],
)
def test_schema_errors(change: dict) -> None:
    from dataclasses import replace

    base = person_schema()
    if "indexes" in change and "primary_key" not in change:
        change = {**change, "primary_key": None, "unique_constraints": ()}
    ds = Datastore()
    with pytest.raises(SchemaError):
        ds.create_table(replace(base, **change))
    assert ds.table_ids() == []
    assert ds.create_table(base)  # nothing half-registered


def test_duplicate_names_and_ids() -> None:
    ds = Datastore()
    ds.create_table(person_schema())
    with pytest.raises(SchemaError):
        ds.create_table(person_schema())  # same table and index names
    codec = Codec("u32")
    with pytest.raises(SchemaError):
        ds.create_table(TableSchema("t", ("a",), codec.decode, codec.encode, indexes=(IndexSchema("person_id", (0,)),)))
    tid = ds.create_table(TableSchema("t", ("a",), codec.decode, codec.encode, table_id=7))
    assert tid == 7
    with pytest.raises(SchemaError):
        ds.create_table(TableSchema("u", ("a",), codec.decode, codec.encode, table_id=7))


def test_closed_and_nested_transactions() -> None:
    p = People()
    tx = p.ds.begin()
    with pytest.raises(TxAlreadyOpen):
        p.ds.begin()
    with pytest.raises(TxAlreadyOpen):
        p.ds.create_table(person_schema("other"))
    tx.commit()
    for call in (tx.commit, tx.rollback, lambda: tx.row_count(p.tid), lambda: tx.insert(p.tid, p.row(1, "a"))):
        with pytest.raises(NotInTransaction):
            call()
    with p.ds.begin() as tx2:  # context manager rolls back unless committed
        tx2.insert(p.tid, p.row(1, "a"))
    assert p.committed() == []
    p.ds.begin().rollback()


def test_decode_error() -> None:
    p = People()
    tx = p.ds.begin()
    with pytest.raises(BsatnDecodeError):
        tx.insert(p.tid, b"\x01\x02")
    with pytest.raises(BsatnDecodeError):
        tx.update(p.tid, p.pk, p.row(1, "a") + b"\x00")
    with pytest.raises(BsatnDecodeError):
        tx.index_point_bsatn(p.pk, (1, 2))  # wrong key arity
    with pytest.raises(BsatnDecodeError):
        tx.index_range_bsatn(p.pk, (1,), UNBOUNDED, UNBOUNDED)  # prefix covers every column
    assert tx.row_count(p.tid) == 0
    tx.rollback()


# -- inserts, set semantics, unique constraints ---------------------------------------------------
def test_set_semantics() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    tx = p.ds.begin()
    r = tx.insert(p.tid, p.row(1, "a", 1, "x"))  # identical to a committed row
    assert r.generated == ()
    tx.insert(p.tid, p.row(2, "b"))
    tx.insert(p.tid, p.row(2, "b"))  # identical to a tx row
    assert tx.row_count(p.tid) == 2
    data = tx.commit()
    assert list(data.tables[p.tid].inserts) == [p.row(2, "b")]


def test_unique_violation_leaves_no_trace() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    before = snapshot(p.ds)
    tx = p.ds.begin()
    tx.insert(p.tid, p.row(2, "b"))
    for row in (p.row(1, "z"), p.row(3, "a"), p.row(2, "c"), p.row(4, "b")):
        with pytest.raises(UniqueAlreadyExists) as ei:
            tx.insert(p.tid, row)
        assert ei.value.errno == 12 and ei.value.table_name == "person"
    e = ei.value
    assert (e.table_id, e.index_id, e.index_name, e.columns, e.value) == (
        p.tid,
        p.by_name,
        "person_name_idx_btree",
        ("name",),
        ("b",),
    )
    assert "person_name_idx_btree" in str(e)
    assert sorted(tx.scan(p.tid)) == [(1, "a", 1, "x"), (2, "b", 30, "x")]
    assert tx.index_point(p.by_name, ("b",)) == [(2, "b", 30, "x")]
    data = tx.commit()
    assert list(data.tables[p.tid].inserts) == [p.row(2, "b")]
    assert before["tables"][0][1] == [p.row(1, "a", 1, "x")]


def test_reinsert_deleted_row_and_key() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    tx = p.ds.begin()
    assert tx.delete_by_point(p.pk, (1,)) == 1
    tx.insert(p.tid, p.row(1, "a", 1, "x"))  # undelete: no net change
    assert tx.row_count(p.tid) == 1
    assert tx.commit().is_empty()
    tx = p.ds.begin()
    tx.delete_by_point(p.pk, (1,))
    tx.insert(p.tid, p.row(1, "a", 2, "y"))  # same unique keys, other row: fine after the delete
    with pytest.raises(UniqueAlreadyExists):
        tx.insert(p.tid, p.row(1, "a", 1, "x"))  # undelete now conflicts with the new row
    data = tx.commit()
    assert list(data.tables[p.tid].deletes) == [p.row(1, "a", 1, "x")]
    assert list(data.tables[p.tid].inserts) == [p.row(1, "a", 2, "y")]
    assert p.committed() == [(1, "a", 2, "y")]


def test_row_check_rejects_without_trace() -> None:
    def check(values: tuple) -> None:
        if values[2] > 100:
            raise ScheduleAtDelayTooLong("too far")

    p = People(row_check=check)
    tx = p.ds.begin()
    tx.insert(p.tid, p.row(0, "a", 1))
    with pytest.raises(ScheduleAtDelayTooLong):
        tx.insert(p.tid, p.row(0, "b", 101))
    with pytest.raises(ScheduleAtDelayTooLong):
        tx.update(p.tid, p.pk, p.row(1, "a", 500))
    assert tx.scan(p.tid) == [(1, "a", 1, "x")]
    tx.commit()


def test_insert_values_python_level() -> None:
    p = People()
    tx = p.ds.begin()
    r = tx.insert_values(p.tid, [0, "a", 5, "q"])
    assert r.values == (1, "a", 5, "q") and r.row == p.row(1, "a", 5, "q")
    tx.update_values(p.tid, p.pk, (1, "b", 6, "q"))
    assert tx.scan_items(p.tid) == [(p.row(1, "b", 6, "q"), (1, "b", 6, "q"))]
    tx.commit()


# -- sequences ------------------------------------------------------------------------------------
def seq_table(ds: Datastore, *seqs: SequenceSchema, kinds: tuple[str, ...] = ("i64", "i64", "str")) -> int:
    codec = Codec(*kinds)
    cols = tuple(f"c{i}" for i in range(len(kinds)))
    return ds.create_table(TableSchema("s", cols, codec.decode, codec.encode, sequences=seqs))


def test_sequences_fill_zero_only_in_column_order() -> None:
    ds = Datastore()
    tid = seq_table(ds, SequenceSchema(1), SequenceSchema(0, start=100, increment=10))
    tx = ds.begin()
    r = tx.insert(tid, ds.schema(tid).encode((0, 0, "a")))
    assert r.generated == ((0, 100), (1, 1)) and r.values == (100, 1, "a")
    r = tx.insert(tid, ds.schema(tid).encode((7, 0, "b")))  # explicit value kept
    assert r.generated == ((1, 2),) and r.values == (7, 2, "b")
    r = tx.insert(tid, ds.schema(tid).encode((5, 5, "c")))
    assert r.generated == ()
    assert tx.commit().sequences == {(tid, 0): 110, (tid, 1): 3}


def test_sequence_wraps_and_survives_rollback() -> None:
    ds = Datastore()
    tid = seq_table(ds, SequenceSchema(0, start=3, min_value=2, max_value=4, increment=1))
    enc = ds.schema(tid).encode
    tx = ds.begin()
    got = [tx.insert(tid, enc((0, i, "x"))).values[0] for i in range(5)]
    assert got == [3, 4, 2, 3, 4]
    tx.rollback()
    tx = ds.begin()
    assert tx.insert(tid, enc((0, 0, "x"))).values[0] == 2  # not reused after rollback
    tx.commit()


def test_sequence_defaults_and_negative_increment() -> None:
    ds = Datastore()
    tid = seq_table(
        ds,
        SequenceSchema(0, min_value=10),
        SequenceSchema(1, min_value=-5, max_value=-1, increment=-2),
    )
    t = ds._tables[tid]
    assert (t.sequences[0].start, t.sequences[0].max_value) == (10, I128_MAX)
    enc = ds.schema(tid).encode
    tx = ds.begin()
    vals = [tx.insert(tid, enc((0, 0, str(i)))).values for i in range(4)]
    assert [v[0] for v in vals] == [10, 11, 12, 13]
    assert [v[1] for v in vals] == [-1, -3, -5, -1]  # wraps to max when decrementing past min
    tx.commit()


def test_sequence_then_duplicate_unique_still_consumes() -> None:
    p = People()
    p.add((0, "a", 1, "x"))
    tx = p.ds.begin()
    with pytest.raises(UniqueAlreadyExists):
        tx.insert(p.tid, p.row(0, "a"))
    assert tx.insert(p.tid, p.row(0, "b")).values[0] == 3
    tx.commit()


# -- update ---------------------------------------------------------------------------------------
def test_update_paths() -> None:
    p = People()
    p.add((1, "a", 1, "x"), (2, "b", 2, "x"))
    tx = p.ds.begin()
    with pytest.raises(IndexNotUnique):
        tx.update(p.tid, p.by_age, p.row(1, "a", 1))
    with pytest.raises(NoSuchIndex):
        tx.update(p.tid, 999, p.row(1, "a"))
    with pytest.raises(NoSuchRow):
        tx.update(p.tid, p.pk, p.row(9, "z"))
    with pytest.raises(UniqueAlreadyExists):
        tx.update(p.tid, p.pk, p.row(1, "b"))  # name 'b' belongs to row 2
    assert sorted(tx.scan(p.tid)) == [(1, "a", 1, "x"), (2, "b", 2, "x")]
    r = tx.update(p.tid, p.pk, p.row(1, "a2", 10))
    assert r.generated == () and r.values == (1, "a2", 10, "x")
    tx.update(p.tid, p.by_name, p.row(2, "b", 20))  # update through another unique index
    tx.insert(p.tid, p.row(3, "c"))
    tx.update(p.tid, p.pk, p.row(3, "c", 7))  # updating a row inserted by this tx
    tx.update(p.tid, p.pk, p.row(3, "c", 7))  # identical: no-op
    assert sorted(tx.scan(p.tid)) == [(1, "a2", 10, "x"), (2, "b", 20, "x"), (3, "c", 7, "x")]
    data = tx.commit()
    d = data.tables[p.tid]
    assert sorted(d.deletes.values()) == [(1, "a", 1, "x"), (2, "b", 2, "x")]
    assert sorted(d.inserts.values()) == [(1, "a2", 10, "x"), (2, "b", 20, "x"), (3, "c", 7, "x")]


def test_update_index_of_other_table_and_sequence_first() -> None:
    ds = Datastore()
    tid = ds.create_table(person_schema())
    tid2 = ds.create_table(person_schema("pet"))
    enc = ds.schema(tid).encode
    tx = ds.begin()
    with pytest.raises(NoSuchIndex):
        tx.update(tid, ds.index_id("pet_id_idx_btree"), enc((1, "a", 1, "x")))
    tx.insert(tid, enc((0, "a", 1, "x")))
    # the pk sequence fires before the key lookup: 0 becomes 2, which does not exist
    with pytest.raises(NoSuchRow):
        tx.update(tid, ds.index_id("person_id"), enc((0, "a", 2, "x")))
    assert tx.row_count(tid2) == 0
    tx.commit()


# -- deletes --------------------------------------------------------------------------------------
def test_deletes_return_counts() -> None:
    p = People()
    p.add(*[(i, f"n{i}", i % 3, "c" + str(i % 2)) for i in range(1, 11)])
    tx = p.ds.begin()
    tx.insert(p.tid, p.row(11, "n11", 2, "c1"))
    assert tx.delete_by_point(p.by_age, (2,)) == 4  # 2, 5, 8 committed + 11 from tx
    assert tx.delete_by_point(p.by_age, (2,)) == 0
    assert tx.delete_by_point(p.by_city, ("c0",)) == 3  # hash point delete: 4, 6, 10
    assert tx.delete_by_range(p.pk, (), Included(1), Excluded(4)) == 2  # 1, 3 (2 already gone)
    assert tx.delete_all_by_eq(p.tid, [p.row(7, "n7", 1, "c1"), p.row(7, "n7", 1, "c1"), p.row(99, "x")]) == 1
    assert sorted(v[0] for v in tx.scan(p.tid)) == [9]
    assert tx.clear(p.tid) == 1
    assert tx.row_count(p.tid) == 0 and tx.scan_bsatn(p.tid) == []
    tx.insert(p.tid, p.row(1, "n1", 1, "c1"))  # re-insert after clear: undelete
    assert tx.clear(p.tid) == 1
    data = tx.commit()
    assert len(data.tables[p.tid].deletes) == 10 and not data.tables[p.tid].inserts
    assert p.committed() == []
    with p.ds.read() as r:
        assert r.index_range(p.by_age, (), UNBOUNDED, UNBOUNDED) == []


def test_hash_index_rejects_ranges() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    tx = p.ds.begin()
    for call in (tx.index_range_bsatn, tx.delete_by_range):
        with pytest.raises(WrongIndexAlgo):
            call(p.by_city, (), Included("x"), Included("x"))
    assert tx.index_point_bsatn(p.by_city, ("x",)) == [p.row(1, "a", 1, "x")]
    assert tx.row_count(p.tid) == 1
    tx.rollback()


# -- scan order -----------------------------------------------------------------------------------
def test_scan_orders() -> None:
    p = People()
    p.add((1, "a", 5, "x"), (2, "b", 1, "x"), (3, "c", 3, "x"))
    tx = p.ds.begin()
    tx.insert(p.tid, p.row(4, "d", 4))
    tx.insert(p.tid, p.row(5, "e", 0))
    tx.delete_by_point(p.pk, (3,))
    assert [v[0] for v in tx.scan(p.tid)] == [1, 2, 4, 5]  # committed first, then tx inserts in order
    # index scans: tx matches in key order, then committed matches in key order
    assert [v[2] for v in tx.index_range(p.by_age, (), UNBOUNDED, UNBOUNDED)] == [0, 4, 1, 5]
    assert [v[2] for v in tx.index_range(p.by_age, (), Excluded(0), Included(4))] == [4, 1]
    assert tx.index_range_bsatn(p.by_age, (), Included(4), Included(4)) == [p.row(4, "d", 4)]
    tx.commit()
    with p.ds.read() as r:
        assert [v[2] for v in r.index_range(p.by_age, (), UNBOUNDED, UNBOUNDED)] == [0, 1, 4, 5]


def test_multi_column_prefix_scans_spec_examples() -> None:
    codec = Codec("u32", "u32", "u32")
    ds = Datastore()
    tid = ds.create_table(
        TableSchema("t", ("a", "b", "c"), codec.decode, codec.encode, indexes=(IndexSchema("abc", (0, 1, 2)),))
    )
    iid = ds.index_id("abc")
    rows = [(a, b, c) for a in range(3) for b in range(3) for c in range(2)]
    tx = ds.begin()
    for r in reversed(rows):
        tx.insert(tid, codec.encode(r))
    tx.commit()
    with ds.read() as r:
        assert r.index_range(iid, (), UNBOUNDED, UNBOUNDED) == rows  # full sorted scan
        a1 = [x for x in rows if x[0] == 1]
        assert r.index_range(iid, (1,), UNBOUNDED, UNBOUNDED) == a1
        assert r.index_range(iid, (), Included(1), Included(1)) == a1
        assert r.index_range(iid, (1,), Included(1), Excluded(2)) == [(1, 1, 0), (1, 1, 1)]
        assert r.index_range(iid, (1,), Excluded(0), UNBOUNDED) == [x for x in a1 if x[1] > 0]
        assert r.index_range(iid, (), Excluded(0), Excluded(2)) == a1
        assert r.index_range(iid, (2, 2), Included(1), Included(1)) == [(2, 2, 1)]  # point path
        assert r.index_range(iid, (2, 2), Included(1), Included(0)) == []
        assert r.index_point(iid, (0, 1, 1)) == [(0, 1, 1)]
        assert r.index_point_bsatn(iid, (0, 1, 1)) == [codec.encode((0, 1, 1))]
        assert r.row_count(tid) == len(rows)


def test_key_fn_orders_by_sats_order() -> None:
    # pretend the column is a sum type encoded as strings whose SATS order is by length then text
    codec = Codec("str")
    ds = Datastore()
    tid = ds.create_table(
        TableSchema(
            "t",
            ("s",),
            codec.decode,
            codec.encode,
            indexes=(IndexSchema("s_idx", (0,), key_fns=(lambda s: (len(s), s),)),),
        )
    )
    iid = ds.index_id("s_idx")
    tx = ds.begin()
    for s in ["bbb", "a", "cc", "ab"]:
        tx.insert(tid, codec.encode((s,)))
    tx.commit()
    with ds.read() as r:
        assert [v[0] for v in r.index_range(iid, (), UNBOUNDED, UNBOUNDED)] == ["a", "ab", "cc", "bbb"]
        assert [v[0] for v in r.index_range(iid, (), Excluded("zz"), UNBOUNDED)] == ["bbb"]
        assert r.index_point(iid, ("cc",)) == [("cc",)]


# -- transactions ---------------------------------------------------------------------------------
def test_rollback_restores_everything_and_reads_own_writes() -> None:
    p = People()
    p.add((1, "a", 1, "x"), (2, "b", 2, "y"))
    before = snapshot(p.ds)
    tx = p.ds.begin()
    tx.insert(p.tid, p.row(3, "c", 3))
    tx.update(p.tid, p.pk, p.row(1, "a", 9))
    tx.delete_by_point(p.pk, (2,))
    assert sorted(tx.scan(p.tid)) == [(1, "a", 9, "x"), (3, "c", 3, "x")]
    assert tx.index_point(p.by_name, ("c",)) == [(3, "c", 3, "x")]
    assert tx.index_point(p.pk, (2,)) == []
    with p.ds.read() as r:  # another reader of committed state (same thread: the lock is reentrant)
        assert sorted(r.scan(p.tid)) == [(1, "a", 1, "x"), (2, "b", 2, "y")]
    tx.rollback()
    after = snapshot(p.ds)
    after["sequences"] = before["sequences"]
    assert after == before
    with p.ds.read() as r:
        assert r.index_range(p.by_age, (), UNBOUNDED, UNBOUNDED) == [(1, "a", 1, "x"), (2, "b", 2, "y")]


def test_readers_block_commit_not_writer() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    reader = p.ds.read()
    committed = threading.Event()

    def writer() -> None:
        tx = p.ds.begin()
        tx.insert(p.tid, p.row(2, "b"))
        tx.commit()
        committed.set()

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.05)
    assert not committed.is_set()
    assert reader.scan(p.tid) == [(1, "a", 1, "x")]
    reader.close()
    th.join(5)
    assert committed.is_set() and len(p.committed()) == 2


def test_second_writer_waits() -> None:
    p = People()
    tx = p.ds.begin()
    started = threading.Event()
    done = threading.Event()

    def other() -> None:
        started.set()
        t2 = p.ds.begin()
        t2.insert(p.tid, p.row(2, "b"))
        t2.commit()
        done.set()

    th = threading.Thread(target=other)
    th.start()
    started.wait()
    time.sleep(0.05)
    assert not done.is_set()
    tx.insert(p.tid, p.row(1, "a"))
    tx.commit()
    th.join(5)
    assert done.is_set() and sorted(v[0] for v in p.committed()) == [1, 2]


def test_event_table() -> None:
    p = People(event=True)
    tx = p.ds.begin()
    tx.insert(p.tid, p.row(0, "a"))
    tx.insert(p.tid, p.row(0, "b"))
    assert tx.row_count(p.tid) == 2 and tx.index_point(p.by_name, ("a",))
    tx.delete_by_point(p.by_name, ("b",))
    data = tx.commit()
    assert list(data.tables[p.tid].inserts.values()) == [(1, "a", 30, "x")]
    assert p.committed() == [] and p.ds.snapshot_state()["tables"] == []
    p.add((1, "a", 30, "x"))  # the same row again: not a duplicate, the first never landed
    other = Datastore()
    other.create_table(person_schema(event=True))
    other.apply(other.txdata_from_plain(data.to_plain()))
    with other.read() as r:
        assert r.row_count(p.tid) == 0


# -- schema changes -------------------------------------------------------------------------------
def test_add_index_on_populated_table() -> None:
    p = People()
    p.add((1, "a", 1, "x"), (2, "b", 1, "y"), (3, "c", 2, "y"))
    iid = p.ds.add_index(p.tid, IndexSchema("person_city_age", (3, 2), aliases=("by_city_age",)))
    assert p.ds.index_id("by_city_age") == iid
    assert iid in [ix.index_id for ix in p.ds.schema(p.tid).indexes]
    with p.ds.read() as r:
        assert r.index_range(iid, ("y",), UNBOUNDED, UNBOUNDED) == [(2, "b", 1, "y"), (3, "c", 2, "y")]
    with pytest.raises(UniqueAlreadyExists):
        p.ds.add_index(p.tid, IndexSchema("uniq_age", (2,), unique=True))
    with pytest.raises(NoSuchIndex):
        p.ds.index_id("uniq_age")
    assert len(p.ds.schema(p.tid).indexes) == 5
    uid = p.ds.add_index(p.tid, IndexSchema("uniq_city_age", (3, 2), unique=True))
    tx = p.ds.begin()
    with pytest.raises(UniqueAlreadyExists):
        tx.insert(p.tid, p.row(4, "d", 2, "y"))
    assert tx.update(p.tid, uid, p.row(3, "c2", 2, "y")).values == (3, "c2", 2, "y")
    tx.commit()
    p.ds.drop_index(uid)
    with pytest.raises(NoSuchIndex):
        p.ds.index_schema(uid)
    with pytest.raises(SchemaError):
        p.ds.drop_index(p.pk)
    p.add((4, "d", 2, "y"))


def test_drop_table() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    p.ds.drop_table(p.tid)
    with pytest.raises(NoSuchTable):
        p.ds.table_id("person")
    with pytest.raises(NoSuchIndex):
        p.ds.index_id("person_id")
    with pytest.raises(NoSuchTable):
        p.ds.drop_table(p.tid)
    p.ds.create_table(person_schema())  # names are free again


# -- persistence ----------------------------------------------------------------------------------
def test_snapshot_restore_round_trip() -> None:
    p = People()
    p.add((0, "a", 1, "x"), (0, "b", 2, "y"))
    state = p.ds.snapshot_state()
    assert state == {"tables": [[p.tid, [p.row(1, "a", 1, "x"), p.row(2, "b", 2, "y")]]], "sequences": [[p.tid, 0, 3]]}
    fresh = People()
    fresh.add((50, "zzz", 1, "x"))
    fresh.ds.restore_state(state)
    assert fresh.ds.snapshot_state() == state
    with fresh.ds.read() as r:
        assert r.index_point(fresh.by_name, ("b",)) == [(2, "b", 2, "y")]
        assert r.index_point(fresh.by_name, ("zzz",)) == []
    tx = fresh.ds.begin()
    assert tx.insert(fresh.tid, fresh.row(0, "c")).values[0] == 3
    tx.commit()


def test_restore_is_atomic() -> None:
    p = People()
    p.add((1, "a", 1, "x"))
    before = p.ds.snapshot_state()
    bad = {"tables": [[p.tid, [p.row(5, "q"), p.row(6, "q")]]], "sequences": []}  # duplicate name
    with pytest.raises(UniqueAlreadyExists):
        p.ds.restore_state(bad)
    with pytest.raises(BsatnDecodeError):
        p.ds.restore_state({"tables": [[p.tid, [b"\x00"]]]})
    with pytest.raises(NoSuchTable):
        p.ds.restore_state({"tables": [[12345, []]]})
    with pytest.raises(ReplayError):
        p.ds.restore_state({"tables": [], "sequences": [[p.tid, 0, 0]]})  # below min
    assert p.ds.snapshot_state() == before


def test_apply_txdata_round_trip() -> None:
    src, dst = People(), People()
    for batch in ([(0, "a", 1, "x"), (0, "b", 2, "y")], [(0, "c", 3, "z")]):
        tx = src.ds.begin()
        for r in batch:
            tx.insert(src.tid, src.enc(r))
        dst.ds.apply(dst.ds.txdata_from_plain(tx.commit().to_plain()))
    tx = src.ds.begin()
    tx.update(src.tid, src.pk, src.row(1, "a", 10))
    tx.delete_by_point(src.by_name, ("b",))
    data = tx.commit()
    dst.ds.apply(data)
    assert dst.ds.snapshot_state() == src.ds.snapshot_state()
    with pytest.raises(ReplayError):
        dst.ds.apply(data)  # the deleted rows are gone now
    before = dst.ds.snapshot_state()
    dup = dst.ds.txdata_from_plain({"tables": [[dst.tid, [dst.row(1, "a", 10)], []]]})
    with pytest.raises(ReplayError):
        dst.ds.apply(dup)
    clash = dst.ds.txdata_from_plain({"tables": [[dst.tid, [dst.row(9, "a")], []]]})
    with pytest.raises(UniqueAlreadyExists):
        dst.ds.apply(clash)
    assert dst.ds.snapshot_state() == before
    zero = dst.ds.txdata_from_plain({"tables": [[dst.tid, [dst.row(0, "zero")], []]]})
    dst.ds.apply(zero)  # replay does not fire sequences
    with dst.ds.read() as r:
        assert r.index_point(dst.pk, (0,)) == [(0, "zero", 30, "x")]


def test_txdata_plain_format_and_read_view_lifecycle() -> None:
    p = People()
    assert not p.ds.in_write_tx
    tx = p.ds.begin()
    assert p.ds.in_write_tx
    tx.insert(p.tid, p.row(0, "a"))
    data = tx.commit()
    assert not p.ds.in_write_tx
    assert data.to_plain() == {"tables": [[p.tid, [p.row(1, "a")], []]], "sequences": [[p.tid, 0, 2]]}
    assert p.ds.txdata_from_plain(data.to_plain()) == data
    assert [ix.index_id for ix in p.ds.schema(p.tid).indexes] == [p.pk, p.by_name, p.by_age, p.by_city]
    view = p.ds.read()
    assert view.index_point_bsatn(p.pk, (1,)) == [p.row(1, "a")]
    view.close()
    view.close()  # idempotent
    with pytest.raises(NotInTransaction):
        view.scan(p.tid)
