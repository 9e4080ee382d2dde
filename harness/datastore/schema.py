"""Host-side table definitions handed to the datastore.

Rows are opaque to the datastore except through the caller's codec: ``decode``
turns a row's BSATN into a tuple of column values and ``encode`` does the
reverse (only needed when a sequence fills a column). Index ``key_fns`` map a
column value to something whose Python ordering/equality equals SATS ordering
(``None`` = use the value as is).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

KeyFn = Callable[[Any], Any]
RowDecoder = Callable[[bytes], tuple]
RowEncoder = Callable[[tuple], bytes]
RowCheck = Callable[[tuple], None]

I128_MAX = (1 << 127) - 1


class IndexAlgo(enum.IntEnum):
    """Index algorithm; values equal the ``RawIndexAlgorithm`` tags."""

    BTREE = 0
    HASH = 1
    DIRECT = 2  # behaves like BTREE here


def _tuple(value: Sequence[Any] | None) -> tuple | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True)
class IndexSchema:
    """One index. ``name`` is the canonical name; ``aliases`` (e.g. the source name) also resolve."""

    name: str
    columns: tuple[int, ...]
    algo: IndexAlgo = IndexAlgo.BTREE
    unique: bool = False
    aliases: tuple[str, ...] = ()
    key_fns: tuple[KeyFn | None, ...] | None = None
    index_id: int | None = None  # assigned by the datastore when None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "algo", IndexAlgo(self.algo))
        fns = _tuple(self.key_fns)
        if fns is not None and all(f is None for f in fns):
            fns = None
        object.__setattr__(self, "key_fns", fns)


@dataclass(frozen=True)
class SequenceSchema:
    """An auto-increment sequence on ``column`` (``RawSequenceDefV10``).

    ``max_value`` should be capped by the caller at the column type's maximum,
    since the encoder must be able to encode every generated value.
    """

    column: int
    start: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    increment: int = 1
    name: str | None = None


@dataclass(frozen=True)
class TableSchema:
    """One table.

    ``unique_constraints`` are column sets; each marks the index over the same
    column set unique (as RawConstraintDefV10 requires such an index to exist).
    ``row_check`` runs on every inserted/updated row after sequences fired and
    before anything is written; raising (e.g. ``ScheduleAtDelayTooLong``) aborts
    the write without a trace.
    """

    name: str
    columns: tuple[str, ...]
    decode: RowDecoder
    encode: RowEncoder
    indexes: tuple[IndexSchema, ...] = ()
    unique_constraints: tuple[tuple[int, ...], ...] = ()
    sequences: tuple[SequenceSchema, ...] = ()
    primary_key: int | None = None
    is_event: bool = False
    aliases: tuple[str, ...] = ()
    row_check: RowCheck | None = field(default=None, compare=False)
    table_id: int | None = None  # assigned by the datastore when None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "indexes", tuple(self.indexes))
        object.__setattr__(self, "unique_constraints", tuple(tuple(c) for c in self.unique_constraints))
        object.__setattr__(self, "sequences", tuple(self.sequences))
        object.__setattr__(self, "aliases", tuple(self.aliases))

    def index(self, name: str) -> IndexSchema:
        """The index called ``name`` (canonical or alias)."""
        for ix in self.indexes:
            if ix.name == name or name in ix.aliases:
                return ix
        raise KeyError(name)
