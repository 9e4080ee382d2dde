"""The six entry points the C runtime calls (contract at the end of module_sdk/_spacetime.pyi).

Imported by the build right after the user's module, so `finalize()` (validation, the module def bytes, all
codecs) runs at build time and lands in the snapshot; a schema error is a build error.

Errors: `SenderError("msg")` -> "msg" to the caller.  Any other exception -> "Type: message" to the caller and
a log record with the traceback.  Undecodable arguments -> "invalid arguments for reducer x: ...".
Procedures follow upstream's protocol (0 or trap): every failure is logged at ERROR here, and the C door
traps when `call_procedure` returns a str instead of the BSATN result.
"""

import struct
import sys

from spacetime_core.sats.values import Err, Some, Timestamp, _mk_connection_id, _mk_identity, _mk_timestamp

from . import _abi
from . import log as _log
from . import schema as _schema
from .context import AnonymousViewContext, HandlerContext, ProcedureContext, ReducerContext, ViewContext
from .errors import SenderError

_U32 = struct.Struct('<I').pack
_VERSIONS = ('HTTP/0.9', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3')
_Z16 = bytes(16)
_new = object.__new__
_last_sender = _last_conn = (None, None)  # call_reducer's caches: (bytes, Identity / ConnectionId or None)

_DEF = b''
_REDUCERS = _PROCEDURES = _VIEWS = _ANON_VIEWS = _HTTP_HANDLERS = ()
_DB = _VIEW_DB = None


def load(compiled):
    """Serve `compiled` (a `schema.Compiled`); done on import for the current module."""
    global _DEF, _REDUCERS, _PROCEDURES, _VIEWS, _ANON_VIEWS, _HTTP_HANDLERS, _DB, _VIEW_DB
    _DEF = compiled.module_def
    _REDUCERS = tuple(compiled.reducers)
    _PROCEDURES = tuple(compiled.procedures)
    _VIEWS = tuple(compiled.views)
    _ANON_VIEWS = tuple(compiled.anonymous_views)
    _HTTP_HANDLERS = tuple(compiled.http_handlers)
    _DB = compiled.db
    q = sys.modules.get(__package__ + '.query')  # loaded when a view is declared -> Query[...]
    if q is not None:
        q.set_tables(compiled.query_tables)
    if _HTTP_HANDLERS:  # bundled now (build time): call_http_handler uses it at run time
        __import__(__package__ + '.http_handlers')
    _VIEW_DB = compiled.view_db


_summary = _log.exception_summary


def describe_module():
    return _DEF


def _failed(f, e):
    _log.log_exception(e, f'{f.kind} {f.name} failed')
    return _summary(e)


def _bad_args(f, e):
    return f'invalid arguments for {f.kind} {f.name}: {_summary(e)}'


def call_reducer(id, sender, conn, ts, args):
    try:
        f = _REDUCERS[id]
    except IndexError:
        return f'no reducer with id {id}'
    # ReducerContext(...) without its __init__ call, and the immutable sender Identity and ConnectionId reused
    # while the same caller keeps calling: building them in Python took ~1.9 µs of a no-op call's ~5 µs inside
    # wasm.  Each cache is one (bytes, object) tuple, replaced whole, so threads (the native runner) cannot mix
    # one caller's bytes with another's object.
    global _last_sender, _last_conn
    ctx = _new(ReducerContext)
    last = _last_sender
    if sender != last[0]:
        last = _last_sender = (sender, _mk_identity(sender))
    ctx.sender = last[1]
    last = _last_conn
    if conn != last[0]:
        last = _last_conn = (conn, None if conn == _Z16 else _mk_connection_id(conn))
    ctx.connection_id = last[1]
    ctx.timestamp = ts if ts.__class__ is Timestamp else _mk_timestamp(ts)
    ctx.db = _DB
    ctx._rng = None
    ctx._uuid_counter = 0
    dec = f.decode_args
    if dec is None:
        try:
            r = f.fn(ctx)
        except SenderError as e:
            return str(e)
        except Exception as e:
            return _failed(f, e)
        return None if r is None or r.__class__ is not Err else _returned_err(f, r)
    try:
        a = dec(args)
    except Exception as e:
        return _bad_args(f, e)
    try:
        r = f.fn(ctx, *a)
    except SenderError as e:
        return str(e)
    except Exception as e:
        return _failed(f, e)
    return None if r is None or r.__class__ is not Err else _returned_err(f, r)


def _returned_err(f, r):
    """`return Err("msg")` (a Rust reducer's way to fail) would otherwise commit silently: fail, saying how."""
    return f'reducer {f.name} returned {r!r} (rolled back): to fail a reducer, raise SenderError({r.value!r})'


def call_procedure(id, sender, conn, ts, args):
    """The BSATN result, or a str after the reason was logged at ERROR (the C door then traps)."""
    try:
        f = _PROCEDURES[id]
    except IndexError:
        return _procedure_failed(f'no procedure with id {id}')
    ctx = ProcedureContext(_mk_identity(sender), None if conn == _Z16 else _mk_connection_id(conn),
                           ts if ts.__class__ is Timestamp else _mk_timestamp(ts), _DB)
    dec = f.decode_args
    try:
        a = dec(args) if dec is not None else ()
    except Exception as e:
        return _procedure_failed(_bad_args(f, e))
    try:
        r = f.fn(ctx, *a)
    except SenderError as e:
        return _procedure_failed(f'procedure {f.name} failed: {e}')
    except Exception as e:
        return _failed(f, e)  # logged with its traceback
    try:
        return f.encode_result(r)
    except Exception as e:
        return _procedure_failed(f'procedure {f.name} returned {r!r}, which does not fit its return type: '
                                 f'{_summary(e)}')


def _procedure_failed(message):
    _abi.console_log(_log.ERROR, 'module_sdk', None, None, message)
    return message


def _view_rows(f, r):
    if f.result_kind == 'query':  # ViewResultHeader::RawSql(sql)
        if not sys.modules[__package__ + '.query'].is_query(r):
            raise TypeError('a Query[...] view must return a query (ctx.from_.<table>...)')
        sql = r.sql().encode('utf-8')
        return 2, b'\x01' + _U32(len(sql)) + sql
    enc = f.encode_result
    if f.result_kind == 'option':
        if r is None:
            return 2, b'\x00\x00\x00\x00\x00'
        if r.__class__ is Some:
            r = r.value
        return 2, b'\x00\x01\x00\x00\x00' + enc(r)
    parts = [enc(x) for x in r]
    return 2, b'\x00' + _U32(len(parts)) + b''.join(parts)


def _run_view(f, ctx):
    try:
        r = f.fn(ctx)
    except SenderError as e:
        return str(e)
    except Exception as e:
        return _failed(f, e)
    try:
        return _view_rows(f, r)
    except Exception as e:
        return f'view {f.name} returned {r!r}, which does not fit its return type: {_summary(e)}'


def call_view(id, sender, args):
    try:
        f = _VIEWS[id]
    except IndexError:
        return f'no view with id {id}'
    return _run_view(f, ViewContext(_mk_identity(sender), _VIEW_DB))


def call_view_anon(id, args):
    try:
        f = _ANON_VIEWS[id]
    except IndexError:
        return f'no anonymous view with id {id}'
    return _run_view(f, AnonymousViewContext(_VIEW_DB))


def _http_error(status, text):
    enc = sys.modules[__package__ + '.http_handlers'].encode_response
    return enc(status, [('content-type', b'text/plain; charset=utf-8')]), text.encode('utf-8')


def call_http_handler(id, ts, request, body):
    """An @http_handler: (HttpResponse BSATN, body).  A failing handler answers 500 with the error (logged)."""
    try:
        f = _HTTP_HANDLERS[id]
    except IndexError:
        return _http_error(404, f'no http handler with id {id}')
    _http = sys.modules[__package__ + '.http_handlers']
    try:
        method, headers, uri, version = _http.decode_request(request)
    except Exception as e:
        return _http_error(400, f'invalid request: {_summary(e)}')
    ver = _VERSIONS[version] if version < len(_VERSIONS) else 'HTTP/1.1'
    req = _http.Request(method, uri, headers, body, ver)
    try:
        r = f.fn(HandlerContext(_mk_timestamp(ts), _DB), req)
        if not isinstance(r, _http.Response):
            raise TypeError(f'http handler {f.name} returned {r!r}, not a Response')
    except Exception as e:
        return _http_error(500, _failed(f, e))
    return _http.encode_response(r.status, r.headers), r.body


load(_schema.current().finalize())
