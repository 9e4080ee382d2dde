"""Outbound HTTP for procedures (`procedure_http_request`, module-abi.md §4.4, bsatn.md §7.4).

Policy (`Database(outbound_http=...)`): `"loopback"` (default) only lets a procedure reach 127.0.0.0/8 and ::1
(a host name must resolve to loopback addresses only), `"any"` lets it reach anything, `"off"` refuses every
request.  A refused or failed request (policy, DNS, connect, timeout, bad URI) gets no response: the module
sees HTTP_ERROR (21) with a BSATN String explaining why.  An HTTP error status (404, 500) is a response.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass, field

from harness.datastore import BsatnDecodeError

from .abi import HttpFailure

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 500.0
MAX_RESPONSE_BYTES = 64 << 20
POLICIES = ("loopback", "any", "off")
_U32 = struct.Struct("<I")


@dataclass
class HttpRequest:
    method: str
    uri: str
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timeout_s: float | None = None
    version: int = 2  # HttpVersion tag: 0.9, 1.0, 1.1, 2, 3


class _R:
    def __init__(self, b: bytes):
        self.b, self.p = b, 0

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.b):
            raise BsatnDecodeError("HttpRequest is truncated")
        out = self.b[self.p:self.p + n]
        self.p += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def bytes_(self) -> bytes:
        return self.take(self.u32())

    def str_(self) -> str:
        try:
            return self.bytes_().decode("utf-8")
        except UnicodeDecodeError:
            raise BsatnDecodeError("HttpRequest has invalid UTF-8") from None


def decode_request(data: bytes) -> HttpRequest:
    """BSATN HttpRequest {method, headers, timeout: Option<TimeDuration>, uri, version}; errno 3 if malformed."""
    r = _R(bytes(data))
    tag = r.u8()
    if tag < len(METHODS):
        method = METHODS[tag]
    elif tag == 9:
        method = r.str_()
    else:
        raise BsatnDecodeError(f"invalid HttpMethod tag {tag}")
    headers = [(r.str_(), r.bytes_()) for _ in range(r.u32())]
    opt = r.u8()
    if opt == 0:
        timeout = struct.unpack("<q", r.take(8))[0] / 1e6
    elif opt == 1:
        timeout = None
    else:
        raise BsatnDecodeError(f"invalid Option tag {opt}")
    uri = r.str_()
    version = r.u8()
    if version > 4:
        raise BsatnDecodeError(f"invalid HttpVersion tag {version}")
    if r.p != len(r.b):
        raise BsatnDecodeError("HttpRequest has trailing bytes")
    return HttpRequest(method, uri, headers, timeout, version)


def encode_response(code: int, headers: list[tuple[str, bytes]], version: int) -> bytes:
    """BSATN HttpResponse {headers: HttpHeaders{entries}, version: HttpVersion, code: u16}."""
    out = [_U32.pack(len(headers))]
    for name, value in headers:
        n = name.encode("utf-8")
        out += [_U32.pack(len(n)), n, _U32.pack(len(value)), value]
    out.append(bytes([version]))
    out.append(struct.pack("<H", code))
    return b"".join(out)


def _is_loopback(host: str, port: int) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as e:
        raise HttpFailure(f"cannot resolve {host}: {e}") from None
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def perform(request: bytes, body: bytes, policy: str = "loopback") -> tuple[bytes, bytes]:
    """Send one request; returns (BSATN HttpResponse, body) or raises HttpFailure / BsatnDecodeError."""
    req = decode_request(request)
    url = urllib.parse.urlsplit(req.uri)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise HttpFailure(f"unsupported URI {req.uri!r}: only http:// and https:// URLs with a host")
    port = url.port or (443 if url.scheme == "https" else 80)
    if policy == "off":
        raise HttpFailure("outbound HTTP is disabled on this host")
    if policy != "any" and not _is_loopback(url.hostname, port):
        raise HttpFailure(f"outbound HTTP to {url.hostname} refused: this host only allows loopback addresses "
                          "(start it with outbound_http='any' to allow more)")
    timeout = min(req.timeout_s if req.timeout_s and req.timeout_s > 0 else DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S)
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
    deadline = time.monotonic() + timeout
    try:
        conn = cls(url.hostname, port, timeout=timeout)
        try:
            conn.putrequest(req.method, path, skip_accept_encoding=True)
            for name, value in req.headers:
                conn.putheader(name, value)
            if body or req.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES:
                raise HttpFailure(f"response body larger than {MAX_RESPONSE_BYTES} bytes")
            if time.monotonic() > deadline:
                raise HttpFailure(f"request timed out after {timeout:g}s")
            headers = [(k, v.encode("latin-1")) for k, v in resp.getheaders()]
            version = {9: 0, 10: 1, 11: 2}.get(resp.version, 2)
            return encode_response(resp.status, headers, version), data
        finally:
            conn.close()
    except HttpFailure:
        raise
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise HttpFailure(f"{req.method} {req.uri} failed: {type(e).__name__}: {e}") from None
