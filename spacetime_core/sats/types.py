"""SATS type model: AlgebraicType and its variants (bsatn.md section 2-3).

Types are immutable values with structural equality and hashing (element
and variant names take part, a bound Python class does not).  Each type
object also carries private caches used by the codec (compiled encoders,
decoders and sort keys).
"""


class BsatnError(ValueError):
    """Raised for any BSATN encode/decode failure."""


# AlgebraicType variant tags (bsatn.md section 2).
TAG_REF = 0
TAG_SUM = 1
TAG_PRODUCT = 2
TAG_ARRAY = 3
TAG_STRING = 4
TAG_BOOL = 5
TAG_I8 = 6
TAG_U8 = 7
TAG_I16 = 8
TAG_U16 = 9
TAG_I32 = 10
TAG_U32 = 11
TAG_I64 = 12
TAG_U64 = 13
TAG_I128 = 14
TAG_U128 = 15
TAG_I256 = 16
TAG_U256 = 17
TAG_F32 = 18
TAG_F64 = 19

# Special-shape kinds, computed once per type (``t.special``).
K_IDENTITY = 'identity'
K_CONNECTION_ID = 'connection_id'
K_TIMESTAMP = 'timestamp'
K_TIME_DURATION = 'time_duration'
K_UUID = 'uuid'
K_UNIT = 'unit'
K_OPTION = 'option'
K_RESULT = 'result'
K_SCHEDULE_AT = 'schedule_at'
K_NEVER = 'never'

_SPECIAL_PRODUCT_FIELDS = {
    '__identity__': (TAG_U256, K_IDENTITY),
    '__connection_id__': (TAG_U128, K_CONNECTION_ID),
    '__timestamp_micros_since_unix_epoch__': (TAG_I64, K_TIMESTAMP),
    '__time_duration_micros__': (TAG_I64, K_TIME_DURATION),
    '__uuid__': (TAG_U128, K_UUID),
}


# Python keywords (no ``keyword`` import): such element names are read with getattr in generated code.
PY_KEYWORDS = frozenset((
    'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del',
    'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda',
    'nonlocal', 'not', 'or', 'pass', 'raise', 'return', 'try', 'while', 'with', 'yield',
))


def attr_expr(obj, name):
    """Source text reading attribute ``name`` of ``obj`` (for generated code)."""
    if name in PY_KEYWORDS:
        return f'getattr({obj}, {name!r})'
    return f'{obj}.{name}'


class AlgebraicType:
    """Base class of all SATS types.  Never instantiated directly."""

    __slots__ = ('_hash', '_cache', '_has_refs', 'special', '__weakref__')
    tag = -1

    # -- predicates ---------------------------------------------------------
    def is_primitive(self):
        return False

    def is_ref(self):
        return False

    def is_product(self):
        return False

    def is_sum(self):
        return False

    def is_array(self):
        return False

    def is_string(self):
        return self.tag == TAG_STRING

    def is_bool(self):
        return self.tag == TAG_BOOL

    def is_integer(self):
        return TAG_I8 <= self.tag <= TAG_U256

    def is_float(self):
        return self.tag == TAG_F32 or self.tag == TAG_F64

    def is_bytes(self):
        """Array<U8>."""
        return False

    def is_unit(self):
        return self.special == K_UNIT

    def is_never(self):
        return self.special == K_NEVER

    def is_option(self):
        return self.special == K_OPTION

    def is_result(self):
        return self.special == K_RESULT

    def is_schedule_at(self):
        return self.special == K_SCHEDULE_AT

    def is_identity(self):
        return self.special == K_IDENTITY

    def is_connection_id(self):
        return self.special == K_CONNECTION_ID

    def is_timestamp(self):
        return self.special == K_TIMESTAMP

    def is_time_duration(self):
        return self.special == K_TIME_DURATION

    def is_uuid(self):
        return self.special == K_UUID

    def is_special(self):
        """Upstream's notion: Identity, ConnectionId, Timestamp, TimeDuration,
        Uuid (products) and Option, ScheduleAt (sums).  Result, unit and never
        are *not* special by this definition (see ``is_type_use``)."""
        s = self.special
        return s is not None and s not in (K_UNIT, K_NEVER, K_RESULT)

    def has_refs(self):
        return self._has_refs

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __str__(self):
        return self.__repr__()


def _init(self, h, has_refs, special=None):
    self._hash = h
    self._cache = None
    self._has_refs = has_refs
    self.special = special


class PrimitiveType(AlgebraicType):
    """One of String, Bool and the integer/float types.  Singletons."""

    __slots__ = ('tag', 'name', 'size', 'fmt')

    def __init__(self, tag, name, size, fmt):
        self.tag = tag
        self.name = name
        self.size = size      # fixed byte size (None for String)
        self.fmt = fmt        # struct format char(s) for fixed sizes <= 8
        _init(self, hash(('prim', tag)), False)

    def is_primitive(self):
        return True

    def __eq__(self, other):
        return isinstance(other, PrimitiveType) and other.tag == self.tag

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return self.name

    def __reduce__(self):
        return (_primitive_by_tag, (self.tag,))


STRING = PrimitiveType(TAG_STRING, 'String', None, None)
BOOL = PrimitiveType(TAG_BOOL, 'Bool', 1, 'B')
I8 = PrimitiveType(TAG_I8, 'I8', 1, 'b')
U8 = PrimitiveType(TAG_U8, 'U8', 1, 'B')
I16 = PrimitiveType(TAG_I16, 'I16', 2, 'h')
U16 = PrimitiveType(TAG_U16, 'U16', 2, 'H')
I32 = PrimitiveType(TAG_I32, 'I32', 4, 'i')
U32 = PrimitiveType(TAG_U32, 'U32', 4, 'I')
I64 = PrimitiveType(TAG_I64, 'I64', 8, 'q')
U64 = PrimitiveType(TAG_U64, 'U64', 8, 'Q')
I128 = PrimitiveType(TAG_I128, 'I128', 16, 'Qq')
U128 = PrimitiveType(TAG_U128, 'U128', 16, 'QQ')
I256 = PrimitiveType(TAG_I256, 'I256', 32, 'QQQq')
U256 = PrimitiveType(TAG_U256, 'U256', 32, 'QQQQ')
F32 = PrimitiveType(TAG_F32, 'F32', 4, 'f')
F64 = PrimitiveType(TAG_F64, 'F64', 8, 'd')

PRIMITIVES = (STRING, BOOL, I8, U8, I16, U16, I32, U32, I64, U64, I128, U128, I256, U256, F32, F64)
_PRIM_BY_TAG = {p.tag: p for p in PRIMITIVES}

# Integer ranges (inclusive) per tag.
INT_RANGES = {
    TAG_I8: (-(1 << 7), (1 << 7) - 1), TAG_U8: (0, (1 << 8) - 1),
    TAG_I16: (-(1 << 15), (1 << 15) - 1), TAG_U16: (0, (1 << 16) - 1),
    TAG_I32: (-(1 << 31), (1 << 31) - 1), TAG_U32: (0, (1 << 32) - 1),
    TAG_I64: (-(1 << 63), (1 << 63) - 1), TAG_U64: (0, (1 << 64) - 1),
    TAG_I128: (-(1 << 127), (1 << 127) - 1), TAG_U128: (0, (1 << 128) - 1),
    TAG_I256: (-(1 << 255), (1 << 255) - 1), TAG_U256: (0, (1 << 256) - 1),
}


def _primitive_by_tag(tag):
    return _PRIM_BY_TAG[tag]


class RefType(AlgebraicType):
    """``Ref(index)``: an index into a Typespace."""

    __slots__ = ('index',)
    tag = TAG_REF

    def __init__(self, index):
        if not isinstance(index, int) or not 0 <= index <= 0xFFFFFFFF:
            raise TypeError(f'RefType index must be an int in 0..2**32-1, got {index!r}')
        self.index = index
        _init(self, hash(('ref', index)), True)

    def is_ref(self):
        return True

    def __eq__(self, other):
        return isinstance(other, RefType) and other.index == self.index

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f'Ref({self.index})'

    def __reduce__(self):
        return (RefType, (self.index,))


class ArrayType(AlgebraicType):
    """``Array<elem>``."""

    __slots__ = ('elem',)
    tag = TAG_ARRAY

    def __init__(self, elem):
        if not isinstance(elem, AlgebraicType):
            raise TypeError(f'ArrayType element must be an AlgebraicType, got {elem!r}')
        self.elem = elem
        _init(self, hash(('array', elem._hash)), elem._has_refs)

    def is_array(self):
        return True

    def is_bytes(self):
        return self.elem is U8

    def __eq__(self, other):
        return isinstance(other, ArrayType) and (self is other or self.elem == other.elem)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f'Array<{self.elem!r}>'

    def __reduce__(self):
        return (ArrayType, (self.elem,))


def _norm_elements(elements, what):
    out = []
    for e in elements:
        if isinstance(e, AlgebraicType):
            name, t = None, e
        else:
            try:
                name, t = e
            except (TypeError, ValueError):
                raise TypeError(f'{what} elements must be (name_or_None, AlgebraicType) pairs, got {e!r}') from None
        if name is not None and not isinstance(name, str):
            raise TypeError(f'{what} element name must be str or None, got {name!r}')
        if not isinstance(t, AlgebraicType):
            raise TypeError(f'{what} element {name!r}: type must be an AlgebraicType, got {t!r}')
        out.append((name, t))
    return tuple(out)


class _Composite(AlgebraicType):
    __slots__ = ('elements', 'cls')

    def _setup(self, elements, cls, what):
        self.elements = _norm_elements(elements, what)
        self.cls = None
        has_refs = False
        for _, t in self.elements:
            if t._has_refs:
                has_refs = True
                break
        h = hash((what, tuple((n, t._hash) for n, t in self.elements)))
        _init(self, h, has_refs, self._detect())
        if cls is not None:
            self.bind(cls)

    def names(self):
        return [n for n, _ in self.elements]

    def types(self):
        return [t for _, t in self.elements]

    def index_of(self, name):
        for i, (n, _) in enumerate(self.elements):
            if n == name:
                return i
        raise KeyError(name)

    def __len__(self):
        return len(self.elements)

    def __iter__(self):
        return iter(self.elements)

    def __getitem__(self, i):
        return self.elements[i]

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is not type(self) or other._hash != self._hash:
            return False
        return self.elements == other.elements

    def __reduce__(self):
        return (type(self), (list(self.elements),))

    def _elems_repr(self):
        return ', '.join(repr(t) if n is None else f'{n}: {t!r}' for n, t in self.elements)


class ProductType(_Composite):
    """``Product[(name, type), ...]``.  ``cls`` optionally binds a Python class."""

    __slots__ = ()
    tag = TAG_PRODUCT

    def __init__(self, elements=(), cls=None):
        self._setup(elements, cls, 'product')

    def _detect(self):
        el = self.elements
        if not el:
            return K_UNIT
        if len(el) == 1:
            info = _SPECIAL_PRODUCT_FIELDS.get(el[0][0])
            if info is not None and el[0][1].tag == info[0] and el[0][1].is_primitive():
                return info[1]
        return None

    def is_product(self):
        return True

    def bind(self, cls):
        """Bind this product to a Python class: decoders build instances of
        ``cls`` (via ``cls.__new__`` + attribute stores, ``__init__`` is not
        called) and encoders read the attributes named like the elements, in
        order.  Must be called before any codec for this type is built."""
        if self._cache:
            raise TypeError(f'cannot bind {self!r} to {cls!r}: codecs for it were already built')
        if not isinstance(cls, type):
            raise TypeError(f'bind() expects a class, got {cls!r}')
        seen = set()
        for n, _ in self.elements:
            if n is None or not n.isidentifier() or n in seen:
                raise TypeError(f'cannot bind {self!r} to {cls.__name__}: '
                                f'element name {n!r} is not a unique identifier')
            seen.add(n)
        self.cls = cls
        return self

    def __repr__(self):
        s = self.special
        if s is not None and self.cls is None:
            return _SPECIAL_REPR[s]
        name = (f'{self.cls.__name__} ') if self.cls is not None else ''
        return f'{name}Product{{{self._elems_repr()}}}'


class SumType(_Composite):
    """``Sum[(name, type), ...]`` (variants).  ``cls`` optionally binds a Python
    class following the ``@sum`` protocol (``cls.__sats_variants__``)."""

    __slots__ = ()
    tag = TAG_SUM

    def __init__(self, variants=(), cls=None):
        if len(variants) > 256:
            raise TypeError(f'a sum type can have at most 256 variants, got {len(variants)}')
        self._setup(variants, cls, 'sum')

    @property
    def variants(self):
        return self.elements

    def _detect(self):
        el = self.elements
        if not el:
            return K_NEVER
        if len(el) == 2:
            (n0, t0), (n1, t1) = el
            if n0 == 'some' and n1 == 'none' and t1.special == K_UNIT and t1.tag == TAG_PRODUCT:
                return K_OPTION
            if n0 == 'ok' and n1 == 'err':
                return K_RESULT
            if n0 == 'Interval' and n1 == 'Time' and t0.special == K_TIME_DURATION \
                    and t1.special == K_TIMESTAMP:
                return K_SCHEDULE_AT
        return None

    def is_sum(self):
        return True

    def is_simple_enum(self):
        """All variants are unit."""
        return all(t.special == K_UNIT for _, t in self.elements)

    def bind(self, cls):
        """Bind to a class that has ``__sats_variants__``: a tuple with, per tag,
        either a variant class (instances have ``value``) or a singleton
        instance for unit variants.  Values must expose ``_tag_index``."""
        if self._cache:
            raise TypeError(f'cannot bind {self!r} to {cls!r}: codecs for it were already built')
        vs = getattr(cls, '__sats_variants__', None)
        if vs is None or len(vs) != len(self.elements):
            n = len(self.elements)
            raise TypeError(f'cannot bind {self!r} to {cls!r}: class needs __sats_variants__ with {n} entries')
        self.cls = cls
        return self

    def __repr__(self):
        s = self.special
        if s == K_OPTION:
            return f'Option<{self.elements[0][1]!r}>'
        if s == K_RESULT:
            return f'Result<{self.elements[0][1]!r}, {self.elements[1][1]!r}>'
        if s == K_SCHEDULE_AT:
            return 'ScheduleAt'
        name = (f'{self.cls.__name__} ') if self.cls is not None else ''
        return f'{name}Sum{{{self._elems_repr()}}}'


_SPECIAL_REPR = {
    K_UNIT: '()', K_IDENTITY: 'Identity', K_CONNECTION_ID: 'ConnectionId', K_TIMESTAMP: 'Timestamp',
    K_TIME_DURATION: 'TimeDuration', K_UUID: 'Uuid',
}

UNIT = ProductType([])
NEVER = SumType([])
IDENTITY = ProductType([('__identity__', U256)])
CONNECTION_ID = ProductType([('__connection_id__', U128)])
TIMESTAMP = ProductType([('__timestamp_micros_since_unix_epoch__', I64)])
TIME_DURATION = ProductType([('__time_duration_micros__', I64)])
UUID = ProductType([('__uuid__', U128)])
SCHEDULE_AT = SumType([('Interval', TIME_DURATION), ('Time', TIMESTAMP)])
BYTES = ArrayType(U8)


def option_type(t):
    """``Option<t>`` = ``Sum[some: t, none: ()]``."""
    return SumType([('some', t), ('none', UNIT)])


def result_type(ok, err):
    """``Result<ok, err>`` = ``Sum[ok: ok, err: err]``."""
    return SumType([('ok', ok), ('err', err)])


def array_type(elem):
    return ArrayType(elem)


def is_type_use(t):
    """True if ``t`` may appear inline in a module def (module-def.md section 4):
    primitives, refs, arrays/options/results of type uses, the special types,
    unit and never.  User products/sums must go through the typespace."""
    if t.tag != TAG_PRODUCT and t.tag != TAG_SUM:
        if t.tag == TAG_ARRAY:
            return is_type_use(t.elem)
        return True
    s = t.special
    if s is None:
        return False
    if s == K_OPTION:
        return is_type_use(t.elements[0][1])
    if s == K_RESULT:
        return is_type_use(t.elements[0][1]) and is_type_use(t.elements[1][1])
    return True


class Typespace:
    """A flat list of types; ``RefType(i)`` points at ``types[i]``.

    Equality is by identity (it keys codec caches).  Fill reserved slots
    before building codecs; a typespace must not change afterwards."""

    __slots__ = ('types', '_ref_cache', '__weakref__')

    def __init__(self, types=()):
        self.types = list(types)
        for t in self.types:
            if t is not None and not isinstance(t, AlgebraicType):
                raise TypeError(f'Typespace entries must be AlgebraicType, got {t!r}')
        self._ref_cache = {}

    def __len__(self):
        return len(self.types)

    def __getitem__(self, i):
        if isinstance(i, RefType):
            i = i.index
        return self.types[i]

    def __iter__(self):
        return iter(self.types)

    def __repr__(self):
        return f'Typespace({self.types!r})'

    def add(self, t):
        """Append ``t`` and return a ``RefType`` to it."""
        self.types.append(t)
        return RefType(len(self.types) - 1)

    def reserve(self):
        """Append a placeholder slot; fill it later with ``set``."""
        self.types.append(None)
        return RefType(len(self.types) - 1)

    def set(self, ref, t):
        i = ref.index if isinstance(ref, RefType) else ref
        self.types[i] = t

    def resolve(self, t):
        """Follow ``Ref``s until a non-ref type; raises BsatnError on dangling or
        cyclic ref chains."""
        seen = 0
        while t.tag == TAG_REF:
            i = t.index
            if i >= len(self.types) or self.types[i] is None:
                raise BsatnError(f'dangling type reference {t!r} (typespace has {len(self.types)} types)')
            t = self.types[i]
            seen += 1
            if seen > len(self.types):
                raise BsatnError('cyclic Ref chain in typespace')
        return t


def resolve(t, typespace):
    """Resolve ``t`` through ``typespace`` if it is a Ref (typespace may be None
    for ref-free types)."""
    if t.tag != TAG_REF:
        return t
    if typespace is None:
        raise BsatnError(f'type {t!r} contains a Ref but no typespace was given')
    return typespace.resolve(t)
