"""`LocalBackend`: spacetime-py's own server (harness.server.app) in a background thread on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path

from .base import Backend


class LocalBackend(Backend):
    """The aiohttp server on an ephemeral 127.0.0.1 port, on its own event loop in a daemon thread.

    `data_dir`: where databases live (default: a temp dir, removed by `stop()`).  `durability` is passed to
    `create_app` ("every" fsyncs each commit, like a real server).
    """

    name = "local"

    def __init__(self, data_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 durability: str = "every", start_timeout: float = 30.0):
        super().__init__()
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._own_dir = False
        self.host = host
        self.port = port
        self.durability = durability
        self.start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> str:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="spacetime-py-local-"))
            self._own_dir = True
        ready = threading.Event()
        errors: list[BaseException] = []
        bound: list[int] = []

        async def main() -> None:
            from aiohttp import web

            from harness.server.app import create_app

            app = create_app(self.data_dir, durability=self.durability)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.host, self.port)
                await site.start()
                bound.append(site._server.sockets[0].getsockname()[1])
                self._loop = asyncio.get_running_loop()
                self._stop_event = asyncio.Event()
                ready.set()
                await self._stop_event.wait()
            finally:
                await runner.cleanup()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as e:  # reported by _start when it happens before `ready`
                errors.append(e)
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="spacetime-py-local-backend", daemon=True)
        self._thread.start()
        if not ready.wait(self.start_timeout):
            raise RuntimeError(f"local backend did not start within {self.start_timeout} s")
        if errors or not bound:
            self._cleanup_dir()
            raise RuntimeError(f"local backend failed to start: {errors[0] if errors else 'unknown error'}")
        self.port = bound[0]
        return f"http://{self.host}:{self.port}"

    def _stop(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:  # loop already closed
                pass
        if self._thread is not None:
            self._thread.join(30)
        self._loop = self._stop_event = self._thread = None
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
            self._own_dir = False
