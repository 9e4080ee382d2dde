"""Query-builder views: a view that returns a query instead of rows (upstream's `impl Query<T>`).

    @view
    def big_orders(ctx: AnonymousViewContext) -> Query[Order]:
        return ctx.from_.order.where(lambda o: (o.amount > 100) & (o.status == "open"))

    @view
    def my_friends(ctx: ViewContext) -> Query[Player]:
        return ctx.from_.friendship.where(lambda f: f.owner == ctx.sender).right_semijoin(
            ctx.from_.player, lambda f, p: f.friend_id == p.id)

The view writes `ViewResultHeader::RawSql(sql)` and the host runs the SQL (subscription dialect, no row-level
security); clients subscribe to the view like any other.  In the module def the return type is the product
`{__query__: T}`, as upstream encodes `Query<T>`.  The SQL text is the one upstream's query builder writes:
quoted names, every comparison parenthesized, `TRUE`/`FALSE`, `0x..` identities, quoted timestamps.
"""

from spacetime_core.sats.values import ConnectionId, Identity, Timestamp

QUERY_TAG = '__query__'


class Query:
    """`Query[Row]`: the return annotation of a query-builder view."""

    __slots__ = ('row',)

    def __init__(self, row):
        self.row = row

    def __class_getitem__(cls, row):
        return cls(row)

    def __repr__(self):
        return f'Query[{getattr(self.row, "__name__", self.row)}]'


def _literal(v):
    if v is True:
        return 'TRUE'
    if v is False:
        return 'FALSE'
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, (int, float)):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, (Identity, ConnectionId)):
        return '0x' + v.to_hex()
    if isinstance(v, (bytes, bytearray)):
        return '0x' + bytes(v).hex()
    if isinstance(v, Timestamp):
        return f"'{v.isoformat()}'"
    raise TypeError(f'cannot use {v!r} in a query (str, int, float, bool, bytes, Identity, ConnectionId, '
                    'Timestamp)')


class BoolExpr:
    """A condition: combine with `&`, `|`, `~` (or `.and_()`, `.or_()`, `.not_()`)."""

    __slots__ = ('sql', 'table')

    def __init__(self, sql, table):
        self.sql = sql
        self.table = table

    def __and__(self, other):
        return BoolExpr(f'({self.sql} AND {_cond(other, self.table)})', self.table)

    def __or__(self, other):
        return BoolExpr(f'({self.sql} OR {_cond(other, self.table)})', self.table)

    def __invert__(self):
        return BoolExpr(f'(NOT {self.sql})', self.table)

    and_ = __and__
    or_ = __or__
    not_ = __invert__

    def __bool__(self):
        raise TypeError('query conditions cannot be used as Python booleans: combine them with & | ~ '
                        '(parenthesize comparisons: (a > 1) & (b == 2))')


def _cond(e, table):
    if not isinstance(e, BoolExpr):
        raise TypeError(f'expected a query condition, got {e!r}')
    if e.table != table:
        raise ValueError(f'a condition on `{e.table}` cannot filter `{table}`')
    return e.sql


class Col:
    """A column in a query: compare it with a value or (in a semijoin's `on`) with another table's column."""

    __slots__ = ('table', 'name')

    def __init__(self, table, name):
        self.table = table
        self.name = name

    def _ref(self):
        return f'"{self.table}"."{self.name}"'

    def _cmp(self, op, other):
        if isinstance(other, Col):
            raise TypeError('compare a column with a value; columns of two tables are matched in a semijoin')
        return BoolExpr(f'({self._ref()} {op} {_literal(other)})', self.table)

    def __eq__(self, other):  # noqa: D105 - builds SQL, not a Python comparison
        if isinstance(other, Col):
            return _JoinEq(self, other)
        return self._cmp('=', other)

    def __ne__(self, other):
        return self._cmp('<>', other)

    def __lt__(self, other):
        return self._cmp('<', other)

    def __le__(self, other):
        return self._cmp('<=', other)

    def __gt__(self, other):
        return self._cmp('>', other)

    def __ge__(self, other):
        return self._cmp('>=', other)

    eq = __eq__
    ne = __ne__
    lt = __lt__
    lte = __le__
    gt = __gt__
    gte = __ge__
    __hash__ = None


class _JoinEq:
    __slots__ = ('left', 'right')

    def __init__(self, left, right):
        self.left = left
        self.right = right


class _Cols:
    __slots__ = ('_table', '_names')

    def __init__(self, table, names):
        self._table = table
        self._names = names  # accessor (Python field name) -> canonical column name

    def __getattr__(self, name):
        try:
            return Col(self._table, self._names[name])
        except KeyError:
            raise AttributeError(f'table `{self._table}` has no column {name!r} '
                                 f'(columns: {", ".join(self._names)})') from None


def _where(table, cols, fn, expr):
    e = _cond(fn(cols), table)
    return e if expr is None else f'({expr} AND {e})'


class TableQuery:
    """`ctx.from_.<table>`: every row of a table; `.where(fn)` / `.filter(fn)` narrow it, the semijoins keep
    the rows of one side that have a match on the other (the join column of the looked-up side should be
    indexed)."""

    __slots__ = ('name', 'cols', 'expr')

    def __init__(self, name, cols, expr=None):
        self.name = name
        self.cols = cols
        self.expr = expr

    def where(self, fn):
        """Keep the rows for which `fn(cols)` holds (conditions on this table's columns)."""
        return TableQuery(self.name, self.cols, _where(self.name, self.cols, fn, self.expr))

    filter = where

    def _join(self, right, on):
        if not isinstance(right, TableQuery):
            raise TypeError(f'a semijoin needs ctx.from_.<table>, got {right!r}')
        eq = on(self.cols, right.cols)
        if not isinstance(eq, _JoinEq) or eq.left.table != self.name or eq.right.table != right.name:
            raise TypeError('the join condition must be `left.<column> == right.<column>`')
        return eq

    def left_semijoin(self, right, on):
        """This table's rows that match a row of `right` on `on(left_cols, right_cols)` (an `==`)."""
        return _SemiJoin(self, right, self._join(right, on), keep_left=True)

    def right_semijoin(self, right, on):
        """`right`'s rows that match a row of this table on `on(left_cols, right_cols)` (an `==`)."""
        return _SemiJoin(self, right, self._join(right, on), keep_left=False)

    def sql(self):
        if self.expr is None:
            return f'SELECT * FROM "{self.name}"'
        return f'SELECT * FROM "{self.name}" WHERE {self.expr}'


class _SemiJoin:
    __slots__ = ('left', 'right', 'eq', 'keep_left', 'extra')

    def __init__(self, left, right, eq, keep_left, extra=None):
        self.left, self.right, self.eq, self.keep_left, self.extra = left, right, eq, keep_left, extra

    def where(self, fn):
        """Narrow the kept side further."""
        kept = self.left if self.keep_left else self.right
        return _SemiJoin(self.left, self.right, self.eq, self.keep_left, _where(kept.name, kept.cols, fn, self.extra))

    filter = where

    def sql(self):
        kept = self.left.name if self.keep_left else self.right.name
        on = f'"{self.left.name}"."{self.eq.left.name}" = "{self.right.name}"."{self.eq.right.name}"'
        if self.right.expr:
            raise ValueError('the joined table cannot be filtered before a semijoin; filter after it (.where)')
        parts = [p for p in (self.left.expr, self.extra) if p]
        where = (' WHERE ' + ' AND '.join(parts)) if parts else ''
        return f'SELECT "{kept}".* FROM "{self.left.name}" JOIN "{self.right.name}" ON {on}{where}'


class From:
    """`ctx.from_`: one `TableQuery` per table accessor."""

    __slots__ = ('_tables',)

    def __init__(self, tables):
        self._tables = tables  # accessor -> (canonical name, {field: canonical column})

    def __getattr__(self, accessor):
        try:
            name, cols = self._tables[accessor]
        except KeyError:
            raise AttributeError(f'no table with the accessor {accessor!r} '
                                 f'(tables: {", ".join(sorted(self._tables)) or "none"})') from None
        return TableQuery(name, _Cols(name, cols))


_FROM = From({})


def set_tables(tables):
    """Install the tables `ctx.from_` serves (done when the module is loaded)."""
    global _FROM
    _FROM = From(tables)


def current_from():
    return _FROM


def is_query(value):
    return isinstance(value, (TableQuery, _SemiJoin))
