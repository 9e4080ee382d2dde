"""Indexes over the rows of one table (the committed state, or one transaction's inserts).

Rows are identified by their BSATN bytes. Keys are always tuples (one element
per index column, after ``key_fns``), so single- and multi-column indexes share
one code path and a prefix of columns is a tuple prefix. A unique index maps
key -> row bytes; a non-unique one maps key -> {row bytes: None} (an ordered set).
Every index has that dict (point lookups and unique checks are O(1)); B-tree and
direct indexes add a ``SortedList`` of the keys for range seeks. A transaction's
overlay index builds its sorted keys only on its first range seek, because
creating sorted containers would dominate the cost of a small transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from .errors import BsatnDecodeError, WrongIndexAlgo
from .schema import IndexAlgo, IndexSchema, KeyFn


@dataclass(frozen=True, slots=True)
class Included:
    """Range bound that includes ``value`` (BSATN Bound tag 0)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Excluded:
    """Range bound that excludes ``value`` (BSATN Bound tag 1)."""

    value: Any


class Unbounded:
    """No bound (BSATN Bound tag 2); use the ``UNBOUNDED`` singleton."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNBOUNDED"


UNBOUNDED = Unbounded()
Bound = Included | Excluded | Unbounded


class _Top:
    """Sorts after every value, so ``prefix + (v, TOP)`` is above every key starting with ``prefix + (v,)``."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return other is self

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __ge__(self, other: object) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "TOP"


TOP = _Top()


def _key_getter(columns: tuple[int, ...], fns: tuple[KeyFn | None, ...] | None) -> Callable[[tuple], tuple]:
    if fns is None:
        if len(columns) == 1:
            (c,) = columns
            return lambda row: (row[c],)
        return itemgetter(*columns)
    pairs = tuple(zip(columns, fns, strict=True))
    return lambda row: tuple(row[c] if f is None else f(row[c]) for c, f in pairs)


class Index:
    """One index's map from key to row(s); knows nothing about transactions."""

    __slots__ = ("_fns", "_keys", "_map", "algo", "columns", "index_id", "key_of", "schema", "unique")

    def __init__(self, schema: IndexSchema, index_id: int, *, lazy_order: bool = False) -> None:
        self.schema = schema
        self.index_id = index_id
        self.columns = schema.columns
        self.unique = schema.unique
        self.algo = schema.algo
        self._fns = schema.key_fns
        self.key_of: Callable[[tuple], tuple] = _key_getter(self.columns, self._fns)
        self._map: dict = {}
        # sorted distinct keys; None = hash index, or not needed yet (built by the first range seek)
        self._keys: SortedList | None = None if lazy_order or self.algo is IndexAlgo.HASH else SortedList()

    def empty_like(self, *, lazy_order: bool = False) -> Index:
        """A fresh empty index with the same definition (``lazy_order`` for a transaction's overlay)."""
        new = Index.__new__(Index)
        new.schema = self.schema
        new.index_id = self.index_id
        new.columns = self.columns
        new.unique = self.unique
        new.algo = self.algo
        new._fns = self._fns
        new.key_of = self.key_of
        new._map = {}
        new._keys = None if lazy_order or self.algo is IndexAlgo.HASH else SortedList()
        return new

    def __len__(self) -> int:
        """Number of distinct keys."""
        return len(self._map)

    # -- keys -------------------------------------------------------------------------------------
    def make_key(self, values: Sequence[Any]) -> tuple:
        """Turn a full key given as column values (in index column order) into an index key."""
        if len(values) != len(self.columns):
            raise BsatnDecodeError(
                f"index {self.schema.name!r} key needs {len(self.columns)} values, got {len(values)}"
            )
        fns = self._fns
        if fns is None:
            return tuple(values)
        return tuple(v if f is None else f(v) for v, f in zip(values, fns, strict=True))

    def range_spec(self, prefix: Sequence[Any], start: Bound, end: Bound) -> tuple[str, Any]:
        """Translate prefix + bounds on the next column (module-abi.md §9.2) into a key range.

        Returns ("point", key) when the range is one full key, else ("range", (lo, hi, inclusive)).
        """
        if self.algo is IndexAlgo.HASH:
            raise WrongIndexAlgo(f"index {self.schema.name!r} is a hash index and cannot seek a range")
        n = len(self.columns)
        k = len(prefix)
        if k >= n:
            raise BsatnDecodeError(f"index {self.schema.name!r} has {n} columns; prefix of {k} leaves none to bound")
        fns = self._fns
        if fns is None:
            p = tuple(prefix)
            fk = None
        else:
            p = tuple(v if f is None else f(v) for v, f in zip(prefix, fns, strict=False))
            fk = fns[k]

        def conv(v: Any) -> Any:
            return v if fk is None else fk(v)

        if k == n - 1 and isinstance(start, Included) and isinstance(end, Included):
            v = conv(start.value)
            if v == conv(end.value):
                return "point", p + (v,)
        if isinstance(start, Included):
            lo = p + (conv(start.value),)
        elif isinstance(start, Excluded):
            lo = p + (conv(start.value), TOP)
        elif isinstance(start, Unbounded):
            lo = p if p else None
        else:
            raise BsatnDecodeError(f"bad range start {start!r}")
        hi_inc = True
        if isinstance(end, Included):
            hi = p + (conv(end.value), TOP)
        elif isinstance(end, Excluded):
            hi = p + (conv(end.value),)
            hi_inc = False
        elif isinstance(end, Unbounded):
            hi = p + (TOP,) if p else None
        else:
            raise BsatnDecodeError(f"bad range end {end!r}")
        return "range", (lo, hi, (True, hi_inc))

    # -- reads ------------------------------------------------------------------------------------
    def get_unique(self, key: tuple) -> bytes | None:
        """The row with ``key`` in a unique index, or None."""
        return self._map.get(key)

    def point(self, key: tuple) -> list[bytes]:
        """Rows whose key equals ``key``."""
        hit = self._map.get(key)
        if hit is None:
            return []
        return [hit] if self.unique else list(hit)

    def seek(self, spec: tuple[str, Any]) -> list[bytes]:
        """Rows in a ``range_spec`` result, in key order."""
        kind, arg = spec
        if kind == "point":
            return self.point(arg)
        m = self._map
        if not m:
            return []
        keys = self._keys
        if keys is None:
            if self.algo is IndexAlgo.HASH:
                raise WrongIndexAlgo(f"index {self.schema.name!r} is a hash index and cannot seek a range")
            keys = self._keys = SortedList(m)
        lo, hi, inclusive = arg
        found = keys.irange(lo, hi, inclusive)
        if self.unique:
            return [m[key] for key in found]
        out: list[bytes] = []
        for key in found:
            out.extend(m[key])
        return out

    # -- writes -----------------------------------------------------------------------------------
    def add(self, key: tuple, row: bytes) -> bytes | None:
        """Add ``row`` under ``key``. For a unique index returns the conflicting row (and adds nothing)."""
        m = self._map
        old = m.get(key)
        if old is None:
            m[key] = row if self.unique else {row: None}
            if self._keys is not None:
                self._keys.add(key)
        elif self.unique:
            if old != row:
                return old
        else:
            old[row] = None
        return None

    def remove(self, key: tuple, row: bytes) -> None:
        """Remove ``row`` from ``key`` (it must be present)."""
        m = self._map
        if not self.unique:
            bucket = m[key]
            del bucket[row]
            if bucket:
                return
        del m[key]
        if self._keys is not None:
            self._keys.remove(key)

    def clear(self) -> None:
        self._map.clear()
        if self._keys is not None:
            self._keys.clear()
