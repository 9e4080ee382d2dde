"""TxRecord codec: hypothesis round trip, strict decoding, and storage through the commit log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.commitlog import CommitLog, RecordDecodeError, TxRecord, decode_tx, encode_tx

tables = st.dictionaries(st.integers(0, 2**32 - 1), st.lists(st.binary(max_size=64), max_size=8), max_size=6)
records = st.builds(
    TxRecord,
    tx_offset=st.integers(0, 2**64 - 1),
    timestamp_us=st.integers(-(2**63), 2**63 - 1),
    reducer=st.text(max_size=40),
    inserts=tables,
    deletes=tables,
    meta=st.binary(max_size=64),
)


@given(records)
def test_round_trip(rec: TxRecord) -> None:
    data = encode_tx(rec)
    assert decode_tx(data) == rec
    assert TxRecord.decode(memoryview(data)) == rec
    assert list(decode_tx(data).inserts) == list(rec.inserts)  # table order is kept


@settings(max_examples=30)
@given(records)
def test_every_truncation_and_trailing_byte_rejected(rec: TxRecord) -> None:
    data = rec.encode()
    for cut in range(len(data)):
        with pytest.raises(RecordDecodeError):
            decode_tx(data[:cut])
    with pytest.raises(RecordDecodeError, match="trailing"):
        decode_tx(data + b"\0")


def test_known_layout() -> None:
    rec = TxRecord(7, 1_000, "add", {4096: [b"\x01\x02"]}, {}, b"m")
    expected = (
        b"\x01" + (7).to_bytes(8, "little") + (1000).to_bytes(8, "little")
        + b"\x03\0\0\0add"
        + b"\x01\0\0\0" + (4096).to_bytes(4, "little") + b"\x01\0\0\0" + b"\x02\0\0\0\x01\x02"
        + b"\0\0\0\0"
        + b"\x01\0\0\0m"
    )  # fmt: skip
    assert rec.encode() == expected


def test_invalid_input() -> None:
    good = TxRecord(1, 2, "r").encode()
    with pytest.raises(RecordDecodeError, match="version"):
        decode_tx(b"\x03" + good[1:])
    with pytest.raises(RecordDecodeError):
        decode_tx(b"\x02" + good[1:])  # version 2 without its inputs field
    with pytest.raises(RecordDecodeError):
        decode_tx(good[:17] + b"\x01\0\0\0\xff" + good[21:])  # reducer name not UTF-8
    dup = (
        TxRecord(1, 2, "", {5: []})
        .encode()
        .replace(b"\x01\0\0\0\x05\0\0\0\0\0\0\0", b"\x02\0\0\0" + b"\x05\0\0\0\0\0\0\0" * 2)
    )
    with pytest.raises(RecordDecodeError, match="twice"):
        decode_tx(dup)
    with pytest.raises(RecordDecodeError, match="row count"):
        decode_tx(TxRecord(1, 2, "", {5: []}).encode().replace(b"\x05\0\0\0\0\0\0\0", b"\x05\0\0\0\xff\xff\xff\x7f"))
    with pytest.raises(ValueError):
        TxRecord(-1, 0, "r").encode()
    with pytest.raises(ValueError):
        TxRecord(0, 0, "r", {2**32: []}).encode()


def test_tx_records_through_the_log(tmp_path: Path) -> None:
    recs = [
        TxRecord(i, 1_700_000_000_000_000 + i, f"reducer_{i}", {1: [bytes([i])] * i}, {2: [b"d"]}) for i in range(10)
    ]
    with CommitLog(tmp_path, durability="every") as log:
        for r in recs:
            assert log.append(r.encode()) == r.tx_offset
    with CommitLog(tmp_path, durability="every") as log:
        assert [decode_tx(p) for _, p in log.replay()] == recs


def test_inputs_make_a_version_2_record_and_both_versions_read() -> None:
    v1 = TxRecord(7, 1_000, "add", {4096: [b"\x01\x02"]}, {}, b"m")
    v2 = TxRecord(7, 1_000, "add", {4096: [b"\x01\x02"]}, {}, b"m", inputs=b"\xaa" * 50)
    assert v1.encode()[0] == 1 and v2.encode()[0] == 2
    assert v2.encode() == v1.encode().replace(b"\x01", b"\x02", 1) + (50).to_bytes(4, "little") + b"\xaa" * 50
    assert decode_tx(v2.encode()) == v2 and decode_tx(v1.encode()) == v1
