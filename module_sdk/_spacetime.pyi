"""The raw host door: a builtin module of the wasm runtime (module_sdk/runtime/spacetime.c).

It mirrors the spacetime_10.x imports one-to-one and nothing else.  A non-zero errno raises
`HostError(errno)` (errno 21 from procedure_http_request raises `HostError(21, error_bsatn)`).
Only module_sdk's typed layer calls it; it exists only inside a built module.
"""

class HostError(Exception):
    """args[0] is the errno of shared/spec/module-abi.md §3."""

# spacetime_10.0
def table_id_from_name(name: str) -> int: ...
def index_id_from_name(name: str) -> int: ...
def datastore_table_row_count(table_id: int) -> int: ...
def datastore_table_scan_bsatn(table_id: int) -> int:
    """Returns a row iterator handle."""
def datastore_index_scan_range_bsatn(
    index_id: int, prefix: bytes, prefix_elems: int, rstart: bytes, rend: bytes
) -> int:
    """Returns a row iterator handle. rstart/rend are BSATN Bound values (0 incl, 1 excl, 2 unbounded)."""
def datastore_delete_by_index_scan_range_bsatn(
    index_id: int, prefix: bytes, prefix_elems: int, rstart: bytes, rend: bytes
) -> int:
    """Returns the number of rows deleted."""
def datastore_delete_all_by_eq_bsatn(table_id: int, rows: bytes) -> int:
    """rows = BSATN array of rows (u32 count + rows). Returns the number deleted."""
def row_iter_read_all(iterator: int) -> bytes:
    """Drains the iterator (row_iter_bsatn_advance loop): concatenated BSATN rows."""
def row_iter_bsatn_close(iterator: int) -> None: ...
def datastore_insert_bsatn(table_id: int, row: bytes) -> bytes:
    """Returns the BSATN of the generated (auto_inc) column values, in column order (often b'')."""
def datastore_update_bsatn(table_id: int, index_id: int, row: bytes) -> bytes:
    """Same write-back as insert."""
def bytes_sink_write(sink: int, data: bytes) -> None: ...
def bytes_source_read_all(source: int) -> bytes: ...
def console_log(level: int, target: str | None, filename: str | None, line: int | None, message: str) -> None:
    """level: 0 error, 1 warn, 2 info, 3 debug, 4 trace, 101 panic."""
def console_timer_start(name: str) -> int: ...
def console_timer_end(timer_id: int) -> None: ...
def identity() -> bytes:
    """The database's identity, 32 bytes little-endian."""
def volatile_nonatomic_schedule_immediate(reducer_name: str, args: bytes) -> None: ...

# spacetime_10.1 .. 10.5
def bytes_source_remaining_length(source: int) -> int: ...
def get_jwt(connection_id: bytes) -> bytes | None:
    """connection_id: 16 bytes LE. The JWT payload stored for it, or None."""
def procedure_sleep_until(wake_at_micros: int) -> int: ...
def procedure_start_mut_tx() -> int:
    """Returns the transaction timestamp (µs since epoch)."""
def procedure_commit_mut_tx() -> None: ...
def procedure_abort_mut_tx() -> None: ...
def procedure_http_request(request_bsatn: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Returns (HttpResponse BSATN, body)."""
def datastore_index_scan_point_bsatn(index_id: int, point: bytes) -> int:
    """Returns a row iterator handle."""
def datastore_delete_by_index_scan_point_bsatn(index_id: int, point: bytes) -> int: ...
def datastore_clear(table_id: int) -> int:
    """Absent in built modules: the boot script deletes it and the build retargets the 10.5 import, so
    modules load on servers before 2.2 (Table.clear uses 10.0 calls)."""

# not an import: the timestamp (µs) of the call being served, which WASI clocks also report
def now_micros() -> int: ...

# ---- What the runtime calls: module_sdk/_dispatch.py must define these six names ----
# describe_module() -> bytes                                       BSATN RawModuleDef
# call_reducer(id, sender: bytes32, conn: bytes16, ts, args) -> None | str   (str = error message; ts: the
#                                                  runtime passes a Timestamp, other callers may pass int µs)
# call_procedure(id, sender, conn, ts, args) -> bytes | str     (bytes = BSATN return value; str = the
#                                                  reason, already logged: the runtime then traps, as upstream)
# call_view(id, sender: bytes32, args) -> (code, bytes) | str      (code 2: ViewResultHeader + rows)
# call_view_anon(id, args) -> (code, bytes) | str
# call_http_handler(id, ts_us, request: bytes, body: bytes) -> (HttpResponse BSATN, body bytes)
# An exception escaping any of them is reported as "Type: message" and the call fails (never a trap), except
# in call_procedure, where it is logged and the call traps.
