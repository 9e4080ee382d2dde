"""The server: an aiohttp application over a data dir of databases, and `serve()` to run it.

    app = create_app("data/")                      # loads the key, reopens every database
    serve("data/", host="127.0.0.1", port=3000)    # blocks; SIGINT/SIGTERM shut down gracefully

Keys other parts of the server use: `app[REGISTRY_KEY]` (the `Registry`), `app[AUTHORITY_KEY]` (the
`TokenAuthority`), `request[AUTH]` (the caller's `Claims` on `/v1/database/...`, minted when anonymous).
The WebSocket route comes from `harness.server.websocket.setup_websocket(app)` when that module is present.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from harness.limits import LIMITS

from .auth import KeyPair, TokenAuthority
from .http import AUTH, AUTHORITY_KEY, REGISTRY_KEY, STOPPING_KEY, middleware, on_response_prepare, setup_routes
from .http import subscribe_unavailable as _subscribe_unavailable
from .registry import Registry

log = logging.getLogger("spacetime-py.server")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "spacetime-py"


def create_app(data_dir: str | Path | None = None, *, durability: str = "group",
               start_schedulers: bool = True) -> web.Application:
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    authority = TokenAuthority(KeyPair.load_or_create(data_dir))
    registry = Registry(data_dir, mint_identity=lambda: authority.mint().identity, durability=durability,
                        start_schedulers=start_schedulers)
    app = web.Application(middlewares=[middleware], client_max_size=LIMITS.publish_bytes)
    app[REGISTRY_KEY] = registry
    app[AUTHORITY_KEY] = authority
    app[STOPPING_KEY] = asyncio.Event()
    app.on_response_prepare.append(on_response_prepare)
    setup_routes(app)
    ws_endpoint = _setup_websocket(app, registry, authority)

    async def on_shutdown(app: web.Application) -> None:
        app[STOPPING_KEY].set()  # ends `logs?follow=true` streams
        if ws_endpoint is not None and hasattr(ws_endpoint, "close_all"):
            await ws_endpoint.close_all()

    async def on_cleanup(app: web.Application) -> None:
        await asyncio.to_thread(registry.close)

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def _setup_websocket(app: web.Application, registry: Registry, authority: TokenAuthority):
    """Mount `GET /v1/database/{x}/subscribe` from harness.server.websocket (same tokens as HTTP; deleted or
    replaced databases close their clients), or a 501 stand-in when that module is unavailable."""
    try:
        from . import websocket
    except ImportError as e:
        log.info("WebSocket route not available: %s", e)
        app.router.add_get("/v1/database/{name_or_identity}/subscribe", _subscribe_unavailable)
        return None
    if hasattr(websocket, "add_routes"):
        ep = websocket.add_routes(app, lambda x: registry.lookup(x).database(),
                                  websocket.TokenAuthorityAuth(authority))
        if hasattr(ep, "on_registry_event"):
            registry.subscribe(ep.on_registry_event)
        return ep
    websocket.setup_websocket(app)
    return None


def serve(data_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 3000, *,
          print_fn: Callable[[str], None] | None = print, durability: str = "group") -> None:
    """Run the server until SIGINT/SIGTERM; then close every database (commit logs flushed).  ``durability``:
    "group" (group commit by a durability thread per database, docs/durability.md), "every" (fsync inside
    every transaction) or "none" (never fsync: benchmarks only)."""
    _raise_open_files_limit()
    app = create_app(data_dir, durability=durability)

    def announce(_msg: str) -> None:  # run_app calls this once the socket is bound
        if print_fn:
            print_fn(f"spacetime-py server listening on http://{host}:{port} "
                     f"(data dir {app[REGISTRY_KEY].data_dir})")

    web.run_app(app, host=host, port=port, print=announce, shutdown_timeout=3, handle_signals=True,
                access_log=None)


def _raise_open_files_limit() -> None:
    """Lift the soft descriptor limit to the hard one (often 1024 of 1M) so `ws_connections`, not EMFILE, is
    what refuses a caller that opens many sockets; at EMFILE the server could not accept anyone at all."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


__all__ = ["AUTH", "AUTHORITY_KEY", "REGISTRY_KEY", "STOPPING_KEY", "create_app", "default_data_dir", "serve"]
