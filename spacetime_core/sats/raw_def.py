"""``RawModuleDef`` (module-def.md sections 1-3) described once, as SATS types.

Every structure of ``RawModuleDefV10`` and ``RawModuleDefV9`` is a ProductType / SumType here, with the
upstream field and variant names (``crates/lib/src/db/raw_def/v{9,10}.rs``), so the one BSATN codec of this
package decodes and encodes module definitions and ``satsjson`` gives their typed JSON.  ``V8BackCompat``
is a refused stub.

``AlgebraicType`` itself (bsatn.md section 5) is the recursive sum ``TYPESPACE[0]``: ``Ref(u32)``,
``Sum(SumType)``, ``Product(ProductType)``, ``Array(AlgebraicType)`` (the element type, no wrapper), then
the primitives ``String`` .. ``F64`` as unit variants.  ``RawModuleDefV10`` is ``TYPESPACE[1]`` (submodules
nest it).  Decoded values follow the package's mapping: products are tuples in field order, sums
``SumValue(tag, payload)``, options ``None`` or the value, ``Vec<u8>`` ``bytes``.  The ``*_from_value`` /
``*_to_value`` converters map the type values to and from ``AlgebraicType`` objects.

Import-light on purpose (only this package): modules may bundle it.
"""

from .codec import decoder, encoder
from .types import (
    BOOL,
    I128,
    NEVER,
    PRIMITIVES,
    STRING,
    U8,
    U16,
    U32,
    UNIT,
    ArrayType,
    BsatnError,
    ProductType,
    RefType,
    SumType,
    Typespace,
    option_type,
)
from .values import SumValue

__all__ = [
    'TYPESPACE', 'ALGEBRAIC_TYPE', 'PRODUCT_TYPE', 'SUM_TYPE', 'TYPESPACE_TYPE', 'RAW_MODULE_DEF',
    'RAW_MODULE_DEF_V9', 'RAW_MODULE_DEF_V10', 'RAW_MODULE_DEF_V10_SECTION', 'V10_SECTION_NAMES',
    'decode_raw_def', 'encode_raw_def', 'encode_raw_def_once', 'record',
    'algebraic_type_from_value', 'algebraic_type_to_value', 'product_type_from_value', 'product_type_to_value',
    'typespace_from_value', 'typespace_to_value',
]


def _p(*fields):
    return ProductType(list(fields))


def _enum(*names):
    return SumType([(n, UNIT) for n in names])


def _vec(t):
    return ArrayType(t)


TYPESPACE = Typespace([None, None])
_AT = RefType(0)  # AlgebraicType
_V10 = RefType(1)  # RawModuleDefV10

_OPT_STR = option_type(STRING)
_OPT_I128 = option_type(I128)
_COL_LIST = _vec(U16)
_BYTES = _vec(U8)

# ------------------------------------------------------------------------- AlgebraicType (bsatn.md §5)

SUM_TYPE = _p(('variants', _vec(_p(('name', _OPT_STR), ('algebraic_type', _AT)))))
PRODUCT_TYPE = _p(('elements', _vec(_p(('name', _OPT_STR), ('algebraic_type', _AT)))))
ALGEBRAIC_TYPE = SumType([('Ref', U32), ('Sum', SUM_TYPE), ('Product', PRODUCT_TYPE), ('Array', _AT)]
                         + [(p.name, UNIT) for p in PRIMITIVES])
TYPESPACE_TYPE = _p(('types', _vec(_AT)))
TYPESPACE.set(0, ALGEBRAIC_TYPE)

# ------------------------------------------------------------------------- shared (V9 and V10)

TABLE_TYPE = _enum('System', 'User')
TABLE_ACCESS = _enum('Public', 'Private')
LIFECYCLE = _enum('Init', 'OnConnect', 'OnDisconnect')
# Upstream's `BTree { columns }` are single-field struct variants, which SATS derives as newtype variants:
# the payload is the ColList / ColId itself (`{"BTree": [0]}` in JSON), not a product around it.
RAW_INDEX_ALGORITHM = SumType([('BTree', _COL_LIST), ('Hash', _COL_LIST), ('Direct', U16)])
RAW_CONSTRAINT_DATA_V9 = SumType([('Unique', _p(('columns', _COL_LIST)))])
RAW_ROW_LEVEL_SECURITY_DEF_V9 = _p(('sql', STRING))


def _index(name_key):
    return _p((name_key, _OPT_STR), ('accessor_name', _OPT_STR), ('algorithm', RAW_INDEX_ALGORITHM))


def _constraint(name_key):
    return _p((name_key, _OPT_STR), ('data', RAW_CONSTRAINT_DATA_V9))


def _sequence(name_key):
    return _p((name_key, _OPT_STR), ('column', U16), ('start', _OPT_I128), ('min_value', _OPT_I128),
              ('max_value', _OPT_I128), ('increment', I128))


# ------------------------------------------------------------------------- V10 (module-def.md §2)

RAW_INDEX_DEF_V10 = _index('source_name')
RAW_CONSTRAINT_DEF_V10 = _constraint('source_name')
RAW_SEQUENCE_DEF_V10 = _sequence('source_name')
RAW_COLUMN_DEFAULT_VALUE_V10 = _p(('col_id', U16), ('value', _BYTES))
RAW_TYPE_DEF_V10 = _p(('source_name', _p(('scope', _vec(STRING)), ('source_name', STRING))), ('ty', U32),
                      ('custom_ordering', BOOL))
RAW_TABLE_DEF_V10 = _p(
    ('source_name', STRING), ('product_type_ref', U32), ('primary_key', _COL_LIST),
    ('indexes', _vec(RAW_INDEX_DEF_V10)), ('constraints', _vec(RAW_CONSTRAINT_DEF_V10)),
    ('sequences', _vec(RAW_SEQUENCE_DEF_V10)), ('table_type', TABLE_TYPE), ('table_access', TABLE_ACCESS),
    ('default_values', _vec(RAW_COLUMN_DEFAULT_VALUE_V10)), ('is_event', BOOL))
FUNCTION_VISIBILITY = _enum('Private', 'ClientCallable')
RAW_REDUCER_DEF_V10 = _p(('source_name', STRING), ('params', PRODUCT_TYPE), ('visibility', FUNCTION_VISIBILITY),
                         ('ok_return_type', _AT), ('err_return_type', _AT))
RAW_PROCEDURE_DEF_V10 = _p(('source_name', STRING), ('params', PRODUCT_TYPE), ('return_type', _AT),
                           ('visibility', FUNCTION_VISIBILITY))
RAW_VIEW_DEF_V10 = _p(('source_name', STRING), ('index', U32), ('is_public', BOOL), ('is_anonymous', BOOL),
                      ('params', PRODUCT_TYPE), ('return_type', _AT))
RAW_SCHEDULE_DEF_V10 = _p(('source_name', _OPT_STR), ('table_name', STRING), ('schedule_at_col', U16),
                          ('function_name', STRING))
RAW_LIFE_CYCLE_REDUCER_DEF_V10 = _p(('lifecycle_spec', LIFECYCLE), ('function_name', STRING))
CASE_CONVERSION_POLICY = _enum('None', 'SnakeCase')
NAME_MAPPING = _p(('source_name', STRING), ('canonical_name', STRING))
EXPLICIT_NAMES = _p(('entries', _vec(SumType([('Table', NAME_MAPPING), ('Function', NAME_MAPPING),
                                              ('Index', NAME_MAPPING)]))))
RAW_HTTP_HANDLER_DEF_V10 = _p(('source_name', STRING))
HTTP_METHOD = SumType([(n, UNIT) for n in ('Get', 'Head', 'Post', 'Put', 'Delete', 'Connect', 'Options', 'Trace',
                                           'Patch')] + [('Extension', STRING)])
METHOD_OR_ANY = SumType([('Any', UNIT), ('Method', HTTP_METHOD)])
RAW_HTTP_ROUTE_DEF_V10 = _p(('handler_function', STRING), ('method', METHOD_OR_ANY), ('path', STRING))
RAW_VIEW_PRIMARY_KEY_DEF_V10 = _p(('view_source_name', STRING), ('columns', _vec(STRING)))
RAW_SUBMODULE_V10 = _p(('namespace', STRING), ('module', _V10))

V10_SECTION_NAMES = ('Typespace', 'Types', 'Tables', 'Reducers', 'Procedures', 'Views', 'Schedules',
                     'LifeCycleReducers', 'RowLevelSecurity', 'CaseConversionPolicy', 'ExplicitNames',
                     'HttpHandlers', 'HttpRoutes', 'ViewPrimaryKeys', 'Submodules')
RAW_MODULE_DEF_V10_SECTION = SumType(list(zip(V10_SECTION_NAMES, (
    TYPESPACE_TYPE, _vec(RAW_TYPE_DEF_V10), _vec(RAW_TABLE_DEF_V10), _vec(RAW_REDUCER_DEF_V10),
    _vec(RAW_PROCEDURE_DEF_V10), _vec(RAW_VIEW_DEF_V10), _vec(RAW_SCHEDULE_DEF_V10),
    _vec(RAW_LIFE_CYCLE_REDUCER_DEF_V10), _vec(RAW_ROW_LEVEL_SECURITY_DEF_V9), CASE_CONVERSION_POLICY,
    EXPLICIT_NAMES, _vec(RAW_HTTP_HANDLER_DEF_V10), _vec(RAW_HTTP_ROUTE_DEF_V10),
    _vec(RAW_VIEW_PRIMARY_KEY_DEF_V10), _vec(RAW_SUBMODULE_V10)))))
RAW_MODULE_DEF_V10 = _p(('sections', _vec(RAW_MODULE_DEF_V10_SECTION)))
TYPESPACE.set(1, RAW_MODULE_DEF_V10)

# ------------------------------------------------------------------------- V9 (module-def.md §3)

RAW_INDEX_DEF_V9 = _index('name')
RAW_CONSTRAINT_DEF_V9 = _constraint('name')
RAW_SEQUENCE_DEF_V9 = _sequence('name')
RAW_SCHEDULE_DEF_V9 = _p(('name', _OPT_STR), ('reducer_name', STRING), ('scheduled_at_column', U16))
RAW_TABLE_DEF_V9 = _p(
    ('name', STRING), ('product_type_ref', U32), ('primary_key', _COL_LIST), ('indexes', _vec(RAW_INDEX_DEF_V9)),
    ('constraints', _vec(RAW_CONSTRAINT_DEF_V9)), ('sequences', _vec(RAW_SEQUENCE_DEF_V9)),
    ('schedule', option_type(RAW_SCHEDULE_DEF_V9)), ('table_type', TABLE_TYPE), ('table_access', TABLE_ACCESS))
RAW_REDUCER_DEF_V9 = _p(('name', STRING), ('params', PRODUCT_TYPE), ('lifecycle', option_type(LIFECYCLE)))
RAW_TYPE_DEF_V9 = _p(('name', _p(('scope', _vec(STRING)), ('name', STRING))), ('ty', U32),
                     ('custom_ordering', BOOL))
RAW_MISC_MODULE_EXPORT_V9 = SumType([
    ('ColumnDefaultValue', _p(('table', STRING), ('col_id', U16), ('value', _BYTES))),
    ('Procedure', _p(('name', STRING), ('params', PRODUCT_TYPE), ('return_type', _AT))),
    ('View', _p(('name', STRING), ('index', U32), ('is_public', BOOL), ('is_anonymous', BOOL),
                ('params', PRODUCT_TYPE), ('return_type', _AT))),
])
RAW_MODULE_DEF_V9 = _p(
    ('typespace', TYPESPACE_TYPE), ('tables', _vec(RAW_TABLE_DEF_V9)), ('reducers', _vec(RAW_REDUCER_DEF_V9)),
    ('types', _vec(RAW_TYPE_DEF_V9)), ('misc_exports', _vec(RAW_MISC_MODULE_EXPORT_V9)),
    ('row_level_security', _vec(RAW_ROW_LEVEL_SECURITY_DEF_V9)))

# ------------------------------------------------------------------------- the outer sum (module-def.md §1)

RAW_MODULE_DEF = SumType([('V8BackCompat', NEVER), ('V9', RAW_MODULE_DEF_V9), ('V10', _V10)])
V8, V9, V10 = 0, 1, 2


def record(t, v):
    """A product value as a dict keyed by ``t``'s field names (one level)."""
    return dict(zip(t.names(), v))


def decode_raw_def(data):
    """Decode RawModuleDef BSATN into ``SumValue(V9 | V10, payload)``.  Raises BsatnError (a ValueError) on
    empty, truncated, trailing or malformed input and for ``V8BackCompat``."""
    data = bytes(data)
    if not data:
        raise BsatnError('empty RawModuleDef')
    if data[0] == V8:
        raise BsatnError('RawModuleDef V8BackCompat is not supported')
    try:
        v, off = decoder(RAW_MODULE_DEF, TYPESPACE)(data, 0)
    except RecursionError:
        raise BsatnError('RawModuleDef nests types too deeply') from None
    except BsatnError as e:
        raise BsatnError(_readable(str(e))) from None
    if off != len(data):
        raise BsatnError(f'trailing bytes: the RawModuleDef ends at byte {off} of {len(data)}')
    return v


def _readable(msg):
    """The codec's message with the (long, anonymous) type reprs replaced by the RawModuleDef path."""
    from .reference import _root

    msg = msg.replace(f'({_root(RAW_MODULE_DEF)}', '(RawModuleDef')
    i = msg.find(' for Sum{')
    if i >= 0:
        j = msg.rfind(' (')
        msg = msg[:i] + (msg[j:] if j > i else '')
    return msg


def encode_raw_def(value):
    """BSATN bytes of a RawModuleDef value (``SumValue(V9 | V10, payload)``, as ``decode_raw_def`` gives)."""
    return encoder(RAW_MODULE_DEF, TYPESPACE)(value)


def encode_raw_def_once(value):
    """``encode_raw_def`` through the package's reference codec: the same bytes, but no compiled codec is left
    cached on the RawModuleDef types.  For one-shot callers whose heap is kept: a module's build encodes its
    definition once and snapshots every live object (``module_sdk.moduledef``)."""
    from .reference import encode

    return encode(RAW_MODULE_DEF, value, TYPESPACE)


# ------------------------------------------------------------------------- type values <-> AlgebraicType

_PRIM = {p.tag: p for p in PRIMITIVES}


def _elements_from_value(items):
    return [(name, algebraic_type_from_value(t)) for name, t in items]


def algebraic_type_from_value(v):
    """The AlgebraicType object for a decoded ``ALGEBRAIC_TYPE`` value."""
    tag, p = v.tag, v.value
    if tag == 0:
        return RefType(p)
    if tag == 1:
        els = _elements_from_value(p[0])
        if len(els) > 256:
            raise BsatnError(f'sum type with {len(els)} variants (max 256)')
        return SumType(els)
    if tag == 2:
        return ProductType(_elements_from_value(p[0]))
    if tag == 3:
        return ArrayType(algebraic_type_from_value(p))
    return _PRIM[tag]


def product_type_from_value(v):
    """The ProductType for a decoded ``PRODUCT_TYPE`` value (e.g. reducer params)."""
    return ProductType(_elements_from_value(v[0]))


def typespace_from_value(v):
    return Typespace([algebraic_type_from_value(t) for t in v[0]])


def _elements_to_value(t):
    return ([(name, algebraic_type_to_value(et)) for name, et in t.elements],)


def algebraic_type_to_value(t):
    """Inverse of ``algebraic_type_from_value``."""
    tag = t.tag
    if tag == 0:
        return SumValue(0, t.index)
    if tag == 1 or tag == 2:
        return SumValue(tag, _elements_to_value(t))
    if tag == 3:
        return SumValue(3, algebraic_type_to_value(t.elem))
    return SumValue(tag, None)


def product_type_to_value(t):
    return _elements_to_value(t)


def typespace_to_value(ts):
    return ([algebraic_type_to_value(t) for t in ts.types],)
