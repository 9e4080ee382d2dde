"""Python annotations -> AlgebraicType.

``type_of(annotation)`` understands:

* the marker classes ``u8 .. u256, i8 .. i256`` (int subclasses) and ``f32``,
  ``f64`` (float subclasses); builtins ``bool``, ``str``, ``bytes``, ``int``
  (-> I64), ``float`` (-> F64);
* ``list[T]`` -> ``Array<T>``; ``Option[T]``, ``T | None`` and
  ``typing.Optional[T]`` -> ``Option<T>``; ``Result[T, E]``;
* ``Identity``, ``ConnectionId``, ``Timestamp``, ``TimeDuration``, ``Uuid``,
  ``ScheduleAt`` -> the special types;
* any class carrying ``__sats_type__`` (``@product``/``@sum`` classes: the
  inline bound type, whose ``.cls`` links back to the class so a module-def
  builder can register it in a typespace and refer to it by ``Ref``);
* an ``AlgebraicType`` instance (returned as is); ``None`` -> unit;
* strings (``from __future__ import annotations``) evaluated in ``globalns``
  / ``localns``.
"""

from .types import (
    BOOL,
    BYTES,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    INT_RANGES,
    STRING,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    AlgebraicType,
    ArrayType,
    option_type,
    result_type,
)


def _int_marker(name, t):
    lo, hi = INT_RANGES[t.tag]

    def __new__(cls, value=0, *args):
        v = int.__new__(cls, value, *args)
        if not lo <= v <= hi:
            raise OverflowError(f'{int(v)} out of range for {name} ({lo}..{hi})')
        return v

    def __repr__(self):
        return f'{name}({int(self)})'
    return type(name, (int,), {
        '__slots__': (), '__sats_type__': t, '__new__': __new__, '__repr__': __repr__,
        '__doc__': f'Annotation marker for SATS {t!r} (an int subclass; plain ints are accepted).',
        '__module__': __name__,
    })


u8 = _int_marker('u8', U8)
u16 = _int_marker('u16', U16)
u32 = _int_marker('u32', U32)
u64 = _int_marker('u64', U64)
u128 = _int_marker('u128', U128)
u256 = _int_marker('u256', U256)
i8 = _int_marker('i8', I8)
i16 = _int_marker('i16', I16)
i32 = _int_marker('i32', I32)
i64 = _int_marker('i64', I64)
i128 = _int_marker('i128', I128)
i256 = _int_marker('i256', I256)


class f32(float):
    """Annotation marker for SATS F32 (a float subclass; plain floats are accepted)."""
    __slots__ = ()
    __sats_type__ = F32


class f64(float):
    """Annotation marker for SATS F64 (a float subclass; plain floats are accepted)."""
    __slots__ = ()
    __sats_type__ = F64


_BUILTINS = {bool: BOOL, str: STRING, bytes: BYTES, int: I64, float: F64, type(None): UNIT}


class _Generic:
    """``Option[T]`` / ``Result[T, E]`` subscription result."""

    __slots__ = ('origin', 'args')

    def __init__(self, origin, args):
        self.origin = origin
        self.args = args

    def __repr__(self):
        return '{}[{}]'.format(self.origin.__name__, ', '.join(_ann_repr(a) for a in self.args))

    def __eq__(self, other):
        return isinstance(other, _Generic) and other.origin is self.origin and other.args == self.args

    def __hash__(self):
        return hash((self.origin, self.args))

    def __or__(self, other):
        return _Union((self, other))

    def __ror__(self, other):
        return _Union((other, self))


class _Union:
    """``Option[T] | None`` etc. (types.UnionType cannot hold our aliases)."""

    __slots__ = ('args',)

    def __init__(self, args):
        self.args = args

    def __repr__(self):
        return ' | '.join(_ann_repr(a) for a in self.args)


def _ann_repr(a):
    if isinstance(a, type):
        return a.__qualname__
    return repr(a)


class Option:
    """``Option[T]`` annotates an optional value (``None`` or a ``T``)."""

    def __new__(cls, *a, **k):
        raise TypeError('Option is only used as an annotation (Option[T]); use None or the value itself')

    def __class_getitem__(cls, item):
        return _Generic(Option, (item,))


class Result:
    """``Result[T, E]`` annotates a value that is ``Ok(T)`` or ``Err(E)``."""

    def __new__(cls, *a, **k):
        raise TypeError('Result is only used as an annotation (Result[T, E]); use Ok(v) or Err(e)')

    def __class_getitem__(cls, item):
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError('Result[...] takes two types: Result[T, E]')
        return _Generic(Result, item)


_UnionType = type(int | None)


def _union_args(ann):
    if isinstance(ann, _Union):
        return ann.args
    if type(ann) is _UnionType:
        return ann.__args__
    origin = getattr(ann, '__origin__', None)
    if origin is not None and repr(origin) == 'typing.Union':
        return ann.__args__
    return None


def type_of(ann, globalns=None, localns=None):
    """Map a Python annotation to an AlgebraicType (see module docstring).
    Raises TypeError naming the annotation if it is not understood."""
    if isinstance(ann, AlgebraicType):
        return ann
    if isinstance(ann, str):
        try:
            ann = eval(ann, globalns if globalns is not None else {}, localns)
        except NameError as e:
            raise TypeError(f'cannot resolve annotation {ann!r}: {e}') from None
        return type_of(ann, globalns, localns)
    if ann is None:
        return UNIT
    st = getattr(ann, '__sats_type__', None)
    if isinstance(st, AlgebraicType):
        return st
    t = _BUILTINS.get(ann) if isinstance(ann, type) else None
    if t is not None:
        return t
    if isinstance(ann, _Generic):
        if ann.origin is Option:
            return option_type(type_of(ann.args[0], globalns, localns))
        return result_type(type_of(ann.args[0], globalns, localns), type_of(ann.args[1], globalns, localns))
    args = _union_args(ann)
    if args is not None:
        rest = [a for a in args if a is not None and a is not type(None)]
        if len(rest) == 1 and len(rest) < len(args):
            return option_type(type_of(rest[0], globalns, localns))
        raise TypeError(f'unsupported union annotation {ann!r}: only "T | None" (an Option) is supported')
    origin = getattr(ann, '__origin__', None)
    if origin is list:
        a = getattr(ann, '__args__', ())
        if len(a) != 1:
            raise TypeError(f'list annotation needs exactly one element type: {ann!r}')
        return ArrayType(type_of(a[0], globalns, localns))
    if ann is list:
        raise TypeError('bare list annotation: use list[T]')
    if origin is dict or ann is dict:
        raise TypeError(f'unsupported annotation {_ann_repr(ann)}: SpacetimeDB has no map type; use list[Entry] of '
                        'a @product class Entry with the key and value fields (or a table keyed by the key)')
    if origin is tuple or ann is tuple:
        raise TypeError(f'unsupported annotation {_ann_repr(ann)}: use a @product class with named fields, or '
                        'list[T] when all elements have one type')
    if isinstance(ann, type):
        raise TypeError(f'unsupported annotation {ann.__qualname__}: not a SATS type (use a marker like u32, '
                        'a builtin, list[T], Option[T], or a @product/@sum class)')
    raise TypeError(f'unsupported annotation {ann!r}: not a SATS type (use a marker like u32, a builtin, list[T], '
                    'Option[T], or a @product/@sum class)')
