"""The split server (harness.server.gateway + dbworker: the network in one process, the databases in another)
speaks the same protocol as the one-process server: HTTP through the gateway's proxy, and on the WebSocket
InitialConnection, subscribe, calls, fan-out, reducer errors, disconnect, protocol errors, confirmed reads
(acknowledged transfers survive a kill -9 of the database process), and a clear error when the database
process dies."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import struct
import threading

import aiohttp
import pytest
from aiohttp import web

from harness.limits import LIMITS
from harness.server.gateway import GATEWAY_KEY, create_gateway_app
from spacetime_core.protocol import (
    CallReducer,
    InitialConnection,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    TransactionUpdate,
    decode_reducer_error,
)
from tests.test_server_http import raw
from tests.test_server_ws import persistent, person
from tests.test_server_ws_common import RawClient, bsatn_str, module_wasm

pytestmark = pytest.mark.slow

_names = itertools.count()


class SplitServer:
    """``create_gateway_app`` on a data dir, on 127.0.0.1:<random port>, in a thread (its database process is a
    child process)."""

    def __init__(self, data_dir, durability: str = "group") -> None:
        self.data_dir = data_dir
        self.durability = durability
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.app: web.Application | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="split-server", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported by start()
            self.error = e
            self._ready.set()

    async def _serve(self) -> None:
        self.app = create_gateway_app(self.data_dir, durability=self.durability)
        runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> SplitServer:
        self.thread.start()
        self._ready.wait(180)
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)

    @property
    def worker_pid(self) -> int:
        return self.app[GATEWAY_KEY].proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, db: str, query: str = "compression=None") -> str:
        return f"ws://127.0.0.1:{self.port}/v1/database/{db}/subscribe" + (f"?{query}" if query else "")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def http(method: str, url: str, body: bytes | None = None, token: str | None = None, json_body=False):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if json_body:
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, data=body, headers=headers) as r:
            return r.status, r.headers, await r.read()


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    return module_wasm(tmp_path_factory.mktemp("splitmod"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = SplitServer(tmp_path_factory.mktemp("splitdata")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def owner(server):
    status, _, body = run(http("POST", server.url + "/v1/identity"))
    assert status == 200
    return json.loads(body)["token"]


def publish(server, wasm, owner) -> str:
    name = f"split{next(_names)}"
    status, _, body = run(http("PUT", f"{server.url}/v1/database/{name}", wasm, owner))
    assert status == 200, body
    return name


def people(server, name: str) -> list[str]:
    status, _, body = run(http("POST", f"{server.url}/v1/database/{name}/sql", b"SELECT name FROM person"))
    assert status == 200, body
    return sorted(r[0] for r in json.loads(body)[0]["rows"])


def test_http_goes_through_the_proxy(server, wasm, owner):
    name = publish(server, wasm, owner)
    status, headers, body = run(http("POST", f"{server.url}/v1/database/{name}/call/add", b'["ann"]', owner, True))
    assert status == 200, body
    assert people(server, name) == ["ann"]
    status, headers, _ = run(http("GET", f"{server.url}/v1/database/{name}/schema?version=9"))
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    status, _, body = run(http("GET", f"{server.url}/v1/database/nosuchdb"))
    assert status == 404
    status, _, body = raw(f"{server.url}/v1/database/a/../{name}")  # urllib keeps the dot segments
    assert status == 400 and b"segments" in body
    # bodies are streamed through; the database process's per-route limit still applies
    status, _, body = raw(f"{server.url}/v1/database/{name}/sql", "POST", b" " * (LIMITS.body_bytes + 1))
    assert status == 413 and b"body_bytes" in body


def test_subscribe_call_fan_out_and_errors(server, wasm, owner):
    name = publish(server, wasm, owner)

    async def go():
        a = await RawClient.connect(server.ws_url(name))
        b = await RawClient.connect(server.ws_url(name))
        try:
            for c in (a, b):
                assert isinstance(await c.recv(), InitialConnection)
            await b.send(Subscribe(1, 7, ["SELECT * FROM person"]))
            applied = await b.recv()
            assert isinstance(applied, SubscribeApplied) and applied.query_set_id == 7
            await a.call(5, "add", bsatn_str("bob"))
            res = await a.recv()
            assert isinstance(res, ReducerResult) and res.request_id == 5 and res.result.tag == "Ok"
            upd = await b.recv()
            assert isinstance(upd, TransactionUpdate)
            assert persistent(upd, 7) == [("person", [person(1, "bob")], [])]
            # a reducer's error comes back as Err; a bad reducer name as InternalError; the socket stays open
            await a.call(6, "add", bsatn_str(""))
            res = await a.recv()
            assert res.result.tag == "Err" and decode_reducer_error(res.result.value) == "name must not be empty"
            await a.call(7, "nope", b"")
            res = await a.recv()
            assert res.result.tag == "InternalError" and "no such reducer" in res.result.value
            # many calls in flight on one connection come back in order
            for i in range(50):
                await a.send(CallReducer(100 + i, 0, "note", bsatn_str(f"n{i}")))
            ids = [(await a.recv()).request_id for _ in range(50)]
            assert ids == list(range(100, 150))
        finally:
            await a.close()
            await b.close()

    run(go())
    assert people(server, name) == ["bob"]


def test_disconnect_runs_client_disconnected(server, wasm, owner):
    name = publish(server, wasm, owner)

    async def online() -> set[str]:
        status, _, body = await http("POST", f"{server.url}/v1/database/{name}/sql", b"SELECT * FROM online")
        return {r[0] for r in json.loads(body)[0]["rows"]}

    async def go():
        c = await RawClient.connect(server.ws_url(name))
        hello = await c.recv()
        assert isinstance(hello, InitialConnection)
        me = hello.identity.to_hex()
        assert me in await online()
        await c.close()
        for _ in range(100):
            if me not in await online():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("client_disconnected did not run")

    run(go())


def test_protocol_errors_close_with_1011_and_the_server_lives(server, wasm, owner):
    name = publish(server, wasm, owner)

    async def go():
        c = await RawClient.connect(server.ws_url(name))
        assert isinstance(await c.recv(), InitialConnection)
        await c.send_raw(b"\xff\x00garbage")
        code, reason = await c.expect_close()
        assert code == 1011 and reason
        await c.session.close()
        c = await RawClient.connect(server.ws_url(name))
        assert isinstance(await c.recv(), InitialConnection)
        await c.ws.send_str("hello")
        code, reason = await c.expect_close()
        assert code == 1011 and "text frames" in reason
        await c.session.close()
        c = await RawClient.connect(server.ws_url(name))  # still serving
        assert isinstance(await c.recv(), InitialConnection)
        await c.close()
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(server.ws_url("nosuchdb"), protocols=("v2.bsatn.spacetimedb",))
            assert e.value.status == 404

    run(go())


def test_client_connected_rejection_closes_with_1008(server, wasm, owner):
    name = publish(server, wasm, owner)
    status, _, body = run(http("POST", f"{server.url}/v1/database/{name}/call/set_reject", b"[true]", owner, True))
    assert status == 200, body

    async def go():
        c = await RawClient.connect(server.ws_url(name))
        code, reason = await c.expect_close()
        await c.session.close()
        assert code == 1008 and "connections are closed" in reason

    run(go())


def test_confirmed_calls_survive_kill_9_and_a_dead_database_process_is_reported(tmp_path, wasm):
    """An acknowledged call (confirmed reads, group commit) is durable: after kill -9 of the database process
    the clients are closed with 1011 ``database process exited``, requests get 503, and a new server on the
    same data dir has every acknowledged row."""
    srv = SplitServer(tmp_path).start()
    try:
        status, _, body = run(http("POST", srv.url + "/v1/identity"))
        token = json.loads(body)["token"]
        name = publish(srv, wasm, token)

        async def go():
            c = await RawClient.connect(srv.ws_url(name))
            assert isinstance(await c.recv(), InitialConnection)
            for i in range(20):
                await c.call(i, "add", bsatn_str(f"p{i}"))
            for i in range(20):
                m = await c.recv()
                assert m.request_id == i and m.result.tag == "Ok"
            os.kill(srv.worker_pid, signal.SIGKILL)
            code, reason = await c.expect_close()
            await c.session.close()
            assert code == 1011 and "database process exited" in reason
            status, _, body = await http("GET", f"{srv.url}/v1/database/{name}")
            assert status == 503 and b"database process exited" in body

        run(go())
    finally:
        srv.stop()
    srv = SplitServer(tmp_path).start()
    try:
        assert people(srv, name) == sorted(f"p{i}" for i in range(20))
    finally:
        srv.stop()


def test_v3_frames_and_gzip(server, wasm, owner):
    name = publish(server, wasm, owner)

    async def go():
        c = await RawClient.connect(server.ws_url(name, "compression=Gzip"), protocols=("v3.bsatn.spacetimedb",))
        try:
            assert isinstance(await c.recv(), InitialConnection)
            assert c.raw_frames[-1][0] == 0  # small: not compressed
            await c.send(Subscribe(1, 1, ["SELECT * FROM person"]))
            assert isinstance(await c.recv(), SubscribeApplied)
            await c.call(2, "add_many", bsatn_str("a-rather-long-name-") + struct.pack("<I", 100))
            m = await c.recv()
            assert m.request_id == 2 and m.result.tag == "Ok"
            assert c.raw_frames[-1][0] == 2  # gzip
            assert len(persistent(m.result.value.transaction_update)[0][1]) == 100
        finally:
            await c.close()

    run(go())
    assert len(people(server, name)) == 100
