"""`ctx.sender_auth.jwt`: the claims of the token the caller connected with, like Rust's `JwtClaims`.

The host hands over the token's payload (JSON text) through `get_jwt`.  `json` is not imported into modules
(it would pull `re` and more into every snapshot), so the payload is read by the small strict JSON reader
below, once, on first use of a claim.
"""

_ESCAPES = {'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
_WS = ' \t\n\r'
_NUM = frozenset('+-0123456789.eE')


class JwtClaims:
    """Claims of a JWT payload: `subject` (sub), `issuer` (iss), `audience` (aud, always a list),
    `raw_payload` (the JSON text, for custom claims), `claims` (the parsed dict)."""

    __slots__ = ('raw_payload', '_claims')

    def __init__(self, payload):
        self.raw_payload = payload
        self._claims = None

    @property
    def claims(self):
        c = self._claims
        if c is None:
            c = parse_json(self.raw_payload)
            if c.__class__ is not dict:
                raise ValueError('the JWT payload is not a JSON object')
            self._claims = c
        return c

    def _str_claim(self, name):
        v = self.claims.get(name)
        if v.__class__ is not str:
            raise ValueError(f"the JWT has no string '{name}' claim")
        return v

    @property
    def subject(self):
        return self._str_claim('sub')

    @property
    def issuer(self):
        return self._str_claim('iss')

    @property
    def audience(self):
        aud = self.claims.get('aud')
        if aud is None:
            return []
        if aud.__class__ is str:
            return [aud]
        if aud.__class__ is list:
            return [a for a in aud if a.__class__ is str]
        raise ValueError("the JWT's 'aud' claim is neither a string nor a list")

    def __repr__(self):
        return f'JwtClaims({self.raw_payload!r})'


def parse_json(text):
    """Parse JSON text (objects, arrays, strings, numbers, true/false/null); ValueError if malformed."""
    value, i = _value(text, _skip(text, 0))
    if _skip(text, i) != len(text):
        raise ValueError(f'invalid JSON: extra data at offset {i}')
    return value


def _skip(s, i):
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _value(s, i):
    if i >= len(s):
        raise ValueError('invalid JSON: unexpected end')
    c = s[i]
    if c == '{':
        out = {}
        i = _skip(s, i + 1)
        if s[i:i + 1] == '}':
            return out, i + 1
        while True:
            if s[i:i + 1] != '"':
                raise ValueError(f'invalid JSON: expected a key at offset {i}')
            key, i = _string(s, i + 1)
            i = _skip(s, i)
            if s[i:i + 1] != ':':
                raise ValueError(f"invalid JSON: expected ':' at offset {i}")
            out[key], i = _value(s, _skip(s, i + 1))
            i = _skip(s, i)
            if s[i:i + 1] == '}':
                return out, i + 1
            if s[i:i + 1] != ',':
                raise ValueError(f"invalid JSON: expected ',' or '}}' at offset {i}")
            i = _skip(s, i + 1)
    if c == '[':
        out = []
        i = _skip(s, i + 1)
        if s[i:i + 1] == ']':
            return out, i + 1
        while True:
            v, i = _value(s, i)
            out.append(v)
            i = _skip(s, i)
            if s[i:i + 1] == ']':
                return out, i + 1
            if s[i:i + 1] != ',':
                raise ValueError(f"invalid JSON: expected ',' or ']' at offset {i}")
            i = _skip(s, i + 1)
    if c == '"':
        return _string(s, i + 1)
    for word, v in (('true', True), ('false', False), ('null', None)):
        if s.startswith(word, i):
            return v, i + len(word)
    j = i
    while j < len(s) and s[j] in _NUM:
        j += 1
    token = s[i:j]
    try:
        return (float(token) if any(ch in token for ch in '.eE') else int(token)), j
    except ValueError:
        raise ValueError(f'invalid JSON at offset {i}') from None


def _string(s, i):
    parts = []
    n = len(s)
    start = i
    while True:
        if i >= n:
            raise ValueError('invalid JSON: unterminated string')
        c = s[i]
        if c == '"':
            parts.append(s[start:i])
            return ''.join(parts), i + 1
        if c == '\\':
            parts.append(s[start:i])
            e = s[i + 1:i + 2]
            if e == 'u':
                code = int(s[i + 2:i + 6], 16)
                i += 6
                if 0xD800 <= code < 0xDC00 and s[i:i + 2] == '\\u':  # a surrogate pair
                    low = int(s[i + 2:i + 6], 16)
                    if 0xDC00 <= low < 0xE000:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                parts.append(chr(code))
            elif e in _ESCAPES:
                parts.append(_ESCAPES[e])
                i += 2
            else:
                raise ValueError(f'invalid JSON: bad escape at offset {i}')
            start = i
        else:
            i += 1
