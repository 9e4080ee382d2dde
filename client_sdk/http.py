"""HTTP API client for a SpacetimeDB server (real or `spacetime-py start`): identity, publish, call, sql, schema,
logs.  `SpacetimeHttp` is synchronous (stdlib urllib), `AsyncSpacetimeHttp` the same over aiohttp.

    api = SpacetimeHttp("http://127.0.0.1:3000")
    identity, token = api.create_identity(); api.token = token
    api.publish(open("module.wasm", "rb").read(), "chat")       # -> {"domain", "database_identity", "op"}
    api.call("chat", "send_message", ["hi"])
    api.sql("chat", "SELECT * FROM message")                    # -> [{"schema", "rows", ...}]
    for line in api.follow_logs("chat"): print(line["message"])

Errors raise `HttpError` with the status and the server's text.  Requests follow what the `spacetime` CLI sends
(http-api.md section 5): databases are addressed by name or identity, tokens go in `Authorization: Bearer`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:3000"


class HttpError(Exception):
    def __init__(self, status: int, text: str, method: str = "", url: str = ""):
        super().__init__(f"{method} {url}: {status} {text}".strip() if method else f"{status} {text}")
        self.status = status
        self.text = text
        self.method = method
        self.url = url

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def normalize_server(server: str) -> str:
    """`localhost:3000`, `ws://h:1/`, `http://h:1` -> `http://h:1`."""
    s = server.strip().rstrip("/")
    if s.startswith("ws://"):
        s = "http://" + s[5:]
    elif s.startswith("wss://"):
        s = "https://" + s[6:]
    elif "://" not in s:
        s = "http://" + s
    return s


def _q(db: str) -> str:
    return urllib.parse.quote(str(db), safe="-_")


def _url(server: str, path: str, query: dict | None) -> str:
    url = server + path
    if query:
        q = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in query.items()
             if v is not None}
        url += "?" + urllib.parse.urlencode(q)
    return url


def _call_body(args: Any) -> bytes:
    if isinstance(args, (bytes, bytearray)):
        return bytes(args)
    if isinstance(args, str):
        return args.encode()
    return json.dumps(list(args) if isinstance(args, tuple) else args).encode()


def _parse_ndjson(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


class _Base:
    def __init__(self, server: str = DEFAULT_SERVER, token: str | None = None, timeout: float = 60.0):
        self.server = normalize_server(server)
        self.token = token
        self.timeout = timeout

    def _headers(self, auth: bool, extra: dict | None) -> dict:
        h = {"User-Agent": "spacetime-py"}
        if auth and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h


class SpacetimeHttp(_Base):
    """Synchronous client (urllib; no dependency beyond the stdlib)."""

    def request(self, method: str, path: str, *, body: bytes | None = None, query: dict | None = None,
                headers: dict | None = None, auth: bool = True, check: bool = True, stream: bool = False):
        url = _url(self.server, path, query)
        req = urllib.request.Request(url, data=body, method=method, headers=self._headers(auth, headers))
        try:
            resp = urllib.request.urlopen(req, timeout=None if stream else self.timeout)
        except urllib.error.HTTPError as e:
            r = Response(e.code, dict(e.headers), e.read())
            if check:
                raise HttpError(r.status, r.text, method, url) from None
            return r
        if stream:
            return resp
        with resp:
            return Response(resp.status, dict(resp.headers), resp.read())

    # identity
    def ping(self) -> bool:
        try:
            return self.request("GET", "/v1/ping", auth=False).status == 200
        except (OSError, HttpError):
            return False

    def create_identity(self) -> tuple[str, str]:
        d = self.request("POST", "/v1/identity", auth=False).json()
        return d["identity"], d["token"]

    def websocket_token(self) -> str:
        return self.request("POST", "/v1/identity/websocket-token").json()["token"]

    def verify(self, identity: str) -> bool:
        return self.request("GET", f"/v1/identity/{identity}/verify", check=False).status == 204

    def public_key(self) -> str:
        return self.request("GET", "/v1/identity/public-key", auth=False).text

    def databases(self, identity: str) -> list[str]:
        return self.request("GET", f"/v1/identity/{identity}/databases").json()["identities"]

    # databases
    def publish(self, wasm: bytes, name: str | None = None, *, clear: bool = False, **query) -> dict:
        q = {"host_type": "Wasm", "clear": True if clear else None, **query}
        if name:
            r = self.request("PUT", f"/v1/database/{_q(name)}", body=wasm, query=q)
        else:
            r = self.request("POST", "/v1/database", body=wasm, query=q)
        return r.json()["Success"]

    def resolve(self, db: str) -> str:
        return self.request("GET", f"/v1/database/{_q(db)}/identity", auth=False).text.strip()

    def database_info(self, db: str) -> dict:
        return self.request("GET", f"/v1/database/{_q(db)}").json()

    def names(self, db: str) -> list[str]:
        return self.request("GET", f"/v1/database/{_q(db)}/names").json()["names"]

    def delete(self, db: str) -> None:
        self.request("DELETE", f"/v1/database/{_q(db)}")

    def call(self, db: str, function: str, args: Sequence | dict | str | bytes = ()) -> Any:
        """Call a reducer (returns None) or a procedure (returns its JSON result)."""
        r = self.request("POST", f"/v1/database/{_q(db)}/call/{_q(function)}", body=_call_body(args),
                         headers={"Content-Type": "application/json"})
        return r.json() if r.body.strip() else None

    def sql(self, db: str, query: str) -> list[dict]:
        return self.request("POST", f"/v1/database/{_q(db)}/sql", body=query.encode()).json()

    def schema(self, db: str, version: int = 10) -> dict:
        r = self.request("GET", f"/v1/database/{_q(db)}/schema", query={"version": version}, check=False)
        if 400 <= r.status < 500 and version == 10 and r.status != 404:
            return self.schema(db, 9)
        if r.status >= 300:
            raise HttpError(r.status, r.text, "GET", f"/v1/database/{db}/schema")
        return r.json()

    def logs(self, db: str, num_lines: int | None = None) -> list[dict]:
        r = self.request("GET", f"/v1/database/{_q(db)}/logs", query={"num_lines": num_lines, "follow": False})
        return _parse_ndjson(r.body)

    def follow_logs(self, db: str, num_lines: int | None = 10) -> Iterator[dict]:
        resp = self.request("GET", f"/v1/database/{_q(db)}/logs", query={"num_lines": num_lines, "follow": True},
                            stream=True)
        with resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)


class AsyncSpacetimeHttp(_Base):
    """The same API over aiohttp.  Use as `async with AsyncSpacetimeHttp(url) as api:` (or call close())."""

    def __init__(self, server: str = DEFAULT_SERVER, token: str | None = None, timeout: float = 60.0):
        super().__init__(server, token, timeout)
        self._session = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _sess(self):
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(self, method: str, path: str, *, body: bytes | None = None, query: dict | None = None,
                      headers: dict | None = None, auth: bool = True, check: bool = True) -> Response:
        import aiohttp

        url = _url(self.server, path, query)
        async with self._sess().request(method, url, data=body, headers=self._headers(auth, headers),
                                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
            r = Response(resp.status, dict(resp.headers), await resp.read())
        if check and r.status >= 300:
            raise HttpError(r.status, r.text, method, url)
        return r

    async def ping(self) -> bool:
        try:
            return (await self.request("GET", "/v1/ping", auth=False)).status == 200
        except (OSError, HttpError):
            return False

    async def create_identity(self) -> tuple[str, str]:
        d = (await self.request("POST", "/v1/identity", auth=False)).json()
        return d["identity"], d["token"]

    async def websocket_token(self) -> str:
        return (await self.request("POST", "/v1/identity/websocket-token")).json()["token"]

    async def verify(self, identity: str) -> bool:
        return (await self.request("GET", f"/v1/identity/{identity}/verify", check=False)).status == 204

    async def public_key(self) -> str:
        return (await self.request("GET", "/v1/identity/public-key", auth=False)).text

    async def databases(self, identity: str) -> list[str]:
        return (await self.request("GET", f"/v1/identity/{identity}/databases")).json()["identities"]

    async def publish(self, wasm: bytes, name: str | None = None, *, clear: bool = False, **query) -> dict:
        q = {"host_type": "Wasm", "clear": True if clear else None, **query}
        if name:
            r = await self.request("PUT", f"/v1/database/{_q(name)}", body=wasm, query=q)
        else:
            r = await self.request("POST", "/v1/database", body=wasm, query=q)
        return r.json()["Success"]

    async def resolve(self, db: str) -> str:
        return (await self.request("GET", f"/v1/database/{_q(db)}/identity", auth=False)).text.strip()

    async def database_info(self, db: str) -> dict:
        return (await self.request("GET", f"/v1/database/{_q(db)}")).json()

    async def names(self, db: str) -> list[str]:
        return (await self.request("GET", f"/v1/database/{_q(db)}/names")).json()["names"]

    async def delete(self, db: str) -> None:
        await self.request("DELETE", f"/v1/database/{_q(db)}")

    async def call(self, db: str, function: str, args: Sequence | dict | str | bytes = ()) -> Any:
        r = await self.request("POST", f"/v1/database/{_q(db)}/call/{_q(function)}", body=_call_body(args),
                               headers={"Content-Type": "application/json"})
        return r.json() if r.body.strip() else None

    async def sql(self, db: str, query: str) -> list[dict]:
        return (await self.request("POST", f"/v1/database/{_q(db)}/sql", body=query.encode())).json()

    async def schema(self, db: str, version: int = 10) -> dict:
        r = await self.request("GET", f"/v1/database/{_q(db)}/schema", query={"version": version}, check=False)
        if 400 <= r.status < 500 and version == 10 and r.status != 404:
            return await self.schema(db, 9)
        if r.status >= 300:
            raise HttpError(r.status, r.text, "GET", f"/v1/database/{db}/schema")
        return r.json()

    async def logs(self, db: str, num_lines: int | None = None) -> list[dict]:
        r = await self.request("GET", f"/v1/database/{_q(db)}/logs", query={"num_lines": num_lines, "follow": False})
        return _parse_ndjson(r.body)

    async def follow_logs(self, db: str, num_lines: int | None = 10) -> AsyncIterator[dict]:
        import aiohttp

        url = _url(self.server, f"/v1/database/{_q(db)}/logs", {"num_lines": num_lines, "follow": True})
        async with self._sess().get(url, headers=self._headers(True, None),
                                    timeout=aiohttp.ClientTimeout(total=None)) as resp:
            if resp.status >= 300:
                raise HttpError(resp.status, await resp.text(), "GET", url)
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)


__all__ = ["AsyncSpacetimeHttp", "DEFAULT_SERVER", "HttpError", "Response", "SpacetimeHttp", "normalize_server"]
