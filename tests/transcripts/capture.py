"""Record what a SpacetimeDB server answers to a fixed scenario per example module (issue 9: differential
transcripts).  Run once against the real server to produce the test data, and by tests/test_transcripts.py against
ours to compare:

    python -m tests.transcripts.capture --server http://127.0.0.1:3200 --out tests/data/transcripts

For each module in ``scenarios.SCENARIOS`` it builds the module, creates two identities, publishes it under a
fresh name, runs the steps (HTTP requests and v2 BSATN WebSocket clients) and writes ``<module>.json``: every
answer decoded to JSON (WebSocket messages through ``spacetime_core.protocol``, rows through the module's schema)
plus the raw frames in hex.  Nondeterministic values (identities, connection ids, tokens, timestamps, durations,
energy, the database name) are replaced by placeholders numbered by first appearance, so two equal ids in one
transcript stay equal and the transcript can be compared with one from another server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from spacetime_core.protocol import (
    V2_BSATN,
    CallReducer,
    OneOffQuery,
    ReducerOutcome,
    Subscribe,
    Unsubscribe,
    decode_reducer_error,
    decode_server_frame,
    encode_client,
)
from spacetime_core.sats import ConnectionId, Err, Identity, Ok, TimeDuration, Timestamp, decode, encode
from spacetime_core.sats.satsjson import (
    product_type_from_json,
    type_from_json,
    typed_value_to_json,
    typespace_from_json,
    value_from_json,
)
from spacetime_core.sats.types import TAG_PRODUCT, TAG_SUM, ArrayType, RefType

from .scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
#: Headers worth comparing (lower case); all ``spacetime-*`` headers are recorded too.
HEADERS = ("content-type", "location", "www-authenticate")
#: Header values / JSON keys that measure time or energy: recorded as present, not by value.
MEASURES = {"spacetime-energy-used", "spacetime-execution-duration-micros", "total_duration_micros",
            "energy_quanta_used", "total_host_execution_duration", "execution_duration_micros"}
QUIET_S = 0.3       # a client is drained until it has been silent this long
TERMINAL_S = 10.0   # longest wait for the answer to a client's own request


def build_modules(names: list[str], out_dir: Path) -> dict[str, bytes]:
    """Build each module once (the build cache makes repeats fast)."""
    from module_sdk.build import build

    out_dir.mkdir(parents=True, exist_ok=True)
    return {n: build(ROOT / SCENARIOS[n][0], out_dir / f"{n}.wasm").output.read_bytes() for n in names}


# ---------------------------------------------------------------------------------------------------------
# Decoding WebSocket messages to JSON
# ---------------------------------------------------------------------------------------------------------

class Schema:
    """Row and reducer-parameter types from the server's ``/schema?version=9``."""

    def __init__(self, v9: dict) -> None:
        self.ts = typespace_from_json(v9["typespace"])
        self.rows: dict[str, Any] = {}
        for t in v9.get("tables", []):
            self.rows[t["name"]] = RefType(t["product_type_ref"])
        for e in v9.get("misc_exports", []):
            view = e.get("View") if isinstance(e, dict) else None
            if view:
                rt = type_from_json(view["return_type"])
                while not isinstance(rt, RefType) and (rt.tag != TAG_PRODUCT or _is_query(rt)):
                    # Vec<T> / Option<T> / {__query__: T} (a query-builder view): rows are T
                    rt = rt.elem if isinstance(rt, ArrayType) else rt.elements[0][1]
                self.rows[view["name"]] = rt
        self.params = {r["name"]: product_type_from_json(r["params"]) for r in v9.get("reducers", [])}

    def row_json(self, table: str, row: bytes) -> Any:
        t = self.rows.get(table)
        if t is None:
            return {"undecoded": row.hex()}
        return typed_value_to_json(t, decode(t, row, self.ts), self.ts)

    def encode_args(self, reducer: str, args: list) -> bytes:
        t = self.params.get(reducer)
        if t is None:
            return b""
        return encode(t, value_from_json(t, args, self.ts), self.ts)


def _is_query(t: Any) -> bool:
    return t.tag == TAG_PRODUCT and len(t.elements) == 1 and t.elements[0][0] == "__query__"


def message_json(msg: Any, schema: Schema, table: str | None = None) -> Any:
    """A decoded protocol object as JSON: products as objects, sums as ``{variant: payload}``, rows decoded."""
    if isinstance(msg, Identity):
        return {"__identity__": msg.to_hex()}
    if isinstance(msg, ConnectionId):
        return {"__connection_id__": msg.to_u128()}
    if isinstance(msg, Timestamp):
        return {"__timestamp_micros_since_unix_epoch__": msg.to_micros()}
    if isinstance(msg, TimeDuration):
        return {"__time_duration_micros__": msg.to_micros()}
    if isinstance(msg, (bytes, bytearray)):
        return bytes(msg).hex()
    if isinstance(msg, list):
        return [message_json(x, schema, table) for x in msg]
    if isinstance(msg, (Ok, Err)):
        return {type(msg).__name__.lower(): message_json(msg.value, schema, table)}
    st = getattr(type(msg), "__sats_type__", None)
    if st is None:
        return msg
    name = type(msg).__name__
    if name == "BsatnRowList":
        return [schema.row_json(table or "", r) for r in msg.rows()]
    if st.tag == TAG_SUM:
        payload = msg.value
        if isinstance(msg, ReducerOutcome) and msg.tag == "Err":
            return {"Err": decode_reducer_error(bytes(payload))}
        return {msg.tag: message_json(payload, schema, table) if payload is not None else []}
    out = {}
    for field, _ in st.elements:
        v = getattr(msg, field)
        if field in ("table", "table_name"):
            table = v
        out[field] = message_json(v, schema, table)
    return {name: out} if name in _SERVER_MESSAGES else out


_SERVER_MESSAGES = {"InitialConnection", "SubscribeApplied", "UnsubscribeApplied", "SubscriptionError",
                    "TransactionUpdate", "OneOffQueryResult", "ReducerResult", "ProcedureResult"}


# ---------------------------------------------------------------------------------------------------------
# Running a scenario
# ---------------------------------------------------------------------------------------------------------

class _Client:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.closed: dict | None = None

    async def recv(self, timeout: float) -> tuple[list, bytes] | None:
        """The next frame's messages and raw bytes; None on timeout or once closed."""
        if self.closed is not None:
            return None
        try:
            m = await self.ws.receive(timeout=timeout)
        except TimeoutError:
            return None
        if m.type == aiohttp.WSMsgType.BINARY:
            return decode_server_frame(m.data), m.data
        if m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            self.closed = {"close_code": self.ws.close_code, "reason": m.extra or ""}
        else:
            self.closed = {"unexpected": str(m.type), "data": str(m.data)[:200]}
        return None


def _terminal(kind: str, rid: int | None):
    """Which received message ends the wait after a client's own request."""
    def ends(msg: Any) -> bool:
        n = type(msg).__name__
        if kind == "connect":
            return n == "InitialConnection"
        if getattr(msg, "request_id", None) != rid:
            return False
        return {"subscribe": n in ("SubscribeApplied", "SubscriptionError"),
                "unsubscribe": n in ("UnsubscribeApplied", "SubscriptionError"),
                "oneoff": n == "OneOffQueryResult",
                "call": n == "ReducerResult", "call_raw": n == "ReducerResult"}.get(kind, False)
    return ends


class Run:
    """One scenario against one server; ``steps`` is the raw (not yet normalised) transcript."""

    def __init__(self, base: str, module: str, wasm: bytes) -> None:
        self.base = base.rstrip("/")
        self.module = module
        self.wasm = wasm
        self.db = f"tr-{module.replace('_', '-')}-{secrets.token_hex(4)}"
        self.tokens: dict[str, str] = {}
        self.secrets: dict[str, set] = {"identity": set(), "connection_id": set(), "token": set()}
        self.clients: dict[str, _Client] = {}
        self.steps: list[dict] = []
        self.schema: Schema | None = None

    async def http(self, method: str, path: str, body: Any = None, auth: str | None = None) -> dict:
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {self.tokens[auth]}"
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode()
        elif body is None:
            data = None
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.base + path.format(db=self.db), data=data,
                                        headers=headers) as r:
            raw = await r.read()
            rec: dict[str, Any] = {"status": r.status, "headers": {
                k.lower(): v for k, v in r.headers.items()
                if k.lower() in HEADERS or k.lower().startswith("spacetime-")}}
        # an anonymous request is given a fresh identity, announced in these headers
        if "spacetime-identity" in rec["headers"]:
            self.secrets["identity"].add(rec["headers"]["spacetime-identity"].lower().removeprefix("0x"))
        if "spacetime-identity-token" in rec["headers"]:
            self.secrets["token"].add(rec["headers"]["spacetime-identity-token"])
        text = raw.decode("utf-8", errors="replace")
        try:
            rec["body"] = json.loads(text) if text.strip() else text
        except ValueError:
            lines = text.splitlines()
            try:  # logs: one JSON object per line
                rec["body_lines"] = [json.loads(x) for x in lines if x.strip()]
            except ValueError:
                rec["body"] = text
        return rec

    async def run(self, steps: list) -> list[dict]:
        async with aiohttp.ClientSession() as self.session:
            for who in ("owner", "other"):
                rec = await self.http("POST", "/v1/identity")
                self.tokens[who] = rec["body"]["token"]
                self.secrets["token"].add(rec["body"]["token"])
                self.secrets["identity"].add(rec["body"]["identity"].lower().removeprefix("0x"))
                if who == "owner":
                    self.steps.append({"step": "create identity", **rec})
            rec = await self.http("PUT", "/v1/database/{db}", self.wasm, "owner")
            self.steps.append({"step": "publish", **rec})
            body = rec.get("body")
            if isinstance(body, dict):
                for v in body.get("Success", body).values():
                    if isinstance(v, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", v):
                        self.secrets["identity"].add(v.lower().removeprefix("0x"))
            if rec["status"] >= 300:
                return self.steps
            self.schema = Schema((await self.http("GET", "/v1/database/{db}/schema?version=9"))["body"])
            try:
                for step in steps:
                    await self.step(step)
            finally:
                for c in self.clients.values():
                    await c.ws.close()
        return self.steps

    async def step(self, step: tuple) -> None:
        kind = step[0]
        if kind == "http":
            _, label, method, path, body, auth = step
            rec = await self.http(method, path, body, auth)
            self.steps.append({"step": label, "request": {"method": method, "path": path}, **rec})
            return
        who = step[1]
        if kind == "sleep":  # then record what arrived meanwhile (scheduled reducers)
            await asyncio.sleep(step[1])
            who = None
        rid = None
        if kind == "connect":
            url = self.base.replace("http", "ws", 1) + f"/v1/database/{self.db}/subscribe?compression=None"
            ws = await self.session.ws_connect(url, protocols=(V2_BSATN,),
                                               headers={"Authorization": f"Bearer {self.tokens[step[2]]}"})
            self.clients[who] = _Client(self.session, ws)
            label = f"{who} connect ({step[2]}) [{ws.protocol}]"
        elif kind == "disconnect":
            await self.clients[who].ws.close()
            label = f"{who} disconnect"
        elif kind == "sleep":
            label = f"sleep {step[1]}s"
        else:
            rid = step[2]
            if kind == "subscribe":
                msg = Subscribe(rid, step[3], list(step[4]))
                label = f"{who} subscribe #{rid} {step[4]}"
            elif kind == "unsubscribe":
                msg = Unsubscribe(rid, step[3])
                label = f"{who} unsubscribe #{rid} query set {step[3]}"
            elif kind == "oneoff":
                msg = OneOffQuery(rid, step[3])
                label = f"{who} one-off #{rid} {step[3]!r}"
            elif kind == "call":
                msg = CallReducer(rid, 0, step[3], self.schema.encode_args(step[3], step[4]))
                label = f"{who} call #{rid} {step[3]}{json.dumps(step[4])}"
            elif kind == "call_raw":
                msg = CallReducer(rid, 0, step[3], bytes.fromhex(step[4]))
                label = f"{who} call #{rid} {step[3]} raw args {step[4]}"
            else:
                raise ValueError(f"unknown step {step!r}")
            await self.clients[who].ws.send_bytes(encode_client(msg))
        received: dict[str, list] = {}
        raw: dict[str, list] = {}

        def take(name: str, got: tuple[list, bytes]) -> None:
            received.setdefault(name, []).extend(message_json(m, self.schema) for m in got[0])
            raw.setdefault(name, []).append(got[1].hex())
            for m in got[0]:
                if type(m).__name__ == "InitialConnection":
                    self.secrets["identity"].add(m.identity.to_hex().lower())
                    self.secrets["connection_id"].add(m.connection_id.to_u128())
                    self.secrets["token"].add(m.token)

        if kind not in ("disconnect", "sleep"):  # wait for the actor's own answer
            ends = _terminal(kind, rid)
            deadline = time.monotonic() + TERMINAL_S
            done = False
            while not done and time.monotonic() < deadline:
                got = await self.clients[who].recv(deadline - time.monotonic())
                if got is None:
                    break
                take(who, got)
                done = any(ends(m) for m in got[0])
            if not done:
                received.setdefault(who, []).append({"no answer": self.clients[who].closed or "timeout"})
        for name, c in self.clients.items():  # then whatever else arrives, to anyone
            if name == who and kind == "disconnect":
                continue
            while (got := await c.recv(QUIET_S)) is not None:
                take(name, got)
            if c.closed is not None and not c.ws.closed:
                received.setdefault(name, []).append({"closed": c.closed})
        self.steps.append({"step": label, "received": received, "raw_frames_hex": raw})


# ---------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------

def program_hash(program: bytes) -> bytes:
    """Keccak-256 of the module (what the real server reports as ``initial_program``, as a u256)."""
    import sha3

    return sha3.keccak_256(program).digest()


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_NOW_US = time.time() * 1e6
_YEAR_US = 366 * 86400 * 1e6


class Normaliser:
    """Replaces nondeterministic values by ``<kind#n>``, n counted by first appearance in document order."""

    def __init__(self, db: str, found: dict[str, set], program: bytes) -> None:
        self.db = db
        digest = program_hash(program)
        self.hashes = {digest.hex(): "<keccak256(program)>", digest[::-1].hex(): "<keccak256(program) as u256>"}
        self.identities = {x.lower() for x in found["identity"]}
        self.conn_ids = set(found["connection_id"])
        self.conn_hex = {f"{c:032x}" for c in self.conn_ids}
        self.tokens = sorted(found["token"], key=len, reverse=True)
        self.seen: dict[tuple, str] = {}

    def ph(self, kind: str, key: Any) -> str:
        k = (kind, key)
        if k not in self.seen:
            self.seen[k] = f"<{kind}#{1 + sum(1 for x in self.seen if x[0] == kind)}>"
        return self.seen[k]

    def string(self, s: str) -> str:
        for t in self.tokens:
            if t and t in s:
                s = s.replace(t, self.ph("token", t))
        s = s.replace(self.db, "<database-name>")
        for h, name in self.hashes.items():
            s = s.replace(h, name)
        s = _HEX64.sub(lambda m: self.ph("identity", m[0].lower()) if m[0].lower() in self.identities else m[0], s)
        return _HEX32.sub(lambda m: self.ph("connection_id", m[0].lower()) if m[0].lower() in self.conn_hex
                          else m[0], s)

    def value(self, v: Any, key: str | None = None) -> Any:
        if key in MEASURES:
            return "<measure>"
        if isinstance(v, dict):
            if len(v) == 1:
                (k, x), = v.items()
                if k == "__timestamp_micros_since_unix_epoch__" and isinstance(x, int) and self.is_now(x):
                    return {k: self.ph("timestamp", x)}
                if k == "__connection_id__" and x in self.conn_ids:
                    return {k: self.ph("connection_id", f"{x:032x}")}
            return {k: self.value(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, int) and not isinstance(v, bool):
            if v in self.conn_ids:
                return self.ph("connection_id", f"{v:032x}")
            if key == "ts" and self.is_now(v):  # log lines: not tied to any reducer's timestamp
                return "<log-time>"
            if key is None and self.is_now(v):
                return self.ph("timestamp", v)
        return v

    @staticmethod
    def is_now(x: int) -> bool:
        return abs(x - _NOW_US) < _YEAR_US


def normalise(run: Run) -> list[dict]:
    """The transcript of ``run`` with nondeterministic values replaced (raw frames left out of it: they are kept
    beside it for reference, never compared)."""
    n = Normaliser(run.db, run.secrets, run.wasm)
    out = []
    for st in run.steps:
        st = dict(st)
        raw = st.pop("raw_frames_hex", None)
        st = n.value(st)
        if raw is not None:
            st["raw_frames_hex"] = raw
        out.append(st)
    return out


async def capture(base: str, module: str, wasm: bytes) -> list[dict]:
    run = Run(base, module, wasm)
    await run.run(SCENARIOS[module][1])
    return normalise(run)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:3200")
    ap.add_argument("--out", type=Path, required=True, help="directory for <module>.json")
    ap.add_argument("--server-version", default="", help="recorded in each file (e.g. the upstream git describe)")
    ap.add_argument("modules", nargs="*", default=list(SCENARIOS))
    a = ap.parse_args(argv)
    wasms = build_modules(a.modules, Path(tempfile.gettempdir()) / "spacetime-py-transcripts")
    for m in a.modules:
        steps = asyncio.run(capture(a.server, m, wasms[m]))
        a.out.mkdir(parents=True, exist_ok=True)
        doc = {"module": m, "example": SCENARIOS[m][0], "server_version": a.server_version, "steps": steps}
        (a.out / f"{m}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"{m}: {len(steps)} steps -> {a.out / (m + '.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
