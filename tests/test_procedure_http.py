"""Outbound HTTP of procedures (harness/host/http_out.py): which addresses a procedure may reach and how a failed
request is worded.  The expected texts are what the real SpacetimeDB 2.8.3 server returned to the same requests
made from a Python procedure (`HttpError` text; docs/real-server/more-clients.txt)."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading

import pytest

from harness.host import http_out
from harness.host.abi import HttpFailure
from module_sdk.http import decode_response, encode_request

BLOCKED = "refusing to connect to private or special-purpose addresses"
NO_DNS = "client error (Connect): dns error: failed to lookup address information: "

# (uri, what the real server said); "..." ends a text whose tail is the resolver's own message
REAL_SERVER = [
    ("http://foo.invalid", f"error sending request for url (http://foo.invalid/): {NO_DNS}..."),
    ("http://FOO.invalid:80/a/../b?x=secret#frag",
     f"error sending request for url (http://foo.invalid/b): {NO_DNS}..."),
    ("https://foo.invalid:8443/p", f"error sending request for url (https://foo.invalid:8443/p): {NO_DNS}..."),
    ("http://user:pw@foo.invalid/", f"error sending request for url (http://user:pw@foo.invalid/): {NO_DNS}..."),
    ("HTTP://foo.invalid/", f"error sending request for url (http://foo.invalid/): {NO_DNS}..."),
    ("http://0.0.0.0/", BLOCKED),
    ("http://240.0.0.1/", BLOCKED),
    ("http://192.0.2.1/nope", BLOCKED),
    ("http://[fe80::1]/", BLOCKED),
    ("http://[::ffff:127.0.0.1]/", BLOCKED),
    ("http://127.0.0.1:3000/v1/database/x/schema?version=9", BLOCKED),
    ("http://localhost:1/", "error sending request for url (http://localhost:1/): client error (Connect): dns error: "
                            f"{BLOCKED}"),
    ("", "empty string"),
    ("http://", "invalid format"),
    ("foo.invalid/x", "invalid format"),
    ("http://exa mple.com/", "invalid uri character"),
    ("ftp://foo.invalid/", "builder error for url (ftp://foo.invalid/): URL scheme is not allowed"),
]


def failure(uri: str, policy: str) -> str:
    with pytest.raises(HttpFailure) as e:
        http_out.perform(encode_request("GET", uri), b"", policy)
    return str(e.value)


@pytest.mark.parametrize("uri, expected", REAL_SERVER)
def test_refusals_are_worded_as_the_real_server(uri, expected):
    """Policy "public" is upstream's production rule (no loopback either); nothing here opens a connection."""
    got = failure(uri, "public")
    if expected.endswith("..."):
        assert got.startswith(expected[:-3]) and len(got) > len(expected), got
    else:
        assert got == expected


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def get(uri: str, policy: str) -> tuple[int, bytes]:
    head, body = http_out.perform(encode_request("GET", uri), b"", policy)
    return decode_response(head)[0], body


@pytest.mark.parametrize("policy", ["loopback", "any"])
def test_loopback_is_reachable_locally(echo_port, policy):
    """The local host allows loopback (upstream does in its test builds), by address and by name."""
    assert get(f"http://127.0.0.1:{echo_port}/a?b=c", policy) == (200, b"/a?b=c")
    assert get(f"http://localhost:{echo_port}/x", policy) == (200, b"/x")


def test_special_purpose_addresses_are_refused_under_every_policy():
    for policy in ("loopback", "any", "public"):
        assert failure("http://192.168.1.1/", policy) == BLOCKED
        assert failure("http://[fc00::1]/", policy) == BLOCKED


def test_the_default_policy_allows_loopback_only():
    """A public address is refused before any connection is made."""
    msg = failure("http://1.1.1.1/x?token=secret", "loopback")
    assert msg.startswith("error sending request for url (http://1.1.1.1/x): ") and "only allows loopback" in msg
    assert "secret" not in msg


def test_off_refuses_everything(echo_port):
    assert failure(f"http://127.0.0.1:{echo_port}/", "off") == "module outbound HTTP requests are disabled"


def test_connection_refused_is_worded_as_reqwest():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    assert failure(f"http://127.0.0.1:{port}/p?q=1", "loopback") == (
        f"error sending request for url (http://127.0.0.1:{port}/p): client error (Connect): tcp connect error: "
        "Connection refused (os error 111)")


@pytest.mark.parametrize("addr, blocked", [
    ("10.1.2.3", True), ("100.64.0.1", True), ("100.128.0.1", False), ("172.16.0.1", True), ("172.32.0.1", False),
    ("169.254.1.1", True), ("198.18.0.1", True), ("198.20.0.1", False), ("203.0.113.9", True),
    ("255.255.255.255", True),
    ("93.184.216.34", False), ("::", True), ("64:ff9b::1", True), ("2001:db8::1", True), ("2002::1", True),
    ("fe80::1", True), ("2606:4700::1111", False),
])
def test_blocked_addresses_follow_upstream(addr, blocked):
    assert http_out.is_blocked_ip(ipaddress.ip_address(addr)) is blocked
    assert http_out.is_blocked_ip(ipaddress.ip_address("127.0.0.1"), allow_loopback=False)
    assert not http_out.is_blocked_ip(ipaddress.ip_address("::1"), allow_loopback=True)
