"""Test-only helpers for the datastore tests: a tiny struct-based BSATN-like codec and table builders.

(The real codec lives in ``spacetime_core.sats``; the datastore must not depend on it.)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from harness.datastore import Datastore, IndexAlgo, IndexSchema, SequenceSchema, TableSchema

_FIXED = {"u8": "<B", "u32": "<I", "u64": "<Q", "i32": "<i", "i64": "<q"}


class Codec:
    """Encodes tuples of ints/strings: fixed-width little-endian ints, strings as u32 length + UTF-8."""

    def __init__(self, *kinds: str) -> None:
        self.kinds = kinds
        self.decodes = 0

    def encode(self, values: Sequence[Any]) -> bytes:
        assert len(values) == len(self.kinds), (values, self.kinds)
        out = bytearray()
        for kind, v in zip(self.kinds, values, strict=True):
            if kind == "str":
                b = v.encode()
                out += struct.pack("<I", len(b)) + b
            else:
                out += struct.pack(_FIXED[kind], v)
        return bytes(out)

    def decode(self, data: bytes) -> tuple:
        self.decodes += 1
        pos = 0
        vals: list[Any] = []
        try:
            for kind in self.kinds:
                if kind == "str":
                    (n,) = struct.unpack_from("<I", data, pos)
                    pos += 4
                    if pos + n > len(data):
                        raise ValueError("string runs past the end")
                    vals.append(bytes(data[pos : pos + n]).decode())
                    pos += n
                else:
                    fmt = _FIXED[kind]
                    vals.append(struct.unpack_from(fmt, data, pos)[0])
                    pos += struct.calcsize(fmt)
        except struct.error as e:
            raise ValueError(str(e)) from e
        if pos != len(data):
            raise ValueError("trailing bytes")
        return tuple(vals)


def person_schema(name: str = "person", *, event: bool = False, **kw: Any) -> TableSchema:
    """person(id u64 pk auto_inc, name str unique, age u32 btree, city str hash)."""
    codec = Codec("u64", "str", "u32", "str")
    return TableSchema(
        name,
        ("id", "name", "age", "city"),
        codec.decode,
        codec.encode,
        indexes=(
            IndexSchema(f"{name}_id_idx_btree", (0,), aliases=(f"{name}_id",)),
            IndexSchema(f"{name}_name_idx_btree", (1,)),
            IndexSchema(f"{name}_age_idx_btree", (2,)),
            IndexSchema(f"{name}_city_idx_hash", (3,), algo=IndexAlgo.HASH),
        ),
        unique_constraints=((0,), (1,)),
        sequences=(SequenceSchema(0),),
        primary_key=0,
        is_event=event,
        aliases=(name.capitalize(),),
        **kw,
    )


class People:
    """A datastore with one person table plus handy ids and an encoder."""

    def __init__(self, **kw: Any) -> None:
        self.ds = Datastore()
        self.tid = self.ds.create_table(person_schema(**kw))
        self.schema = self.ds.schema(self.tid)
        self.enc = self.schema.encode
        self.pk = self.ds.index_id("person_id_idx_btree")
        self.by_name = self.ds.index_id("person_name_idx_btree")
        self.by_age = self.ds.index_id("person_age_idx_btree")
        self.by_city = self.ds.index_id("person_city_idx_hash")

    def row(self, id_: int, name: str, age: int = 30, city: str = "x") -> bytes:
        return self.enc((id_, name, age, city))

    def add(self, *rows: tuple) -> None:
        tx = self.ds.begin()
        for r in rows:
            tx.insert(self.tid, self.enc(r))
        tx.commit()

    def committed(self) -> list[tuple]:
        with self.ds.read() as r:
            return r.scan(self.tid)
