"""BSATN writer for `RawModuleDef::V10` (module-def.md section 2).

`schema.py` collects the definitions as plain tuples (below) and `encode()` writes the bytes.  Sections that
would be empty (and a default CaseConversionPolicy) are left out, in section-tag order, so the minimal
module of module-def.md section 8 encodes byte for byte.

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
"""

import struct

from .sats.typecodec import encode_product_type, encode_type

_U16 = struct.Struct('<H').pack
_U32 = struct.Struct('<I').pack

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

ALGO_TAGS = {'btree': 0, 'hash': 1, 'direct': 2}
LIFECYCLE_TAGS = {'init': 0, 'client_connected': 1, 'client_disconnected': 2}
VIS_PRIVATE = 0
VIS_CLIENT_CALLABLE = 1
ACCESS_PUBLIC = 0
ACCESS_PRIVATE = 1
CASE_NONE = 0
CASE_SNAKE = 1
UNIT_BYTES = b'\x02\x00\x00\x00\x00'
STRING_BYTES = b'\x04'


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


class _W:
    __slots__ = ('b',)

    def __init__(self):
        self.b = bytearray()

    def u8(self, v):
        self.b.append(v)

    def u16(self, v):
        self.b += _U16(v)

    def u32(self, v):
        self.b += _U32(v)

    def boolean(self, v):
        self.b.append(1 if v else 0)

    def string(self, s):
        data = s.encode('utf-8')
        self.b += _U32(len(data))
        self.b += data

    def opt_string(self, s):
        if s is None:
            self.b.append(1)
        else:
            self.b.append(0)
            self.string(s)

    def col_list(self, cols):
        self.u32(len(cols))
        for c in cols:
            self.u16(c)

    def raw(self, data):
        self.b += data


def _table(w, t):
    w.string(t.source_name)
    w.u32(t.ref)
    w.col_list(t.primary_key)
    w.u32(len(t.indexes))
    for name, accessor, algo, cols in t.indexes:
        w.opt_string(name)
        w.opt_string(accessor)
        w.u8(ALGO_TAGS[algo])
        if algo == 'direct':
            w.u16(cols[0])
        else:
            w.col_list(cols)
    w.u32(len(t.constraints))
    for cols in t.constraints:
        w.opt_string(None)
        w.u8(0)  # RawConstraintDataV9::Unique
        w.col_list(cols)
    w.u32(len(t.sequences))
    for col in t.sequences:
        w.opt_string(None)
        w.u16(col)
        w.raw(b'\x01\x01\x01')  # start, min_value, max_value: None
        w.raw((1).to_bytes(16, 'little', signed=True))  # increment: i128 1
    w.u8(1)  # TableType::User
    w.u8(ACCESS_PUBLIC if t.public else ACCESS_PRIVATE)
    w.u32(len(t.defaults))
    for col, value in t.defaults:
        w.u16(col)
        w.u32(len(value))
        w.raw(value)
    w.boolean(t.is_event)


def encode(typespace, types=(), tables=(), reducers=(), procedures=(), views=(), schedules=(), lifecycles=(),
           rls=(), case_policy=CASE_SNAKE, explicit=()):
    """The BSATN of `RawModuleDef::V10(...)`."""
    sections = []

    def section(tag, items, write):
        if items:
            sections.append((tag, items, write))

    section(SEC_TYPESPACE, list(typespace), lambda w, t: w.raw(encode_type(t)))
    section(SEC_TYPES, list(types), _type_def)
    section(SEC_TABLES, list(tables), _table)
    section(SEC_REDUCERS, list(reducers), _reducer)
    section(SEC_PROCEDURES, list(procedures), _procedure)
    section(SEC_VIEWS, list(views), _view)
    section(SEC_SCHEDULES, list(schedules), _schedule)
    section(SEC_LIFECYCLE, list(lifecycles), _lifecycle)
    section(SEC_RLS, list(rls), lambda w, sql: w.string(sql))
    w = _W()
    w.u8(2)  # RawModuleDef::V10
    extra = []
    if case_policy != CASE_SNAKE:
        extra.append((SEC_CASE_POLICY, case_policy))
    if explicit:
        extra.append((SEC_EXPLICIT_NAMES, list(explicit)))
    w.u32(len(sections) + len(extra))
    for tag, items, write in sections:
        w.u8(tag)
        w.u32(len(items))
        for item in items:
            write(w, item)
    for tag, payload in extra:
        w.u8(tag)
        if tag == SEC_CASE_POLICY:
            w.u8(payload)
        else:
            w.u32(len(payload))
            for kind, source, canonical in payload:
                w.u8(kind)
                w.string(source)
                w.string(canonical)
    return bytes(w.b)


def _type_def(w, item):
    scope, name, ref = item
    w.u32(len(scope))
    for s in scope:
        w.string(s)
    w.string(name)
    w.u32(ref)
    w.boolean(True)  # custom_ordering, like the Rust SDK


def _reducer(w, item):
    name, params, visibility = item
    w.string(name)
    w.raw(encode_product_type(params))
    w.u8(visibility)
    w.raw(UNIT_BYTES)
    w.raw(STRING_BYTES)


def _procedure(w, item):
    name, params, return_type, visibility = item
    w.string(name)
    w.raw(encode_product_type(params))
    w.raw(encode_type(return_type))
    w.u8(visibility)


def _view(w, item):
    name, index, is_public, is_anonymous, params, return_type = item
    w.string(name)
    w.u32(index)
    w.boolean(is_public)
    w.boolean(is_anonymous)
    w.raw(encode_product_type(params))
    w.raw(encode_type(return_type))


def _schedule(w, item):
    table, col, function = item
    w.opt_string(None)  # ignored: the name is always {table}_sched
    w.string(table)
    w.u16(col)
    w.string(function)


def _lifecycle(w, item):
    tag, function = item
    w.u8(tag)
    w.string(function)
