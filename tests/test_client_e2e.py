"""The client against the real server (harness.server.app on 127.0.0.1, ephemeral port): the quickstart chat
with generated bindings, overlapping subscriptions, errors with the server's message, reconnect after a
server restart, the chat example, and the sync wrapper."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("harness.server.app")

from aiohttp import web  # noqa: E402

from client_sdk.codegen import generate  # noqa: E402
from client_sdk.errors import ReducerFailedError, SubscriptionFailedError  # noqa: E402
from client_sdk.http import AsyncSpacetimeHttp  # noqa: E402
from harness.host.describe import module_def_from_wasm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart_wasm() -> bytes:
    from module_sdk.build import build

    return build(ROOT / "examples" / "quickstart").output.read_bytes()


@pytest.fixture(scope="module")
def bindings(quickstart_wasm: bytes, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("bind")
    generate(module_def_from_wasm(quickstart_wasm), out / "qs_e2e_bindings")
    sys.path.insert(0, str(out))
    try:
        import qs_e2e_bindings
    finally:
        sys.path.remove(str(out))
    return qs_e2e_bindings


class Server:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> Server:
        from harness.server.app import create_app

        self.runner = web.AppRunner(create_app(self.data_dir))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def publish(server: Server, wasm: bytes, name: str = "chat") -> None:
    async with AsyncSpacetimeHttp(server.uri) as api:
        _, api.token = await api.create_identity()
        await api.publish(wasm, name)


def run(coro: Any, timeout: float = 60) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(main())


def test_quickstart_chat_end_to_end(quickstart_wasm, bindings, tmp_path):
    async def body() -> None:
        server = await Server(tmp_path / "data").start()
        await publish(server, quickstart_wasm)
        b = bindings.DbConnection.builder().with_uri(server.uri).with_database_name("chat")
        alice = await b.with_token_file(tmp_path / "alice.jwt").connect()
        bob = await bindings.DbConnection.builder().with_uri(server.uri).with_database_name("chat").connect()
        assert (tmp_path / "alice.jwt").read_text() == alice.token
        got: list = []
        bob.db.message.on_insert(lambda ctx, m: got.append((type(ctx.event).__name__, m.text)))
        renames: list = []
        bob.db.user.on_update(lambda ctx, old, new: renames.append((old.name, new.name)))
        await alice.subscription_builder().subscribe(["SELECT * FROM user", "SELECT * FROM message"])
        # bob: two overlapping query sets over `user`
        s1 = await bob.subscription_builder().subscribe(["SELECT * FROM user", "SELECT * FROM message"])
        s2 = await bob.subscription_builder().subscribe(["SELECT * FROM user WHERE online = true"])
        assert bob.db.user.ref_count(bob.db.user.identity.find(alice.identity)) == 2
        ev = await alice.reducers.set_name("Alice")
        assert ev.committed and alice.db.user.identity.find(alice.identity).name == "Alice"
        await alice.reducers.send_message("hello")
        for _ in range(100):
            if got and renames:
                break
            await asyncio.sleep(0.02)
        assert got == [("TransactionEvent", "hello")] and renames == [(None, "Alice")]
        with pytest.raises(ReducerFailedError, match="Messages must not be empty"):
            await alice.reducers.send_message("")
        with pytest.raises(SubscriptionFailedError):
            await bob.subscription_builder().subscribe("SELECT * FROM no_such_table")
        rows = await alice.one_off_query("SELECT * FROM message")
        assert [m.text for m in rows["message"]] == ["hello"]
        # dropping one overlapping set keeps the rows; dropping the other removes them
        await s2.unsubscribe()
        assert bob.db.user.identity.find(alice.identity) is not None
        await s1.unsubscribe()
        assert bob.db.user.count() == 0 and bob.db.message.count() == 0
        await alice.disconnect()
        await bob.disconnect()
        await server.stop()

    run(body())


def test_reconnect_after_server_restart(quickstart_wasm, bindings, tmp_path):
    async def body() -> None:
        server = await Server(tmp_path / "data").start()
        await publish(server, quickstart_wasm)
        conn = await (bindings.DbConnection.builder().with_uri(server.uri).with_database_name("chat")
                      .with_reconnect(initial_delay=0.1, max_delay=0.5).connect())
        ident = conn.identity
        await conn.subscription_builder().subscribe(["SELECT * FROM user", "SELECT * FROM message"])
        await conn.reducers.send_message("before")
        await server.stop()
        for _ in range(100):
            if not conn.is_active:
                break
            await asyncio.sleep(0.02)
        assert not conn.is_active
        inserted: list = []
        conn.db.message.on_insert(lambda ctx, m: inserted.append(m.text))
        server2 = Server(tmp_path / "data")
        server2.port = server.port
        await server2.start()
        await asyncio.wait_for(conn._open.wait(), 10)
        ev = await conn.reducers.send_message("after")
        assert ev.committed and conn.identity == ident
        assert sorted(m.text for m in conn.db.message) == ["after", "before"]
        assert inserted == ["after"]  # "before" survived the restart: no duplicate callback
        await conn.disconnect()
        await server2.stop()

    run(body())


def test_chat_client_example_and_sync_wrapper(quickstart_wasm, tmp_path):
    from client_sdk.sync import connect

    async def start() -> Server:
        server = await Server(tmp_path / "data").start()
        await publish(server, quickstart_wasm, "quickstart")
        return server

    loop = asyncio.new_event_loop()
    import threading
    server = loop.run_until_complete(start())
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        env = dict(os.environ, HOME=str(tmp_path), PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, str(ROOT / "examples" / "chat_client.py"), server.uri, "quickstart"],
                             input="/name Alice\nhello there\n\n", capture_output=True, text=True, env=env,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert "Alice: hello there" in out.stdout, out.stdout
        sys.path.insert(0, str(ROOT / "examples"))
        try:
            import quickstart_client
        finally:
            sys.path.remove(str(ROOT / "examples"))
        with connect(server.uri, "quickstart", bindings=quickstart_client, timeout=10) as conn:
            conn.subscribe(["SELECT * FROM message"])
            assert [m.text for m in conn.db.message] == ["hello there"]
            conn.call("send_message", "from sync")
            assert sorted(m.text for m in conn.db.message) == ["from sync", "hello there"]
            with pytest.raises(ReducerFailedError, match="must not be empty"):
                conn.call("set_name", "")
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)


def test_generate_from_server_schema(quickstart_wasm, tmp_path):
    from client_sdk.codegen import generate_python, module_def_from_server

    async def body() -> None:
        server = await Server(tmp_path / "data").start()
        await publish(server, quickstart_wasm)
        mdef = await asyncio.to_thread(module_def_from_server, server.uri, "chat")
        assert generate_python(mdef) == generate_python(module_def_from_wasm(quickstart_wasm))
        await server.stop()

    run(body())
