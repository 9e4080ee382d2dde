"""TxRecord: the codec for the common payload shape, one committed transaction.

The commit log itself stores opaque bytes; this is the format the host uses for them. Rows are kept as
their BSATN bytes, so the codec never needs table schemas. Format version 1, little-endian::

    u8  version = 1
    u64 tx_offset
    i64 timestamp_us            microseconds since the Unix epoch
    u32 n | n bytes             reducer name, UTF-8
    u32 t                       inserts: number of tables, then t times:
        u32 table_id | u32 r | r times (u32 n | n bytes of BSATN row)
    u32 t                       deletes: same layout as inserts
    u32 n | n bytes             meta (opaque, e.g. caller identity / connection id)

Version 2 (written when `inputs` is set) appends::

    u32 n | n bytes             inputs (opaque: what produced the transaction, for replaying it)

Tables appear in dict order; decoding rejects truncated input and trailing bytes, and reads both versions.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .errors import RecordDecodeError

RECORD_VERSION = 1
RECORD_VERSION_INPUTS = 2
_HEAD = struct.Struct("<BQq")
_U32 = struct.Struct("<I")
_U32x2 = struct.Struct("<II")


@dataclass(frozen=True)
class TxRecord:
    tx_offset: int
    timestamp_us: int
    reducer: str
    inserts: dict[int, list[bytes]] = field(default_factory=dict)
    deletes: dict[int, list[bytes]] = field(default_factory=dict)
    meta: bytes = b""
    inputs: bytes = b""

    def encode(self) -> bytes:
        return pack_tx(self.tx_offset, self.timestamp_us, self.reducer, self.inserts, self.deletes, self.meta,
                       self.inputs)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> TxRecord:
        buf = bytes(data)
        try:
            version, tx_offset, timestamp_us = _HEAD.unpack_from(buf, 0)
            if version not in (RECORD_VERSION, RECORD_VERSION_INPUTS):
                raise RecordDecodeError(f"unknown TxRecord version {version}")
            pos = _HEAD.size
            name, pos = _read_bytes(buf, pos)
            inserts, pos = _read_tables(buf, pos)
            deletes, pos = _read_tables(buf, pos)
            meta, pos = _read_bytes(buf, pos)
            inputs = b""
            if version == RECORD_VERSION_INPUTS:
                inputs, pos = _read_bytes(buf, pos)
            reducer = name.decode("utf-8")
        except (struct.error, UnicodeDecodeError) as exc:
            raise RecordDecodeError(f"malformed TxRecord: {exc}") from exc
        if pos != len(buf):
            raise RecordDecodeError(f"{len(buf) - pos} trailing bytes after TxRecord")
        return cls(tx_offset, timestamp_us, reducer, inserts, deletes, meta, inputs)


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    end = pos + n
    if end > len(buf):
        raise RecordDecodeError(f"length {n} at byte {pos - 4} runs past the end")
    return buf[pos:end], end


def _read_tables(buf: bytes, pos: int) -> tuple[dict[int, list[bytes]], int]:
    (t,) = _U32.unpack_from(buf, pos)
    pos += 4
    tables: dict[int, list[bytes]] = {}
    for _ in range(t):
        table_id, r = _U32x2.unpack_from(buf, pos)
        pos += 8
        if r > len(buf) - pos:  # each row costs >= 4 bytes: refuse absurd counts before allocating
            raise RecordDecodeError(f"row count {r} at byte {pos - 4} exceeds the data")
        rows = []
        for _ in range(r):
            row, pos = _read_bytes(buf, pos)
            rows.append(row)
        if table_id in tables:
            raise RecordDecodeError(f"table {table_id} appears twice")
        tables[table_id] = rows
    return tables, pos


def pack_tx(tx_offset: int, timestamp_us: int, reducer: str, inserts: Mapping[int, Collection[bytes]],
            deletes: Mapping[int, Collection[bytes]], meta: bytes = b"", inputs: bytes = b"") -> bytes:
    """A TxRecord's bytes straight from its fields (the host's commit path: no record object, and the rows
    may be any sized collection of row bytes, e.g. a transaction delta's dict keyed by row).  `inputs` (the
    call's caller, connection and arguments, for replay) makes it a version-2 record."""
    try:
        name = reducer.encode("utf-8")
        parts: list[bytes] = [_HEAD.pack(RECORD_VERSION_INPUTS if inputs else RECORD_VERSION, tx_offset, timestamp_us),
                              _U32.pack(len(name)), name]
        for tables in (inserts, deletes):
            parts.append(_U32.pack(len(tables)))
            for table_id, rows in tables.items():
                parts.append(_U32x2.pack(table_id, len(rows)))
                for row in rows:
                    parts.append(_U32.pack(len(row)))
                    parts.append(row)
        parts.append(_U32.pack(len(meta)))
        parts.append(meta)
        if inputs:
            parts.append(_U32.pack(len(inputs)))
            parts.append(inputs)
        return b"".join(parts)
    except (struct.error, UnicodeEncodeError, TypeError) as exc:
        raise ValueError(f"cannot encode TxRecord: {exc}") from exc


def encode_tx(record: TxRecord) -> bytes:
    return record.encode()


def decode_tx(data: bytes | bytearray | memoryview) -> TxRecord:
    return TxRecord.decode(data)
