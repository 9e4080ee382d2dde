"""The SpacetimeDB module ABI as data: every host import of spacetime_10.0 .. 10.5 and every export the
host calls, with exact wasm signatures (shared/spec/module-abi.md §1.3, §4).

Used by the build (to validate what it emits) and by the harness host (to link and check modules), so the
two can never disagree.  Plain tuples: importable on the build host without touching the wasm runtime.
"""

I32, I64 = "i32", "i64"
ABI_MAJOR = 10
ABI_MINOR_MAX = 5

# (module, name) -> (params, results)
IMPORTS: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("spacetime_10.0", "table_id_from_name"): ((I32, I32, I32), (I32,)),
    ("spacetime_10.0", "index_id_from_name"): ((I32, I32, I32), (I32,)),
    ("spacetime_10.0", "datastore_table_row_count"): ((I32, I32), (I32,)),
    ("spacetime_10.0", "datastore_table_scan_bsatn"): ((I32, I32), (I32,)),
    ("spacetime_10.0", "datastore_index_scan_range_bsatn"): ((I32,) * 9, (I32,)),
    ("spacetime_10.0", "datastore_btree_scan_bsatn"): ((I32,) * 9, (I32,)),
    ("spacetime_10.0", "datastore_delete_by_index_scan_range_bsatn"): ((I32,) * 9, (I32,)),
    ("spacetime_10.0", "datastore_delete_by_btree_scan_bsatn"): ((I32,) * 9, (I32,)),
    ("spacetime_10.0", "datastore_delete_all_by_eq_bsatn"): ((I32, I32, I32, I32), (I32,)),
    ("spacetime_10.0", "row_iter_bsatn_advance"): ((I32, I32, I32), (I32,)),
    ("spacetime_10.0", "row_iter_bsatn_close"): ((I32,), (I32,)),
    ("spacetime_10.0", "datastore_insert_bsatn"): ((I32, I32, I32), (I32,)),
    ("spacetime_10.0", "datastore_update_bsatn"): ((I32, I32, I32, I32), (I32,)),
    ("spacetime_10.0", "bytes_sink_write"): ((I32, I32, I32), (I32,)),
    ("spacetime_10.0", "bytes_source_read"): ((I32, I32, I32), (I32,)),
    ("spacetime_10.0", "console_log"): ((I32,) * 8, ()),
    ("spacetime_10.0", "console_timer_start"): ((I32, I32), (I32,)),
    ("spacetime_10.0", "console_timer_end"): ((I32,), (I32,)),
    ("spacetime_10.0", "identity"): ((I32,), ()),
    ("spacetime_10.0", "volatile_nonatomic_schedule_immediate"): ((I32, I32, I32, I32), ()),
    ("spacetime_10.1", "bytes_source_remaining_length"): ((I32, I32), (I32,)),
    ("spacetime_10.2", "get_jwt"): ((I32, I32), (I32,)),
    ("spacetime_10.3", "procedure_sleep_until"): ((I64,), (I64,)),
    ("spacetime_10.3", "procedure_start_mut_tx"): ((I32,), (I32,)),
    ("spacetime_10.3", "procedure_commit_mut_tx"): ((), (I32,)),
    ("spacetime_10.3", "procedure_abort_mut_tx"): ((), (I32,)),
    ("spacetime_10.3", "procedure_http_request"): ((I32,) * 5, (I32,)),
    ("spacetime_10.4", "datastore_index_scan_point_bsatn"): ((I32, I32, I32, I32), (I32,)),
    ("spacetime_10.4", "datastore_delete_by_index_scan_point_bsatn"): ((I32, I32, I32, I32), (I32,)),
    ("spacetime_10.5", "datastore_clear"): ((I32, I32), (I32,)),
}

_CALL = ((I32, I64, I64, I64, I64, I64, I64, I64, I32, I32), (I32,))
REQUIRED_EXPORTS = {
    "__describe_module__": ((I32,), ()),
    "__call_reducer__": _CALL,
}
OPTIONAL_EXPORTS = {
    "_initialize": ((), ()),
    "__setup__": ((I32,), (I32,)),
    "__call_procedure__": _CALL,
    "__call_view__": ((I32, I64, I64, I64, I64, I32, I32), (I32,)),
    "__call_view_anon__": ((I32, I32, I32), (I32,)),
    "__call_http_handler__": ((I32, I64, I32, I32, I32, I32), (I32,)),
}
PREINIT_PREFIX = "__preinit__"
PREINIT_SIGNATURE = ((), ())
