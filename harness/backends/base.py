"""The `Backend` interface: a running SpacetimeDB-compatible server reached over its HTTP API."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from client_sdk.http import SpacetimeHttp


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (e.g. no Docker engine); `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_wasm(wasm_or_path: bytes | str | Path) -> bytes:
    """Wasm bytes as is; a `.wasm` file read; anything else is a module source (file or folder) and is built."""
    if isinstance(wasm_or_path, (bytes, bytearray, memoryview)):
        return bytes(wasm_or_path)
    path = Path(wasm_or_path)
    if path.suffix == ".wasm":
        return path.read_bytes()
    from module_sdk.build import build

    with tempfile.TemporaryDirectory(prefix="spacetime-py-build-") as tmp:
        return build(path, Path(tmp) / "module.wasm").output.read_bytes()


class Backend:
    """Start/stop a server and talk to it.  Subclasses implement `_start()` (returning the base URL) and `_stop()`.

    Every request is made with the backend's *owner* identity (created at start) unless `token=` is given, so
    the databases it publishes are its own and their logs and private tables are readable.
    """

    name = "?"

    def __init__(self) -> None:
        self._url: str | None = None
        self.owner_identity: str | None = None
        self.owner_token: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> str:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def start(self) -> Backend:
        if self._url is None:
            url = self._start()
            try:
                self._wait_ready(url)
                self._url = url
                self.owner_identity, self.owner_token = SpacetimeHttp(url).create_identity()
            except BaseException:
                self._url = None
                self._stop()
                raise
        return self

    def stop(self) -> None:
        if self._url is not None:
            self._url = None
            self._stop()

    @property
    def running(self) -> bool:
        return self._url is not None

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _wait_ready(self, url: str, timeout: float = 60.0) -> None:
        api = SpacetimeHttp(url, timeout=5)
        deadline = time.monotonic() + timeout
        while not api.ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} backend: no answer from {url}/v1/ping after {timeout:.0f} s"
                                   + self._diagnostics())
            time.sleep(0.1)

    def _diagnostics(self) -> str:
        return ""

    # ------------------------------------------------------------------ HTTP API
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"the {self.name} backend is not running (call start())")
        return self._url

    def api(self, token: str | None = None) -> SpacetimeHttp:
        """An HTTP client for the server, authenticated as the owner unless `token` is given."""
        return SpacetimeHttp(self.url, token if token is not None else self.owner_token)

    def new_identity(self) -> tuple[str, str]:
        """A fresh identity from the server: (identity hex, token)."""
        return SpacetimeHttp(self.url).create_identity()

    def publish(self, name: str, wasm_or_path: bytes | str | Path, clear: bool = False, *,
                token: str | None = None) -> str:
        """Create (or update; `clear=True` wipes the data) database `name`; returns its identity (hex)."""
        res = self.api(token).publish(load_wasm(wasm_or_path), name, clear=clear)
        return res["database_identity"]

    def call(self, db: str, reducer: str, *args: Any, token: str | None = None) -> Any:
        """Call a reducer (None) or procedure (its JSON result) with JSON-able args; failures raise HttpError."""
        return self.api(token).call(db, reducer, list(args))

    def sql(self, db: str, query: str, *, token: str | None = None) -> list[dict]:
        """The server's SQL answer: one {"schema", "rows", ...} per statement."""
        return self.api(token).sql(db, query)

    def logs(self, db: str, num_lines: int | None = None) -> list[dict]:
        """The database's log records ({"level", "message", "filename", ...}), oldest first."""
        return self.api().logs(db, num_lines)

    def delete(self, db: str) -> None:
        self.api().delete(db)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url or 'stopped'}>"
