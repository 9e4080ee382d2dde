"""`DockerBackend`: the real SpacetimeDB server (image clockworklabs/spacetime) from docker-compose.yml.

    b = DockerBackend()            # docker-compose.yml of this repo, or an embedded copy when installed elsewhere
    reason = b.unavailable_reason()  # None, or why it cannot run here (no docker CLI, no engine)
    b.start()                      # `docker compose up -d`, find the published port, wait for /v1/ping
    b.stop()                       # `docker compose down -v`

Without the compose plugin (or docker-compose) the same image and command run with `docker run`.

Settings (arguments, else environment):
    SPACETIME_PY_DOCKER_IMAGE    image (default DEFAULT_IMAGE, a pinned 2.x tag)
    SPACETIME_PY_COMPOSE_FILE    the compose file
    SPACETIME_PY_DOCKER_URL      use an already running server at this URL instead (no docker commands)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from .base import Backend, BackendUnavailable

DEFAULT_IMAGE = "clockworklabs/spacetime:v2.10.2"
SERVICE = "spacetime"
CONTAINER_PORT = 3000
REPO_COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"

# Used when the package is installed without the repository's docker-compose.yml (kept equal to it).
EMBEDDED_COMPOSE = f"""\
services:
  {SERVICE}:
    image: ${{SPACETIME_PY_DOCKER_IMAGE:-{DEFAULT_IMAGE}}}
    command: ["start", "--listen-addr", "0.0.0.0:{CONTAINER_PORT}"]
    ports:
      - "127.0.0.1:${{SPACETIME_PY_DOCKER_PORT:-}}:{CONTAINER_PORT}"
"""


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, *, image: str | None = None, compose_file: str | Path | None = None,
                 url: str | None = None, project: str | None = None, docker: str = "docker",
                 pull_timeout: float = 900.0, start_timeout: float = 120.0, **_ignored):
        super().__init__()
        self.image = image or os.environ.get("SPACETIME_PY_DOCKER_IMAGE") or DEFAULT_IMAGE
        cf = compose_file or os.environ.get("SPACETIME_PY_COMPOSE_FILE")
        self.compose_file: Path | None = Path(cf) if cf else (REPO_COMPOSE_FILE if REPO_COMPOSE_FILE.is_file()
                                                               else None)
        self.external_url = url or os.environ.get("SPACETIME_PY_DOCKER_URL") or None
        self.project = project or f"spacetime-py-test-{uuid.uuid4().hex[:8]}"
        self.docker = docker
        self.pull_timeout = pull_timeout
        self.start_timeout = start_timeout
        self._exe = docker
        self._compose: list[str] | None = None
        self._container: str | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._up = False

    # ------------------------------------------------------------------ availability
    def unavailable_reason(self) -> str | None:
        """None when the backend can start here, else a one-line reason (used as the pytest skip reason)."""
        if self.external_url:
            return None
        exe = shutil.which(self.docker)
        if exe is None:
            return f"docker CLI {self.docker!r} not found on PATH"
        try:
            r = subprocess.run([exe, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                               timeout=20)
        except subprocess.TimeoutExpired:
            return "Docker engine not reachable: `docker info` timed out"
        except OSError as e:
            return f"cannot run docker: {e}"
        if r.returncode != 0 or not r.stdout.strip():
            detail = _first_line(r.stderr) or _first_line(r.stdout) or f"exit status {r.returncode}"
            return f"Docker engine not reachable (`docker info` failed: {detail})"
        self._exe = exe
        self._compose = self._find_compose(exe)  # None: fall back to `docker run` of the same image and command
        return None

    def _find_compose(self, exe: str) -> list[str] | None:
        try:
            if subprocess.run([exe, "compose", "version"], capture_output=True, timeout=20).returncode == 0:
                return [exe, "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
        legacy = shutil.which("docker-compose")
        return [legacy] if legacy else None

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> str:
        if self.external_url:
            from client_sdk.http import normalize_server

            return normalize_server(self.external_url)
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(reason)
        self._up = True  # from here on, stop() removes what was started even if starting fails half way
        if self._compose is not None:
            self._run("up", "-d", timeout=self.pull_timeout)
            out = self._run("port", SERVICE, str(CONTAINER_PORT), timeout=60).strip().splitlines()
        else:
            self._container = self.project
            self._docker("run", "-d", "--rm", "--name", self._container, "-p", f"127.0.0.1::{CONTAINER_PORT}",
                         self.image, "start", "--listen-addr", f"0.0.0.0:{CONTAINER_PORT}", timeout=self.pull_timeout)
            out = self._docker("port", self._container, str(CONTAINER_PORT), timeout=60).strip().splitlines()
        if not out or ":" not in out[0]:
            raise RuntimeError(f"docker backend: cannot find the published port of {SERVICE}:{CONTAINER_PORT}")
        port = out[0].rsplit(":", 1)[1]
        return f"http://127.0.0.1:{port}"

    def _wait_ready(self, url: str, timeout: float | None = None) -> None:
        super()._wait_ready(url, self.start_timeout if timeout is None else timeout)

    def _stop(self) -> None:
        if self._up:
            self._up = False
            try:
                if self._compose is not None:
                    self._run("down", "-v", "--remove-orphans", timeout=120)
                elif self._container is not None:
                    self._docker("rm", "-f", "-v", self._container, timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _diagnostics(self) -> str:
        if not self._up:
            return ""
        try:
            if self._compose is not None:
                text = self._run("logs", "--tail", "50", SERVICE, timeout=30)
            else:
                text = self._docker("logs", "--tail", "50", str(self._container), timeout=30)
            return "\n--- server log (tail) ---\n" + text
        except (RuntimeError, subprocess.TimeoutExpired):
            return ""

    # ------------------------------------------------------------------ helpers
    def _compose_file(self) -> Path:
        if self.compose_file is not None:
            return self.compose_file
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="spacetime-py-compose-")
            (Path(self._tmp.name) / "docker-compose.yml").write_text(EMBEDDED_COMPOSE)
        return Path(self._tmp.name) / "docker-compose.yml"

    def _run(self, *args: str, timeout: float) -> str:
        """A compose command on this backend's project."""
        assert self._compose is not None
        return self._exec([*self._compose, "-f", str(self._compose_file()), "-p", self.project, *args], timeout)

    def _docker(self, *args: str, timeout: float) -> str:
        return self._exec([self._exe, *args], timeout)

    def _exec(self, cmd: list[str], timeout: float) -> str:
        env = {**os.environ, "SPACETIME_PY_DOCKER_IMAGE": self.image}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""
