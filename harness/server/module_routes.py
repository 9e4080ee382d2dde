"""Module-defined HTTP routes: ANY `/v1/database/{name_or_identity}/route`, `/route/` and `/route/{path}`
(http-api.md §3.1), served by the module's `@http_handler` functions.

As upstream (crates/client-api/src/routes/database.rs, `handle_http_route_impl`): no auth middleware and no
identity headers; the handler path is `""`, `"/"` or `"/" + path`; no matching route (or method) is 404 with
"Database has not registered a handler for this route"; the handler sees the URI the client used (scheme
and host from `X-Forwarded-Proto` / `X-Forwarded-Host` or `Host`), every header and the whole body (at
most 2 MB here, 413 beyond); its status, headers and body are sent back as they are (no content-type when
the handler set none, as upstream: aiohttp's default `application/octet-stream` is taken out again); a
handler that fails inside the host (trap, bad response) is a 500 with the error text.  The call runs in a
worker thread.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from multidict import CIMultiDict

from .http import BodyTooLarge, _lookup, read_body, text_response

PREFIX = "/v1/database/{name_or_identity}/route"


class _HandlerResponse(web.Response):
    no_content_type = False  # the handler set no content-type: send none (see _drop_default_content_type)


def _external_uri(request: web.Request) -> str:
    def first(name: str) -> str | None:
        v = request.headers.get(name)
        v = v.split(",")[0].strip() if v else ""
        return v or None

    scheme = first("X-Forwarded-Proto") or request.scheme or "http"
    host = first("X-Forwarded-Host") or request.headers.get("Host") or request.host
    return f"{scheme}://{host}{request.raw_path}"


async def http_route(request: web.Request) -> web.StreamResponse:
    entry = _lookup(request)
    tail = request.match_info.get("path")
    path = "" if tail is None else "/" + tail
    try:
        body = await read_body(request)
    except BodyTooLarge as e:
        return text_response(str(e), 413)
    headers = [(k.decode("latin-1").lower(), v) for k, v in request.raw_headers]
    version = f"HTTP/{request.version.major}.{request.version.minor}"
    if version == "HTTP/2.0":
        version = "HTTP/2"
    db = entry.database()
    out = await asyncio.to_thread(db.call_http_handler, request.method, path, uri=_external_uri(request),
                                  headers=headers, body=body, version=version)
    if not 100 <= out.status <= 999:
        return text_response(f"the http handler answered an invalid status code {out.status}", 500)
    resp_headers: CIMultiDict = CIMultiDict()
    try:
        for name, value in out.headers:
            resp_headers.add(name, value.decode("latin-1"))
        resp = _HandlerResponse(status=out.status, body=out.body, headers=resp_headers)
    except (ValueError, TypeError) as e:
        return text_response(f"the http handler answered an invalid response: {e}", 500)
    resp.no_content_type = "content-type" not in resp_headers
    return resp


async def _drop_default_content_type(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare runs after aiohttp filled in its default content-type, before headers are sent."""
    if getattr(response, "no_content_type", False):
        response.headers.popall("Content-Type", None)


def setup_module_routes(app: web.Application) -> None:
    app.on_response_prepare.append(_drop_default_content_type)
    r = app.router
    r.add_route("*", PREFIX, http_route)
    r.add_route("*", PREFIX + "/{path:.*}", http_route)
