"""Outbound HTTP for procedures (`procedure_http_request`, module-abi.md §4.4, bsatn.md §7.4).

Policy (`Database(outbound_http=...)`): `"loopback"` (default) only lets a procedure reach 127.0.0.0/8 and ::1
(of the addresses a host name resolves to, only loopback ones are used); `"any"` applies upstream's rule: every
address except private and special-purpose ones (RFC 6890: 10/8, 192.168/16, link-local, documentation, ...)
with loopback allowed as in upstream's test builds; `"public"` is upstream's production rule (loopback refused
too); `"off"` refuses every request.  A refused or failed request (policy, DNS, connect, timeout, bad URI) gets
no response: the module sees HTTP_ERROR (21) with a BSATN String saying why, worded as upstream's errors.  An
HTTP error status (404, 500) is a response.
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
MAX_TIMEOUT_S = 180.0  # upstream HTTP_MAX_TIMEOUT
MAX_RESPONSE_BYTES = 64 << 20
POLICIES = ("loopback", "any", "public", "off")
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


BLOCKED = "refusing to connect to private or special-purpose addresses"
DISABLED = "module outbound HTTP requests are disabled"
_URI_BAD_CHARS = frozenset(' "<>\\^`{|}') | {chr(c) for c in range(0x20)} | {chr(0x7F)}


def is_blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool = True) -> bool:
    """Upstream's rule for procedure HTTP: private-use and special-purpose addresses (RFC 6890 and the IANA
    registries) are refused; loopback too, unless allowed (upstream's `allow_loopback_http_for_tests`)."""
    if ip.version == 4:
        a, b, c, d = ip.packed
        return (a in (0, 10) or (a == 100 and b & 0xC0 == 0x40) or (a == 127 and not allow_loopback)
                or (a, b) in ((169, 254), (192, 168)) or (a == 172 and b & 0xF0 == 16)
                or (a, b, c) in ((192, 0, 0), (192, 0, 2), (192, 31, 196), (192, 52, 193), (192, 88, 99),
                                 (192, 175, 48), (198, 51, 100), (203, 0, 113))
                or (a == 198 and b & 0xFE == 18) or a & 0xF0 == 0xF0)
    s = struct.unpack(">8H", ip.packed)
    if ip == ipaddress.IPv6Address("::1"):
        return not allow_loopback
    return (ip == ipaddress.IPv6Address("::") or s[:6] == (0x64, 0xFF9B, 0, 0, 0, 0) or s[:3] == (0x64, 0xFF9B, 1)
            or s[:6] == (0, 0, 0, 0, 0, 0xFFFF) or s[:4] in ((0x100, 0, 0, 0), (0x100, 0, 0, 1))
            or (s[0] == 0x2001 and (s[1] & 0xFE00 == 0 or s[1] == 0xDB8)) or s[0] == 0x2002
            or s[:3] == (0x2620, 0x4F, 0x8000)
            or (s[0] == 0x3FFF and s[1] & 0xF000 == 0) or s[0] == 0x5F00 or s[0] & 0xFE00 == 0xFC00
            or s[0] & 0xFFC0 == 0xFE80)


def _allowed(ip, policy: str) -> bool:
    if policy == "loopback":
        return ip.is_loopback and not (ip.version == 6 and ip.ipv4_mapped)
    return not is_blocked_ip(ip, allow_loopback=policy == "any")


def _shown_url(url: urllib.parse.SplitResult) -> str:
    """The URL as upstream's errors show it (reqwest's `for url (...)`): scheme and host lower-cased, default port
    and fragment dropped, `.`/`..` segments resolved, and no query (it may hold secrets)."""
    scheme = url.scheme.lower()
    host = (url.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = url.port
    except ValueError:
        port = None
    netloc = host if port in (None, {"http": 80, "https": 443}.get(scheme)) else f"{host}:{port}"
    if "@" in url.netloc:
        netloc = url.netloc.rsplit("@", 1)[0] + "@" + netloc
    parts: list[str] = []
    for seg in (url.path or "/").split("/")[1:]:
        if seg == "..":
            if parts:
                parts.pop()
        elif seg != ".":
            parts.append(seg)
    if (url.path or "/").rsplit("/", 1)[-1] in (".", ".."):
        parts.append("")
    return f"{scheme}://{netloc}/" + "/".join(parts)


def _parse_uri(uri: str) -> urllib.parse.SplitResult:
    """Refuse what upstream's `http::Uri` parser refuses, with its messages."""
    if not uri:
        raise HttpFailure("empty string")
    if any(ch in _URI_BAD_CHARS or ord(ch) > 0x7E for ch in uri):
        raise HttpFailure("invalid uri character")
    url = urllib.parse.urlsplit(uri)
    if not url.scheme or "://" not in uri or not url.netloc:
        raise HttpFailure("invalid format")
    try:
        _ = url.port
    except ValueError:
        raise HttpFailure("invalid port") from None
    if url.scheme.lower() not in ("http", "https"):
        raise HttpFailure(f"builder error for url ({_shown_url(url)}): URL scheme is not allowed")
    if not url.hostname:
        raise HttpFailure("invalid format")
    return url


def _addresses(host: str, port: int, policy: str, shown: str) -> list[str]:
    """The addresses a request may connect to, in resolver order; refusals worded as upstream's."""
    def fail(why: str) -> HttpFailure:
        return HttpFailure(f"error sending request for url ({shown}): client error (Connect): dns error: {why}")

    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not _allowed(literal, policy):
            if policy == "loopback" and not is_blocked_ip(literal, allow_loopback=True):
                raise HttpFailure(f"error sending request for url ({shown}): outbound HTTP to {host} refused: this "
                                  "host only allows loopback addresses (Database(outbound_http='any') allows more)")
            raise HttpFailure(BLOCKED)
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise fail(f"failed to lookup address information: {e.strerror}") from None
    except (OSError, UnicodeError) as e:
        raise fail(f"failed to lookup address information: {e}") from None
    addrs = list(dict.fromkeys(i[4][0].split("%")[0] for i in infos))
    allowed = [a for a in addrs if _allowed(ipaddress.ip_address(a), policy)]
    if allowed:
        return allowed
    if policy == "loopback" and any(not is_blocked_ip(ipaddress.ip_address(a)) for a in addrs):
        raise fail(f"{host} is not a loopback address: this host only allows loopback addresses "
                   "(Database(outbound_http='any') allows more)")
    raise fail(BLOCKED)


def perform(request: bytes, body: bytes, policy: str = "loopback") -> tuple[bytes, bytes]:
    """Send one request; returns (BSATN HttpResponse, body) or raises HttpFailure / BsatnDecodeError.

    Failures are worded as upstream's (reqwest's error chain: `error sending request for url (URL): ...`,
    with the query left out of URL), so module code that inspects them behaves the same on both hosts."""
    req = decode_request(request)
    if policy == "off":
        raise HttpFailure(DISABLED)
    url = _parse_uri(req.uri)
    shown = _shown_url(url)
    scheme = url.scheme.lower()
    port = url.port or (443 if scheme == "https" else 80)
    addrs = _addresses(url.hostname, port, policy, shown)
    timeout = min(req.timeout_s if req.timeout_s and req.timeout_s > 0 else DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S)
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
    deadline = time.monotonic() + timeout
    try:
        conn = cls(url.hostname, port, timeout=timeout)
        conn._create_connection = _connector(addrs, port)  # only the checked addresses (no second lookup)
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
                raise HttpFailure(f"error decoding response body for url ({shown}): the body is larger than "
                                  f"{MAX_RESPONSE_BYTES} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError
            headers = [(k, v.encode("latin-1")) for k, v in resp.getheaders()]
            version = {9: 0, 10: 1, 11: 2}.get(resp.version, 2)
            return encode_response(resp.status, headers, version), data
        finally:
            conn.close()
    except HttpFailure:
        raise
    except TimeoutError:
        raise HttpFailure(f"error sending request for url ({shown}): operation timed out") from None
    except ConnectionRefusedError as e:
        raise HttpFailure(f"error sending request for url ({shown}): client error (Connect): tcp connect error: "
                          f"{e.strerror} (os error {e.errno})") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise HttpFailure(f"error sending request for url ({shown}): {type(e).__name__}: {e}") from None


def _connector(addrs: list[str], port: int):
    def connect(_address, timeout=None, source_address=None):
        err: OSError | None = None
        for a in addrs:
            try:
                return socket.create_connection((a, port), timeout, source_address)
            except OSError as e:
                err = e
        raise err or OSError("no address to connect to")

    return connect
