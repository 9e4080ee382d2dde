"""Module HTTP handlers (`@http_handler` + `@router`): the RawModuleDef sections, routing and dispatch in the host,
and real HTTP requests to /v1/database/<db>/route/... on our server, with examples/http_api."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

from harness.host import Database
from module_sdk import schema
from module_sdk.build import build
from module_sdk.http import encode_request
from module_sdk.http_handlers import Request, Response, Router, decode_request
from spacetime_core.module_def import HttpRouteDef
from spacetime_core.sats import Identity, SumValue
from spacetime_core.sats.raw_def import decode_raw_def
from tests.test_server_ws_common import AppServerThread

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
OWNER = Identity.from_bytes(bytes(range(32)))


# ------------------------------------------------------------------------------ the module def (no wasm)


@pytest.fixture
def fresh_module():
    prev = schema.current()
    m = schema.new_module()
    yield m
    schema._current = prev


def test_def_sections_match_upstream_layout(fresh_module):
    @schema.http_handler
    def get_simple(ctx, req):
        return Response("ok")

    @schema.http_handler
    def any_echo(ctx, req):
        return Response(req.body)

    @schema.router
    def routes():
        return Router().get("/get", get_simple).any("", any_echo).nest("/v", Router().put("/x", any_echo))

    sections = {s.tag: s.value for s in decode_raw_def(fresh_module.describe()).value[0]}
    # HttpHandlers (11): RawHttpHandlerDefV10 { source_name }; HttpRoutes (12): { handler_function,
    # method: MethodOrAny (Any = 0 | Method(HttpMethod) = 1; Get = 0, Put = 3), path }
    assert sections[11] == [("get_simple",), ("any_echo",)]
    assert sections[12] == [("get_simple", SumValue(1, SumValue(0)), "/get"), ("any_echo", SumValue(0), ""),
                            ("any_echo", SumValue(1, SumValue(3)), "/v/x")]


@pytest.mark.parametrize("build_router, error", [
    (lambda h: Router().get("get", h), "must start with `/`"),
    (lambda h: Router().get("/Get", h), "only ASCII lowercase"),
    (lambda h: Router().get("/a", h).any("/a", h), "route conflict"),
    (lambda h: Router().get("/a", lambda c, r: None), "not an @http_handler"),
])
def test_router_rejects_bad_routes(fresh_module, build_router, error):
    @schema.http_handler
    def h(ctx, req):
        return Response()

    with pytest.raises((ValueError, TypeError), match=error):
        build_router(h)


def test_handler_signature_is_checked(fresh_module):
    with pytest.raises(schema.ModuleDefError, match="must take \\(ctx, request\\)"):
        @schema.http_handler
        def bad(ctx):
            return Response()


def test_request_codec_round_trip():
    raw = encode_request("PATCH", "http://h:1/v1/database/d/route/a/b?q=1&r=2", [("x-a", b"1"), ("x-a", b"2")])
    method, headers, uri, version = decode_request(raw)
    req = Request(method, uri, headers, b"body")
    assert (req.method, req.path, req.query, req.header("X-A"), version) == \
        ("PATCH", "/v1/database/d/route/a/b", "q=1&r=2", "1", 2)
    assert decode_request(encode_request("PURGE", "/x"))[0] == "PURGE"  # HttpMethod::Extension
    with pytest.raises(ValueError):
        Response(status=42)


# ------------------------------------------------------------------------------ host and server


@pytest.fixture(scope="module")
def wasm(tmp_path_factory) -> bytes:
    return build(ROOT / "examples" / "http_api", tmp_path_factory.mktemp("http") / "http_api.wasm").output.read_bytes()


def test_host_routes_and_runs_handlers(wasm):
    db = Database.create(wasm, owner=OWNER)
    try:
        assert db.mdef.http_handlers == ["get_simple", "list_notes", "create_note", "echo", "fail"]
        assert HttpRouteDef(0, "GET", "/get") in db.mdef.http_routes
        assert HttpRouteDef(3, None, "/echo") in db.mdef.http_routes
        out = db.call_http_handler("GET", "/get")
        assert (out.status, out.body) == (200, b"ok")
        out = db.call_http_handler("POST", "/notes", body=b"milk")
        assert (out.status, out.body) == (201, b'{"id": 1}')
        assert [r[1] for r in db.rows("note")] == ["milk"]  # the handler's transaction committed
        assert db.call_http_handler("GET", "/notes").body == b"1: milk\n"
        assert db.call_http_handler("GET", "/get/").status == 404  # strict: a trailing slash is another path
        assert db.call_http_handler("DELETE", "/get").status == 404  # wrong method
        out = db.call_http_handler("GET", "/fail")
        assert out.status == 500 and out.body == b"RuntimeError: handler exploded"
        assert db.call_http_handler("GET", "/get").status == 200  # the instance still serves
    finally:
        db.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory, wasm):
    srv = AppServerThread(tmp_path_factory.mktemp("httpsrv"), wasm, "web").start()
    yield srv
    srv.stop()


def request(app, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    u = urllib.parse.urlsplit(app.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        c.close()


def test_routes_over_real_http(app):
    status, headers, body = request(app, "GET", "/v1/database/web/route/get")
    assert (status, body) == (200, b"ok")
    assert not any(k.lower() == "content-type" for k, _ in headers)  # the handler set none: as upstream, none
    assert not any(k.lower() == "spacetime-identity" for k, _ in headers)  # no auth middleware on /route
    status, _, body = request(app, "POST", "/v1/database/web/route/notes", b"eggs")
    assert (status, body) == (201, b'{"id": 1}')
    status, headers, body = request(app, "GET", "/v1/database/web/route/notes")
    assert (status, body) == (200, b"1: eggs\n")
    assert ("content-type", "text/plain; charset=utf-8") in [(k.lower(), v) for k, v in headers]
    status, headers, body = request(app, "OPTIONS", "/v1/database/web/route/echo?x=1", b"hi",
                                    {"X-Test": "yes", "Host": "example.test"})
    assert status == 200
    assert body.decode().split("\n") == ["method=OPTIONS", "path=/v1/database/web/route/echo", "query=x=1",
                                         "x-test=yes", "body=hi"]
    assert [v for k, v in headers if k.lower() == "x-echo"] == ["1", "2"]
    status, _, body = request(app, "GET", "/v1/database/web/route/fail")
    assert (status, body) == (500, b"RuntimeError: handler exploded")
    for method, path in (("GET", "/v1/database/web/route"), ("GET", "/v1/database/web/route/"),
                         ("GET", "/v1/database/web/route/nope"), ("PUT", "/v1/database/web/route/get")):
        status, _, body = request(app, method, path)
        assert (status, body) == (404, b"Database has not registered a handler for this route"), (method, path)
    assert request(app, "GET", "/v1/database/nosuchdb/route/get")[0] == 404
    status, _, _ = request(app, "POST", "/v1/database/web/route/notes", b"x" * (2 * 1024 * 1024 + 1))
    assert status == 413
    # the example's query-builder view over SQL: notes inserted by a handler, filtered by the view's query
    assert request(app, "POST", "/v1/database/web/route/notes", b"zucchini")[0] == 201
    status, _, body = request(app, "POST", "/v1/database/web/sql", b"SELECT text FROM short_notes")
    assert status == 200 and json.loads(body)[0]["rows"] == [["eggs"]]
