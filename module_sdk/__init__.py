"""Write SpacetimeDB 2.x server modules in Python.

    from module_sdk import table, reducer, ReducerContext, SenderError, u32, u64, primary_key

    @table(public=True)
    class Person:
        id: u64 = primary_key(auto_inc=True)
        name: str
        age: u32

    @reducer
    def add(ctx: ReducerContext, name: str, age: u32):
        if not name:
            raise SenderError("name must not be empty")
        ctx.db.person.insert(Person(name=name, age=age))

Reference: docs/module-api.md.  Build with `spacetime-py build` (module_sdk.build).
"""

from spacetime_core.sats import (
    BsatnError,
    ConnectionId,
    Err,
    Identity,
    Ok,
    Option,
    Result,
    ScheduleAt,
    Some,
    SumValue,
    TimeDuration,
    Timestamp,
    Uuid,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    i128,
    i256,
    product,
    sum_type,
    type_of,
    u8,
    u16,
    u32,
    u64,
    u128,
    u256,
)
from spacetime_core.sats.decl import sum as sum  # noqa: A004 - `@sum` as in the brief; not in __all__ (it shadows the builtin)

from . import log
from .columns import auto_inc, btree, default, direct, field, hash_index, index, primary_key, unique
from .context import (
    AnonymousViewContext,
    AuthContext,
    HandlerContext,
    ProcedureContext,
    ReducerContext,
    TxContext,
    ViewContext,
)
from .errors import (
    AutoIncOverflow,
    BsatnDecodeError,
    HttpError,
    IndexNotUnique,
    NoSuchIndex,
    NoSuchRow,
    NoSuchTable,
    NotInTransaction,
    ScheduleAtDelayTooLong,
    SenderError,
    SpacetimeError,
    UniqueAlreadyExists,
    WouldBlockTransaction,
)
from .http import HttpResponse
from .indexes import UNBOUNDED, Excluded, Included, Range
from .jwt import JwtClaims
from .rng import Rng
from .scheduling import schedule_immediate
from .schema import (
    ModuleDefError,
    anonymous_view,
    client_connected,
    client_disconnected,
    client_visibility_filter,
    http_handler,
    init,
    procedure,
    reducer,
    router,
    settings,
    table,
    view,
)

__all__ = [
    # declaring
    'table', 'reducer', 'init', 'client_connected', 'client_disconnected', 'procedure', 'view', 'anonymous_view',
    'client_visibility_filter', 'settings', 'product', 'sum_type', 'http_handler', 'router', 'Router', 'Request',
    'Response', 'Query',
    'field', 'primary_key', 'unique', 'auto_inc', 'index', 'default', 'btree', 'hash_index', 'direct',
    # contexts
    'ReducerContext', 'TxContext', 'ViewContext', 'AnonymousViewContext', 'ProcedureContext', 'AuthContext',
    'HandlerContext',
    'JwtClaims',
    # types and values
    'u8', 'u16', 'u32', 'u64', 'u128', 'u256', 'i8', 'i16', 'i32', 'i64', 'i128', 'i256', 'f32', 'f64',
    'Option', 'Result', 'Some', 'Ok', 'Err', 'SumValue', 'Identity', 'ConnectionId', 'Timestamp', 'TimeDuration',
    'Uuid', 'ScheduleAt', 'type_of',
    # queries
    'Range', 'Included', 'Excluded', 'UNBOUNDED',
    # errors
    'SenderError', 'SpacetimeError', 'UniqueAlreadyExists', 'NoSuchRow', 'NoSuchTable', 'NoSuchIndex',
    'NotInTransaction', 'BsatnDecodeError', 'ScheduleAtDelayTooLong', 'IndexNotUnique', 'AutoIncOverflow',
    'WouldBlockTransaction', 'HttpError', 'ModuleDefError', 'BsatnError',
    # misc
    'log', 'Rng', 'HttpResponse', 'schedule_immediate',
]


# Loaded on first use, so modules that do not serve HTTP or build queries keep them out of their snapshot
# (`__import__`, not an import statement: the build imports every nested import statement eagerly).
_LAZY = {'Request': 'http_handlers', 'Response': 'http_handlers', 'Router': 'http_handlers', 'Query': 'query'}


def __getattr__(name):
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(__import__(f'{__name__}.{sub}', fromlist=('_',)), name)
