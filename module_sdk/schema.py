"""The declarative layer: `@table`, `@reducer`, lifecycle hooks, views, procedures and client visibility
filters register into a `Module`, which validates everything and builds `RawModuleDef::V10`
(module-def.md) plus the dispatch tables `_dispatch` serves calls from.

Inside a built module the whole of `Module.finalize()` runs at build time (when `_dispatch` is imported
after the user's code), so schema mistakes are build errors and the snapshot already holds the module
def bytes and every compiled row/argument codec.

Naming (module-def.md section 5):
* table accessor (source name) = `accessor=` or the snake_case class name (`PlayerScore` -> `player_score`);
  `name=` sets an explicit canonical name (ExplicitNames); otherwise the server derives it.
* function source name = the Python function name; `name=` is an explicit canonical name.
* index source names: `{table}_{columns}_idx_{algorithm}` (what the Rust SDK sends); index accessors are
  the column name (column indexes) or `accessor=` (table-level, default: columns joined by `_`).
* row types and @product/@sum classes: type name = class name (`__type_name__ = "Scope.Name"` overrides).
* ReducerId = declaration order of @reducer/@init/@client_connected/@client_disconnected functions.
"""

import keyword
import struct
import sys

from spacetime_core.names import canonical_snake, is_identifier, python_snake

# the codec's slow/lenient path is imported lazily by sats; import it here so a built module bundles it
from spacetime_core.sats import reference as _reference  # noqa: F401
from spacetime_core.sats.annotations import type_of
from spacetime_core.sats.codec import decoder, encoder
from spacetime_core.sats.decl import product
from spacetime_core.sats.types import (
    K_OPTION,
    K_RESULT,
    TAG_ARRAY,
    TAG_BOOL,
    TAG_PRODUCT,
    TAG_REF,
    TAG_SUM,
    TAG_U8,
    TAG_U16,
    TAG_U32,
    TAG_U64,
    ArrayType,
    PrimitiveType,
    ProductType,
    SumType,
    Typespace,
)

from . import moduledef as md
from .columns import MISSING, Field, Index
from .context import AnonymousViewContext, ViewContext
from .indexes import Index as IndexHandle
from .indexes import IndexReader, PrimaryKeyIndex, UniqueIndex, UniqueIndexReader
from .tables import Database, Table, TableReader

_getframe = sys._getframe
CO_VARARGS = 0x04
CO_VARKEYWORDS = 0x08
TABLE_ATTRS = frozenset(('insert', 'delete', 'delete_many', 'clear', 'iter', 'count', 'row_type'))
LIFECYCLES = ('init', 'client_connected', 'client_disconnected')


class ModuleDefError(Exception):
    """The module's schema is invalid (raised at build time, naming the file and line)."""


def _ident(name, what):
    if not is_identifier(name):
        raise ModuleDefError(f'{what} {name!r} is not a valid identifier (letters, digits and _, not starting '
                             'with a digit)')
    return name


def _where_caller(depth):
    try:
        f = _getframe(depth + 1)
    except ValueError:
        return '?'
    return f'{f.f_code.co_filename}:{f.f_lineno}'


def _where_fn(fn):
    code = getattr(fn, '__code__', None)
    if code is None:
        return '?'
    return f'{code.co_filename}:{code.co_firstlineno}'


# ---------------------------------------------------------------------------
# Registered definitions
# ---------------------------------------------------------------------------

class TableDef:
    __slots__ = ('accessor', 'name', 'cls', 'public', 'scheduled', 'scheduled_at', 'event', 'indexes', 'where',
                 'columns', 'row_type', 'ref', 'handle', 'reader', 'schedule_fn', 'canonical')

    def __init__(self, cls, accessor, name, public, scheduled, scheduled_at, event, indexes, where):
        self.cls = cls
        self.accessor = accessor
        self.name = name                 # explicit canonical name or None
        self.public = public
        self.scheduled = scheduled
        self.scheduled_at = scheduled_at
        self.event = event
        self.indexes = list(indexes)
        self.where = where
        self.columns = None              # filled by finalize: [(name, inline type, Field)]
        self.row_type = self.ref = self.handle = self.reader = self.schedule_fn = self.canonical = None

    def __repr__(self):
        return f'<table {self.accessor} ({self.where})>'


class FunctionDef:
    """A reducer, procedure or view."""

    __slots__ = ('kind', 'fn', 'name', 'explicit', 'lifecycle', 'private', 'anonymous', 'where', 'params',
                 'param_types', 'return_type', 'decode_args', '_encode_args', 'encode_result', 'result_kind',
                 'index', 'scheduled_by', 'canonical', 'primary_key')

    def __init__(self, kind, fn, explicit=None, lifecycle=None, private=False, anonymous=False):
        self.kind = kind                 # 'reducer' | 'procedure' | 'view' | 'http_handler'
        self.fn = fn
        self.name = fn.__name__          # source name
        self.explicit = explicit         # explicit canonical name or None
        self.lifecycle = lifecycle
        self.private = private
        self.anonymous = anonymous
        self.where = _where_fn(fn)
        self.params = None               # [(name, inline type)] after finalize
        self.param_types = None          # ProductType for the module def (user types as Refs)
        self.return_type = None
        self.decode_args = None          # bytes -> tuple, None when there are no params
        self._encode_args = None
        self.encode_result = None
        self.result_kind = None
        self.index = None                # ReducerId / procedure index / view index
        self.scheduled_by = None
        self.canonical = None
        self.primary_key = None          # views: the row field clients key rows by (ViewPrimaryKeys)

    def encode_args(self, args):
        """BSATN of the arguments (schedule_immediate); the codec is built on first use."""
        enc = self._encode_args
        if enc is None:
            enc = self._encode_args = encoder(ProductType(self.params)) if self.params else _no_args
        return enc(tuple(args))

    def __repr__(self):
        return f'<{self.kind} {self.name} ({self.where})>'


class Module:
    """Everything one SpacetimeDB module declares.  The decorators register into `current()`."""

    def __init__(self):
        self.tables = []
        self.functions = []
        self.rls = []
        self.routers = []             # [(function returning a Router, where)]
        self.case_policy = md.CASE_SNAKE
        self.db = Database()          # ctx.db of reducers and transactions
        self.view_db = Database()     # ctx.db of views (read-only handles)
        self._compiled = None

    # -- registration --
    def _check_open(self, what):
        if self._compiled is not None:
            raise ModuleDefError(f'{what} was declared after the module was described; declare tables and functions '
                                 'at import time')

    def add_table(self, tdef):
        self._check_open(f'table {tdef.accessor!r}')
        _ident(tdef.accessor, 'table accessor')
        for t in self.tables:
            if t.accessor == tdef.accessor:
                raise ModuleDefError(f'two tables use the accessor {tdef.accessor!r} ({t.where} and {tdef.where}): '
                                     'pass accessor="..." to one of them')
        self.tables.append(tdef)

    def add_function(self, fdef):
        self._check_open(f'{fdef.kind} {fdef.name!r}')
        for f in self.functions:
            if f.name == fdef.name:
                raise ModuleDefError(f'{fdef.kind} {fdef.name!r} ({fdef.where}) has the same name as '
                                     f'{f.kind} {f.name!r} ({f.where})')
        self.functions.append(fdef)

    def add_router(self, fn, where):
        self._check_open('an HTTP router')
        self.routers.append((fn, where))

    def add_rls(self, sql, where):
        self._check_open('a client visibility filter')
        if not isinstance(sql, str) or not sql.strip():
            raise ModuleDefError(f'client_visibility_filter needs an SQL string ({where})')
        if sql in self.rls:
            raise ModuleDefError(f'client visibility filter {sql!r} is declared twice ({where})')
        self.rls.append(sql)

    # -- results --
    def finalize(self):
        """Validate and compile everything (once); returns the `Compiled` result."""
        if self._compiled is None:
            self._compiled = _Builder(self).build()
        return self._compiled

    def describe(self):
        """The BSATN `RawModuleDef` bytes."""
        return self.finalize().module_def


class Compiled:
    """What `_dispatch` needs: the module def bytes and the per-kind function lists (index = id)."""

    __slots__ = ('module_def', 'reducers', 'procedures', 'views', 'anonymous_views', 'http_handlers', 'db',
                 'view_db', 'typespace', 'tables', 'query_tables')

    def __init__(self):
        self.module_def = b''
        self.reducers = []
        self.procedures = []
        self.views = []
        self.anonymous_views = []
        self.http_handlers = []
        self.query_tables = {}  # accessor -> (canonical name, {field: canonical column}) for ctx.from_
        self.db = None
        self.view_db = None
        self.typespace = None
        self.tables = []


_current = Module()


def current():
    """The module the decorators register into."""
    return _current


def new_module():
    """Start a fresh, empty module and make it current (tests and tools; a built module has exactly one)."""
    global _current
    _current = Module()
    return _current


# ---------------------------------------------------------------------------
# Decorators
# ---------------------------------------------------------------------------

def table(cls=None, *, accessor=None, name=None, public=False, scheduled=None, scheduled_at=None, event=False,
          indexes=()):
    """Declare a table whose rows are instances of the decorated class (which becomes a @product).

    accessor:     `ctx.db.<accessor>` and the table's source name (default: snake_case class name).
    name:         explicit canonical name (SQL, clients); default: derived by the server (snake_case).
    public:       clients may subscribe to it (default: private).
    scheduled:    the reducer/procedure (or its name, or a lambda returning it) that runs for each row; the
                  class needs a u64 primary key (auto_inc) and a ScheduleAt column.
    scheduled_at: the ScheduleAt column (default: the only one).
    event:        an event table (rows reach subscribers of the transaction, never stored).
    indexes:      table-level indexes: [btree("a", "b", accessor="by_ab"), hash_index(...), direct(...)].

    Stack several @table decorators to make several tables with one row type (give each an accessor)."""
    where = _where_caller(1)
    opts = (accessor, name, public, scheduled, scheduled_at, event, tuple(indexes))
    if cls is None:
        return lambda c: _table(c, opts, where)
    return _table(cls, opts, where)


def _table(cls, opts, where):
    accessor, name, public, scheduled, scheduled_at, event, indexes = opts
    if not isinstance(cls, type):
        raise TypeError(f'@table decorates a class, got {cls!r}')
    for ix in indexes:
        if not isinstance(ix, Index):
            raise TypeError(f'@table(indexes=[...]) takes btree(...), hash_index(...) or direct(...), got {ix!r}')
    if name is not None and not isinstance(name, str):
        raise TypeError('@table(name=...) must be a str')
    if '__spacetime_columns__' not in cls.__dict__:
        cls = _make_row_class(cls)
    tdef = TableDef(cls, accessor or python_snake(cls.__name__), name, bool(public), scheduled, scheduled_at,
                    bool(event), indexes, where)
    current().add_table(tdef)
    return cls


def _make_row_class(cls):
    """Read the column markers, turn them into plain defaults and make the class a @product."""
    anns = cls.__dict__.get('__annotations__', {})
    columns = {}
    if '__sats_fields__' in cls.__dict__:  # already a @product: plain columns (its markers were consumed)
        type.__setattr__(cls, '__spacetime_columns__', {n: Field() for n in cls.__sats_fields__})
        return cls
    for n in anns:
        if n.startswith('__') and n.endswith('__'):
            continue
        v = cls.__dict__.get(n, MISSING)
        if isinstance(v, Field):
            f = v
            if f.has_default():
                type.__setattr__(cls, n, f.default)
            elif f.auto_inc:
                type.__setattr__(cls, n, 0)
            else:
                type.__delattr__(cls, n)
        elif v is not MISSING:
            f = Field(default=v)
        else:
            f = Field()
        columns[n] = f
    cls = product(cls)
    type.__setattr__(cls, '__spacetime_columns__', columns)
    return cls


def published_param_name(name):
    """The name a parameter is published under: a Python keyword with one trailing underscore loses it
    (`from_` -> `from`, like Rust's raw identifier `r#from`), so a module can keep upstream's
    `transfer(from, to, amount)` signature.  Arguments are positional on the wire, so only the name changes."""
    if name.endswith('_') and not name.endswith('__') and keyword.iskeyword(name[:-1]):
        return name[:-1]
    return name


def _function(kind, fn, opts, check):
    if not callable(fn) or not hasattr(fn, '__code__'):
        raise TypeError(f'@{kind} decorates a function, got {fn!r}')
    explicit, lifecycle, private, anonymous = opts
    if explicit is not None and not isinstance(explicit, str):
        raise TypeError('name=... must be a str')
    fdef = FunctionDef(kind, fn, explicit, lifecycle, private, anonymous)
    code = fn.__code__
    if code.co_flags & (CO_VARARGS | CO_VARKEYWORDS) or code.co_kwonlyargcount:
        raise ModuleDefError(f'{kind} {fdef.name} ({fdef.where}): *args, **kwargs and keyword-only parameters '
                             'are not supported')
    if code.co_argcount < 1:
        raise ModuleDefError(f'{kind} {fdef.name} ({fdef.where}) must take the context as its first parameter')
    first = code.co_varnames[0]
    ann = fn.__annotations__.get(first)
    if ann is not None and _is_data_annotation(ann, fn):
        ctx = _CONTEXTS[kind]
        raise ModuleDefError(f'{kind} {fdef.name} ({fdef.where}): the first parameter is the context, but '
                             f'{first!r} is annotated {_ann_text(ann)}; write def {fdef.name}(ctx: {ctx}, '
                             f'{first}: ...)')
    if fn.__defaults__:
        first_default = code.co_varnames[code.co_argcount - len(fn.__defaults__)]
        raise ModuleDefError(f'{kind} {fdef.name} ({fdef.where}): parameter {first_default!r} has a default value, '
                             'but callers always pass every argument (SpacetimeDB has no optional parameters); '
                             'remove the default, or make it Option[T] and pass null')
    ret = fn.__annotations__.get('return')
    if kind == 'reducer' and ret is not None and ret is not type(None) and ret != 'None':
        raise ModuleDefError(f'reducer {fdef.name} ({fdef.where}) is annotated -> {_ann_text(ret)}, but a reducer '
                             'returns nothing: its caller only learns whether it committed. Write results to a '
                             'table, or make it a @procedure to return a value; raise SenderError("...") to fail')
    if check is not None:
        check(fdef, code)
    current().add_function(fdef)
    _FDEFS[fn] = fdef
    return fn


_CONTEXTS = {'reducer': 'ReducerContext', 'procedure': 'ProcedureContext', 'view': 'ViewContext',
             'http_handler': 'HandlerContext'}


def _ann_text(ann):
    return ann if isinstance(ann, str) else getattr(ann, '__qualname__', None) or repr(ann)


def _is_data_annotation(ann, fn):
    """True when `ann` is a column/argument type (str, u32, a row class...): the context parameter was left out,
    as in `def add(name: str)`.  Anything else (a context class, a name we cannot resolve yet) passes."""
    if isinstance(ann, str):
        if 'Context' in ann:
            return False
        try:
            ann = eval(ann, fn.__globals__)  # noqa: S307 - the module's own annotation
        except Exception:  # noqa: BLE001 - a forward reference: not ours to judge here
            return False
    if isinstance(ann, type) and ann.__name__.endswith('Context'):
        return False
    try:
        type_of(ann, fn.__globals__)
    except Exception:  # noqa: BLE001 - not a SATS type: whatever it is, it is not a forgotten context
        return False
    return True


_FDEFS = {}  # decorated function -> its FunctionDef (one table, not a __dict__ on every function: ~100 B each)


def function_def(fn):
    """The FunctionDef of a @reducer/@procedure/@view/@http_handler function, or None."""
    try:
        return _FDEFS.get(fn)
    except TypeError:  # unhashable
        return None


def _decorator(kind, fn, opts, check=None):
    if fn is None:
        return lambda f: _function(kind, f, opts, check)
    return _function(kind, fn, opts, check)


def reducer(fn=None, *, name=None, private=False, **lifecycle):
    """Declare a reducer: `def f(ctx: ReducerContext, a: u32, b: str)`; clients call it with the arguments
    (BSATN of the annotated types); it runs in a transaction that commits when it returns normally.
    Raise SenderError("...") to reject the call with a message.  `name=` sets an explicit canonical name;
    `private=True` hides it from clients (only the database itself, e.g. schedules, may call it)."""
    for k in lifecycle:
        hint = f'; use the @{k} decorator instead' if k in LIFECYCLES else ''
        raise TypeError(f'@reducer got an unexpected option {k}={lifecycle[k]!r}{hint}')
    return _decorator('reducer', fn, (name, None, private, False))


def _no_params(fdef, code):
    if code.co_argcount != 1:
        raise ModuleDefError(f'lifecycle reducer {fdef.name} ({fdef.where}) must take only the context parameter')


def init(fn=None, *, name=None):
    """The reducer that runs once when the database is created (sender: the database owner)."""
    return _decorator('reducer', fn, (name, 'init', True, False), _no_params)


def client_connected(fn=None, *, name=None):
    """The reducer that runs when a client connects; raising rejects the connection."""
    return _decorator('reducer', fn, (name, 'client_connected', True, False), _no_params)


def client_disconnected(fn=None, *, name=None):
    """The reducer that runs when a client disconnects."""
    return _decorator('reducer', fn, (name, 'client_disconnected', True, False), _no_params)


def procedure(fn=None, *, name=None, private=False):
    """Declare a procedure: `def f(ctx: ProcedureContext, ...) -> T`.  No transaction is open: use
    `ctx.with_tx(lambda tx: ...)`; `ctx.http` makes HTTP requests.  The return value (annotated type; no
    annotation = nothing) goes back to the caller."""
    return _decorator('procedure', fn, (name, None, private, False))


def view(fn=None, *, name=None, public=True, anonymous=None, primary_key=None):
    """Declare a view: `def f(ctx: ViewContext) -> Option[Row]`, `-> list[Row]` or `-> Query[Row]`.  With
    `ctx: AnonymousViewContext` (or anonymous=True) it is the same for every caller.  Views are public.
    `primary_key="field"` tells clients to key the view's rows by that field (on_update callbacks); a
    Query[Row] view over a table with a primary key gets that one by default."""
    if not public:
        raise ModuleDefError('only public views are supported by SpacetimeDB')

    def check(fdef, code):
        ann = fdef.fn.__annotations__.get(code.co_varnames[0])
        if fdef.anonymous is None:
            fdef.anonymous = ann is AnonymousViewContext or ann == 'AnonymousViewContext'
        if code.co_argcount != 1:
            raise ModuleDefError(f'view {fdef.name} ({fdef.where}) takes only the context: '
                                 'views cannot have parameters')
        if ann is ViewContext and fdef.anonymous:
            raise ModuleDefError(f'view {fdef.name} ({fdef.where}) is anonymous but its context is a ViewContext')
        if primary_key is not None and not isinstance(primary_key, str):
            raise TypeError('@view(primary_key=...) takes a field name')
        fdef.primary_key = primary_key

    return _decorator('view', fn, (name, None, False, anonymous), check)


def anonymous_view(fn=None, *, name=None, primary_key=None):
    """`@view(anonymous=True)`."""
    return view(fn, name=name, anonymous=True, primary_key=primary_key)


def http_handler(fn=None, *, name=None):
    """Declare an HTTP handler: `def f(ctx: HandlerContext, req: Request) -> Response`.  It serves the routes a
    `@router` binds to it, at `/v1/database/<db>/route<path>`; like a procedure, no transaction is open
    (`ctx.with_tx`).  An exception answers 500 with its message."""

    def check(fdef, code):
        if code.co_argcount != 2:
            raise ModuleDefError(f'http_handler {fdef.name} ({fdef.where}) must take (ctx, request)')

    return _decorator('http_handler', fn, (name, None, False, False), check)


def router(fn):
    """Declare the module's HTTP routes: a function without parameters returning a `Router`, called once
    when the module is built.  Several routers are merged (a route declared twice is an error)."""
    if not callable(fn) or not hasattr(fn, '__code__') or fn.__code__.co_argcount:
        raise TypeError(f'@router decorates a function without parameters, got {fn!r}')
    current().add_router(fn, _where_fn(fn))
    return fn


def client_visibility_filter(sql):
    """Row-level security: clients only see the rows of a table that the SQL selects, e.g.
    `client_visibility_filter("SELECT * FROM message WHERE sender = :sender")` (canonical names)."""
    current().add_rls(sql, _where_caller(1))
    return sql


def settings(*, case_conversion=None):
    """Module-wide settings.  case_conversion: "snake_case" (default: the server derives snake_case
    canonical names) or "none" (canonical names are the source names verbatim)."""
    if case_conversion is not None:
        policies = {'snake_case': md.CASE_SNAKE, 'none': md.CASE_NONE}
        if case_conversion not in policies:
            raise ValueError(f'case_conversion must be "snake_case" or "none", got {case_conversion!r}')
        current()._check_open('settings()')
        current().case_policy = policies[case_conversion]


# ---------------------------------------------------------------------------
# Building: types, tables, functions, validation, bytes
# ---------------------------------------------------------------------------

class _Types:
    """User products/sums -> typespace entries referenced by Ref (registered once per class)."""

    def __init__(self):
        self.typespace = Typespace()
        self.refs = {}     # class -> RefType
        self.defs = []     # (scope, name, index)
        self.names = {}    # (scope, name) -> class

    def use(self, t, what):
        """The module-def form of `t`: user types become Refs, everything else stays inline."""
        tag = t.tag
        if tag == TAG_PRODUCT or tag == TAG_SUM:
            cls = t.cls
            if cls is not None:
                return self._ref(t, cls, what)
            sp = t.special
            if sp is None:
                raise ModuleDefError('{}: an anonymous {} type cannot be used; declare it as a @product/@sum '
                                     'class'.format(what, 'product' if tag == TAG_PRODUCT else 'sum'))
            if sp == K_OPTION or sp == K_RESULT:
                return SumType([(n, self.use(et, what)) for n, et in t.elements])
            return t
        if tag == TAG_ARRAY:
            return ArrayType(self.use(t.elem, what))
        return t

    def _ref(self, t, cls, what):
        ref = self.refs.get(cls)
        if ref is not None:
            return ref
        scope, name = _type_name(cls)
        key = (tuple(scope), name)
        other = self.names.get(key)
        if other is not None:
            full = '.'.join(scope + [name])
            raise ModuleDefError(f'{what}: two types are named {full!r}: {other.__module__}.{other.__qualname__} and '
                                 f'{cls.__module__}.{cls.__qualname__} (set __type_name__ on one of them)')
        self.names[key] = cls
        ref = self.typespace.reserve()
        self.refs[cls] = ref
        self.defs.append((scope, name, ref.index))
        inner = []
        for n, et in t.elements:
            if n is None or not n.isidentifier():
                raise ModuleDefError(f'type {name}: element {n!r} must be named with an identifier')
            inner.append((n, self.use(et, f'{what}, field {name}.{n}')))
        self.typespace.set(ref, ProductType(inner) if t.tag == TAG_PRODUCT else SumType(inner))
        return ref

    def resolve(self, t):
        while t.tag == TAG_REF:
            t = self.typespace[t.index]
        return t


def _type_name(cls):
    full = cls.__dict__.get('__type_name__') or cls.__name__
    parts = full.replace('::', '.').split('.')
    for p in parts:
        _ident(p, f'type name segment of {full!r}')
    return parts[:-1], parts[-1]


def _algo_ok_for_direct(t, types):
    r = types.resolve(types.use(t, 'direct index'))
    if r.tag in (TAG_U8, TAG_U16, TAG_U32, TAG_U64):
        return True
    return r.tag == TAG_SUM and all(vt.is_unit() for _, vt in r.elements)


class _Builder:
    def __init__(self, module):
        self.m = module
        self.types = _Types()
        self.snake = module.case_policy == md.CASE_SNAKE
        self.explicit = []
        self.c = Compiled()
        self.tables = []      # md.TableEntry in table order
        self.schedules = []

    def canon(self, source):
        return canonical_snake(source) if self.snake else source

    def build(self):
        m = self.m
        for t in m.tables:
            self._row_type(t)
        for t in m.tables:
            self._table(t)
        for f in m.functions:
            self._function(f)
        for t in m.tables:
            if t.scheduled is not None:
                self._schedule(t)
            elif t.scheduled_at is not None:
                raise ModuleDefError(f'table {t.accessor} ({t.where}): scheduled_at= needs scheduled=')
        self._check_names()
        c = self.c
        routes = self._routes()
        reducers = c.reducers
        lifecycles = []
        seen = {}
        for f in reducers:
            if f.lifecycle is not None:
                if f.lifecycle in seen:
                    raise ModuleDefError(f'two {f.lifecycle} reducers: {seen[f.lifecycle].name} '
                                 f'({seen[f.lifecycle].where}) and {f.name} ({f.where})')
                seen[f.lifecycle] = f
                lifecycles.append((md.LIFECYCLE_TAGS[f.lifecycle], f.name))
        c.typespace = self.types.typespace
        c.module_def = md.encode(
            self.types.typespace.types, self.types.defs, self.tables,
            [(f.name, f.param_types, _visibility(f)) for f in reducers],
            [(f.name, f.param_types, f.return_type, _visibility(f)) for f in c.procedures],
            [(f.name, f.index, True, f.anonymous, f.param_types, f.return_type)
             for f in c.views + c.anonymous_views],
            self.schedules, lifecycles, m.rls, m.case_policy, self.explicit,
            [f.name for f in c.http_handlers], routes,
            [(f.name, [f.primary_key]) for f in c.views + c.anonymous_views if f.primary_key is not None])
        c.db = m.db
        c.view_db = m.view_db
        c.tables = list(m.tables)
        c.query_tables = {t.accessor: (t.canonical, {n: self.canon(n) for n, _, _ in t.columns}) for t in m.tables}
        return c

    # -- tables --
    def _row_type(self, t):
        try:
            row = t.cls.__sats_type__
        except TypeError as e:
            raise ModuleDefError(f'table {t.accessor} ({t.where}): {e}') from None
        t.row_type = row
        t.ref = self.types.use(row, f'table {t.accessor} ({t.where})')
        specs = t.cls.__dict__.get('__spacetime_columns__', {})
        t.columns = [(n, ct, specs.get(n) or Field()) for n, ct in row.elements]

    def _table(self, t):
        where = f'table {t.accessor} ({t.where})'
        types = self.types
        cols = t.columns
        names = [n for n, _, _ in cols]
        if t.name is not None:
            _ident(t.name, f'{where}: name')
        t.canonical = t.name if t.name is not None else self.canon(t.accessor)
        if t.name is not None and t.name != self.canon(t.accessor):
            self.explicit.append((0, t.accessor, t.name))
        pk = [i for i, (_, _, f) in enumerate(cols) if f.primary_key]
        if len(pk) > 1:
            raise ModuleDefError('{}: more than one primary key ({})'.format(where, ', '.join(names[i] for i in pk)))
        idx = []          # (source, accessor, algo, [cols], unique, explicit name)
        constraints = []
        sequences = []
        defaults = []
        for i, (n, ct, f) in enumerate(cols):
            _ident(n, f'{where}: column name')
            types.use(ct, f'{where} column {n}')
            if f.unique:
                algo = f.index or 'btree'
                idx.append((f'{t.accessor}_{n}_idx_{algo}', n, algo, [i], True, None))
                constraints.append([i])
            if f.auto_inc:
                r = types.resolve(types.use(ct, n))
                if not r.is_integer():
                    raise ModuleDefError(f'{where}: auto_inc column {n} must be an integer type, not {ct!r}')
                sequences.append(i)
            if f.has_default():
                try:
                    defaults.append((i, encoder(_shared(ct))(f.default)))
                except Exception as e:
                    raise ModuleDefError(f'{where}: default {f.default!r} of column {n} does not fit its type '
                                         f'{ct!r}: {e}') from None
        for i, (n, _, f) in enumerate(cols):
            if f.index and not f.unique:
                idx.append((f'{t.accessor}_{n}_idx_{f.index}', n, f.index, [i], False, None))
        for ix in t.indexes:
            pos = []
            for cn in ix.columns:
                if cn not in names:
                    raise ModuleDefError(f'{where}: index {ix!r} names unknown column {cn!r} '
                                         f'(columns: {", ".join(names)})')
                if names.index(cn) in pos:
                    raise ModuleDefError(f'{where}: index {ix!r} lists column {cn!r} twice')
                pos.append(names.index(cn))
            src = '{}_{}_idx_{}'.format(t.accessor, '_'.join(ix.columns), ix.algorithm)
            idx.append((src, ix.accessor or '_'.join(ix.columns), ix.algorithm, pos, False, ix.name))
            if ix.name is not None:
                _ident(ix.name, f'{where}: index name')
            generated = '{}_{}_idx_{}'.format(t.canonical, '_'.join(self.canon(c) for c in ix.columns), ix.algorithm)
            if ix.name is not None and ix.name != generated:
                self.explicit.append((2, src, ix.name))
        seen_src = {}
        seen_acc = {}
        for src, acc, algo, pos, _, _ in idx:
            if src in seen_src:
                raise ModuleDefError(f'{where}: two indexes over the same columns {[names[p] for p in pos]} '
                                     f'with algorithm {algo}')
            seen_src[src] = True
            _ident(acc, f'{where}: index accessor')
            if acc in seen_acc:
                raise ModuleDefError(f'{where}: two indexes have the accessor {acc!r}; '
                                     'set accessor= on the table-level one')
            seen_acc[acc] = True
            if acc in TABLE_ATTRS or acc.startswith('_'):
                raise ModuleDefError(f'{where}: index accessor {acc!r} clashes with a table handle attribute; '
                                     'choose another (accessor=...)')
            if algo == 'direct' and not _algo_ok_for_direct(cols[pos[0]][1], types):
                raise ModuleDefError(f'{where}: a direct index needs a u8/u16/u32/u64 or all-unit enum column, '
                                     f'{names[pos[0]]} is {cols[pos[0]][1]!r}')
        self.tables.append(md.TableEntry(
            t.accessor, t.ref.index, pk, [(s, a, al, p) for s, a, al, p, _, _ in idx], constraints, sequences,
            t.public, defaults, t.event))
        self._handles(t, idx)

    def _handles(self, t, idx):
        row = t.row_type
        cols = t.columns
        gen = [(n, decoder(_shared(ct))) for n, ct, f in cols if f.auto_inc]
        handle = Table(t.accessor, t.cls, row, gen)
        reader = TableReader(t.accessor, t.cls, row)
        for src, acc, algo, pos, uniq, _ in idx:
            encs = [encoder(_shared(cols[p][1])) for p in pos]
            cnames = [cols[p][0] for p in pos]
            if uniq and cols[pos[0]][2].primary_key:
                h = PrimaryKeyIndex(src, handle, encs, algo, cnames)
            elif uniq:
                h = UniqueIndex(src, handle, encs, algo, cnames)
            else:
                h = IndexHandle(src, handle, encs, algo, cnames)
            r = (UniqueIndexReader if uniq else IndexReader)(src, reader, encs, algo, cnames)
            setattr(handle, acc, h)
            setattr(reader, acc, r)
        t.handle = handle
        t.reader = reader
        setattr(self.m.db, t.accessor, handle)
        setattr(self.m.view_db, t.accessor, reader)

    # -- functions --
    def _function(self, f):
        fn = f.fn
        code = fn.__code__
        anns = fn.__annotations__
        where = f'{f.kind} {f.name} ({f.where})'
        _ident(f.name, f'{f.kind} name')
        if f.kind == 'http_handler':  # (ctx, request) -> Response: no SATS types involved
            if f.explicit is not None:
                _ident(f.explicit, f'{where}: name')
                if f.explicit != self.canon(f.name):
                    self.explicit.append((1, f.name, f.explicit))
            f.canonical = f.explicit if f.explicit is not None else self.canon(f.name)
            f.index = len(self.c.http_handlers)
            self.c.http_handlers.append(f)
            return
        params = []
        for n in code.co_varnames[1:code.co_argcount]:
            if n not in anns:
                raise ModuleDefError(f'{where}: parameter {n!r} needs a type annotation (e.g. {n}: u32)')
            params.append((published_param_name(n), self._type(anns[n], fn, where + f' parameter {n}')))
        f.params = params
        f.param_types = ProductType([(n, self.types.use(t, where)) for n, t in params])
        if params:
            f.decode_args = _lazy_args_decoder(f, [t for _, t in params])
        if f.explicit is not None:
            _ident(f.explicit, f'{where}: name')
        f.canonical = f.explicit if f.explicit is not None else self.canon(f.name)
        if f.explicit is not None and f.explicit != self.canon(f.name):
            self.explicit.append((1, f.name, f.explicit))
        c = self.c
        if f.kind == 'reducer':
            f.index = len(c.reducers)
            c.reducers.append(f)
        elif f.kind == 'procedure':
            ret = anns.get('return', None)
            rt = self._type(ret, fn, where + ' return type')
            f.return_type = self.types.use(rt, where)
            f.encode_result = _unit_result if rt.is_unit() and rt.cls is None else encoder(_shared(rt))
            f.index = len(c.procedures)
            c.procedures.append(f)
        else:
            if 'return' not in anns:
                raise ModuleDefError(f'{where}: annotate the return type: -> Option[Row] or -> list[Row]')
            ret = anns['return']
            q = sys.modules.get(__package__ + '.query')  # loaded by whoever wrote Query[...]
            if q is not None and isinstance(ret, str) and ret.replace(' ', '').startswith('Query['):
                ret = eval(ret, fn.__globals__)  # noqa: S307 - the module's own annotation
            if q is not None and isinstance(ret, q.Query):
                row = self._type(ret.row, fn, where + ' return type')
                if row.tag != TAG_PRODUCT or row.cls is None:
                    raise ModuleDefError(f'{where}: Query[...] takes a table row class, not {row!r}')
                f.return_type = ProductType([(q.QUERY_TAG, self.types.use(row, where))])
                if f.primary_key is not None and f.primary_key not in [n for n, _ in row.elements]:
                    raise ModuleDefError(f'{where}: primary_key={f.primary_key!r} is not a field of {row.cls.__name__}')
                f.result_kind = 'query'
                views = c.anonymous_views if f.anonymous else c.views
                f.index = len(views)
                views.append(f)
                return
            rt = self._type(ret, fn, where + ' return type')
            if rt.tag == TAG_ARRAY:
                elem, f.result_kind = rt.elem, 'list'
            elif rt.is_option():
                elem, f.result_kind = rt.elements[0][1], 'option'
            else:
                raise ModuleDefError(f'{where}: a view returns Option[Row] or list[Row], not {rt!r}')
            if elem.tag != TAG_PRODUCT or elem.cls is None:
                raise ModuleDefError(f'{where}: view rows must be a table row or @product class, not {elem!r}')
            f.return_type = self.types.use(rt, where)
            f.encode_result = encoder(elem)
            if f.primary_key is not None and f.primary_key not in [n for n, _ in elem.elements]:
                raise ModuleDefError(f'{where}: primary_key={f.primary_key!r} is not a field of {elem.cls.__name__}')
            views = c.anonymous_views if f.anonymous else c.views
            f.index = len(views)
            views.append(f)

    def _routes(self):
        """[(handler source name, method or None, path)] of every @router, merged."""
        if not self.m.routers:
            return []
        Router = __import__(__package__ + '.http_handlers', fromlist=('_',)).Router  # not in every snapshot

        merged = Router()
        for fn, where in self.m.routers:
            try:
                r = fn()
                if not isinstance(r, Router):
                    raise TypeError(f'it returned {r!r}, not a Router')
                merged.merge(r)
            except (TypeError, ValueError) as e:
                raise ModuleDefError(f'router {fn.__name__} ({where}): {e}') from None
        declared = {id(f.fn) for f in self.c.http_handlers}
        for _m, _p, h in merged.routes:
            if id(h) not in declared:
                raise ModuleDefError(f'a router routes to {h.__name__}, which is not an @http_handler of this module')
        return [(_FDEFS[h].name, m, p) for m, p, h in merged.routes]

    def _type(self, ann, fn, where):
        try:
            return type_of(ann, fn.__globals__)
        except TypeError as e:
            raise ModuleDefError(f'{where}: {e}') from None

    # -- schedules --
    def _schedule(self, t):
        where = f'scheduled table {t.accessor} ({t.where})'
        target = t.scheduled
        fdef = None
        for _ in range(2):
            if isinstance(target, str):
                fdef = next((f for f in self.m.functions if f.name == target and f.kind != 'view'), None)
                if fdef is None:
                    raise ModuleDefError(f'{where}: no reducer or procedure named {target!r}')
                break
            fdef = function_def(target)
            if isinstance(fdef, FunctionDef):
                break
            if callable(target) and getattr(target, '__code__', None) is not None \
                    and target.__code__.co_argcount == 0:
                target = target()  # scheduled=lambda: the_reducer
                continue
            raise ModuleDefError(f'{where}: scheduled= must be a @reducer/@procedure, its name, or a lambda '
                                 f'returning it; got {target!r}')
        if not isinstance(fdef, FunctionDef) or fdef.kind == 'view':
            raise ModuleDefError(f'{where}: scheduled= must name a reducer or procedure')
        if fdef.lifecycle is not None:
            raise ModuleDefError(f'{where}: a lifecycle reducer cannot be scheduled')
        cols = t.columns
        pk = [i for i, (_, _, f) in enumerate(cols) if f.primary_key]
        if len(pk) != 1 or cols[pk[0]][1].tag != TAG_U64:
            raise ModuleDefError(f'{where}: needs a u64 primary key column, e.g. scheduled_id: u64 = '
                                 'primary_key(auto_inc=True)')
        if t.scheduled_at is not None:
            at = [i for i, (n, _, _) in enumerate(cols) if n == t.scheduled_at]
            if not at or not cols[at[0]][1].is_schedule_at():
                raise ModuleDefError(f'{where}: scheduled_at={t.scheduled_at!r} must name a ScheduleAt column')
        else:
            at = [i for i, (_, ct, _) in enumerate(cols) if ct.is_schedule_at()]
            if len(at) != 1:
                raise ModuleDefError(f'{where}: needs exactly one ScheduleAt column (or scheduled_at="column")')
        p = fdef.param_types.elements
        if len(p) != 1 or p[0][1] != t.ref:
            raise ModuleDefError(f'{where}: {fdef.kind} {fdef.name} ({fdef.where}) must take exactly one parameter '
                                 f'besides the context, annotated with the row class {t.cls.__name__}')
        fdef.scheduled_by = t
        t.schedule_fn = fdef
        self.schedules.append((t.accessor, at[0], fdef.name))

    # -- names (module-def.md 5.3) --
    def _check_names(self):
        owners = {}

        def claim(name, owner):
            prev = owners.get(name)
            if prev is not None and prev != owner:
                raise ModuleDefError(f'the name {name!r} is used by both {prev} and {owner}')
            owners[name] = owner

        for t in self.m.tables:
            owner = f'table {t.accessor} ({t.where})'
            canon = t.canonical
            if canon.startswith('st_'):
                raise ModuleDefError(f'{owner}: canonical table name {canon!r} must not start with st_ '
                                     '(reserved for system tables)')
            claim(t.accessor, owner)
            claim(canon, owner)
        for t, entry in zip(self.m.tables, self.tables):
            canon = t.canonical
            colc = [self.canon(n) for n, _, _ in t.columns]
            explicit = {src: can for kind, src, can in self.explicit if kind == 2}
            for src, _, algo, cols in entry.indexes:
                owner = f'index {src} of table {t.accessor} ({t.where})'
                claim(src, owner)
                claim(explicit.get(src) or '{}_{}_idx_{}'.format(canon, '_'.join(colc[c] for c in cols), algo), owner)
            for cols in entry.constraints:
                claim('{}_{}_key'.format(canon, '_'.join(colc[c] for c in cols)),
                      f'unique constraint of table {t.accessor} ({t.where})')
            for c in entry.sequences:
                claim(f'{canon}_{colc[c]}_seq', f'sequence of table {t.accessor} ({t.where})')
            if t.schedule_fn is not None:
                claim(f'{canon}_sched', f'schedule of table {t.accessor} ({t.where})')
        functions = {}
        for f in self.m.functions:
            owner = f'{f.kind} {f.name} ({f.where})'
            prev = functions.get(f.canonical)
            if prev is not None:
                raise ModuleDefError(f'{prev} and {owner} have the same canonical name {f.canonical!r}')
            functions[f.canonical] = owner
            if f.kind == 'view':
                claim(f.name, owner)
                claim(f.canonical, owner)


def _visibility(f):
    if f.private or f.lifecycle is not None or f.scheduled_by is not None:
        return md.VIS_PRIVATE
    return md.VIS_CLIENT_CALLABLE


def _fixed_format(types):
    """The struct format of a list of fixed-width integer/float types (no bool: it must be 0 or 1), else None."""
    fmt = '<'
    for t in types:
        if t.__class__ is not PrimitiveType or t.tag == TAG_BOOL or t.fmt is None or len(t.fmt) != 1:
            return None
        fmt += t.fmt
    return fmt


def _no_args(args):
    if args:
        raise TypeError(f'this function takes no arguments, got {len(args)}')
    return b''


def _unit_result(value):
    if value is not None:  # returned by a procedure annotated -> None, or not at all: it would be dropped
        raise TypeError('a procedure without a return annotation returns None; annotate it (e.g. -> u32) to '
                        'return a value')
    return b''


def _lazy_args_decoder(f, types):
    """`f.decode_args` until the function's first call, which compiles the argument decoder and puts it in its
    place: a module with many reducers keeps no decoder code in its snapshot for types only arguments use."""

    def decode_first_call(data):
        f.decode_args = dec = _args_decoder([decoder(_shared(t)) for t in types], types)
        return dec(data)
    return decode_first_call


def _args_decoder(decs, types=()):
    """bytes -> argument list, from the parameters' (shared) decoders: no code generated per function.
    Parameters that are all fixed-width integers or floats (e.g. `transfer(from: u32, to: u32, amount: i64)`)
    decode with one struct unpack instead of a decoder call per parameter."""
    fmt = _fixed_format(types)
    if fmt is not None and len(types) > 1:
        unpack = struct.Struct(fmt).unpack
        size = struct.calcsize(fmt)

        def decode_fixed(data):
            if len(data) != size:
                if len(data) > size:
                    raise ValueError(f'{len(data) - size} unexpected bytes after the arguments')
                raise ValueError(f'the arguments need {size} bytes, got {len(data)}')
            return unpack(data)
        return decode_fixed
    if len(decs) == 1:
        d0 = decs[0]

        def decode_one(data):
            v, off = d0(data, 0)
            if off != len(data):
                raise ValueError(f'{len(data) - off} unexpected bytes after the arguments')
            return (v,)
        return decode_one
    decs = tuple(decs)

    def decode_args(data):
        off = 0
        out = []
        for d in decs:
            v, off = d(data, off)
            out.append(v)
        if off != len(data):
            raise ValueError(f'{len(data) - off} unexpected bytes after the arguments')
        return out
    return decode_args


_SHARED = {}


def _has_class(t):
    tag = t.tag
    if tag == TAG_PRODUCT or tag == TAG_SUM:
        return t.cls is not None or any(_has_class(et) for _, et in t.elements)
    if tag == TAG_ARRAY:
        return _has_class(t.elem)
    return False


def _shared(t):
    """One type object per structure (codecs are cached on type objects, so equal parameter and column types
    share one compiled codec).  Types containing classes are left alone: structural equality ignores classes."""
    if _has_class(t):
        return t
    return _SHARED.setdefault(t, t)


__all__ = ['Module', 'ModuleDefError', 'anonymous_view', 'client_connected', 'client_disconnected',
           'client_visibility_filter', 'current', 'http_handler', 'init', 'new_module', 'procedure', 'reducer',
           'router', 'settings', 'table', 'view']
