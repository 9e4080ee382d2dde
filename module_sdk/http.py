"""Outbound HTTP from procedures: `ctx.http` (bsatn.md section 7.4, module-abi.md section 4.4).

    resp = ctx.http.get("https://example.com/data", headers={"accept": "text/plain"})
    if resp.status == 200:
        text = resp.text()
    resp = ctx.http.post(url, body=b"...", timeout=TimeDuration.from_seconds(5))

Only procedures can do this, and only outside `with_tx`.  A request that gets no response at all raises
`HttpError`; any HTTP status (404, 500, ...) is a normal response.
"""

import struct

from spacetime_core.sats.values import TimeDuration

from . import _abi

_U32 = struct.Struct('<I')
_U16 = struct.Struct('<H')
_I64 = struct.Struct('<q')
METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH')
VERSIONS = ('HTTP/0.9', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3')


def _str(s):
    b = s.encode('utf-8')
    return _U32.pack(len(b)) + b


def _bytes(b):
    return _U32.pack(len(b)) + b


def encode_request(method, uri, headers=(), timeout=None, version=2):
    """BSATN HttpRequest {method, headers, timeout: Option<TimeDuration>, uri, version}."""
    m = method.upper()
    out = bytearray()
    if m in METHODS:
        out.append(METHODS.index(m))
    else:
        out.append(9)
        out += _str(method)
    out += _U32.pack(len(headers))
    for name, value in headers:
        out += _str(name)
        out += _bytes(value.encode('utf-8') if isinstance(value, str) else bytes(value))
    if timeout is None:
        out.append(1)
    else:
        micros = timeout.micros if isinstance(timeout, TimeDuration) else round(timeout * 1_000_000)
        out.append(0)
        out += _I64.pack(micros)
    out += _str(uri)
    out.append(version)
    return bytes(out)


def decode_response(buf):
    """BSATN HttpResponse {headers, version, code: u16} -> (status, headers, version index)."""
    off = 0
    (n,) = _U32.unpack_from(buf, off)
    off += 4
    headers = []
    for _ in range(n):
        (ln,) = _U32.unpack_from(buf, off)
        off += 4
        name = bytes(buf[off:off + ln]).decode('utf-8')
        off += ln
        (lv,) = _U32.unpack_from(buf, off)
        off += 4
        headers.append((name, bytes(buf[off:off + lv])))
        off += lv
    version = buf[off]
    (code,) = _U16.unpack_from(buf, off + 1)
    return code, headers, version


class _Message:
    """Header lookup and the body as text, shared by `HttpResponse` and an HTTP handler's `Request`."""

    __slots__ = ()

    def header(self, name, default=None):
        """The first header called `name` (case-insensitive), decoded as text."""
        low = name.lower()
        for n, v in self.headers:
            if n.lower() == low:
                return v.decode('utf-8', 'replace')
        return default

    def text(self, encoding='utf-8'):
        return self.body.decode(encoding, 'replace')


class HttpResponse(_Message):
    """`status` (int), `headers` (list of (name, bytes)), `body` (bytes), `version` ('HTTP/1.1', ...)."""

    __slots__ = ('status', 'headers', 'body', 'version')

    def __init__(self, status, headers, body, version='HTTP/1.1'):
        self.status = status
        self.headers = headers
        self.body = body
        self.version = version

    @property
    def ok(self):
        return 200 <= self.status < 300

    def __repr__(self):
        return f'<HttpResponse {self.status}, {len(self.body)} bytes>'


class HttpClient:
    """`ctx.http` inside a procedure."""

    __slots__ = ()

    def fetch(self, url, *, method='GET', headers=None, body=b'', timeout=None):
        """Send a request; `headers` is a dict or a list of pairs; `body` bytes or str; `timeout` a
        TimeDuration or seconds.  Returns an HttpResponse; raises HttpError if no response came back."""
        if isinstance(body, str):
            body = body.encode('utf-8')
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        req = encode_request(method, url, pairs, timeout)
        head, data = _abi.http_request(req, bytes(body))
        status, hdrs, version = decode_response(head)
        return HttpResponse(status, hdrs, bytes(data), VERSIONS[version] if version < len(VERSIONS) else '?')

    def get(self, url, **kw):
        return self.fetch(url, method='GET', **kw)

    def post(self, url, body=b'', **kw):
        return self.fetch(url, method='POST', body=body, **kw)

    def put(self, url, body=b'', **kw):
        return self.fetch(url, method='PUT', body=body, **kw)

    def delete(self, url, **kw):
        return self.fetch(url, method='DELETE', **kw)
