"""The five entry points the C runtime calls (contract at the end of module_sdk/_spacetime.pyi).

Imported by the build right after the user's module, so `finalize()` (validation, the module def bytes, all
codecs) runs at build time and lands in the snapshot; a schema error is a build error.

Errors: `SenderError("msg")` -> "msg" to the caller.  Any other exception -> "Type: message" to the caller and
a log record with the traceback.  Undecodable arguments -> "invalid arguments for reducer x: ...".
"""

import struct

from spacetime_core.sats.values import Some, _mk_connection_id, _mk_identity, _mk_timestamp

from . import log as _log
from . import schema as _schema
from .context import AnonymousViewContext, ProcedureContext, ReducerContext, ViewContext
from .errors import SenderError

_U32 = struct.Struct('<I').pack
_Z16 = bytes(16)

_DEF = b''
_REDUCERS = _PROCEDURES = _VIEWS = _ANON_VIEWS = ()
_DB = _VIEW_DB = None


def load(compiled):
    """Serve `compiled` (a `schema.Compiled`); done on import for the current module."""
    global _DEF, _REDUCERS, _PROCEDURES, _VIEWS, _ANON_VIEWS, _DB, _VIEW_DB
    _DEF = compiled.module_def
    _REDUCERS = tuple(compiled.reducers)
    _PROCEDURES = tuple(compiled.procedures)
    _VIEWS = tuple(compiled.views)
    _ANON_VIEWS = tuple(compiled.anonymous_views)
    _DB = compiled.db
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
    ctx = ReducerContext(_mk_identity(sender), None if conn == _Z16 else _mk_connection_id(conn),
                         _mk_timestamp(ts), _DB)
    dec = f.decode_args
    if dec is None:
        try:
            f.fn(ctx)
        except SenderError as e:
            return str(e)
        except Exception as e:
            return _failed(f, e)
        return None
    try:
        a = dec(args)
    except Exception as e:
        return _bad_args(f, e)
    try:
        f.fn(ctx, *a)
    except SenderError as e:
        return str(e)
    except Exception as e:
        return _failed(f, e)
    return None


def call_procedure(id, sender, conn, ts, args):
    try:
        f = _PROCEDURES[id]
    except IndexError:
        return f'no procedure with id {id}'
    ctx = ProcedureContext(_mk_identity(sender), None if conn == _Z16 else _mk_connection_id(conn),
                           _mk_timestamp(ts), _DB)
    dec = f.decode_args
    try:
        a = dec(args) if dec is not None else ()
    except Exception as e:
        return _bad_args(f, e)
    try:
        r = f.fn(ctx, *a)
    except SenderError as e:
        return str(e)
    except Exception as e:
        return _failed(f, e)
    try:
        return f.encode_result(r)
    except Exception as e:
        return f'procedure {f.name} returned {r!r}, which does not fit its return type: {_summary(e)}'


def _view_rows(f, r):
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


load(_schema.current().finalize())
