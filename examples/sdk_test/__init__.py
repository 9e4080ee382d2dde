"""Port of the upstream conformance module `modules/sdk-test` (Rust) to Python.

Canonical table, type, reducer and parameter names match the Rust module, so the Rust test client
(`sdks/rust/tests/test-client`) generated for the upstream module works against this one.  The
repetitive families (`one_*`, `vec_*`, `option_*`, `result_*`, `unique_*`, `pk_*`) are generated in loops:
row classes are built with `type(...)` and passed through `@table`, reducers are closures whose source
name and parameter names are set to what the Rust macro generates (`insert_one_u8(n)`, ...); the server's
snake_case policy then derives the same canonical names (`one_u_8`, `insert_one_u_8`).
"""

import struct

from module_sdk import (
    ConnectionId,
    Identity,
    Option,
    ReducerContext,
    Result,
    ScheduleAt,
    SenderError,
    TimeDuration,
    Timestamp,
    Uuid,
    btree,
    client_visibility_filter,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    i128,
    i256,
    index,
    primary_key,
    product,
    reducer,
    sum_type,
    table,
    u8,
    u16,
    u32,
    u64,
    u128,
    u256,
    unique,
)

# ---------------------------------------------------------------------------------------------------------
# §1 shared user types (declaration order as upstream)


@sum_type
class SimpleEnum:
    Zero: None
    One: None
    Two: None


@sum_type
class EnumWithPayload:
    U8: u8
    U16: u16
    U32: u32
    U64: u64
    U128: u128
    U256: u256
    I8: i8
    I16: i16
    I32: i32
    I64: i64
    I128: i128
    I256: i256
    Bool: bool
    F32: f32
    F64: f64
    Str: str
    Identity: Identity
    ConnectionId: ConnectionId
    Timestamp: Timestamp
    Uuid: Uuid
    Bytes: list[u8]
    Ints: list[i32]
    Strings: list[str]
    SimpleEnums: list[SimpleEnum]


@product
class UnitStruct:
    pass


@product
class ByteStruct:
    b: u8


@product
class EveryPrimitiveStruct:
    a: u8
    b: u16
    c: u32
    d: u64
    e: u128
    f: u256
    g: i8
    h: i16
    i: i32
    j: i64
    k: i128
    l: i256  # noqa: E741 - field name fixed by the upstream module
    m: bool
    n: f32
    o: f64
    p: str
    q: Identity
    r: ConnectionId
    s: Timestamp
    t: TimeDuration
    u: Uuid


@product
class EveryVecStruct:
    a: list[u8]
    b: list[u16]
    c: list[u32]
    d: list[u64]
    e: list[u128]
    f: list[u256]
    g: list[i8]
    h: list[i16]
    i: list[i32]
    j: list[i64]
    k: list[i128]
    l: list[i256]  # noqa: E741
    m: list[bool]
    n: list[f32]
    o: list[f64]
    p: list[str]
    q: list[Identity]
    r: list[ConnectionId]
    s: list[Timestamp]
    t: list[TimeDuration]
    u: list[Uuid]


# ---------------------------------------------------------------------------------------------------------
# Generators


def _pascal(snake):
    return ''.join(w[:1].upper() + w[1:] for w in snake.split('_'))


def _row_class(cls_name, accessor, cols, public=True, indexes=()):
    """A @table row class `cls_name` with columns [(name, type, marker-or-None)], table source name accessor."""
    ns = {'__annotations__': {n: t for n, t, _ in cols}, '__module__': __name__, '__qualname__': cls_name}
    for n, _, marker in cols:
        if marker is not None:
            ns[n] = marker
    return table(accessor=accessor, public=public, indexes=list(indexes))(type(cls_name, (), ns))


def _reducer(name, params, body):
    """Register reducer `name(ctx, <params>)` (params: [(name, type)]) that calls body(ctx, *args)."""
    n = len(params)
    if n == 0:
        def fn(ctx):
            body(ctx)
    elif n == 1:
        def fn(ctx, a0):
            body(ctx, a0)
    elif n == 2:
        def fn(ctx, a0, a1):
            body(ctx, a0, a1)
    elif n == 3:
        def fn(ctx, a0, a1, a2):
            body(ctx, a0, a1, a2)
    else:
        raise TypeError(f'{name}: too many parameters for the generator')
    names = tuple(p for p, _ in params)
    fn.__code__ = fn.__code__.replace(co_varnames=('ctx',) + names, co_name=name, co_qualname=name)
    fn.__name__ = fn.__qualname__ = name
    fn.__annotations__ = {'ctx': ReducerContext, **dict(params), 'return': None}
    return reducer(fn)


ROWS = {}  # accessor -> row class


def _simple_family(prefix, accessor_suffix, col, ty, insert=True, delete_all=True):
    """A table `<prefix>_<suffix>` with one column `col: ty`, plus insert_ / delete_all_ reducers."""
    acc = f'{prefix}_{accessor_suffix}'
    cls = ROWS[acc] = _row_class(_pascal(acc), acc, [(col, ty, None)])
    if insert:
        _reducer(f'insert_{acc}', [(col, ty)], lambda ctx, v: getattr(ctx.db, acc).insert(cls(**{col: v})))
    if delete_all:
        _reducer(f'delete_all_{acc}', [(col, ty)], lambda ctx, v: getattr(ctx.db, acc).delete(cls(**{col: v})))
    return cls


def _keyed_family(prefix, suffix, key, ty, kind):
    """unique_/pk_ tables: key column + `data: i32`; insert (fails on a clash), delete_all, update, delete."""
    acc = f'{prefix}_{suffix}'
    marker = primary_key() if kind == 'pk' else unique()
    cls = ROWS[acc] = _row_class(_pascal(acc), acc, [(key, ty, marker), ('data', i32, None)])

    def handle(ctx):
        return getattr(ctx.db, acc)

    def update(ctx, k, data):
        if kind == 'pk':
            getattr(handle(ctx), key).update(cls(**{key: k, 'data': data}))
        else:
            getattr(handle(ctx), key).delete(k)
            handle(ctx).insert(cls(**{key: k, 'data': data}))

    _reducer(f'insert_{acc}', [(key, ty), ('data', i32)],
             lambda ctx, k, d: handle(ctx).insert(cls(**{key: k, 'data': d})))
    _reducer(f'delete_all_{acc}', [(key, ty), ('data', i32)],
             lambda ctx, k, d: handle(ctx).delete(cls(**{key: k, 'data': d})))
    _reducer(f'update_{acc}', [(key, ty), ('data', i32)], update)
    _reducer(f'delete_{acc}', [(key, ty)], lambda ctx, k: getattr(handle(ctx), key).delete(k))
    return cls


# §2.1 / §2.2: (suffix, element type, column letter)
ELEMENTS = [
    ('u8', u8, 'n'), ('u16', u16, 'n'), ('u32', u32, 'n'), ('u64', u64, 'n'), ('u128', u128, 'n'),
    ('u256', u256, 'n'),
    ('i8', i8, 'n'), ('i16', i16, 'n'), ('i32', i32, 'n'), ('i64', i64, 'n'), ('i128', i128, 'n'),
    ('i256', i256, 'n'),
    ('bool', bool, 'b'),
    ('f32', f32, 'f'), ('f64', f64, 'f'),
    ('string', str, 's'),
    ('identity', Identity, 'i'),
    ('connection_id', ConnectionId, 'a'),
    ('uuid', Uuid, 'u'),
    ('timestamp', Timestamp, 't'),
    ('simple_enum', SimpleEnum, 'e'),
    ('enum_with_payload', EnumWithPayload, 'e'),
    ('unit_struct', UnitStruct, 's'),
    ('byte_struct', ByteStruct, 's'),
    ('every_primitive_struct', EveryPrimitiveStruct, 's'),
    ('every_vec_struct', EveryVecStruct, 's'),
]

for _suffix, _ty, _col in ELEMENTS:
    _simple_family('one', _suffix, _col, _ty, delete_all=_suffix != 'connection_id')
for _suffix, _ty, _col in ELEMENTS:
    _simple_family('vec', _suffix, _col, list[_ty], delete_all=_suffix != 'connection_id')

# §2.3
for _suffix, _ty, _col in [
    ('i32', Option[i32], 'n'),
    ('string', Option[str], 's'),
    ('identity', Option[Identity], 'i'),
    ('uuid', Option[Uuid], 'u'),
    ('simple_enum', Option[SimpleEnum], 'e'),
    ('every_primitive_struct', Option[EveryPrimitiveStruct], 's'),
    ('vec_option_i32', Option[list[Option[i32]]], 'v'),
]:
    _simple_family('option', _suffix, _col, _ty)

# §2.4 (insert only)
for _suffix, _ty in [
    ('i32_string', Result[i32, str]),
    ('string_i32', Result[str, i32]),
    ('identity_string', Result[Identity, str]),
    ('simple_enum_i32', Result[SimpleEnum, i32]),
    ('every_primitive_struct_string', Result[EveryPrimitiveStruct, str]),
    ('vec_i32_string', Result[list[i32], str]),
]:
    _simple_family('result', _suffix, 'r', _ty, delete_all=False)

# §2.5 / §2.6: (suffix, key type, key column)
KEYS = [
    ('u8', u8, 'n'), ('u16', u16, 'n'), ('u32', u32, 'n'), ('u64', u64, 'n'), ('u128', u128, 'n'),
    ('u256', u256, 'n'),
    ('i8', i8, 'n'), ('i16', i16, 'n'), ('i32', i32, 'n'), ('i64', i64, 'n'), ('i128', i128, 'n'),
    ('i256', i256, 'n'),
    ('bool', bool, 'b'),
    ('string', str, 's'),
    ('identity', Identity, 'i'),
    ('connection_id', ConnectionId, 'a'),
    ('uuid', Uuid, 'u'),
]

for _suffix, _ty, _col in KEYS:
    _keyed_family('unique', _suffix, _col, _ty, 'unique')
for _suffix, _ty, _col in KEYS + [('u32_two', u32, 'n')]:
    _keyed_family('pk', _suffix, _col, _ty, 'pk')

UniqueU32 = ROWS['unique_u32']
PkU32 = ROWS['pk_u32']
PkU32Two = ROWS['pk_u32_two']
PkUuid = ROWS['pk_uuid']
OneU8 = ROWS['one_u8']
VecU8 = ROWS['vec_u8']
VecString = ROWS['vec_string']
OneTimestamp = ROWS['one_timestamp']
OneUuid = ROWS['one_uuid']


@table(accessor='pk_simple_enum', public=True)
class PkSimpleEnum:
    a: SimpleEnum = primary_key()
    data: i32


@reducer
def insert_pk_simple_enum(ctx: ReducerContext, a: SimpleEnum, data: i32) -> None:
    ctx.db.pk_simple_enum.insert(PkSimpleEnum(a=a, data=data))


@reducer
def update_pk_simple_enum(ctx: ReducerContext, a: SimpleEnum, data: i32) -> None:
    row = ctx.db.pk_simple_enum.a.find(a)
    if row is None:
        raise SenderError('row not found')
    ctx.db.pk_simple_enum.a.update(PkSimpleEnum(a=a, data=data))


# ---------------------------------------------------------------------------------------------------------
# §2.7 odd tables


@table(accessor='large_table', public=True)
class LargeTable:
    a: u8
    b: u16
    c: u32
    d: u64
    e: u128
    f: u256
    g: i8
    h: i16
    i: i32
    j: i64
    k: i128
    l: i256  # noqa: E741
    m: bool
    n: f32
    o: f64
    p: str
    q: SimpleEnum
    r: EnumWithPayload
    s: UnitStruct
    t: ByteStruct
    u: EveryPrimitiveStruct
    v: EveryVecStruct


@reducer
def insert_large_table(ctx: ReducerContext, a: u8, b: u16, c: u32, d: u64, e: u128, f: u256, g: i8, h: i16,
                       i: i32, j: i64, k: i128, l: i256, m: bool, n: f32, o: f64, p: str,  # noqa: E741
                       q: SimpleEnum, r: EnumWithPayload, s: UnitStruct, t: ByteStruct, u: EveryPrimitiveStruct,
                       v: EveryVecStruct) -> None:
    ctx.db.large_table.insert(LargeTable(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h, i=i, j=j, k=k, l=l, m=m, n=n,
                                         o=o, p=p, q=q, r=r, s=s, t=t, u=u, v=v))


@reducer
def delete_large_table(ctx: ReducerContext, a: u8, b: u16, c: u32, d: u64, e: u128, f: u256, g: i8, h: i16,
                       i: i32, j: i64, k: i128, l: i256, m: bool, n: f32, o: f64, p: str,  # noqa: E741
                       q: SimpleEnum, r: EnumWithPayload, s: UnitStruct, t: ByteStruct, u: EveryPrimitiveStruct,
                       v: EveryVecStruct) -> None:
    ctx.db.large_table.delete(LargeTable(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h, i=i, j=j, k=k, l=l, m=m, n=n,
                                         o=o, p=p, q=q, r=r, s=s, t=t, u=u, v=v))


@table(accessor='table_holds_table', public=True)
class TableHoldsTable:
    a: OneU8
    b: VecU8


@reducer
def insert_table_holds_table(ctx: ReducerContext, a: OneU8, b: VecU8) -> None:
    ctx.db.table_holds_table.insert(TableHoldsTable(a=a, b=b))


@table(accessor='scheduled_table', public=True, scheduled=lambda: send_scheduled_message)
class ScheduledTable:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt
    text: str


@reducer
def send_scheduled_message(ctx: ReducerContext, arg: ScheduledTable) -> None:
    pass


@table(accessor='indexed_table')
class IndexedTable:
    player_id: u32 = index()


@table(accessor='indexed_table_2', indexes=[btree('player_id', 'player_snazz', accessor='player_id_snazz_index')])
class IndexedTable2:
    player_id: u32
    player_snazz: f32


@table(accessor='btree_u32', public=True)
class BTreeU32:
    n: u32 = index()
    data: i32


@reducer
def insert_into_btree_u32(ctx: ReducerContext, rows: list[BTreeU32]) -> None:
    for row in rows:
        ctx.db.btree_u32.insert(row)


@reducer
def delete_from_btree_u32(ctx: ReducerContext, rows: list[BTreeU32]) -> None:
    for row in rows:
        ctx.db.btree_u32.delete(row)


@reducer
def insert_into_pk_btree_u32(ctx: ReducerContext, pk_u32: list[PkU32], bt_u32: list[BTreeU32]) -> None:
    for row in pk_u32:
        ctx.db.pk_u32.insert(row)
    for row in bt_u32:
        ctx.db.btree_u32.insert(row)


@table(accessor='users', public=True)
class Users:
    identity: Identity = primary_key()
    name: str


@reducer
def insert_user(ctx: ReducerContext, name: str, identity: Identity) -> None:
    ctx.db.users.insert(Users(name=name, identity=identity))


@table(accessor='indexed_simple_enum', public=True)
class IndexedSimpleEnum:
    n: SimpleEnum = index()


@reducer
def insert_into_indexed_simple_enum(ctx: ReducerContext, n: SimpleEnum) -> None:
    ctx.db.indexed_simple_enum.insert(IndexedSimpleEnum(n=n))


@reducer
def update_indexed_simple_enum(ctx: ReducerContext, a: SimpleEnum, b: SimpleEnum) -> None:
    if next(iter(ctx.db.indexed_simple_enum.n.filter(a)), None) is not None:
        ctx.db.indexed_simple_enum.n.delete(a)
        ctx.db.indexed_simple_enum.insert(IndexedSimpleEnum(n=b))


# ---------------------------------------------------------------------------------------------------------
# §2.8 other reducers


@reducer
def insert_unique_u32_update_pk_u32(ctx: ReducerContext, n: u32, d_unique: i32, d_pk: i32) -> None:
    ctx.db.unique_u32.insert(UniqueU32(n=n, data=d_unique))
    ctx.db.pk_u32.n.update(PkU32(n=n, data=d_pk))


@reducer
def delete_pk_u32_insert_pk_u32_two(ctx: ReducerContext, n: u32, data: i32) -> None:
    ctx.db.pk_u32_two.insert(PkU32Two(n=n, data=data))
    ctx.db.pk_u32.delete(PkU32(n=n, data=data))


@reducer
def insert_caller_one_identity(ctx: ReducerContext) -> None:
    ctx.db.one_identity.insert(ROWS['one_identity'](i=ctx.sender))


@reducer
def insert_caller_vec_identity(ctx: ReducerContext) -> None:
    ctx.db.vec_identity.insert(ROWS['vec_identity'](i=[ctx.sender]))


@reducer
def insert_caller_unique_identity(ctx: ReducerContext, data: i32) -> None:
    ctx.db.unique_identity.insert(ROWS['unique_identity'](i=ctx.sender, data=data))


@reducer
def insert_caller_pk_identity(ctx: ReducerContext, data: i32) -> None:
    ctx.db.pk_identity.insert(ROWS['pk_identity'](i=ctx.sender, data=data))


def _caller_connection_id(ctx):
    cid = ctx.connection_id
    if cid is None or cid.is_zero():
        raise SenderError('No connection id in reducer context')
    return cid


@reducer
def insert_caller_one_connection_id(ctx: ReducerContext) -> None:
    ctx.db.one_connection_id.insert(ROWS['one_connection_id'](a=_caller_connection_id(ctx)))


@reducer
def insert_caller_vec_connection_id(ctx: ReducerContext) -> None:
    ctx.db.vec_connection_id.insert(ROWS['vec_connection_id'](a=[_caller_connection_id(ctx)]))


@reducer
def insert_caller_unique_connection_id(ctx: ReducerContext, data: i32) -> None:
    ctx.db.unique_connection_id.insert(ROWS['unique_connection_id'](a=_caller_connection_id(ctx), data=data))


@reducer
def insert_caller_pk_connection_id(ctx: ReducerContext, data: i32) -> None:
    ctx.db.pk_connection_id.insert(ROWS['pk_connection_id'](a=_caller_connection_id(ctx), data=data))


@reducer
def insert_call_timestamp(ctx: ReducerContext) -> None:
    ctx.db.one_timestamp.insert(OneTimestamp(t=ctx.timestamp))


@reducer
def insert_call_uuid_v4(ctx: ReducerContext) -> None:
    ctx.db.one_uuid.insert(OneUuid(u=ctx.new_uuid_v4()))


@reducer
def insert_call_uuid_v7(ctx: ReducerContext) -> None:
    ctx.db.one_uuid.insert(OneUuid(u=ctx.new_uuid_v7()))


def _rust_float(x, single):
    """Rust `Display` for f32/f64: shortest round-trip digits, never an exponent, no trailing `.0`."""
    if x != x:
        return 'NaN'
    if x in (float('inf'), float('-inf')):
        return 'inf' if x > 0 else '-inf'
    sign = '-' if struct.pack('>d', x)[0] & 0x80 else ''
    x = abs(x)
    if x == 0:
        return sign + '0'
    for p in range(1, 18):
        s = f'{x:.{p - 1}e}'
        y = float(s)
        if single:
            try:
                y = struct.unpack('<f', struct.pack('<f', y))[0]
            except OverflowError:  # rounded past the f32 range: needs more digits
                continue
        if y == x:
            break
    mant, exp = s.split('e')
    digits = mant.replace('.', '')
    point = int(exp) + 1  # position of the decimal point within `digits`
    if point <= 0:
        out = '0.' + '0' * -point + digits
    elif point >= len(digits):
        out = digits + '0' * (point - len(digits))
    else:
        out = digits[:point] + '.' + digits[point:]
    if '.' in out:
        out = out.rstrip('0').rstrip('.')
    return sign + out


@reducer
def insert_primitives_as_strings(ctx: ReducerContext, s: EveryPrimitiveStruct) -> None:
    strings = [str(s.a), str(s.b), str(s.c), str(s.d), str(s.e), str(s.f), str(s.g), str(s.h), str(s.i),
               str(s.j), str(s.k), str(s.l), 'true' if s.m else 'false', _rust_float(s.n, True),
               _rust_float(s.o, False), s.p, str(s.q), str(s.r), str(s.s), str(s.t), str(s.u)]
    ctx.db.vec_string.insert(VecString(s=strings))


@reducer
def no_op_succeeds(ctx: ReducerContext) -> None:
    pass


@reducer
def sorted_uuids_insert(ctx: ReducerContext) -> None:
    for _ in range(1000):
        ctx.db.pk_uuid.insert(PkUuid(u=ctx.new_uuid_v7(), data=0))
    last = None
    for row in ctx.db.pk_uuid.iter():
        if last is not None and not (last < row.u):
            raise SenderError(f'UUIDs are not sorted: {last} >= {row.u}')
        last = row.u


# ---------------------------------------------------------------------------------------------------------
# §2.9 row-level security (canonical names)

client_visibility_filter('SELECT * FROM one_u_8')
client_visibility_filter('SELECT * FROM users WHERE identity = :sender')
