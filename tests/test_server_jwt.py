"""`ctx.sender_auth.jwt` on the server (the app `spacetime-py start` serves): the claims of the caller's token
reach the module over HTTP and WebSocket, as upstream's `get_jwt` hands a connection's stored payload over."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from harness.server.auth import payload_text
from spacetime_core.protocol import CallReducer, ReducerResult
from tests.test_server_http import build_source
from tests.test_server_ws_common import AppServerThread, RawClient, bsatn_str

pytestmark = pytest.mark.slow

MODULE = '''
from module_sdk import ReducerContext, log, primary_key, reducer, table, u32


@table(public=True)
class Seen:
    id: u32 = primary_key(auto_inc=True)
    via: str
    subject: str
    issuer: str
    audience: str
    custom: str


@reducer
def whoami(ctx: ReducerContext, via: str) -> None:
    jwt = ctx.sender_auth.jwt
    if jwt is None:
        ctx.db.seen.insert(Seen(via=via, subject="", issuer="", audience="", custom="no jwt"))
        return
    custom = "team=red" if '"team":"red"' in jwt.raw_payload.replace(" ", "") else "-"
    log.info(f"{via}: sub={jwt.subject} iss={jwt.issuer} aud={jwt.audience}")
    ctx.db.seen.insert(Seen(via=via, subject=jwt.subject, issuer=jwt.issuer, audience=",".join(jwt.audience),
                            custom=custom))
'''


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    return build_source(tmp_path_factory.mktemp("jwt"), "jwtmod", MODULE)


def test_reducers_see_the_callers_claims_over_http_and_websocket(wasm, tmp_path):
    srv = AppServerThread(tmp_path / "data", wasm, "jwtdb").start()
    authority = srv.authority
    token = authority.sign_claims(authority.issuer, "alice@example", extra={"team": "red"})
    claims = json.loads(payload_text(token))
    auth = {"Authorization": f"Bearer {token}"}

    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{srv.port}/v1/database/jwtdb/call/whoami", json=["http"],
                              headers=auth) as r:
                assert r.status == 200, await r.text()
        c = await RawClient.connect(srv.ws_url("jwtdb"), headers=auth)
        try:
            await c.recv()  # InitialConnection
            await c.send(CallReducer(1, 0, "whoami", bsatn_str("ws")))
            while not isinstance(await c.recv(), ReducerResult):
                pass
        finally:
            await c.close()

    try:
        asyncio.run(asyncio.wait_for(go(), 60))
        db = srv.databases["jwtdb"]
        seen = {r["via"]: r for r in db.row_dicts("seen")}
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        for via in ("http", "ws"):
            assert seen[via]["subject"] == "alice@example" and seen[via]["issuer"] == authority.issuer
            assert seen[via]["audience"] == ",".join(aud) and seen[via]["custom"] == "team=red"
        # the stored payload is dropped with the connection (disconnect runs after the socket closes)
        for _ in range(200):
            if not db._jwts:
                break
            time.sleep(0.05)
        assert db._jwts == {}
    finally:
        srv.stop()


def test_jwt_claims_reader():
    from module_sdk.jwt import JwtClaims, parse_json

    text = '{"sub":"s\\u00e9","iss":"https://auth.example","aud":["a","b"],"n":-1.5e2,"ok":true,"x":null}'
    c = JwtClaims(text)
    assert (c.subject, c.issuer, c.audience, c.raw_payload) == ("s\u00e9", "https://auth.example", ["a", "b"], text)
    assert c.claims["n"] == -150.0 and c.claims["ok"] is True and c.claims["x"] is None
    assert JwtClaims('{"aud":"one","sub":"x","iss":"y"}').audience == ["one"]
    assert JwtClaims('{"sub":"x","iss":"y"}').audience == []
    assert parse_json('"\\ud83d\\ude00 \\n"') == "\U0001F600 \n"
    assert parse_json(' [1, {"a": [ ]}, "q"] ') == [1, {"a": []}, "q"]
    for bad in ('{"sub": }', '{"a":1', '[1,]', '{"a":1} x', '"abc', "{'a':1}"):
        with pytest.raises(ValueError):
            parse_json(bad)
    with pytest.raises(ValueError, match="'sub'"):
        _ = JwtClaims('{"iss":"y"}').subject
