"""Table handles: `ctx.db.<accessor>` (module-abi.md sections 8 and 10).

    p = ctx.db.person.insert(Person(name="Ada", age=36))   # returns the row, auto_inc columns filled in
    ctx.db.person.delete(p)                                 # whole-row match -> bool
    for p in ctx.db.person: ...                             # or .iter()
    ctx.db.person.count()                                   # or len(ctx.db.person)
    ctx.db.person.clear()                                   # -> rows removed

Index accessors (`ctx.db.person.id`, ...) are attributes of the handle, see `module_sdk.indexes`.
Handles are created once per module; table and index ids are looked up on first use and kept.
"""

import struct

from spacetime_core.sats.codec import decoder, encoder

from . import _abi
from .indexes import _rows

_U32 = struct.Struct('<I').pack
_WRITES = ('insert', 'delete', 'delete_many', 'clear', 'update', 'insert_or_update')
_ONE = _U32(1)


class Database:
    """`ctx.db`: one attribute per table, named by the table's accessor."""

    def __iter__(self):
        return iter(list(self.__dict__.values()))

    def __repr__(self):
        return '<db: {}>'.format(', '.join(sorted(self.__dict__)))

    def __getattr__(self, name):  # only for a name that is not a table: say which ones there are
        if name.startswith('__'):
            raise AttributeError(name)
        tables = ', '.join(sorted(self.__dict__)) or 'none'
        raise AttributeError(f'ctx.db has no table {name!r} (tables: {tables}); a table is ctx.db.<accessor>, '
                             'by default the snake_case of its class name (PlayerScore -> player_score)')


class TableReader:
    """Read access to a table (views get only these)."""

    def __init__(self, name, cls, row_type):
        self._name = name     # the table source name (table_id_from_name)
        self._id = None       # resolved on first use; stable for the instance
        self._cls = cls
        self._row_type = row_type
        self._enc = self._first_enc  # row -> bytes
        self._dec = self._first_dec  # (buf, off) -> (row, off)

    # The row codecs are compiled on first use, then `_enc`/`_dec` are the compiled functions: a built module's
    # snapshot holds codecs only for the tables its import used (~2 KB per table).
    def _first_enc(self, row):
        self._enc = enc = encoder(self._row_type)
        return enc(row)

    def _first_dec(self, buf, off=0):
        self._dec = dec = decoder(self._row_type)
        return dec(buf, off)

    def _tid(self):
        i = self._id
        if i is None:
            i = self._id = _abi.table_id(self._name)
        return i

    @property
    def row_type(self):
        """The row class."""
        return self._cls

    def count(self):
        """Number of rows."""
        return _abi.row_count(self._tid())

    __len__ = count

    def iter(self):
        """All rows (an iterator)."""
        return _rows(self._dec, _abi.table_rows(self._tid()))

    __iter__ = iter

    def __repr__(self):
        return f'<table {self._name}>'

    def __getattr__(self, name):  # only for a missing attribute: name the indexes, and say how to add one
        if name.startswith('_'):
            raise AttributeError(name)
        if name in _WRITES:
            raise AttributeError(f'table {self._name} is read-only here: a view reads tables and cannot {name}')
        indexes = ', '.join(sorted(k for k in self.__dict__ if not k.startswith('_'))) or 'none'
        columns = [n for n, _ in self._row_type.elements]
        if name in columns:
            raise AttributeError(
                f'table {self._name} has no index {name!r}: column {name!r} is not indexed (indexes: {indexes}). '
                f'Declare it {name}: ... = primary_key() (or unique(), index()) to look rows up by it, or scan: '
                f'[r for r in ctx.db.{self._name} if r.{name} == value]')
        raise AttributeError(f'table {self._name} has no attribute or index {name!r} (indexes: {indexes}; '
                             f'columns: {", ".join(columns)})')


class Table(TableReader):
    """A table in a reducer or transaction: insert, delete, clear, plus the reads."""

    def __init__(self, name, cls, row_type, generated=()):
        super().__init__(name, cls, row_type)
        self._gen = tuple(generated)  # ((column name, decoder), ...) of auto_inc columns in column order

    def insert(self, row):
        """Insert `row`; returns it with auto_inc columns that were 0 filled in.  Raises UniqueAlreadyExists
        if a unique column clashes (inserting a row identical to an existing one is a no-op)."""
        data = self._enc(row)
        gen = _abi.insert(self._tid(), data)
        if row.__class__ is self._cls and not gen:
            return row
        return self._finish_write(row, data, gen)

    def _finish_write(self, row, data, gen):
        if row.__class__ is not self._cls:  # a tuple/dict/other object was accepted: hand back a real row
            row = self._dec(data, 0)[0]
        if gen:
            off = 0
            for name, dec in self._gen:
                if getattr(row, name) == 0:
                    v, off = dec(gen, off)
                    setattr(row, name, v)
        return row

    def delete(self, row):
        """Delete the row equal to `row` (all columns); True if it existed."""
        return _abi.delete_all_by_eq(self._tid(), _ONE + self._enc(row)) > 0

    def delete_many(self, rows):
        """Delete every row equal to one of `rows`; returns how many were deleted."""
        enc = self._enc
        parts = [enc(r) for r in rows]
        if not parts:
            return 0
        return _abi.delete_all_by_eq(self._tid(), _U32(len(parts)) + b''.join(parts))

    def clear(self):
        """Delete all rows; returns how many.

        Built modules do this with spacetime_10.0 calls (scan, then delete the scanned rows by value) so they
        load on every 2.x server; datastore_clear (10.5, SpacetimeDB 2.2+) is used only where the host door
        has it (in-process test hosts)."""
        tid = self._tid()
        if _abi.has_clear():
            return _abi.clear(tid)
        data = _abi.table_rows(tid)
        dec, off, n, end = self._dec, 0, 0, len(data)
        while off < end:
            off = dec(data, off)[1]
            n += 1
        return _abi.delete_all_by_eq(tid, _U32(n) + data) if n else 0
