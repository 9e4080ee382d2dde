"""Names: the server's case conversion (module-def.md section 5) and identifier checks.

`canonical_snake(s)` reproduces what a SpacetimeDB server derives under the default SnakeCase policy
(Rust `convert_case` 0.6 with its default boundaries): `one_u8` -> `one_u_8`, `HTTPRequest` ->
`http_request`, `_private` -> `private`; `canonical_camel` (sum variants) and `canonical_pascal` (type names)
are its other two cases.  `python_snake(s)` is the friendlier spelling used for default
accessors of classes (`OneU8` -> `one_u8`): it splits at case changes only, never at digits.
"""


def _kind(c):
    """'u' upper, 'l' lower, 'd' digit, '' other (convert_case: cased iff upper() != lower())."""
    if c.isdigit():
        return 'd'
    up = c.upper()
    lo = c.lower()
    if up == lo:
        return ''
    if c == up:
        return 'u'
    if c == lo:
        return 'l'
    return ''


_PAIR_SPLITS = frozenset(('lu', 'ud', 'du', 'dl', 'ld'))


def split_words(s, digits=True):
    """Split like convert_case 0.6 (delimiters `_`, `-`, space dropped; lower->Upper, letter<->digit when
    `digits`, and acronym ends `ABc` -> `A`, `Bc`)."""
    words = []
    chunk = []
    for c in s + '_':
        if c in '_- ':
            if chunk:
                words.extend(_split_chunk(''.join(chunk), digits))
                chunk = []
        else:
            chunk.append(c)
    return words


def _split_chunk(w, digits):
    kinds = [_kind(c) for c in w]
    out = []
    start = 0
    n = len(w)
    for i in range(1, n):
        pair = kinds[i - 1] + kinds[i]
        cut = pair == 'lu' or pair == 'du' or (digits and pair in _PAIR_SPLITS)
        if not cut and pair == 'uu' and i + 1 < n and kinds[i + 1] == 'l':
            cut = True
        if cut:
            out.append(w[start:i])
            start = i
    out.append(w[start:])
    return out


def canonical_snake(s):
    """The canonical name the server derives from a source name under SnakeCase."""
    return '_'.join(w.lower() for w in split_words(s))


def canonical_camel(s):
    """lowerCamelCase as convert_case 0.6's `Case::Camel`: the server's name for a sum variant under the
    SnakeCase policy (`Zero` -> `zero`, `BannedUntil` -> `bannedUntil`, `OneU8` -> `oneU8`)."""
    words = split_words(s)
    return ''.join(w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(words))


def canonical_pascal(s):
    """PascalCase as convert_case 0.6's `Case::Pascal`: the server's name for a type (`one_u8` -> `OneU8`)."""
    return ''.join(w[:1].upper() + w[1:].lower() for w in split_words(s))


def python_snake(s):
    """`PersonRecord` -> `person_record`, `OneU8` -> `one_u8`, `Player1Id` -> `player1_id` (default accessor
    names): like `canonical_snake` but a digit never starts or ends a word unless an upper case letter follows."""
    return '_'.join(w.lower() for w in split_words(s, digits=False))


def is_identifier(s):
    """module-def.md 5.1: non-empty, `_` or XID_Start first, XID_Continue after (Python's rule is the same
    Unicode property set, modulo NFKC details we do not try to reproduce)."""
    return isinstance(s, str) and s.isidentifier()


def check_identifier(s, what):
    if not is_identifier(s):
        raise ValueError(f'{what} {s!r} is not a valid identifier (letters, digits and _, not starting with a digit)')
    return s
