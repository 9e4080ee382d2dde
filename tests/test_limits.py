"""harness.limits: every limit is documented, and settable by name, environment and size suffix."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from harness.limits import LIMITS, Limits, load_env, parse_size, set_limit

DOC = (Path(__file__).parent.parent / "docs" / "limits.md").read_text()


@pytest.mark.parametrize("name", [f.name for f in fields(Limits)])
def test_every_limit_has_a_row_in_docs_limits_md(name):
    assert f"| `{name}` |" in DOC, f"docs/limits.md has no row for {name}"


def test_sizes_counts_env_and_unknown_names(monkeypatch):
    assert parse_size("64k") == 64 << 10 and parse_size("16MiB") == 16 << 20 and parse_size("1_000") == 1000
    with pytest.raises(ValueError):
        parse_size("0")
    for f in fields(Limits):
        monkeypatch.setattr(LIMITS, f.name, getattr(LIMITS, f.name))  # restored after the test
    set_limit("ws-inflight-messages", "7")
    load_env({"SPACETIME_PY_QUERY_TEXT_BYTES": "2k", "SPACETIME_PY_DURABLE_WAIT_MS": "1500"})
    assert (LIMITS.ws_inflight_messages, LIMITS.query_text_bytes, LIMITS.durable_wait_ms) == (7, 2048, 1500)
    with pytest.raises(ValueError, match="known: .*subscription_queries"):
        set_limit("subscriptions", "1")
    with pytest.raises(ValueError, match="module_def_items"):
        set_limit("module_def_items", "-3")
