"""The only Python file that talks to the raw host door `_spacetime` (module_sdk/_spacetime.pyi).

Every function here is a thin wrapper that turns `_spacetime.HostError(errno)` into the typed exception of
`module_sdk.errors` (e.g. `UniqueAlreadyExists`).  Outside a built module (tests, tooling on the build
host) `_spacetime` does not exist: the wrappers then raise `RuntimeError`, except `console_log`, which
prints to stderr.  Tests may `install()` a fake door.
"""

import sys

from .errors import SpacetimeError, from_errno

try:
    import _spacetime as _door
except ImportError:  # not inside a module
    _door = None

IN_MODULE = _door is not None


class _NoHostError(Exception):
    pass


class _Absent:
    """Stands in for `_spacetime` on a normal Python: every host call says where it can run."""

    HostError = _NoHostError

    def __getattr__(self, name):
        def unavailable(*args):
            raise RuntimeError(f'{name}() needs the SpacetimeDB host: it only works inside a built module '
                               '(spacetime-py build), not on a plain Python')
        return unavailable

    @staticmethod
    def console_log(level, target, filename, line, message):
        names = {0: 'ERROR', 1: 'WARN', 2: 'INFO', 3: 'DEBUG', 4: 'TRACE', 101: 'PANIC'}
        where = f'{filename}:{line}' if filename else (target or '')
        sys.stderr.write('[{}] {}: {}\n'.format(names.get(level, 'DEBUG'), where, message))


_HostError = _NoHostError
_st = None
# bound by install():
_table_id_from_name = _index_id_from_name = _row_count = _table_scan = _scan_range = _scan_point = None
_delete_range = _delete_point = _delete_all_by_eq = _read_all = _close_iter = _insert = _update = _clear = None
_timer_start = _timer_end = _identity = _schedule_immediate = _get_jwt = None
_sleep_until = _start_mut_tx = _commit_mut_tx = _abort_mut_tx = _http_request = None
console_log = now_micros = None


def install(door):
    """Bind the wrappers to `door` (the real `_spacetime`, a test fake, or None for 'no host')."""
    global _st, _HostError
    _st = door if door is not None else _Absent()
    _HostError = _st.HostError
    g = globals()
    for local, remote in _NAMES:
        g[local] = getattr(_st, remote, None)  # a built module has no datastore_clear (see has_clear)


_NAMES = (
    ('_table_id_from_name', 'table_id_from_name'),
    ('_index_id_from_name', 'index_id_from_name'),
    ('_row_count', 'datastore_table_row_count'),
    ('_table_scan', 'datastore_table_scan_bsatn'),
    ('_scan_range', 'datastore_index_scan_range_bsatn'),
    ('_scan_point', 'datastore_index_scan_point_bsatn'),
    ('_delete_range', 'datastore_delete_by_index_scan_range_bsatn'),
    ('_delete_point', 'datastore_delete_by_index_scan_point_bsatn'),
    ('_delete_all_by_eq', 'datastore_delete_all_by_eq_bsatn'),
    ('_read_all', 'row_iter_read_all'),
    ('_close_iter', 'row_iter_bsatn_close'),
    ('_insert', 'datastore_insert_bsatn'),
    ('_update', 'datastore_update_bsatn'),
    ('_clear', 'datastore_clear'),
    ('console_log', 'console_log'),
    ('_timer_start', 'console_timer_start'),
    ('_timer_end', 'console_timer_end'),
    ('_identity', 'identity'),
    ('_schedule_immediate', 'volatile_nonatomic_schedule_immediate'),
    ('_get_jwt', 'get_jwt'),
    ('_sleep_until', 'procedure_sleep_until'),
    ('_start_mut_tx', 'procedure_start_mut_tx'),
    ('_commit_mut_tx', 'procedure_commit_mut_tx'),
    ('_abort_mut_tx', 'procedure_abort_mut_tx'),
    ('_http_request', 'procedure_http_request'),
    ('now_micros', 'now_micros'),
)


def _error(e):
    """HostError(errno[, payload]) -> the typed exception."""
    args = e.args
    code = args[0] if args and isinstance(args[0], int) else 1
    message = None
    if code == 21 and len(args) > 1 and isinstance(args[1], (bytes, bytearray)):
        raw = bytes(args[1])  # BSATN String: u32 length + UTF-8
        message = raw[4:4 + int.from_bytes(raw[:4], 'little')].decode('utf-8', 'replace') if len(raw) >= 4 else ''
    return from_errno(code, message)


# ---- names -> ids ----

def table_id(name):
    try:
        return _table_id_from_name(name)
    except _HostError as e:
        raise _error(e) from None


def index_id(name):
    try:
        return _index_id_from_name(name)
    except _HostError as e:
        raise _error(e) from None


# ---- reads: each returns the concatenated BSATN rows (the iterator is drained and freed) ----

def row_count(table_id):
    try:
        return _row_count(table_id)
    except _HostError as e:
        raise _error(e) from None


def table_rows(table_id):
    try:
        return _read_all(_table_scan(table_id))
    except _HostError as e:
        raise _error(e) from None


def range_rows(index_id, prefix, prefix_elems, rstart, rend):
    try:
        return _read_all(_scan_range(index_id, prefix, prefix_elems, rstart, rend))
    except _HostError as e:
        raise _error(e) from None


def point_rows(index_id, point):
    try:
        return _read_all(_scan_point(index_id, point))
    except _HostError as e:
        raise _error(e) from None


# ---- writes ----

def insert(table_id, row):
    """Returns the BSATN of the generated auto-inc values (often b'')."""
    try:
        return _insert(table_id, row)
    except _HostError as e:
        raise _error(e) from None


def update(table_id, index_id, row):
    try:
        return _update(table_id, index_id, row)
    except _HostError as e:
        raise _error(e) from None


def delete_all_by_eq(table_id, rows_array):
    try:
        return _delete_all_by_eq(table_id, rows_array)
    except _HostError as e:
        raise _error(e) from None


def delete_range(index_id, prefix, prefix_elems, rstart, rend):
    try:
        return _delete_range(index_id, prefix, prefix_elems, rstart, rend)
    except _HostError as e:
        raise _error(e) from None


def delete_point(index_id, point):
    try:
        return _delete_point(index_id, point)
    except _HostError as e:
        raise _error(e) from None


def has_clear():
    """Whether the host door offers datastore_clear (spacetime_10.5).  Built modules never do: the build
    drops that import so they load on servers before 2.2; `Table.clear` then deletes with 10.0 calls."""
    return _clear is not None


def clear(table_id):
    try:
        return _clear(table_id)
    except _HostError as e:
        raise _error(e) from None


# ---- misc ----

def timer_start(name):
    return _timer_start(name)


def timer_end(timer_id):
    try:
        _timer_end(timer_id)
    except _HostError as e:
        raise _error(e) from None


def identity():
    """The database identity: 32 bytes little-endian."""
    return _identity()


def schedule_immediate(reducer_name, args):
    _schedule_immediate(reducer_name, args)


def get_jwt(connection_id):
    try:
        return _get_jwt(connection_id)
    except _HostError as e:
        raise _error(e) from None


# ---- procedures ----

def sleep_until(micros):
    return _sleep_until(micros)


def start_mut_tx():
    try:
        return _start_mut_tx()
    except _HostError as e:
        raise _error(e) from None


def commit_mut_tx():
    try:
        _commit_mut_tx()
    except _HostError as e:
        raise _error(e) from None


def abort_mut_tx():
    try:
        _abort_mut_tx()
    except _HostError as e:
        raise _error(e) from None


def http_request(request, body):
    try:
        return _http_request(request, body)
    except _HostError as e:
        raise _error(e) from None


install(_door)

__all__ = ['IN_MODULE', 'SpacetimeError', 'install']
