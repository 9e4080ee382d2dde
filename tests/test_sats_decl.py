"""spacetime_core.sats: annotations -> types, @product and @sum."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_core.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I64,
    I128,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U256,
    UNIT,
    UUID,
    ArrayType,
    BsatnError,
    ConnectionId,
    Err,
    Identity,
    Ok,
    Option,
    ProductType,
    Result,
    ScheduleAt,
    Some,
    SumType,
    TimeDuration,
    Timestamp,
    Uuid,
    decode,
    encode,
    f32,
    f64,
    i8,
    i128,
    option_type,
    product,
    reference,
    result_type,
    sort_key,
    sum_type,
    type_of,
    u8,
    u16,
    u32,
    u64,
    u256,
)
from spacetime_core.sats import sum as sats_sum

# ---------------------------------------------------------------------------
# type_of
# ---------------------------------------------------------------------------


def test_type_of_markers_and_builtins():
    for marker, t in ((u8, U8), (u16, U16), (u32, U32), (u64, U64), (u256, U256), (i8, I8), (i128, I128),
                      (f32, F32), (f64, F64)):
        assert type_of(marker) is t
    assert type_of(bool) is BOOL and type_of(str) is STRING and type_of(bytes) == BYTES
    assert type_of(int) is I64 and type_of(float) is F64 and type_of(None) == UNIT
    assert type_of(U32) is U32


def test_type_of_generics():
    assert type_of(list[u32]) == ArrayType(U32)
    assert type_of(list[list[str]]) == ArrayType(ArrayType(STRING))
    assert type_of(Option[str]) == option_type(STRING)
    assert type_of(str | None) == option_type(STRING)
    assert type_of(None | list[u8]) == option_type(ArrayType(U8))
    assert type_of(Option[Option[u8]]) == option_type(option_type(U8))
    assert type_of(Option[u8] | None) == option_type(option_type(U8))
    assert type_of(Result[u8, str]) == result_type(U8, STRING)
    import typing
    assert type_of(typing.Optional[int]) == option_type(I64)  # noqa: UP045 - testing typing.Optional support
    assert repr(Option[u8]) == 'Option[u8]' and repr(Result[u8, str]) == 'Result[u8, str]'


def test_type_of_special_classes():
    assert type_of(Identity) is IDENTITY and type_of(ConnectionId) is CONNECTION_ID
    assert type_of(Timestamp) is TIMESTAMP and type_of(TimeDuration) is TIME_DURATION
    assert type_of(Uuid) is UUID and type_of(ScheduleAt) is SCHEDULE_AT


def test_type_of_strings_and_errors():
    assert type_of('list[u32]', globals()) == ArrayType(U32)
    with pytest.raises(TypeError, match='cannot resolve'):
        type_of('Nope', {})
    with pytest.raises(TypeError, match='dict'):
        type_of(dict)
    with pytest.raises(TypeError, match='use list'):
        type_of(list)
    with pytest.raises(TypeError, match='union'):
        type_of(int | str)
    with pytest.raises(TypeError):
        Result[u8]
    with pytest.raises(TypeError):
        Option(3)


def test_int_markers_are_ints():
    assert isinstance(u32(5), int) and u32(5) == 5 and repr(u32(5)) == 'u32(5)'
    with pytest.raises(OverflowError):
        u8(256)
    with pytest.raises(OverflowError):
        i8(-129)
    assert isinstance(f32(1.5), float)
    assert encode(U8, u8(7)) == b'\x07'


# ---------------------------------------------------------------------------
# @product
# ---------------------------------------------------------------------------

@product
class Size:
    w: f32
    h: f32 = 1.0


@product
class Player:
    id: u64 = 0            # a defaulted field may precede required ones
    name: str
    tags: list[str] = []   # mutable defaults are copied per instance
    owner: Identity | None = None
    size: Size | None = None

    def label(self):
        return f'{self.name}#{self.id}'

    def __str__(self):                  # zero-arg super() survives re-creation with __slots__
        return 'P:' + super().__str__()


def test_product_type_and_fields():
    t = Player.__sats_type__
    assert isinstance(t, ProductType) and t.cls is Player
    assert t.names() == ['id', 'name', 'tags', 'owner', 'size']
    assert t == ProductType([('id', U64), ('name', STRING), ('tags', ArrayType(STRING)),
                             ('owner', option_type(IDENTITY)), ('size', option_type(Size.__sats_type__))])
    assert type_of(Player) is t
    assert Player.__sats_fields__ == ('id', 'name', 'tags', 'owner', 'size')
    assert Player.__slots__ == ('id', 'name', 'tags', 'owner', 'size')


def test_product_init_defaults_eq_hash_repr_order():
    p = Player(name='ann')
    assert p.id == 0 and p.tags == [] and p.owner is None
    assert Player(name='b').tags is not Player(name='c').tags
    assert Player(1, 'x') == Player(id=1, name='x') != Player(2, 'x')
    with pytest.raises(TypeError, match='missing required argument: name'):
        Player(1)
    assert repr(Size(2.0)) == 'Size(w=2.0, h=1.0)'
    assert hash(Size(1.0, 2.0)) == hash(Size(1.0, 2.0))
    assert Size(1.0, 2.0) < Size(1.0, 3.0) < Size(2.0, 0.0)
    assert p.label() == 'ann#0'
    assert str(p) == 'P:' + repr(p)
    assert not hasattr(p, '__dict__')
    p.name = 'bob'                       # rows are mutable
    assert p.name == 'bob'
    match Size(3.0, 4.0):
        case Size(w, h):
            assert (w, h) == (3.0, 4.0)
    assert pickle.loads(pickle.dumps(Size(1.0, 2.0))) == Size(1.0, 2.0)


def test_product_codec_roundtrip():
    t = Player.__sats_type__
    p = Player(7, 'zed', ['a', 'b'], Identity(3), Size(1.0, 2.0))
    data = encode(t, p)
    assert data == reference.encode(t, p)
    q = decode(t, data)
    assert type(q) is Player and q == p and q.size == Size(1.0, 2.0)
    assert reference.decode(t, data) == q
    # tuples are accepted for a bound product (slow path) and produce the same bytes
    assert encode(t, (7, 'zed', ['a', 'b'], Identity(3), Size(1.0, 2.0))) == data


@given(st.integers(0, (1 << 64) - 1), st.text(), st.lists(st.text(max_size=3), max_size=3),
       st.none() | st.binary(min_size=32, max_size=32).map(Identity.from_bytes),
       st.none() | st.tuples(st.floats(width=32, allow_nan=False), st.floats(width=32, allow_nan=False)))
def test_product_roundtrip_property(i, name, tags, owner, size):
    p = Player(i, name, tags, owner, None if size is None else Size(*size))
    t = Player.__sats_type__
    assert decode(t, encode(t, p)) == p


def test_product_without_slots_and_user_methods_kept():
    @product(slots=False)
    class Loose:
        a: u8

        def __repr__(self):
            return 'custom'
    x = Loose(1)
    x.extra = 5
    assert repr(x) == 'custom'
    assert decode(Loose.__sats_type__, encode(Loose.__sats_type__, x)) == Loose(1)


def test_product_forward_reference_resolved_lazily():
    assert Holder.__sats_type__.elements[0][1] is Later.__sats_type__
    h = Holder(Later(5))
    assert decode(Holder.__sats_type__, encode(Holder.__sats_type__, h)) == h


@product
class Holder:
    item: Later


@product
class Later:
    x: u16


@product
class Node:
    kids: list[Node]


def test_product_recursive_rejected():
    with pytest.raises(TypeError, match='recursive type Node'):
        type_of(Node)


def test_product_unknown_annotation():
    @product
    class Bad:
        x: dict
    with pytest.raises(TypeError, match='Bad'):
        type_of(Bad)


def test_empty_product_is_bound_unit():
    @product
    class Nothing:
        pass
    t = Nothing.__sats_type__
    assert t.is_unit() and t.cls is Nothing
    assert encode(t, Nothing()) == b''
    assert isinstance(decode(t, b''), Nothing)


# ---------------------------------------------------------------------------
# @sum
# ---------------------------------------------------------------------------

@sats_sum
class Shape:
    Circle: f64
    Rect: Size
    Empty: None
    Poly: list[Size]

    def area(self):
        match self:
            case Shape.Circle(r):
                return 3.0 * r * r
            case Shape.Rect(Size(w, h)):
                return w * h
            case Shape.Empty:
                return 0.0
        return -1.0


@sats_sum
class Color:
    Red: None
    Green: None
    Blue: None


def test_sum_values():
    s = Shape.Circle(2.0)
    assert s.tag == 'Circle' and s.value == 2.0 and isinstance(s, Shape)
    assert Shape.Empty.tag == 'Empty' and Shape.Empty.value is None and isinstance(Shape.Empty, Shape)
    assert s.area() == 12.0 and Shape.Rect(Size(2.0, 3.0)).area() == 6.0 and Shape.Empty.area() == 0.0
    assert Shape.Circle(2.0) == s and hash(Shape.Circle(2.0)) == hash(s) and Shape.Circle(3.0) != s
    assert Shape.Circle(1.0) != Color.Red
    assert repr(s) == 'Shape.Circle(2.0)' and repr(Shape.Empty) == 'Shape.Empty'
    assert sorted([Shape.Empty, Shape.Rect(Size(1.0)), Shape.Circle(3.0), Shape.Circle(1.0)]) == [
        Shape.Circle(1.0), Shape.Circle(3.0), Shape.Rect(Size(1.0)), Shape.Empty]
    assert Color.Red < Color.Blue
    with pytest.raises(AttributeError):
        s.value = 3.0
    with pytest.raises(TypeError):
        Shape(1)
    with pytest.raises(TypeError):
        Shape.Empty()
    assert pickle.loads(pickle.dumps(Color.Green)) is Color.Green
    assert pickle.loads(pickle.dumps(Shape.Circle(1.5))) == Shape.Circle(1.5)


def test_sum_type_and_codec():
    t = Shape.__sats_type__
    assert isinstance(t, SumType) and t.cls is Shape
    assert t == SumType([('Circle', F64), ('Rect', Size.__sats_type__), ('Empty', UNIT),
                         ('Poly', ArrayType(Size.__sats_type__))])
    assert Color.__sats_type__.is_simple_enum()
    for v, hexs in ((Shape.Circle(2.0), '00' + '0000000000000040'), (Shape.Empty, '02'),
                    (Shape.Rect(Size(1.0, 2.0)), '01' + '0000803f' + '00000040'),
                    (Shape.Poly([]), '03' + '00000000')):
        data = encode(t, v)
        assert data.hex() == hexs
        assert reference.encode(t, v) == data
        d = decode(t, data)
        assert d == v and type(d) is type(v)
    assert decode(t, b'\x02') is Shape.Empty
    assert encode(Color.__sats_type__, Color.Blue) == b'\x02'
    with pytest.raises(BsatnError):
        encode(t, Color.Red)
    with pytest.raises(BsatnError, match='invalid sum tag 4'):
        decode(t, b'\x04')


def test_sum_inside_product_and_option():
    @product
    class Paint:
        color: Color
        shape: Option[Shape]
        result: Result[u8, str]

    t = Paint.__sats_type__
    for p in (Paint(Color.Green, None, Ok(1)), Paint(Color.Red, Shape.Circle(1.0), Err('no'))):
        assert decode(t, encode(t, p)) == p
    k = sort_key(t)
    assert k(Paint(Color.Red, None, Ok(1))) < k(Paint(Color.Green, Shape.Circle(1.0), Ok(1)))
    assert k(Paint(Color.Red, Shape.Circle(9.0), Ok(1))) < k(Paint(Color.Red, None, Ok(1)))


def test_sum_errors():
    with pytest.raises(TypeError):
        @sats_sum
        class NoVariants:
            pass
    with pytest.raises(TypeError, match='variant name'):
        @sats_sum
        class BadName:
            value: u8
    assert sum_type is sats_sum


def test_nested_option_in_product_and_some():
    @product
    class Opt2:
        x: Option[Option[u8]]
    t = Opt2.__sats_type__
    for v in (None, Some(None), Some(3)):
        assert decode(t, encode(t, Opt2(v))) == Opt2(v)


def test_generated_methods_reach_the_right_class_through_subclasses():
    # each method is generated on its first call; a call through a subclass or super() runs the class's own
    @product
    class Base:
        x: u8
        y: u8 = 5

    class Plain(Base):
        def __init__(self, x):
            super().__init__(x, 9)

    @product
    class Child(Base):  # a @product subclass: Base's methods are generated at once
        z: u8 = 1

    p = Plain(2)
    assert (p.x, p.y) == (2, 9) and repr(p).endswith('.Plain(x=2, y=9)')
    assert Base.__init__.__qualname__.endswith('.Base.__init__')
    c = Child(7)
    assert c.z == 7 and repr(c).endswith('.Child(z=7)') and Child.__init__.__qualname__.endswith('.Child.__init__')
    Base.__init__(c, 3)  # the base's own __init__ on a Child: Base's fields
    assert (c.x, c.y, c.z) == (3, 5, 7)
    assert Base(1) < Base(2) and Base(1) == Base(1) and hash(Base(1, 2)) == hash(Base(1, 2))
    assert sorted({Base(2), Base(1)}) == [Base(1), Base(2)] and Base(1) != Plain(1)
    with pytest.raises(TypeError, match=r'Base.__init__\(\) missing 1 required positional argument'):
        Base()
