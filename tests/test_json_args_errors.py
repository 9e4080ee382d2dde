"""Upstream's wording for refused JSON call arguments (harness/server/json_args_errors.py), checked against the
answers of the real SpacetimeDB 2.8.3 in tests/data/call_args_errors (quickstart's send_message and sdk_test's
insert_one_* reducers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.server.json_args_errors import describe
from spacetime_core.sats.types import BOOL, F32, I32, STRING, U8, U64, ProductType

REAL = json.loads((Path(__file__).parent / "data" / "call_args_errors" / "real_server.json").read_text())

PARAMS = {  # the reducers' parameters, as the two modules declare them
    "send_message": ProductType([("text", STRING)]),
    "insert_one_u_8": ProductType([("n", U8)]),
    "insert_one_u_64": ProductType([("n", U64)]),
    "insert_one_i_32": ProductType([("n", I32)]),
    "insert_one_bool": ProductType([("b", BOOL)]),
    "insert_one_f_32": ProductType([("f", F32)]),
    "insert_one_string": ProductType([("s", STRING)]),
}
DESCRIBED = [a for a in REAL["answers"] if a["status"] == 400 and a["function"] in PARAMS]


@pytest.mark.parametrize("answer", DESCRIBED, ids=lambda a: f"{a['function']} {a['body']}")
def test_refusals_worded_as_the_real_server(answer):
    fn = answer["function"]
    assert f"invalid arguments for reducer {fn}: " + describe(answer["body"], PARAMS[fn], fn) == answer["text"]


def test_cases_not_reproduced_keep_our_message():
    identity = ProductType([("i", ProductType([("__identity__", STRING)]))])  # a special type: not described
    assert describe('[{"__identity__": 5}]', identity, "insert_one_identity") is None
    assert describe('["ok"]', PARAMS["send_message"], "send_message") is None  # nothing wrong
    assert describe('{"a": 1, "b": 2}', ProductType([("a", U8), ("b", U8)]), "two") is None  # names not checked
    assert describe("[" * 300 + "]" * 300, PARAMS["send_message"], "send_message") is None  # too deep


def test_positions_count_lines_and_utf8_bytes():
    msg = describe('[\n  "é",\n  7]', ProductType([("a", STRING), ("b", STRING)]), "f")
    assert msg.endswith("[1]: invalid type: integer `7`, expected a string at line 3 column 3")
    assert describe('["é"] x', PARAMS["send_message"], "send_message").startswith(
        "trailing characters at line 1 column 8: ")  # é is two bytes
