"""Hostile HTTP requests against a real `spacetime-py start` (issue 11): oversized bodies whatever their transfer
encoding, deeply nested or malformed arguments, bad database names and paths, oversized SQL results.  Each gets a
clear 4xx while the server stays up, /v1/ping stays fast, another database is untouched and memory stays capped."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.hostile import HOSTILE_WAT, REDUCERS, Bystander, PingProbe, Server, publish_hostile, survived, wasm

RSS_GROWTH_CAP_MIB = 100
MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("hostile-requests") / "data", {"sql_result_bytes": "1m"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def bystander(server):
    return Bystander(server)


@pytest.fixture(scope="module")
def hostile(server):
    return publish_hostile(server, "target")


def attacked(server: Server, bystander: Bystander, probe: PingProbe, rss_before: float) -> None:
    survived(server, bystander, probe, rss_before, RSS_GROWTH_CAP_MIB)


def send_chunked(server: Server, path: str, chunks, headers: dict) -> tuple[int | None, bytes]:
    """POST a chunked body; the server may answer (and close) before it is all sent."""
    c = server.conn(timeout=30)
    try:
        c.request("POST", path, body=chunks, headers={**headers, "Transfer-Encoding": "chunked"},
                  encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        r = c.getresponse()
        return r.status, r.read()
    except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
        return None, b""
    finally:
        c.close()


def json_string_body(total: int):
    """`[1, "xxxx...x"]` in 1 MiB chunks, `total` bytes in all: a valid argument list for put_blob."""
    yield b'[1, "'
    sent = 5
    while sent < total - 2:
        n = min(MiB, total - 2 - sent)
        yield b"x" * n
        sent += n
    yield b'"]'


@pytest.mark.parametrize("route", ["call/put_blob", "sql"])
def test_chunked_bodies_do_not_bypass_the_body_limit(server, bystander, hostile, route):
    before = server.rss_mib()
    headers = {"Authorization": f"Bearer {hostile}", "Content-Type": "application/json"}
    with PingProbe(server, bystander) as probe:
        status, body = send_chunked(server, f"/v1/database/target/{route}", json_string_body(64 * MiB), headers)
    assert status in (413, None), (status, body[:200])
    if status == 413:
        assert b"body_bytes" in body
    attacked(server, bystander, probe, before)
    status, body = server.sql("target", "SELECT id FROM blob", hostile)
    assert status == 200 and json.loads(body)[0]["rows"] == []  # nothing was committed


def test_a_body_just_under_the_limit_is_served(server, hostile):
    c = server.conn()
    try:
        c.request("POST", "/v1/database/target/call/put_blob", body=json_string_body(MiB),
                  headers={"Authorization": f"Bearer {hostile}", "Content-Type": "application/json"},
                  encode_chunked=True)
        r = c.getresponse()
        assert r.status == 200, r.read()
    finally:
        c.close()
    status, body = server.sql("target", "DELETE FROM blob", hostile)
    assert status == 200, body


def test_a_declared_huge_publish_is_refused_before_it_is_read(server, bystander):
    c = server.conn(timeout=10)
    try:
        c.putrequest("POST", "/v1/database")
        c.putheader("Content-Length", str(8 << 30))
        c.endheaders()
        c.send(b"\0asm")
        r = c.getresponse()
        assert r.status == 413 and b"publish_bytes" in r.read()
    finally:
        c.close()
    assert server.alive()
    bystander.check()


def test_deeply_nested_arguments_get_400(server, bystander, hostile):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        deep = b"[" * 100_000 + b"]" * 100_000
        status, body = server.request("POST", "/v1/database/target/call/insert_counter", deep,
                                      {"Content-Type": "application/json", "Authorization": f"Bearer {hostile}"})
    assert status == 400 and b"nested too deeply" in body, body
    attacked(server, bystander, probe, before)


@pytest.mark.parametrize("query", [
    "SELECT * FROM counter WHERE " + "(" * 50_000 + "id = 1" + ")" * 50_000,
    "SELECT * FROM counter WHERE id = " + "9" * 100_000,
    "SELECT * FROM counter WHERE " + " AND ".join(["id = 1"] * 20_000),
], ids=["deep-parentheses", "huge-number", "long-conjunction"])
def test_pathological_sql_gets_400(server, bystander, hostile, query):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.sql("target", query, hostile)
    assert status in (200, 400), (status, body[:300])
    assert b"Traceback" not in body
    attacked(server, bystander, probe, before)


def test_huge_numbers_in_arguments_get_400(server, hostile):
    body = b"[" + b"9" * 100_000 + b", 1]"
    status, out = server.request("POST", "/v1/database/target/call/insert_counter", body,
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {hostile}"})
    assert status == 400, out[:300]


@pytest.mark.parametrize("name, why", [
    ("a" * 5000, b"at most 64 characters"),
    ("Upper", b"invalid characters"),
    ("under_score", b"invalid characters"),
    ("-lead", b"invalid hyphen"),
    ("trail-", b"invalid hyphen"),
    ("dou--ble", b"invalid hyphen"),
])
def test_database_names_follow_upstream_rules(server, name, why):
    status, body = server.publish(wasm(HOSTILE_WAT), name, server.token())
    assert status == 400 and why in body, body
    assert server.request("GET", f"/v1/database/{name}")[0] in (400, 404)


def test_a_name_of_64_characters_is_accepted(server):
    name = "a" * 63 + "1"
    status, body = server.publish(wasm(HOSTILE_WAT), name, server.token())
    assert status == 200, body


def test_dot_segments_in_the_path_are_refused(server, hostile):
    status, body = server.publish(wasm(HOSTILE_WAT), "x/../dotted", server.token())
    assert status == 400 and b"segments" in body, body
    status, _ = server.publish(wasm(HOSTILE_WAT), "x/%2e%2e/dotted", server.token())
    assert status == 400
    assert server.request("GET", "/v1/database/dotted")[0] == 404  # nothing was created under the folded name
    status, _ = server.request("GET", "/v1/database/target/../target/schema?version=9")
    assert status == 400


def test_sql_results_are_capped_in_bytes(server, bystander, hostile):
    for i in range(8):  # 8 rows of 200 KiB: 1.6 MiB of JSON rows, over this server's 1 MiB sql_result_bytes
        status, body = server.call("target", "put_blob", [100 + i, "y" * (200 * 1024)], hostile)
        assert status == 200, body
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.sql("target", "SELECT * FROM blob", hostile)
    assert status == 400 and b"sql_result_bytes" in body, body[:300]
    status, body = server.sql("target", "SELECT id FROM blob", hostile)
    assert status == 200 and len(json.loads(body)[0]["rows"]) == 8
    attacked(server, bystander, probe, before)
    assert server.sql("target", "DELETE FROM blob", hostile)[0] == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=json_values, reducer=st.sampled_from(["insert_counter", "put_blob", "nope"]))
def test_fuzzed_json_arguments_get_a_clear_answer(server, hostile, args, reducer):
    status, body = server.call("target", reducer, args, hostile)
    assert status in (200, 400, 404), (status, body[:300])
    assert b"Traceback" not in body


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_fuzzed_raw_bodies_get_a_clear_answer(server, hostile, body):
    status, out = server.request("POST", "/v1/database/target/call/insert_counter", body,
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {hostile}"})
    assert status in (200, 400), (status, out[:300])
    status, out = server.request("POST", "/v1/database/target/sql", body, {"Authorization": f"Bearer {hostile}"})
    assert status in (200, 400), (status, out[:300])


# Every route, with the methods it answers.  Placeholders are filled with fuzzed or real values; `{db}` is the
# hostile database or a random name.  Only `follow` (a stream that stays open) is never fuzzed to true.
ROUTES = [
    ("GET", "/v1/ping"), ("GET", "/v1/health"), ("GET", "/v1/energy/{x}"), ("POST", "/v1/identity"),
    ("POST", "/v1/identity/websocket-token"), ("GET", "/v1/identity/public-key"),
    ("GET", "/v1/identity/{x}/verify"), ("GET", "/v1/identity/{x}/databases"), ("POST", "/v1/database"),
    ("PUT", "/v1/database/{db}"), ("GET", "/v1/database/{db}"), ("DELETE", "/v1/database/{db}"),
    ("GET", "/v1/database/{db}/names"), ("POST", "/v1/database/{db}/names"), ("PUT", "/v1/database/{db}/names"),
    ("GET", "/v1/database/{db}/identity"), ("POST", "/v1/database/{db}/call/{fn}"),
    ("GET", "/v1/database/{db}/schema"), ("GET", "/v1/database/{db}/logs"), ("POST", "/v1/database/{db}/sql"),
    ("POST", "/v1/database/{db}/pre_publish"), ("PUT", "/v1/database/{db}/reset"),
    ("POST", "/v1/database/{db}/lock"), ("POST", "/v1/database/{db}/unlock"),
    ("GET", "/v1/database/{db}/unstable/timestamp"), ("GET", "/v1/database/{db}/subscribe"),
    ("GET", "/v1/database/{db}/route/{x}"), ("PATCH", "/v1/database/{db}/{x}"),
]
QUERY_KEYS = ["num_lines", "follow", "version", "clear", "confirmed", "policy", "host_type", "parent", "token",
              "compression", "connection_id", "name", "x"]
HEADER_NAMES = ["Authorization", "Content-Type", "spacetime-identity", "spacetime-identity-token",
                "Sec-WebSocket-Protocol", "Upgrade", "Connection", "Accept", "Origin", "X-Fuzz"]
latin = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40)
segment = st.text(max_size=20)
SAFE_FUNCTIONS = ["insert_counter", "put_blob", "nope", ""]  # never the reducers that flood or loop


@st.composite
def fuzzed_requests(draw):
    method, template = draw(st.sampled_from(ROUTES))
    method = draw(st.sampled_from([method, method, "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]))
    path = template.format(
        db=draw(st.sampled_from(["target", "bystander-not", "Target", "a--b", "c" * 70]) | segment),
        fn=draw(st.sampled_from(SAFE_FUNCTIONS) | segment.filter(lambda s: s not in REDUCERS)),
        x=draw(segment),
    )
    path = urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~%")
    params = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), latin), max_size=4))
    params = [(k, "false" if k == "follow" else v) for k, v in params]
    if params:
        path += "?" + urllib.parse.urlencode(params)
    headers = dict(draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), latin), max_size=4)))
    if draw(st.booleans()):
        headers["Authorization"] = draw(st.sampled_from(["Bearer ", "Bearer x.y.z", "Basic Zm9vOmJhcg==",
                                                         "Bearer " + "A" * 300]) | latin)
    body = draw(st.none() | st.binary(max_size=100))
    return method, path, headers, body


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(req=fuzzed_requests())
def test_fuzzed_paths_queries_and_headers_on_every_route_get_a_clear_answer(server, hostile, req):
    """Every route, with fuzzed path segments, query strings, headers, credentials and bodies: a well-formed
    answer that is never a server error (5xx other than 501 unsupported / 530 reducer failed) or a traceback.
    None of these requests carries a valid credential, so nothing is deleted or replaced."""
    method, path, headers, body = req
    status, out = server.request(method, path, body, headers, timeout=30)
    assert status < 500 or status in (501, 530), (method, path, headers, status, out[:300])
    assert b"Traceback" not in out
    event(f"{method} {status}")


def test_the_server_is_intact_after_the_fuzzing(server, bystander, hostile):
    before = server.rss_mib()
    with PingProbe(server, bystander) as probe:
        status, body = server.sql("target", "SELECT * FROM counter", hostile)
        assert status == 200, body
    attacked(server, bystander, probe, before)
