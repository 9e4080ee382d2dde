"""SATS types and the BSATN codec (spec: bsatn.md, module-def.md section 4).

Shared by module code (CPython 3.11 in wasm), the host (harness/) and the
client SDK.  Only ``struct`` and ``sys`` are imported from the stdlib.

Python value mapping (decode produces exactly these; encode accepts them
and, more slowly, a few lenient alternatives noted in brackets):

==========================  ===============================================
SATS type                   Python value
==========================  ===============================================
U8..U256, I8..I256          ``int`` (range-checked on encode) [bool]
F32, F64                    ``float`` [int]
Bool                        ``bool`` (exactly True/False)
String                      ``str``
Array<U8>                   ``bytes`` [bytearray, memoryview, list of int]
Array<T>                    ``list`` [tuple]
Option<T>                   ``None`` or the value [``Some(v)``]
Option<Option<T>>           ``None``, ``Some(None)``, ``Some(v)`` (decode
                            always wraps; encode treats a bare value as Some)
Result<T, E>                ``Ok(v)`` / ``Err(e)``
Identity, ConnectionId      ``Identity``, ``ConnectionId``
Timestamp, TimeDuration     ``Timestamp``, ``TimeDuration``
Uuid, ScheduleAt            ``Uuid``, ``ScheduleAt``
unit (empty product)        ``()`` [None]
product, unbound            ``tuple`` in element order [list, dict by name,
                            object with attributes]
product bound to a class    instance of the class (built with ``__new__`` +
                            attribute stores; encode reads attributes)
sum, unbound                ``SumValue(tag_index, payload)``; payload None
                            for unit variants
sum bound to a class        the class's variant values (``@sum``): payload
                            variants ``Cls.V(value)``, unit variants the
                            singleton ``Cls.V``
==========================  ===============================================

Special shapes (Identity ... ScheduleAt, Option, Result) are recognised
structurally on the type (not through Refs) and take precedence over
bindings.  Codecs: ``encoder(t, typespace)`` / ``decoder(t, typespace)``
return compiled functions cached on the type; ``encode`` / ``decode`` are
one-shot conveniences.  All failures raise ``BsatnError`` (a ValueError).
"""

from .annotations import (
    Option,
    Result,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    i128,
    i256,
    type_of,
    u8,
    u16,
    u32,
    u64,
    u128,
    u256,
)
from .codec import decode, decode_all, decoder, encode, encoder, exact_decoder
from .decl import product, sum, sum_type  # noqa: F401 - ``sum`` is importable by name, not in __all__
from .ordering import identity_key, sort_key
from .typecodec import (
    decode_product_type,
    decode_sum_type,
    decode_type,
    decode_typespace,
    encode_product_type,
    encode_sum_type,
    encode_type,
    encode_typespace,
)
from .types import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
    NEVER,
    PRIMITIVES,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    UUID,
    AlgebraicType,
    ArrayType,
    BsatnError,
    PrimitiveType,
    ProductType,
    RefType,
    SumType,
    Typespace,
    array_type,
    is_type_use,
    option_type,
    resolve,
    result_type,
)
from .values import (
    ConnectionId,
    Err,
    Identity,
    Ok,
    ScheduleAt,
    Some,
    SumValue,
    TimeDuration,
    Timestamp,
    Uuid,
)

__all__ = [
    # type model
    'AlgebraicType', 'PrimitiveType', 'ProductType', 'SumType', 'ArrayType', 'RefType', 'Typespace',
    'BOOL', 'STRING', 'U8', 'U16', 'U32', 'U64', 'U128', 'U256', 'I8', 'I16', 'I32', 'I64', 'I128',
    'I256', 'F32', 'F64', 'PRIMITIVES', 'BYTES', 'UNIT', 'NEVER', 'IDENTITY', 'CONNECTION_ID',
    'TIMESTAMP', 'TIME_DURATION', 'UUID', 'SCHEDULE_AT',
    'option_type', 'result_type', 'array_type', 'is_type_use', 'resolve',
    # errors
    'BsatnError',
    # values
    'Identity', 'ConnectionId', 'Timestamp', 'TimeDuration', 'Uuid', 'ScheduleAt', 'Some', 'Ok', 'Err',
    'SumValue',
    # codecs
    'encoder', 'decoder', 'encode', 'decode', 'decode_all', 'exact_decoder',
    'encode_type', 'decode_type', 'encode_product_type', 'decode_product_type', 'encode_sum_type',
    'decode_sum_type', 'encode_typespace', 'decode_typespace',
    # ordering
    'sort_key', 'identity_key',
    # annotations and declarations ('sum' deliberately omitted: it would shadow the builtin)
    'type_of', 'Option', 'Result', 'u8', 'u16', 'u32', 'u64', 'u128', 'u256', 'i8', 'i16', 'i32', 'i64',
    'i128', 'i256', 'f32', 'f64', 'product', 'sum_type',
]
