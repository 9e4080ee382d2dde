"""Servers a module's end-to-end tests run against, behind one interface (`Backend`):

    LocalBackend()    spacetime-py's own server (harness.server) on 127.0.0.1, ephemeral port, temp data dir
    DockerBackend()   the real SpacetimeDB server from docker-compose.yml (image clockworklabs/spacetime)

Both are driven over the same HTTP API (client_sdk.http):

    with LocalBackend() as b:                       # start() ... stop()
        ident = b.publish("chat", "examples/quickstart")   # a module path (built), a .wasm path, or wasm bytes
        b.call("chat", "send_message", "hi")
        b.sql("chat", "SELECT * FROM message")      # the server's JSON: [{"schema", "rows", ...}]
        b.logs("chat")                              # [{"level", "message", ...}]
        identity, token = b.new_identity()

`DockerBackend.start()` raises `BackendUnavailable` (with `.reason`) when there is no docker CLI, no engine
(`docker info` fails) or no compose; the pytest plugin turns that into a skip.
"""

from __future__ import annotations

from client_sdk.http import HttpError

from .base import Backend, BackendUnavailable
from .docker import DEFAULT_IMAGE, DockerBackend
from .local import LocalBackend

BACKENDS = {"local": LocalBackend, "docker": DockerBackend}


def make_backend(name: str, **kwargs) -> Backend:
    """A not yet started backend by name: "local" or "docker"."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown spacetime backend {name!r} (expected one of: {', '.join(BACKENDS)})") from None
    return cls(**kwargs)


__all__ = ["BACKENDS", "DEFAULT_IMAGE", "Backend", "BackendUnavailable", "DockerBackend", "HttpError",
           "LocalBackend", "make_backend"]
