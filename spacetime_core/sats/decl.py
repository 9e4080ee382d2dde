"""User-declared SATS types: the ``@product`` and ``@sum`` class decorators.

``@product`` turns a plain annotated class into a record type::

    @product
    class Point:
        x: f32
        y: f32 = 0.0

It generates ``__init__`` (positional or keyword; defaults from class
attributes; a required field may follow a defaulted one, it is then checked
at call time), ``__eq__``, ``__hash__`` (by value; instances stay mutable,
so do not mutate objects used as dict keys), ordering (lexicographic by
field, like SATS), ``__repr__``, ``__match_args__``, ``__slots__`` (the class
is re-created with slots unless ``slots=False`` or it defines ``__slots__``)
and ``__sats_type__``: a ProductType bound to the class, built lazily on
first access so annotations may name classes defined later.  Each method is
generated on its first call (a class never used at import costs a built
module's snapshot no code).

``@sum`` declares a tagged union; each annotation is a variant::

    @sum
    class Shape:
        Circle: f64          # payload variant: Shape.Circle(2.0)
        Rect: Size           # payload may be a @product class
        Empty: None          # unit variant: the singleton Shape.Empty

    s = Shape.Circle(2.0); s.tag == 'Circle'; s.value == 2.0
    match s:
        case Shape.Circle(r): ...
        case Shape.Empty: ...

Variant values are immutable, hashable, ordered by (tag index, payload),
and instances of per-variant subclasses of the decorated class (so
``isinstance(s, Shape)`` holds and methods defined on ``Shape`` work).
"""

import keyword
import sys

from .annotations import type_of
from .types import UNIT, AlgebraicType, ProductType, SumType

_MISSING = object()
_new = object.__new__
_osa = object.__setattr__
_MUTABLE = (list, dict, set, bytearray)


class _LazyType:
    """Class-level descriptor computing ``__sats_type__`` on first access."""

    def __init__(self, cls, build):
        self.cls = cls
        self.build = build
        self.building = False

    def __get__(self, obj, owner=None):
        cls = self.cls
        cur = cls.__dict__.get('__sats_type__')
        if cur is not self:
            return cur
        if self.building:
            raise TypeError(f'recursive type {cls.__qualname__}: a @product/@sum cannot contain itself directly; '
                            'build it with an explicit Typespace and RefType')
        self.building = True
        try:
            t = self.build()
        finally:
            self.building = False
        type.__setattr__(cls, '__sats_type__', t)
        return t


def _namespaces(cls):
    mod = sys.modules.get(cls.__module__)
    g = dict(vars(mod)) if mod is not None else {}
    local = dict(vars(cls))
    local.setdefault(cls.__name__, cls)
    return g, local


def _resolve_ann(cls, ann, field):
    g, local = _namespaces(cls)
    try:
        return type_of(ann, g, local)
    except TypeError as e:
        raise TypeError(f'{cls.__qualname__}.{field}: {e}') from None


def _fix_class_cells(old, new):
    """Re-point zero-arg ``super()`` / ``__class__`` cells of methods."""
    for v in list(vars(new).values()):
        f = v
        if isinstance(v, (staticmethod, classmethod)):
            f = v.__func__
        elif isinstance(v, property):
            for g in (v.fget, v.fset, v.fdel):
                _fix_func(g, old, new)
            continue
        _fix_func(f, old, new)


def _fix_func(f, old, new):
    code = getattr(f, '__code__', None)
    if code is None or not f.__closure__:
        return
    for name, cell in zip(code.co_freevars, f.__closure__, strict=False):
        if name == '__class__':
            try:
                if cell.cell_contents is old:
                    cell.cell_contents = new
            except ValueError:
                pass


def _recreate(cls, slots, drop):
    d = dict(cls.__dict__)
    for n in drop:
        d.pop(n, None)
    d.pop('__dict__', None)
    d.pop('__weakref__', None)
    d['__slots__'] = tuple(slots)
    new = type(cls)(cls.__name__, cls.__bases__, d)
    new.__qualname__ = cls.__qualname__
    _fix_class_cells(cls, new)
    return new


def _exec(src, ns, name):
    exec(compile(src, f'<sats {name}>', 'exec'), ns)
    return ns[name]


# ---------------------------------------------------------------------------
# @product
# ---------------------------------------------------------------------------

def product(cls=None, *, slots=True):
    """Class decorator declaring a SATS product type (see module docstring)."""
    if cls is None:
        return lambda c: product(c, slots=slots)
    anns = cls.__dict__.get('__annotations__', {})
    names = [n for n in anns if not (n.startswith('__') and n.endswith('__'))]
    defaults = {}
    for n in names:
        if n in cls.__dict__:
            defaults[n] = cls.__dict__[n]
    if slots and '__slots__' not in cls.__dict__:
        cls = _recreate(cls, names, names)
    _add_product_methods(cls, names, defaults)
    fields = [(n, anns[n]) for n in names]

    def build():
        return ProductType([(n, _resolve_ann(cls, a, n)) for n, a in fields], cls=cls)
    type.__setattr__(cls, '__sats_type__', _LazyType(cls, build))
    cls.__sats_fields__ = tuple(names)
    return cls


_PRODUCT_METHODS = ('__init__', '__eq__', '__ne__', '__hash__', '__lt__', '__le__', '__gt__', '__ge__', '__repr__')


def _add_product_methods(cls, names, defaults):
    """Install the generated methods lazily: each one starts as a stub shared by every class, which generates
    that method for its class on first call.  A built module's snapshot then holds generated code only for
    what ran at import (it costs ~8 KB per class; a stub costs a dict entry)."""
    own = cls.__dict__
    for base in cls.__mro__[1:]:  # a stub finds its class through the MRO: keep one pending class per MRO
        if base.__dict__.get('__sats_pending__') is not None:
            _generate(base, _PRODUCT_METHODS)
    for m in _PRODUCT_METHODS:
        if m not in own:
            type.__setattr__(cls, m, _STUBS[m])
    type.__setattr__(cls, '__sats_pending__', (tuple(names), defaults))
    if '__match_args__' not in own:
        type.__setattr__(cls, '__match_args__', tuple(names))


def _stub(m):
    def stub(self, *args, **kwargs):
        for c in type(self).__mro__:
            if c.__dict__.get(m) is stub:
                _generate(c, (m,))
                return c.__dict__[m](self, *args, **kwargs)
        raise TypeError(f'{m} of a @product class called on {type(self).__qualname__}')
    stub.__name__ = stub.__qualname__ = m
    return stub


_STUBS = {m: _stub(m) for m in _PRODUCT_METHODS}
_CMP = {'__eq__': '==', '__ne__': '!=', '__lt__': '<', '__le__': '<=', '__gt__': '>', '__ge__': '>='}


def _generate(cls, methods):
    """Compile the `methods` of @product class `cls` that are still stubs and install them."""
    own = cls.__dict__
    pending = own.get('__sats_pending__')
    if pending is None:
        return
    names, defaults = pending
    ns = {'_MISSING': _MISSING, '_C': cls}
    tup = '({})'.format(''.join(f'self.{n}, ' for n in names))
    otup = '({})'.format(''.join(f'other.{n}, ' for n in names))
    todo = [m for m in methods if own.get(m) is _STUBS[m]]
    src = []
    for m in todo:
        if m == '__init__':
            src += _init_src(cls, names, defaults, ns)
        elif m == '__hash__':
            src += ['def __hash__(self):', f'    return hash({tup})']
        elif m == '__repr__':
            rep = ', '.join(f'{n}=%r' for n in names)
            src += ['def __repr__(self):', f"    return '%s({rep})' % ((self.__class__.__qualname__,) + {tup})"]
        else:
            src += [
                f'def {m}(self, other):',
                '    if other.__class__ is not self.__class__: return NotImplemented',
                f'    return {tup} {_CMP[m]} {otup}',
            ]
    exec('\n'.join(src) + '\n', ns)
    for m in todo:
        f = ns[m]
        f.__qualname__ = f'{cls.__qualname__}.{m}'
        type.__setattr__(cls, m, f)
    if not any(own.get(m) is _STUBS[m] for m in _PRODUCT_METHODS):
        type.__delattr__(cls, '__sats_pending__')


def _init_src(cls, names, defaults, ns):
    args = []
    body = []
    for i, n in enumerate(names):
        if n in defaults:
            d = defaults[n]
            ns[f'_d{i}'] = d
            if isinstance(d, _MUTABLE):
                args.append(f'{n}=_MISSING')
                body.append(f'    if {n} is _MISSING: {n} = _d{i}.copy()')
            else:
                args.append(f'{n}=_d{i}')
        elif defaults and any(m in defaults for m in names[:i]):
            args.append(f'{n}=_MISSING')
            body.append(f'    if {n} is _MISSING: raise TypeError("{cls.__name__}() missing required argument: {n}")')
        else:
            args.append(n)
    for n in names:
        body.append(f'    self.{n} = {n}')
    if not body:
        body.append('    pass')
    return ['def __init__(self{}):'.format(''.join(', ' + a for a in args))] + body


# ---------------------------------------------------------------------------
# @sum
# ---------------------------------------------------------------------------

def _frozen(self, name, value):
    raise AttributeError(f'{type(self).__qualname__} values are immutable')


def _is_unit_ann(cls, ann):
    if ann is None or ann is type(None):
        return True
    if isinstance(ann, str):
        if ann.strip() in ('None', 'UNIT'):
            return True
        try:
            g, local = _namespaces(cls)
            ann = eval(ann, g, local)
        except Exception:
            return False
        return _is_unit_ann(cls, ann)
    return isinstance(ann, AlgebraicType) and ann.is_unit() and ann.cls is None


def _published_variant(name):
    """A variant spelt as a Python keyword plus one `_` (`in_`) is published without it (`in`): the server's
    lowerCamelCase names (`In` -> `in`) can be keywords, and generated client bindings spell those so."""
    if name.endswith('_') and not name.endswith('__') and keyword.iskeyword(name[:-1]):
        return name[:-1]
    return name


def sum(cls=None):  # noqa: A001 - the brief asks for ``@sum``
    """Class decorator declaring a SATS sum type (see module docstring).

    Note: importing this name shadows the builtin ``sum`` in that module; it
    is therefore not part of ``spacetime_core.sats.__all__`` (import it by name,
    or use the alias ``sum_type``)."""
    if cls is None:
        return sum
    anns = cls.__dict__.get('__annotations__', {})
    names = [n for n in anns if not (n.startswith('__') and n.endswith('__'))]
    if not names:
        raise TypeError(f'@sum class {cls.__qualname__} declares no variants')
    if len(names) > 256:
        raise TypeError(f'@sum class {cls.__qualname__} has {len(names)} variants (max 256)')
    for n in ('tag', 'value'):
        if n in names:
            raise TypeError(f'@sum class {cls.__qualname__}: {n!r} cannot be a variant name')
    base = cls
    if '__slots__' not in cls.__dict__:
        base = _recreate(cls, (), names)
    else:
        for n in names:
            if n in base.__dict__:
                type.__delattr__(base, n)
    _add_sum_methods(base)
    variants = []
    kinds = []
    for i, n in enumerate(names):
        ann = anns[n]
        unit = _is_unit_ann(base, ann)
        kinds.append((n, ann, unit))
        if unit:
            vc = type(base)(n, (base,), {'__slots__': (), 'tag': n, '_tag_index': i, 'value': None,
                                         '__module__': base.__module__})
            vc.__qualname__ = f'{base.__qualname__}.{n}'
            inst = _new(vc)
            variants.append(inst)
            type.__setattr__(base, n, inst)
        else:
            vc = type(base)(n, (base,), {'__slots__': ('value',), 'tag': n, '_tag_index': i,
                                         '__match_args__': ('value',), '__module__': base.__module__})
            vc.__qualname__ = f'{base.__qualname__}.{n}'
            setv = vc.__dict__['value'].__set__

            def __init__(self, value, _setv=setv):
                _setv(self, value)

            def _sats_make(value, _c=vc, _setv=setv):
                o = _new(_c)
                _setv(o, value)
                return o
            type.__setattr__(vc, '__init__', __init__)
            type.__setattr__(vc, '_sats_make', staticmethod(_sats_make))
            variants.append(vc)
            type.__setattr__(base, n, vc)
    type.__setattr__(base, '__sats_variants__', tuple(variants))
    type.__setattr__(base, '__sats_variant_names__', tuple(names))

    def build():
        vs = []
        for n, ann, unit in kinds:
            vs.append((_published_variant(n), UNIT if unit else _resolve_ann(base, ann, n)))
        return SumType(vs, cls=base)
    type.__setattr__(base, '__sats_type__', _LazyType(base, build))
    return base


sum_type = sum


def _add_sum_methods(base):
    own = base.__dict__

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self is other or self.value == other.value

    def __ne__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return not (self is other or self.value == other.value)

    def __hash__(self):
        return hash((self._tag_index, self.value))

    def _cmp(self, other):
        if not isinstance(other, base):
            return NotImplemented
        a = self._tag_index
        b = other._tag_index
        if a != b:
            return -1 if a < b else 1
        x = self.value
        y = other.value
        if x == y:
            return 0
        return -1 if x < y else 1

    def __lt__(self, other):
        c = _cmp(self, other)
        return c if c is NotImplemented else c < 0

    def __le__(self, other):
        c = _cmp(self, other)
        return c if c is NotImplemented else c <= 0

    def __gt__(self, other):
        c = _cmp(self, other)
        return c if c is NotImplemented else c > 0

    def __ge__(self, other):
        c = _cmp(self, other)
        return c if c is NotImplemented else c >= 0

    def __repr__(self):
        q = type(self).__qualname__
        if type(self).__dict__.get('__slots__') == ():
            return q
        return f'{q}({self.value!r})'

    def __reduce__(self):
        if type(self).__dict__.get('__slots__') == ():
            return (getattr, (base, self.tag))
        return (type(self), (self.value,))

    for name, f in (('__eq__', __eq__), ('__ne__', __ne__), ('__hash__', __hash__), ('__lt__', __lt__),
                    ('__le__', __le__), ('__gt__', __gt__), ('__ge__', __ge__), ('__repr__', __repr__),
                    ('__reduce__', __reduce__), ('__setattr__', _frozen)):
        if name not in own:
            type.__setattr__(base, name, f)

    def __new__(cls, *a, **k):
        if cls is base:
            q = base.__qualname__
            raise TypeError(f'{q} is a sum type; construct a variant, e.g. {q}.<Variant>(value)')
        return object.__new__(cls)
    if '__new__' not in own:
        type.__setattr__(base, '__new__', staticmethod(__new__))
