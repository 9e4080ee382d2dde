"""`RawModuleDef::V10` (module-def.md section 2) as the generic value `sats.raw_def` describes.

`schema.py` collects the definitions as plain tuples (below); `encode()` maps them onto the `raw_def` types
(products as tuples, sums as `SumValue`, options as None / the value) and writes the bytes with the one BSATN
codec (`encode_raw_def_once`: the reference path, so the build's snapshot keeps no compiled RawModuleDef
codec).  Sections that would be empty (and a default CaseConversionPolicy) are left out, in
section-tag order, so the minimal module of module-def.md section 8 encodes byte for byte.

Shapes:
    types       [(scope: list[str], name, typespace index)]
    tables      [TableEntry]
    reducers    [(source_name, params: ProductType, visibility)]
    procedures  [(source_name, params, return_type, visibility)]
    views       [(source_name, index, is_public, is_anonymous, params, return_type)]
    schedules   [(table source name, schedule_at column, function source name)]
    lifecycles  [(lifecycle tag, function source name)]
    rls         [sql]
    explicit    [(kind tag: 0 table / 1 function / 2 index, source_name, canonical_name)]
    http_handlers [source_name]                 (HttpHandlerId = position)
    http_routes [(handler source_name, method name or None = any, path)]
    view_primary_keys [(view source_name, [column source name])]
"""

from spacetime_core.sats.raw_def import V10, algebraic_type_to_value, encode_raw_def_once, product_type_to_value
from spacetime_core.sats.types import STRING, UNIT
from spacetime_core.sats.values import SumValue

SEC_TYPESPACE = 0
SEC_TYPES = 1
SEC_TABLES = 2
SEC_REDUCERS = 3
SEC_PROCEDURES = 4
SEC_VIEWS = 5
SEC_SCHEDULES = 6
SEC_LIFECYCLE = 7
SEC_RLS = 8
SEC_CASE_POLICY = 9
SEC_EXPLICIT_NAMES = 10
SEC_HTTP_HANDLERS = 11
SEC_HTTP_ROUTES = 12
SEC_VIEW_PRIMARY_KEYS = 13
HTTP_METHOD_TAGS = {m: i for i, m in enumerate(('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS',
                                                 'TRACE', 'PATCH'))}

ALGO_TAGS = {'btree': 0, 'hash': 1, 'direct': 2}
LIFECYCLE_TAGS = {'init': 0, 'client_connected': 1, 'client_disconnected': 2}
VIS_PRIVATE = 0
VIS_CLIENT_CALLABLE = 1
ACCESS_PUBLIC = 0
ACCESS_PRIVATE = 1
CASE_NONE = 0
CASE_SNAKE = 1


class TableEntry:
    __slots__ = ('source_name', 'ref', 'primary_key', 'indexes', 'constraints', 'sequences', 'public',
                 'defaults', 'is_event')

    def __init__(self, source_name, ref, primary_key=(), indexes=(), constraints=(), sequences=(), public=False,
                 defaults=(), is_event=False):
        self.source_name = source_name
        self.ref = ref
        self.primary_key = list(primary_key)     # [col]
        self.indexes = list(indexes)             # [(source_name, accessor_name|None, algorithm, [cols])]
        self.constraints = list(constraints)     # [[cols]] (unique)
        self.sequences = list(sequences)         # [col] (increment 1, no start/min/max)
        self.public = public
        self.defaults = list(defaults)           # [(col, bsatn bytes)]
        self.is_event = is_event


_TABLE_USER = SumValue(1, None)  # TableType::User
_UNIT_TYPE = algebraic_type_to_value(UNIT)  # reducer ok_return_type
_STRING_TYPE = algebraic_type_to_value(STRING)  # reducer err_return_type


def _unit(tag):
    return SumValue(tag, None)


def _index(item):
    name, accessor, algo, cols = item
    data = cols[0] if algo == 'direct' else list(cols)
    return name, accessor, SumValue(ALGO_TAGS[algo], data)


def _table(t):
    return (
        t.source_name, t.ref, list(t.primary_key),
        [_index(i) for i in t.indexes],
        [(None, SumValue(0, (list(cols),))) for cols in t.constraints],  # RawConstraintDataV9::Unique
        [(None, col, None, None, None, 1) for col in t.sequences],  # start/min/max None, increment 1
        _TABLE_USER, _unit(ACCESS_PUBLIC if t.public else ACCESS_PRIVATE),
        [(col, bytes(value)) for col, value in t.defaults],
        bool(t.is_event),
    )


def _type_def(item):
    scope, name, ref = item
    return (list(scope), name), ref, True  # custom_ordering, like the Rust SDK


def _reducer(item):
    name, params, visibility = item
    return name, product_type_to_value(params), _unit(visibility), _UNIT_TYPE, _STRING_TYPE


def _procedure(item):
    name, params, return_type, visibility = item
    return name, product_type_to_value(params), algebraic_type_to_value(return_type), _unit(visibility)


def _view(item):
    name, index, is_public, is_anonymous, params, return_type = item
    return (name, index, bool(is_public), bool(is_anonymous), product_type_to_value(params),
            algebraic_type_to_value(return_type))


def _schedule(item):
    table, col, function = item
    return None, table, col, function  # source_name ignored: the name is always {table}_sched


def _lifecycle(item):
    tag, function = item
    return _unit(tag), function


def _route(item):
    handler, method, path = item
    if method is None:
        m = _unit(0)  # MethodOrAny::Any
    elif method in HTTP_METHOD_TAGS:
        m = SumValue(1, _unit(HTTP_METHOD_TAGS[method]))
    else:
        m = SumValue(1, SumValue(9, method))  # HttpMethod::Extension
    return handler, m, path


def encode(typespace, types=(), tables=(), reducers=(), procedures=(), views=(), schedules=(), lifecycles=(),
           rls=(), case_policy=CASE_SNAKE, explicit=(), http_handlers=(), http_routes=(), view_primary_keys=()):
    """The BSATN of `RawModuleDef::V10(...)`."""
    sections = []

    def section(tag, items, value):
        items = list(items)
        if items:
            sections.append(SumValue(tag, value(items)))

    section(SEC_TYPESPACE, typespace, lambda ts: ([algebraic_type_to_value(t) for t in ts],))
    section(SEC_TYPES, types, lambda items: [_type_def(i) for i in items])
    section(SEC_TABLES, tables, lambda items: [_table(i) for i in items])
    section(SEC_REDUCERS, reducers, lambda items: [_reducer(i) for i in items])
    section(SEC_PROCEDURES, procedures, lambda items: [_procedure(i) for i in items])
    section(SEC_VIEWS, views, lambda items: [_view(i) for i in items])
    section(SEC_SCHEDULES, schedules, lambda items: [_schedule(i) for i in items])
    section(SEC_LIFECYCLE, lifecycles, lambda items: [_lifecycle(i) for i in items])
    section(SEC_RLS, rls, lambda items: [(sql,) for sql in items])
    if case_policy != CASE_SNAKE:
        sections.append(SumValue(SEC_CASE_POLICY, _unit(case_policy)))
    section(SEC_EXPLICIT_NAMES, explicit,
            lambda items: ([SumValue(kind, (source, canonical)) for kind, source, canonical in items],))
    section(SEC_HTTP_HANDLERS, http_handlers, lambda items: [(name,) for name in items])
    section(SEC_HTTP_ROUTES, http_routes, lambda items: [_route(i) for i in items])
    section(SEC_VIEW_PRIMARY_KEYS, view_primary_keys, lambda items: [(v, list(cols)) for v, cols in items])
    return encode_raw_def_once(SumValue(V10, (sections,)))
