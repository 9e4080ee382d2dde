"""Every byte and count limit that keeps a caller or a module from making the server hold unbounded memory.

One process-wide `LIMITS` object.  Each field can be set with the environment variable
`SPACETIME_PY_<FIELD NAME IN UPPER CASE>` (read when this module is imported) or with
`spacetime-py start --limit name=value` (applied before the server starts).  Sizes accept a suffix:
`64k`, `16m`, `1g` (powers of 1024).  docs/limits.md lists them with their defaults.

Code reads `LIMITS.<name>` when it needs the value, so a change made before a server or database starts
applies to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
ENV_PREFIX = "SPACETIME_PY_"


@dataclass
class Limits:
    # module <-> host (harness.host)
    wasm_memory_bytes: int = 512 * MiB  # linear memory of one module instance (memory.grow fails beyond it)
    call_timeout_ms: int = 10_000  # wall clock of one call into a module (describe, reducer, ...): then it traps
    sink_bytes: int = 64 * MiB  # one ABI bytes sink: describe output, reducer error, procedure/view results
    log_line_bytes: int = 64 * KiB  # one console_log message (longer ones are cut, marked as cut)
    error_message_bytes: int = 64 * KiB  # a reducer/procedure error message as reported to callers
    module_def_bytes: int = 8 * MiB  # the module definition `__describe_module__` writes
    module_def_items: int = 16_384  # entries of one kind in it (types, tables, reducers, ...), and its sections
    open_iterators: int = 4096  # row iterators a call may keep open at once
    open_timers: int = 4096  # console timers a call may keep open at once
    immediate_queue_bytes: int = 16 * MiB  # schedule_immediate calls (name + args) waiting to run, per database
    procedure_instances: int = 4  # procedures/HTTP handlers of one database running at once (one instance each)
    compiled_cache_bytes: int = 1 * GiB  # compiled modules kept on disk (~/.cache/spacetime-py/modules), LRU
    # server (harness.server)
    body_bytes: int = 2 * MiB  # request body of every route except publish, whatever its transfer encoding
    publish_bytes: int = 128 * MiB  # request body of publish / reset (a module)
    log_file_bytes: int = 64 * MiB  # a log file on disk; past it, it becomes <name>.1 (replacing the old one)
    log_memory_bytes: int = 16 * MiB  # log lines of one database kept in memory for GET /logs
    log_follow_bytes: int = 16 * MiB  # log lines queued for one `logs?follow=true` reader before it is dropped
    ws_message_bytes: int = 32 * MiB  # one inbound WebSocket message
    ws_outbox_bytes: int = 16 * MiB  # outbound bytes queued for one WebSocket client before it is dropped
    ws_outbox_messages: int = 16 * 1024  # outbound messages queued for one client (upstream's channel size)
    ws_inflight_messages: int = 1024  # client messages queued to the database and not yet run, per connection
    ws_connections: int = 8192  # open WebSocket connections to the server (each holds a socket and its queues)
    ws_connections_per_address: int = 1024  # of them from one client IP address
    ws_inflight_bytes: int = 8 * MiB  # their argument/query bytes; past either the server stops reading that socket
    durable_wait_ms: int = 60_000  # an HTTP answer waits this long for its commit-log fsync, then 500
    subscription_queries: int = 4096  # queries one WebSocket client holds subscribed, over all its query sets
    query_text_bytes: int = 64 * KiB  # the text of one subscription or one-off query (UTF-8)
    sql_result_bytes: int = 64 * MiB  # JSON rows of one SQL response
    sql_result_rows: int = 1_000_000  # rows one SQL statement may produce before it is stopped


LIMITS = Limits()


def parse_size(text: str) -> int:
    """`123`, `64k`, `16M`, `1g` -> bytes (or a plain count)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = {"k": KiB, "m": MiB, "g": GiB}.get(t[-1:], 1)
    if mult != 1:
        t = t[:-1]
    value = int(t.replace("_", "")) * mult
    if value <= 0:
        raise ValueError(f"a limit must be positive, got {text!r}")
    return value


def set_limit(name: str, value: str | int) -> None:
    """Set one limit by field name (ValueError for an unknown name or a bad value)."""
    names = {f.name for f in fields(Limits)}
    key = name.strip().lower().replace("-", "_")
    if key not in names:
        raise ValueError(f"unknown limit {name!r}; known: {', '.join(sorted(names))}")
    if not isinstance(value, int):
        try:
            value = parse_size(value)
        except ValueError:
            raise ValueError(f"invalid value {value!r} for limit {key}: expected a positive number, "
                             "optionally with k, m or g") from None
    setattr(LIMITS, key, value)


def load_env(environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    for f in fields(Limits):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw:
            set_limit(f.name, raw)


load_env()

__all__ = ["LIMITS", "Limits", "load_env", "parse_size", "set_limit"]
