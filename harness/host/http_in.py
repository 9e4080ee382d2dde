"""Inbound HTTP: calling a module's HTTP handlers (`__call_http_handler__`, module-abi.md §5.5).

    out = db.call_http_handler("GET", "/hello", uri="http://host/v1/database/x/route/hello", headers=[...])
    out.status, out.headers, out.body          # 404 "Database has not registered a handler for this route"

Routing is upstream's: the path after `/route` (`""`, `"/"`, `"/a/b"`) must equal a route's path exactly and
the method must match (or the route takes any method).  The handler runs like a procedure: on the procedure
instance, without a transaction (it may open ones with procedure_start_mut_tx), never on the event loop's
thread when called by the server.  A trap or an invalid response is a 500 with the error text; the module
can answer any status itself.  The request and response use the one HttpRequest/HttpResponse codec in
module_sdk.http.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from module_sdk.http import decode_response, encode_request
from spacetime_core.module_def import HTTP_METHODS

from .abi import LogRecord
from .wasm import Trap

NO_SUCH_ROUTE = "Database has not registered a handler for this route"
EXPORT = "__call_http_handler__"
VERSIONS = {"HTTP/0.9": 0, "HTTP/1.0": 1, "HTTP/1.1": 2, "HTTP/2": 3, "HTTP/3": 4}


@dataclass
class HttpHandlerOutcome:
    """The response to send: `status`, `headers` [(name, bytes)], `body`; `handler` is None when no route
    matched (404)."""

    status: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""
    handler: str | None = None
    error: str | None = None


def _plain(status: int, text: str, handler: str | None = None) -> HttpHandlerOutcome:
    return HttpHandlerOutcome(status, [("content-type", b"text/plain; charset=utf-8")], text.encode(), handler,
                              text if status >= 500 else None)


def call_http_handler(db, method: str, path: str, *, uri: str = "", headers=(), body: bytes = b"",
                      version: str = "HTTP/1.1") -> HttpHandlerOutcome:
    """Route `method` + `path` (the part after `/route`) and run the handler on the procedure instance."""
    if method.upper() in HTTP_METHODS:
        method = method.upper()  # anything else is HttpMethod::Extension, spelled as sent
    route = db.mdef.match_http_route(method, path)
    if route is None:
        return _plain(404, NO_SUCH_ROUTE)
    name = db.mdef.http_handlers[route.handler]
    if EXPORT not in [e.name for e in db.module.exports]:
        return _plain(500, f"Module defines http handler {name} but does not export `{EXPORT}`", name)
    req = encode_request(method, uri or path, [(n, v) for n, v in headers], None, VERSIONS.get(version, 2))
    ts = int(time.time() * 1e6)
    with db._procs.lease() as lease:
        inst, env = lease.inst, lease.env
        export = inst.export(EXPORT)
        host = env.procedure_host
        host.name = name
        env.begin_call(name, None, procedure=True)
        resp_sink = env.new_sink()
        body_sink = env.new_sink()
        req_src = env.new_source(req)
        body_src = env.new_source(bytes(body)) if body else 0
        try:
            rc = export(route.handler, ts, req_src, body_src, resp_sink, body_sink)
            trap = None
        except Trap as e:
            rc, trap = None, e
        left_open, env.tx = env.tx, None
        if left_open is not None:
            host.abort_tx(left_open)
        meta = bytes(env.sinks.get(resp_sink, b""))
        data = bytes(env.sinks.get(body_sink, b""))
        env.end_call()
        if trap is not None:
            lease.discard()
            db._emit_log(LogRecord(0, None, None, None, f"http handler {name} trapped ({trap.kind}): {trap}",
                                   int(time.time() * 1e6), name))
            return _plain(500, f"the http handler {name} trapped: {trap}", name)
    with db._lock:
        db._drain_immediate()
    if rc != 0:
        return _plain(500, f"{EXPORT} returned unexpected code {rc}. HTTP handlers should return code 0 or trap.", name)
    try:
        status, hdrs, _version = decode_response(meta)
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        return _plain(500, f"the http handler {name} wrote an invalid HttpResponse: {e}", name)
    return HttpHandlerOutcome(status, hdrs, data, name)
