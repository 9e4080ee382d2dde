"""Index accessors: `ctx.db.<table>.<accessor>` (module-abi.md section 9).

    ctx.db.person.id.find(7)                    # unique / primary key: the row or None
    ctx.db.person.id.update(row)                # primary key only; returns the row (auto-inc filled)
    ctx.db.person.id.delete(7)                  # -> bool
    ctx.db.person.age.filter(30)                # exact match -> iterator of rows
    ctx.db.person.age.filter(range(18, 65))     # 18 <= age < 65
    ctx.db.person.age.filter(Range(18, 65, inclusive=True))   # 18 <= age <= 65; None = unbounded
    ctx.db.person.age.filter(Range(Excluded(18), None))       # age > 18
    ctx.db.person.age.filter((18, 65))          # a 2-tuple is an inclusive range: 18 <= age <= 65
    ctx.db.person.name_age.filter(("bob", range(18, 30)))     # multi-column: prefix, last part may be a range
    ctx.db.person.age.delete(range(0, 18))      # -> number of rows deleted

Hash indexes only take exact values for all their columns.
"""

import struct

from . import _abi

_U32 = struct.Struct('<I').pack


class Bound:
    """One end of a range: `Included(v)`, `Excluded(v)` or `UNBOUNDED`."""

    __slots__ = ('kind', 'value')

    def __init__(self, kind, value=None):
        self.kind = kind  # 0 included, 1 excluded, 2 unbounded (the BSATN tag)
        self.value = value

    def __repr__(self):
        if self.kind == 2:
            return 'UNBOUNDED'
        return '{}({!r})'.format('Included' if self.kind == 0 else 'Excluded', self.value)

    def __eq__(self, other):
        return isinstance(other, Bound) and self.kind == other.kind and self.value == other.value

    def __hash__(self):
        return hash((self.kind, self.value))


def Included(value):  # noqa: N802 - reads like a constructor
    return Bound(0, value)


def Excluded(value):  # noqa: N802
    return Bound(1, value)


UNBOUNDED = Bound(2)


class Range:
    """A range of one column's values.  Plain `start`/`stop` values mean `start <= x < stop` (like Python's
    `range`), or `start <= x <= stop` with `inclusive=True`; `None` leaves that end open; a `Bound`
    (`Included(v)`, `Excluded(v)`, `UNBOUNDED`) says it explicitly."""

    __slots__ = ('start', 'end')

    def __init__(self, start=None, stop=None, *, inclusive=False):
        if start is None:
            start = UNBOUNDED
        elif start.__class__ is not Bound:
            start = Bound(0, start)
        if stop is None:
            stop = UNBOUNDED
        elif stop.__class__ is not Bound:
            stop = Bound(0 if inclusive else 1, stop)
        self.start = start
        self.end = stop

    def __repr__(self):
        return f'Range({self.start!r}, {self.end!r})'


def _bound(b, enc):
    k = b.kind
    if k == 2:
        return b'\x02'
    return (b'\x00' if k == 0 else b'\x01') + enc(b.value)


def _range_bounds(part, enc):
    """(rstart, rend) for a range-like part, or None for a plain value."""
    c = part.__class__
    if c is range:
        if part.step != 1:
            raise ValueError(f'index ranges need step 1, got {part!r}')
        return b'\x00' + enc(part.start), b'\x01' + enc(part.stop)
    if c is Range:
        return _bound(part.start, enc), _bound(part.end, enc)
    if c is tuple:
        if len(part) != 2:
            raise TypeError(f'a tuple as a range must be (low, high), got {part!r}')
        return b'\x00' + enc(part[0]), b'\x00' + enc(part[1])
    if c is Bound:
        raise TypeError(f'a single bound is not a range: use Range({part!r}, None) or Range(None, {part!r})')
    return None


def _rows(dec, data):
    off = 0
    n = len(data)
    while off < n:
        row, off = dec(data, off)
        yield row


class IndexReader:
    """Read access through an index (views get only these)."""

    __slots__ = ('_name', '_id', '_table', '_encs', '_ncols', '_algo', 'columns')

    def __init__(self, name, table, encoders, algorithm, columns):
        self._name = name            # the index source name sent in the module def (index_id_from_name)
        self._id = None              # resolved on first use; stable for the instance
        self._table = table          # the table handle (row codec, table id)
        self._encs = tuple(encoders)  # per indexed column
        self._ncols = len(self._encs)
        self._algo = algorithm
        self.columns = tuple(columns)

    def __getattr__(self, name):  # only for a missing method: say which index kind has it
        if name.startswith('_'):
            raise AttributeError(name)
        if name in ('delete', 'update', 'insert_or_update') and type(self) in (IndexReader, UniqueIndexReader):
            raise AttributeError(f'index {self._name} is read-only here: a view reads tables and cannot {name}')
        if name in ('update', 'insert_or_update'):
            raise AttributeError(f'index {self._name} has no {name}: it goes through the primary key '
                                 f'(ctx.db.<table>.<primary key column>.{name}(row)); for another unique column, '
                                 'delete then insert')
        if name == 'find':
            raise AttributeError(f'index {self._name} has no find: find needs a unique column (primary_key() or '
                                 'unique()); this index has filter(value)')
        raise AttributeError(f'{type(self).__name__} object has no attribute {name!r}')

    def _iid(self):
        i = self._id
        if i is None:
            i = self._id = _abi.index_id(self._name)
        return i

    def _plan(self, arg):
        """('point', key) or ('range', prefix, prefix_elems, rstart, rend) for a filter/delete argument."""
        encs = self._encs
        if self._ncols == 1:
            if arg.__class__ is tuple and len(arg) == 1:
                arg = arg[0]
            r = _range_bounds(arg, encs[0])
            if r is None:
                return ('point', encs[0](arg))
            if self._algo == 'hash':
                raise TypeError(f'index {self._name} is a hash index: it supports exact matches only')
            return ('range', b'', 0, r[0], r[1])
        parts = arg if arg.__class__ is tuple else (arg,)
        m = len(parts)
        if not 1 <= m <= self._ncols:
            raise TypeError(f'index {self._name} has {self._ncols} columns {self.columns}, got {m} values')
        last = m - 1
        r = _range_bounds(parts[last], encs[last])
        if r is None and m == self._ncols:
            return ('point', b''.join([encs[i](parts[i]) for i in range(m)]))
        if self._algo == 'hash':
            raise TypeError(f'index {self._name} is a hash index: it takes exact values for all of its columns '
                            f'{self.columns}')
        prefix = b''.join([encs[i](parts[i]) for i in range(last)])
        if r is None:
            b = b'\x00' + encs[last](parts[last])
            return ('range', prefix, last, b, b)
        return ('range', prefix, last, r[0], r[1])

    def filter(self, arg):
        """The rows matching a value, a range, or (multi-column) a prefix tuple; an iterator."""
        p = self._plan(arg)
        if p[0] == 'point':
            data = _abi.point_rows(self._iid(), p[1])
        else:
            data = _abi.range_rows(self._iid(), p[1], p[2], p[3], p[4])
        return _rows(self._table._dec, data)

    def __repr__(self):
        return f'<index {self._name} on {self._table._name}{self.columns}>'


class UniqueIndexReader(IndexReader):
    __slots__ = ()

    def find(self, key):
        """The row whose column equals `key`, or None."""
        i = self._id
        data = _abi.point_rows(self._iid() if i is None else i, self._encs[0](key))
        if not data:
            return None
        return self._table._dec(data, 0)[0]

    def __contains__(self, key):
        return bool(_abi.point_rows(self._iid(), self._encs[0](key)))


class Index(IndexReader):
    """A non-unique index: `filter(...)`, `delete(...)`."""

    __slots__ = ()

    def delete(self, arg):
        """Delete the rows `filter(arg)` would return; returns how many."""
        p = self._plan(arg)
        if p[0] == 'point':
            return _abi.delete_point(self._iid(), p[1])
        return _abi.delete_range(self._iid(), p[1], p[2], p[3], p[4])


class UniqueIndex(UniqueIndexReader):
    """A unique column: `find(key)`, `delete(key)`, `filter(...)`."""

    __slots__ = ()

    def delete(self, key):
        """Delete the row with this key; True if there was one."""
        return _abi.delete_point(self._iid(), self._encs[0](key)) > 0


class PrimaryKeyIndex(UniqueIndex):
    """The primary key: `find`, `delete`, `update`, `insert_or_update`, `filter`."""

    __slots__ = ('_col',)

    def __init__(self, name, table, encoders, algorithm, columns):
        super().__init__(name, table, encoders, algorithm, columns)
        self._col = columns[0]

    def update(self, row):
        """Replace the row that has the same primary key (NoSuchRow if there is none); returns the row."""
        t = self._table
        data = t._enc(row)
        tid, i = t._id, self._id
        gen = _abi.update(t._tid() if tid is None else tid, self._iid() if i is None else i, data)
        if row.__class__ is t._cls and not gen:  # the common case: nothing to fill in
            return row
        return t._finish_write(row, data, gen)

    def insert_or_update(self, row):
        """Update the row with this key if it exists, else insert; returns the row."""
        key = row[self._col] if isinstance(row, dict) else getattr(row, self._col)
        if _abi.point_rows(self._iid(), self._encs[0](key)):
            return self.update(row)
        return self._table.insert(row)
