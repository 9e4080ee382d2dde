"""The HTTP routes of the server (http-api.md sections 1-3), as aiohttp handlers.

Conventions kept from upstream: JSON bodies carry exactly `Content-Type: application/json` (no charset; the
`spacetime` CLI compares the string), errors are plain text, every response under `/v1/database` carries
`spacetime-identity` / `spacetime-identity-token` (an anonymous caller gets a freshly minted identity), and
CORS allows any origin on `/v1`.

Database work (wasm, datastore, commit log) runs in worker threads so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from http import HTTPStatus
from typing import Any

import sha3  # safe-pysha3: Keccak-256 (not hashlib's SHA3-256, whose padding differs)
from aiohttp import web

from harness.limits import LIMITS
from spacetime_core.sats import ConnectionId, Identity, decode, encode
from spacetime_core.sats.satsjson import (
    SatsJsonError,
    product_type_to_json,
    type_to_json,
    value_from_json,
    value_to_json,
)

from .auth import AuthError, Claims, TokenAuthority, payload_text, token_from_header
from .executor import executor_for
from .json_args_errors import describe as describe_bad_args
from .registry import DatabaseEntry, Registry, RegistryError, parse_identity
from .schema import schema_json

log = logging.getLogger("spacetime-py.server")

REGISTRY_KEY = web.AppKey("spacetime_registry", Registry)
AUTHORITY_KEY = web.AppKey("spacetime_authority", TokenAuthority)
STOPPING_KEY = web.AppKey("spacetime_stopping", asyncio.Event)
# request[AUTH]: the caller's Claims on /v1/database routes (minted if anonymous)
AUTH = web.RequestKey("spacetime_auth", Claims) if hasattr(web, "RequestKey") else "spacetime_auth"

READ_CHUNK = 64 * 1024
VERSION = "2.8.3"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "*",
    "Access-Control-Allow-Headers": "Authorization, Accept, Content-Type",
}
LIFECYCLE_NAMES = {"init": "Init", "client_connected": "OnConnect", "client_disconnected": "OnDisconnect"}


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    resp = web.Response(body=body, status=status, headers=headers)
    resp.content_type = "application/json"  # exactly this: no charset
    return resp


def text_response(text: str, status: int, headers: dict | None = None) -> web.Response:
    # A status without a standard reason phrase (530, a failed reducer) goes out as `530 <none>`, the way the
    # real server's HTTP stack writes it; clients (the real CLI) print that line.
    reason = None if status in _STANDARD_STATUSES else "<none>"
    return web.Response(text=text, status=status, headers=headers, reason=reason)


_STANDARD_STATUSES = frozenset(s.value for s in HTTPStatus)


def _registry(request: web.Request) -> Registry:
    return request.app[REGISTRY_KEY]


def _caller(request: web.Request) -> Claims:
    return request[AUTH]


def _required_auth(request: web.Request) -> Claims:
    """Routes that need a credential and do not mint one."""
    token = token_from_header(request.headers.get("Authorization"), request.query.get("token"))
    if token is None:
        raise AuthError(401, "Authorization required")
    return request.app[AUTHORITY_KEY].validate(token)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    if v.lower() in ("true", "1", "yes", ""):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise web.HTTPBadRequest(text=f"invalid value for `{name}`: {v!r} (expected true or false)")


class BodyTooLarge(Exception):
    def __init__(self, limit: int, name: str):
        super().__init__(f"request body larger than {limit} bytes (limit {name})")


async def read_body(request: web.Request, *, publish: bool = False) -> bytes:
    """The request body, read in bounded chunks whatever its transfer encoding (a chunked body has no
    Content-Length to check up front): more than `body_bytes` (`publish_bytes` for a module) is a 413."""
    limit, name = (LIMITS.publish_bytes, "publish_bytes") if publish else (LIMITS.body_bytes, "body_bytes")
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit, name)
    buf = bytearray()
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        if len(buf) + len(chunk) > limit:
            raise BodyTooLarge(limit, name)
        buf += chunk
    return bytes(buf)


def _lookup(request: web.Request) -> DatabaseEntry:
    return _registry(request).lookup(request.match_info["name_or_identity"])


# ------------------------------------------------------------------------------------ middleware

def _needs_database_auth(request: web.Request) -> bool:
    parts = request.path.rstrip("/").split("/")  # ['', 'v1', 'database', x, sub...]
    if parts[:3] != ["", "v1", "database"]:
        return False
    if len(parts) == 3:
        return request.method == "POST"
    # /route has no auth middleware upstream; /subscribe resolves its credential itself (websocket.py)
    return not (len(parts) >= 5 and parts[4] in ("route", "subscribe"))


def _has_dot_segment(raw_path: str) -> bool:
    """`/v1/database/a/../b` must not quietly become database `b` (the URL parser folds dot segments)."""
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    return any(seg.lower().replace("%2e", ".") in (".", "..") for seg in path.split("/"))


def _module_route(request: web.Request) -> bool:
    """A plain OPTIONS request to a module route goes to the module; a CORS preflight is answered here."""
    parts = request.path.split("/")
    return (len(parts) >= 5 and parts[:3] == ["", "v1", "database"] and parts[4] == "route"
            and "Access-Control-Request-Method" not in request.headers)


@web.middleware
async def middleware(request: web.Request, handler):
    if request.method == "OPTIONS" and request.path.startswith("/v1") and not _module_route(request):
        return web.Response(status=200, headers=CORS_HEADERS)
    if _has_dot_segment(request.raw_path):
        return text_response("invalid path: `.` and `..` segments are not allowed", 400)
    try:
        if _needs_database_auth(request):
            authority = request.app[AUTHORITY_KEY]
            token = token_from_header(request.headers.get("Authorization"), request.query.get("token"))
            request[AUTH] = authority.validate(token) if token is not None else authority.mint()
        return await handler(request)
    except AuthError as e:
        return text_response(e.message, e.status)
    except RegistryError as e:
        if isinstance(e.body, str):
            return text_response(e.body, e.status)
        return json_response(e.body, e.status)
    except BodyTooLarge as e:
        return text_response(str(e), 413)
    except web.HTTPException:
        raise
    except Exception as e:  # a bug, not the caller's fault: log it, answer without a traceback
        log.exception("%s %s failed", request.method, request.path)
        return text_response(f"internal error: {type(e).__name__}: {e}"[:1000], 500)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/v1"):
        for k, v in CORS_HEADERS.items():
            response.headers.setdefault(k, v)
    claims = request.get(AUTH)
    if claims is not None:
        response.headers["spacetime-identity"] = claims.identity.to_hex()
        response.headers["spacetime-identity-token"] = claims.token


# ------------------------------------------------------------------------------------ misc routes

async def ping(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") is not None:
        _required_auth(request)
    return web.Response(status=200)


async def health(request: web.Request) -> web.Response:
    return json_response({"package_name": "spacetime-py", "version": VERSION,
                          "nodes": [{"id": 0, "state": "Running"}], "schedulable": True})


async def energy(request: web.Request) -> web.Response:
    if parse_identity(request.match_info["identity"]) is None:
        return text_response("invalid identity", 400)
    return json_response({"balance": str(2**127 - 1)})


# ------------------------------------------------------------------------------------ identity

async def create_identity(request: web.Request) -> web.Response:
    claims = request.app[AUTHORITY_KEY].mint()
    return json_response({"identity": claims.identity.to_hex(), "token": claims.token})


async def websocket_token(request: web.Request) -> web.Response:
    claims = _required_auth(request)
    return json_response({"token": request.app[AUTHORITY_KEY].websocket_token(claims)})


async def public_key(request: web.Request) -> web.Response:
    resp = web.Response(body=request.app[AUTHORITY_KEY].keys.public_pem)
    resp.content_type = "application/pem-certificate-chain"
    return resp


async def verify_identity(request: web.Request) -> web.Response:
    want = parse_identity(request.match_info["identity"])
    if want is None:
        return text_response("invalid identity", 400)
    claims = _required_auth(request)
    return web.Response(status=204) if claims.identity == want else text_response(
        "the token's identity does not match", 400)


async def identity_databases(request: web.Request) -> web.Response:
    owner = parse_identity(request.match_info["identity"])
    if owner is None:
        return text_response("invalid identity", 400)
    return json_response({"identities": [i.to_hex() for i in _registry(request).databases_of(owner)]})


# ------------------------------------------------------------------------------------ publish, delete

async def publish(request: web.Request) -> web.Response:
    name = request.match_info.get("name_or_identity")
    if request.query.get("parent"):
        if name and _registry(request).get(_registry(request).resolve(name)) is not None:
            return text_response("cannot set a parent for an existing database", 400)
        return text_response("child databases are not supported by this host", 400)
    policy = request.query.get("policy", "Compatible")
    if policy not in ("Compatible", "BreakClients"):
        return text_response(f"invalid policy {policy!r}", 400)
    host_type = request.query.get("host_type", "Wasm")
    if host_type not in ("Wasm", "Js"):
        return text_response(f"invalid host_type {host_type!r}: expected Wasm or Js", 400)
    clear = _flag(request, "clear")
    wasm = await read_body(request, publish=True)
    caller = _caller(request).identity
    result = await asyncio.to_thread(_registry(request).publish, wasm, caller, name, clear=clear,
                                     host_type=host_type)
    return json_response(result.to_json())


async def pre_publish(request: web.Request) -> web.Response:
    entry = _lookup(request)
    if entry.owner != _caller(request).identity:
        return text_response("only the owner may publish to this database", 403)
    # The simplest valid behaviour (http-api.md 3.3): no plan; the CLI goes straight to PUT.
    return text_response("No migration plan: publish directly", 404)


async def delete_database(request: web.Request) -> web.Response:
    try:
        entry = _lookup(request)
    except RegistryError as e:
        if e.body == "No such database.":
            return web.Response(status=200)
        raise
    await asyncio.to_thread(_registry(request).delete, entry, _caller(request).identity)
    return web.Response(status=200)


async def reset_database(request: web.Request) -> web.Response:
    entry = _lookup(request)
    body = await read_body(request, publish=True)
    await asyncio.to_thread(_registry(request).reset, entry, _caller(request).identity, body or None)
    return web.Response(status=200)


async def lock_database(request: web.Request) -> web.Response:
    entry = _lookup(request)
    _registry(request).set_lock(entry, _caller(request).identity, request.path.rstrip("/").endswith("/lock"))
    return web.Response(status=200)


def _hex0x(b: bytes) -> str:
    return "0x" + b.hex()


async def database_info(request: web.Request) -> web.Response:
    entry = _lookup(request)
    program = entry.db.wasm if entry.db is not None else b""
    return json_response({
        "database_identity": {"__identity__": "0x" + entry.hex},
        "owner_identity": {"__identity__": "0x" + entry.owner.to_hex()},
        "host_type": {"Wasm": []},
        # upstream: the Keccak-256 of the program, shown as a u256 (so byte-reversed)
        "initial_program": _hex0x(sha3.keccak_256(program).digest()[::-1]),
    })


# ------------------------------------------------------------------------------------ names

async def get_names(request: web.Request) -> web.Response:
    return json_response({"names": list(_lookup(request).names)})


async def get_identity(request: web.Request) -> web.Response:
    identity = _registry(request).resolve(request.match_info["name_or_identity"])
    return text_response(identity.to_hex(), 200)


async def add_name(request: web.Request) -> web.Response:
    entry = _lookup(request)
    name = (await read_body(request)).decode("utf-8", "replace").strip()
    status, body = _registry(request).add_name(entry, _caller(request).identity, name)
    return json_response(body, status)


async def set_names(request: web.Request) -> web.Response:
    try:
        entry = _lookup(request)
    except RegistryError as e:
        if e.status == 404:
            return json_response("DatabaseNotFound", 404)
        raise
    try:
        names = json.loads(await read_body(request))
        if not isinstance(names, list):
            raise ValueError("expected a JSON array of names")
    except (ValueError, RecursionError) as e:
        return json_response({"OtherError": f"invalid body: {e}"}, 400)
    status, body = _registry(request).set_names(entry, _caller(request).identity, names)
    return json_response(body, status)


# ------------------------------------------------------------------------------------ call

def _timing_headers(duration_us: float, energy: bool = True) -> dict:
    h = {"spacetime-execution-duration-micros": str(int(duration_us))}
    if energy:
        h["spacetime-energy-used"] = "0"
    return h


async def call(request: web.Request) -> web.Response:
    fn = request.match_info["function"]
    ctype = request.headers.get("Content-Type")
    if ctype is None:
        return text_response("Missing `Content-Type: application/json` header", 400)
    if ctype.split(";")[0].strip().lower() != "application/json":
        return text_response("Expected request with `Content-Type: application/json`", 415)
    body = await read_body(request)
    entry = _lookup(request)
    db = entry.database()
    claims = _caller(request)
    caller, jwt_payload = claims.identity, payload_text(claims.token)
    mdef = db.mdef
    rdef = mdef.client_reducer(fn)
    if rdef is not None and not rdef.lifecycle and not rdef.client_callable and caller != entry.owner:
        rdef = None  # upstream: a private reducer is "no such reducer" to anyone but the owner
    if rdef is None:
        proc = next((p for p in mdef.procedures if p.name == fn), None)
        if proc is not None:
            return await _call_procedure(request, db, proc, body, caller, jwt_payload)
        # upstream tries a reducer, then a procedure, and logs both misses
        return await _refuse_in_connection(db, caller, jwt_payload, "No such procedure", 404, fn, [
            _NO_REDUCER_LOG.format(fn), _NO_REDUCER_LOG.replace("reducer", "procedure", 1).format(fn)])
    if rdef.lifecycle:
        return await _refuse_in_connection(
            db, caller, jwt_payload, f"can't directly call special {LIFECYCLE_NAMES[rdef.lifecycle]} lifecycle reducer",
            400, fn, [])
    try:
        args = _decode_args(body, rdef.params, mdef.typespace)
    except (ValueError, SatsJsonError) as e:
        why = describe_bad_args(body.decode("utf-8", "replace"), rdef.params, rdef.name, mdef.typespace)
        return await _refuse_in_connection(db, caller, jwt_payload,
                                           f"invalid arguments for reducer {rdef.name}: {why or e}", 400, rdef.name,
                                           [_BAD_ARGS_LOG.format(rdef.name)])

    def run():
        conn = ConnectionId.from_bytes(os.urandom(16))
        out = db.client_connected(caller, conn, jwt_payload=jwt_payload)
        if not out.committed:
            return "rejected", out
        try:
            return "called", db.call_reducer(rdef.name, args, sender=caller, connection_id=conn)
        finally:
            db.client_disconnected(caller, conn)

    what, out = await _on_database(db, run)
    if what == "rejected":
        return text_response(out.error or "the module refused the connection", 403)
    headers = _timing_headers(out.duration_us)
    if out.committed:
        return text_response("", 200, headers)  # upstream: an empty text/plain body
    return text_response(out.error or "the reducer failed", 530, headers)


_NO_REDUCER_LOG = ('External attempt to call nonexistent reducer "{}" failed. Have you run `spacetime generate` '
                   "recently?")
_BAD_ARGS_LOG = ('External attempt to call reducer "{}" failed, invalid arguments.\n'
                 "This is likely due to a mismatched client schema, have you run `spacetime generate` recently?")


async def _refuse_in_connection(db, caller: Identity, jwt_payload: str | None, text: str, status: int,
                                fn: str, log_lines: list[str]) -> web.Response:
    """Answer a `/call` that names no callable function, a lifecycle reducer or bad arguments as upstream does:
    its `call` route runs inside `with_connection`, so the caller's connection is opened first (the module's
    client_connected runs, and may refuse with 403), the miss is logged, and the connection is closed
    (client_disconnected runs) before the error is answered."""

    def run():
        conn = ConnectionId.from_bytes(os.urandom(16))
        out = db.client_connected(caller, conn, jwt_payload=jwt_payload)
        if not out.committed:
            return out
        try:
            for line in log_lines:
                db.log_system(line, fn)
        finally:
            db.client_disconnected(caller, conn)
        return None

    refused = await _on_database(db, run)
    if refused is not None:
        return text_response(refused.error or "the module refused the connection", 403)
    return text_response(text, status)


def _decode_args(body: bytes, params, typespace) -> bytes:
    try:
        text = body.decode("utf-8") if body.strip() else "[]"
        obj = json.loads(text)
        if not isinstance(obj, (list, dict)):
            obj = [obj] if len(params.elements) == 1 else obj
        value = value_from_json(params, obj, typespace)
        return encode(params, value, typespace)
    except UnicodeDecodeError as e:
        raise ValueError(f"the body is not UTF-8: {e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"the body is not JSON: {e}") from None
    except RecursionError:
        raise ValueError("the arguments are nested too deeply") from None
    except (TypeError, OverflowError, KeyError, IndexError) as e:  # a JSON shape the type does not fit
        raise ValueError(f"{type(e).__name__}: {e}") from None


async def _on_database(db, fn):
    """Run ``fn()`` on the database's executor thread (module code never runs on the event loop, and a busy
    database does not hold threads other databases need), then wait until what it wrote or read is durable:
    HTTP answers only durable state (docs/durability.md)."""
    ex = executor_for(db)
    result = await ex.call(fn)
    await asyncio.wait_for(ex.durable(db.written_offset), LIMITS.durable_wait_ms / 1000)  # never if the log failed: 500
    return result


_INSTANCE_FATAL = "The instance encountered a fatal error: "


async def _call_procedure(request, db, proc, body: bytes, caller: Identity,
                          jwt_payload: str | None) -> web.Response:
    call_procedure = getattr(db, "call_procedure", None)
    if call_procedure is None:
        return text_response(f"procedure {proc.name}: procedures are not supported by this host yet", 501)
    try:
        args = _decode_args(body, proc.params, db.mdef.typespace)
    except (ValueError, SatsJsonError) as e:
        return await _refuse_in_connection(
            db, caller, jwt_payload, f"invalid arguments for function {proc.name}: {e}", 400, proc.name,
            [_NO_REDUCER_LOG.format(proc.name), _BAD_ARGS_LOG.replace("reducer", "procedure", 1).format(proc.name)])
    t0 = time.perf_counter()

    def run():
        conn = ConnectionId.from_bytes(os.urandom(16))
        out = db.client_connected(caller, conn, jwt_payload=jwt_payload)
        if not out.committed:
            return "rejected", out
        # upstream's `/call` tries a reducer of that name first, and logs the miss, before the procedure
        db.log_system(_NO_REDUCER_LOG.format(proc.name), proc.name)
        try:
            out = call_procedure(proc.name, args, sender=caller, connection_id=conn)
        finally:
            db.client_disconnected(caller, conn)
        db.wait_durable(db.written_offset)
        return "called", out

    what, out = await asyncio.to_thread(run)
    if what == "rejected":
        return text_response(out.error or "the module refused the connection", 403)
    headers = _timing_headers(getattr(out, "duration_us", (time.perf_counter() - t0) * 1e6), energy=False)
    error = getattr(out, "error", None)
    if error:  # upstream: every procedure failure is ProcedureCallError::InternalError -> 500, its own prefix
        detail = str(error).removeprefix(_INSTANCE_FATAL)
        return text_response(f"The module instance encountered a fatal error: {detail}", 500, headers)
    value = out
    for attr in ("result_bytes", "value"):
        if hasattr(out, attr):
            value = getattr(out, attr)
            break
    ts = db.mdef.typespace
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = decode(proc.return_type, bytes(value), ts)
    return json_response(value_to_json(proc.return_type, value, ts), 200, headers)


# ------------------------------------------------------------------------------------ sql

def _stats(sql: str, affected: int | None) -> dict:
    stats = {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0}
    if affected:
        word = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
        key = {"insert": "rows_inserted", "delete": "rows_deleted", "update": "rows_updated"}.get(word)
        if key:
            stats[key] = affected
    return stats


async def sql(request: web.Request) -> web.Response:
    try:
        from harness.sql import execute
    except ImportError:
        return text_response("SQL is not available in this build of the host", 501)
    text = (await read_body(request)).decode("utf-8", "replace")
    _flag(request, "confirmed", True)  # every commit is durable before it is visible here
    entry = _lookup(request)
    db = entry.database()
    claims = _caller(request)
    caller, jwt_payload = claims.identity, payload_text(claims.token)

    is_owner = caller == entry.owner

    def run():
        conn = ConnectionId.from_bytes(os.urandom(16))
        out = db.client_connected(caller, conn, jwt_payload=jwt_payload)
        if not out.committed:
            raise RegistryError(403, out.error or "the module refused the connection")
        t0 = time.perf_counter()
        try:
            results = execute(db, text, caller, owner=is_owner)  # DML fans out through the host's commit path
            return results, (time.perf_counter() - t0) * 1e6
        finally:
            db.client_disconnected(caller, conn)

    try:
        results, duration = await _on_database(db, run)
    except RegistryError:
        raise
    except Exception as e:  # SqlError and anything the statement hit: 400 with the message
        return text_response(str(e) or type(e).__name__, 400)
    try:
        body = _sql_body(results, db.mdef.typespace, text, duration)
    except BodyTooLarge:
        return text_response(f"the result is larger than {LIMITS.sql_result_bytes} bytes (limit sql_result_bytes): "
                             "select fewer rows or columns, or add a LIMIT", 400)
    resp = web.Response(body=body, status=200, headers=_timing_headers(duration, energy=False))
    resp.content_type = "application/json"
    return resp


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _inline_refs(obj: Any, ts, depth: int = 0) -> Any:
    """A SATS-JSON type with every ``{"Ref": n}`` replaced by the typespace entry, as upstream's /sql schema
    shows column types (a recursive type keeps its Ref past a depth a real row type never reaches)."""
    if isinstance(obj, dict):
        if set(obj) == {"Ref"} and ts is not None and depth < 32 and 0 <= obj["Ref"] < len(ts.types):
            return _inline_refs(type_to_json(ts.types[obj["Ref"]]), ts, depth + 1)
        return {k: _inline_refs(v, ts, depth) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_inline_refs(v, ts, depth) for v in obj]
    return obj


def _sql_body(results, ts, text: str, duration: float) -> bytes:
    """The JSON array of statement results, rendered row by row so its size is known (and capped) as it grows."""
    limit = LIMITS.sql_result_bytes
    size = 0
    parts: list[str] = []
    for r in results:
        rows: list[str] = []
        for row in r.rows:
            item = _dumps([value_to_json(t, v, ts) for (_, t), v in zip(r.columns, row)])
            size += len(item) + 1
            if size > limit:
                raise BodyTooLarge(limit, "sql_result_bytes")
            rows.append(item)
        schema = {"elements": [{"name": {"some": n}, "algebraic_type": _inline_refs(type_to_json(t), ts)}
                               for n, t in r.columns]}
        stats = dict(getattr(r, "stats", None) or _stats(text, r.affected))
        parts.append(f'{{"schema":{_dumps(schema)},"rows":[{",".join(rows)}],'
                     f'"total_duration_micros":{int(getattr(r, "duration_us", duration))},"stats":{_dumps(stats)}}}')
    if not parts:
        parts.append(_dumps({"schema": {"elements": []}, "rows": [], "total_duration_micros": int(duration),
                             "stats": _stats(text, None)}))
    return f"[{','.join(parts)}]".encode()


# ------------------------------------------------------------------------------------ schema, logs

async def schema(request: web.Request) -> web.Response:
    version = request.query.get("version")
    if version is None:  # upstream's (serde's) words
        return text_response("Failed to deserialize query string: missing field `version`", 400)
    if version not in ("9", "10"):
        return text_response(f"Failed to deserialize query string: unknown variant `{version}`, "
                             "expected `9` or `10`", 400)
    db = _lookup(request).database()
    return json_response(schema_json(db.mdef, int(version)))


async def logs(request: web.Request) -> web.StreamResponse:
    entry = _lookup(request)
    if entry.owner != _caller(request).identity:
        return text_response(f"{_caller(request).identity.to_hex()} is not authorized to perform action on "
                             f"database {entry.hex}: view module logs", 403)  # upstream's words
    raw_n = request.query.get("num_lines")
    try:
        num_lines = int(raw_n) if raw_n not in (None, "") else None
    except ValueError:
        return text_response(f"invalid num_lines {raw_n!r}", 400)
    follow = _flag(request, "follow")
    headers = {"Cache-Control": "no-cache"}
    if not follow:
        lines = entry.logs.tail(num_lines)
        resp = web.Response(body="".join(line + "\n" for line in lines).encode(), headers=headers)
        resp.content_type = "application/x-ndjson"
        return resp
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    queued = [0]  # bytes waiting for this follower; beyond log_follow_bytes it is dropped (it is not reading)

    def enqueue(line: str) -> None:
        if queued[0] < 0:
            return
        queued[0] += len(line)
        if queued[0] > LIMITS.log_follow_bytes:
            queued[0] = -1
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
            return
        queue.put_nowait(line)

    def on_line(line: str) -> None:
        loop.call_soon_threadsafe(enqueue, line)

    resp = web.StreamResponse(headers=headers)
    resp.content_type = "application/x-ndjson"
    resp.enable_chunked_encoding()
    backlog = entry.logs.listen(on_line, num_lines)
    stopping = request.app[STOPPING_KEY]
    registry = _registry(request)
    try:
        await resp.prepare(request)
        if backlog:
            await resp.write("".join(line + "\n" for line in backlog).encode())
        while not stopping.is_set():
            try:
                line = await asyncio.wait_for(queue.get(), timeout=0.5)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break
                if registry.get(entry.identity) is not entry:  # deleted
                    break
                continue
            if line is None:
                log.warning("dropped a `logs?follow` reader of %s that fell behind by more than %d bytes",
                            entry.hex[:16], LIMITS.log_follow_bytes)
                break
            queued[0] = max(0, queued[0] - len(line))
            await resp.write(line.encode() + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        entry.logs.unlisten(on_line)
    return resp


async def timestamp(request: web.Request) -> web.Response:
    _lookup(request)
    return json_response({"__timestamp_micros_since_unix_epoch__": int(time.time() * 1e6)})


async def subscribe_unavailable(request: web.Request) -> web.Response:
    _lookup(request)
    return text_response("WebSocket subscriptions are not available in this build of the host", 501)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/ping", ping)
    r.add_get("/v1/health", health)
    r.add_get("/v1/energy/{identity}", energy)
    r.add_post("/v1/identity", create_identity)
    r.add_post("/v1/identity/websocket-token", websocket_token)
    r.add_get("/v1/identity/public-key", public_key)
    r.add_get("/v1/identity/{identity}/verify", verify_identity)
    r.add_get("/v1/identity/{identity}/databases", identity_databases)
    r.add_post("/v1/database", publish)
    r.add_post("/v1/database/", publish)
    db = "/v1/database/{name_or_identity}"
    r.add_put(db, publish)
    r.add_get(db, database_info)
    r.add_delete(db, delete_database)
    r.add_get(db + "/names", get_names)
    r.add_post(db + "/names", add_name)
    r.add_put(db + "/names", set_names)
    r.add_get(db + "/identity", get_identity)
    r.add_post(db + "/call/{function}", call)
    r.add_get(db + "/schema", schema)
    r.add_get(db + "/logs", logs)
    r.add_post(db + "/sql", sql)
    r.add_post(db + "/pre_publish", pre_publish)
    r.add_put(db + "/reset", reset_database)
    r.add_post(db + "/lock", lock_database)
    r.add_post(db + "/unlock", lock_database)
    r.add_get(db + "/unstable/timestamp", timestamp)
    from .module_routes import setup_module_routes

    setup_module_routes(app)


__all__ = ["AUTH", "AUTHORITY_KEY", "REGISTRY_KEY", "STOPPING_KEY", "json_response", "setup_routes",
           "product_type_to_json", "subscribe_unavailable"]
