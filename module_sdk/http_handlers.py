"""Inbound HTTP: `@http_handler` functions routed by a `Router`, served at /v1/database/<db>/route<path>
(module-abi.md section 5.5, `__call_http_handler__`).  Loaded only by modules that declare handlers (it is
not part of every module's snapshot).

    @http_handler
    def hello(ctx: HandlerContext, req: Request) -> Response:
        return Response("hello " + req.query)

    @router
    def routes() -> Router:
        return Router().get("/hello", hello)
"""

from .http import _U16, _U32, METHODS, _bytes, _Message, _str
from .schema import function_def

_PATH_CHARS = frozenset('abcdefghijklmnopqrstuvwxyz0123456789-_~/')


def _take(buf, off, n):
    end = off + n
    if end > len(buf):
        raise ValueError('HttpRequest is truncated')
    return bytes(buf[off:end]), end


def decode_request(buf):
    """BSATN HttpRequest -> (method, headers [(name, bytes)], uri, version index)."""
    tag, off = buf[0], 1
    if tag < len(METHODS):
        method = METHODS[tag]
    elif tag == 9:
        (n,) = _U32.unpack_from(buf, off)
        raw, off = _take(buf, off + 4, n)
        method = raw.decode('utf-8')
    else:
        raise ValueError(f'invalid HttpMethod tag {tag}')
    (n,) = _U32.unpack_from(buf, off)
    off += 4
    headers = []
    for _ in range(n):
        (ln,) = _U32.unpack_from(buf, off)
        name, off = _take(buf, off + 4, ln)
        (lv,) = _U32.unpack_from(buf, off)
        value, off = _take(buf, off + 4, lv)
        headers.append((name.decode('utf-8'), value))
    if buf[off] == 0:
        off += 9  # Some(timeout): not meaningful for an inbound request
    else:
        off += 1
    (n,) = _U32.unpack_from(buf, off)
    uri, off = _take(buf, off + 4, n)
    return method, headers, uri.decode('utf-8'), buf[off]


def encode_response(status, headers=(), version=2):
    """BSATN HttpResponse {headers, version, code: u16}."""
    out = bytearray(_U32.pack(len(headers)))
    for name, value in headers:
        out += _str(name)
        out += _bytes(value.encode('utf-8') if isinstance(value, str) else bytes(value))
    out.append(version)
    out += _U16.pack(status)
    return bytes(out)


class Request(_Message):
    """An HTTP request to a handler: `method` ('GET', ...), `uri` (the full URL the client used), `path` and
    `query` (parsed from it), `headers` [(name, bytes)], `body` bytes, `version` ('HTTP/1.1', ...)."""

    __slots__ = ('method', 'uri', 'headers', 'body', 'version')

    def __init__(self, method, uri, headers=(), body=b'', version='HTTP/1.1'):
        self.method = method
        self.uri = uri
        self.headers = list(headers)
        self.body = body
        self.version = version

    @property
    def path(self):
        """The URL's path, e.g. '/v1/database/mydb/route/hello'."""
        rest = self.uri.split('://', 1)[1] if '://' in self.uri else self.uri
        if '://' in self.uri:
            i = rest.find('/')
            rest = rest[i:] if i >= 0 else '/'
        return rest.split('?', 1)[0].split('#', 1)[0]

    @property
    def query(self):
        """The query string ('' if none), undecoded."""
        q = self.uri.split('?', 1)
        return q[1].split('#', 1)[0] if len(q) == 2 else ''

    def __repr__(self):
        return f'<Request {self.method} {self.uri}, {len(self.body)} bytes>'


class Response:
    """What a handler returns: `Response(body=b'', status=200, headers=None)`.  `body` is bytes or str (UTF-8);
    `headers` a dict or a list of (name, value) pairs."""

    __slots__ = ('status', 'headers', 'body')

    def __init__(self, body=b'', status=200, headers=None):
        if isinstance(body, str):
            body = body.encode('utf-8')
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f'Response body must be bytes or str, not {type(body).__name__}')
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f'Response status must be an int in 100..999, got {status!r}')
        self.status = status
        self.headers = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        self.body = bytes(body)

    def __repr__(self):
        return f'<Response {self.status}, {len(self.body)} bytes>'


def check_route_path(path):
    """Raise ValueError unless `path` is '' or starts with '/' and uses only a-z 0-9 - _ ~ / (upstream's rule)."""
    if not isinstance(path, str):
        raise TypeError(f'route paths are str, got {path!r}')
    if path and not path.startswith('/'):
        raise ValueError(f'route paths must start with `/`: {path!r}')
    if not _PATH_CHARS.issuperset(path):
        raise ValueError(f'route paths may contain only ASCII lowercase letters, digits and `-_~/`: {path!r}')


def _join(prefix, suffix):
    if prefix == '/':
        return suffix
    if suffix == '/':
        return prefix
    return prefix.rstrip('/') + '/' + suffix.lstrip('/')


class Router:
    """Routes (method, path) to `@http_handler` functions; return one from a `@router` function.

        Router().get('/hello', hello).post('/items', add_item).any('/echo', echo)

    Paths are exact (no parameters); '' is the root; a trailing '/' is significant.  A second handler for
    the same path and method (or `any`) is an error."""

    __slots__ = ('routes',)

    def __init__(self):
        self.routes = []  # [(method or None for any, path, handler function)]

    def _add(self, method, path, handler):
        check_route_path(path)
        fdef = function_def(handler)
        if fdef is None or fdef.kind != 'http_handler':
            raise TypeError(f'{handler!r} is not an @http_handler function')
        for m, p, _ in self.routes:
            if p == path and (m is None or method is None or m == method):
                raise ValueError(f'route conflict for {method or "ANY"} {path!r}')
        self.routes.append((method, path, handler))
        return self

    def get(self, path, handler):
        return self._add('GET', path, handler)

    def head(self, path, handler):
        return self._add('HEAD', path, handler)

    def options(self, path, handler):
        return self._add('OPTIONS', path, handler)

    def put(self, path, handler):
        return self._add('PUT', path, handler)

    def delete(self, path, handler):
        return self._add('DELETE', path, handler)

    def post(self, path, handler):
        return self._add('POST', path, handler)

    def patch(self, path, handler):
        return self._add('PATCH', path, handler)

    def any(self, path, handler):
        """Every method at `path`."""
        return self._add(None, path, handler)

    def nest(self, path, sub):
        """Serve `sub`'s routes under the prefix `path`."""
        check_route_path(path)
        if any(p.startswith(path) for _, p, _ in self.routes):
            raise ValueError(f'cannot nest a router at {path!r}: existing routes overlap with it')
        for m, p, h in sub.routes:
            self._add(m, _join(path, p), h)
        return self

    def merge(self, other):
        for m, p, h in other.routes:
            self._add(m, p, h)
        return self
