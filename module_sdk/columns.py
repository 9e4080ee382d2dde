"""Column and index markers used inside `@table` classes.

    @table(public=True, indexes=[btree("name", "age", accessor="by_name_age")])
    class Person:
        id: u64 = primary_key(auto_inc=True)   # same as field(primary_key=True, auto_inc=True)
        email: str = unique()
        age: u32 = index()                     # B-tree; index("hash"), index("direct")
        name: str
        nickname: Option[str] = None           # plain default: constructor default + column default
        score: i32 = default(0)                # same thing, spelled out

Every marker is a `field(...)` with one flag preset; the flags combine freely (`unique(index="hash")`).
"""

MISSING = object()
ALGORITHMS = ('btree', 'hash', 'direct')


class Field:
    """What the class body says about one column (see `field`)."""

    __slots__ = ('primary_key', 'unique', 'auto_inc', 'index', 'default')

    def __init__(self, *, primary_key=False, unique=False, auto_inc=False, index=None, default=MISSING):
        if index is True:
            index = 'btree'
        if index is not None and index not in ALGORITHMS:
            raise ValueError('index algorithm must be one of {}, got {!r}'.format(', '.join(ALGORITHMS), index))
        if default is not MISSING and (primary_key or unique or auto_inc):
            raise TypeError('a column with a default value cannot be a primary key, unique or auto_inc')
        self.primary_key = bool(primary_key)
        self.unique = bool(unique) or bool(primary_key)
        self.auto_inc = bool(auto_inc)
        self.index = index
        self.default = default

    def has_default(self):
        return self.default is not MISSING

    def __repr__(self):
        flags = [n for n in ('primary_key', 'unique', 'auto_inc') if getattr(self, n)]
        if self.index:
            flags.append(f'index={self.index!r}')
        if self.default is not MISSING:
            flags.append(f'default={self.default!r}')
        return 'field({})'.format(', '.join(flags))


def field(*, primary_key=False, unique=False, auto_inc=False, index=None, default=MISSING):
    """A column with options.

    primary_key: the row's key (implies unique; `ctx.db.t.<col>.find/update/delete`); at most one per table.
    unique:      a unique constraint backed by an index (`find`, `delete`).
    auto_inc:    an integer column filled from a sequence when the inserted value is 0.
    index:       "btree" (range scans), "hash" (exact matches) or "direct" (small unsigned ints); for a
                 primary key / unique column it picks the algorithm of the backing index.
    default:     the constructor default and the column's default value (used by schema migrations)."""
    return Field(primary_key=primary_key, unique=unique, auto_inc=auto_inc, index=index, default=default)


def primary_key(*, auto_inc=False, index=None):
    """The primary key column (unique; `update` goes through it)."""
    return Field(primary_key=True, auto_inc=auto_inc, index=index)


def unique(*, auto_inc=False, index=None):
    """A unique column."""
    return Field(unique=True, auto_inc=auto_inc, index=index)


def auto_inc(*, primary_key=False, unique=False, index=None):
    """An auto-increment column: insert 0 and the database assigns the next value."""
    return Field(auto_inc=True, primary_key=primary_key, unique=unique, index=index)


def index(algorithm='btree'):
    """A single-column index: "btree" (default), "hash" or "direct"."""
    return Field(index=algorithm)


def default(value):
    """A column default value (also the constructor default)."""
    return Field(default=value)


class Index:
    """A table-level (possibly multi-column) index; see `btree`, `hash_index`, `direct`."""

    __slots__ = ('algorithm', 'columns', 'accessor', 'name')

    def __init__(self, algorithm, columns, accessor=None, name=None):
        if algorithm not in ALGORITHMS:
            raise ValueError('index algorithm must be one of {}, got {!r}'.format(', '.join(ALGORITHMS), algorithm))
        columns = tuple(columns)
        if not columns or not all(isinstance(c, str) for c in columns):
            raise TypeError(f'an index needs one or more column names (strings), got {columns!r}')
        if algorithm == 'direct' and len(columns) != 1:
            raise TypeError('a direct index has exactly one column')
        if accessor is not None and not isinstance(accessor, str):
            raise TypeError('index accessor must be a str')
        if name is not None and not isinstance(name, str):
            raise TypeError('index name must be a str')
        self.algorithm = algorithm
        self.columns = columns
        self.accessor = accessor
        self.name = name

    def __repr__(self):
        return '{}({})'.format({'btree': 'btree', 'hash': 'hash_index', 'direct': 'direct'}[self.algorithm],
                           ', '.join(repr(c) for c in self.columns))


def btree(*columns, accessor=None, name=None):
    """A B-tree index over `columns` (in order): exact matches, prefixes and ranges.
    `accessor` is the attribute on the table handle (default: the column names joined by `_`);
    `name` overrides the canonical index name."""
    return Index('btree', columns, accessor, name)


def hash_index(*columns, accessor=None, name=None):
    """A hash index over `columns`: exact matches on all of them only."""
    return Index('hash', columns, accessor, name)


def direct(column, *, accessor=None, name=None):
    """A direct index on one u8/u16/u32/u64 (or all-unit enum) column."""
    return Index('direct', (column,), accessor, name)
