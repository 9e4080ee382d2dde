"""Compare two normalised transcripts step by step, listing every differing JSON path, minus the known deviations.

    python -m tests.transcripts.compare tests/data/transcripts/quickstart.json /tmp/ours/quickstart.json
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Deviation:
    """A known difference: in ``module``, step ``step`` (its label), JSON paths starting with ``path`` (``""`` =
    the whole step) may differ, for ``reason``.  All three are patterns where only ``*`` is special."""

    module: str
    step: str
    path: str
    reason: str

    def covers(self, module: str, step: str, path: str) -> bool:
        return bool(_glob(self.module).fullmatch(module) and _glob(self.step).fullmatch(step)
                    and _glob(self.path + "*").fullmatch(path))


def _glob(pattern: str) -> re.Pattern:
    """``*`` matches anything; every other character (brackets included: paths have ``[0]``) is literal."""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.DOTALL)


def diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """JSON paths (``.key`` / ``[i]``) where ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                out.append(f"{path}.{k}")
            else:
                out += diff_paths(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += diff_paths(x, y, f"{path}[{i}]")
        return out
    return [] if (a == b and type(a) is type(b)) else [path]


_ROW_LISTS = ("rows", "inserts", "deletes", "events")


def _unordered_rows(v: Any, key: str | None = None) -> Any:
    """Row lists sorted: a server's row order (SQL without ORDER BY, subscription rows) is unspecified; so is the
    order of the tables in a QueryRows or in a query set's update."""
    if isinstance(v, dict):
        return {k: _unordered_rows(x, k) for k, x in v.items()}
    if isinstance(v, list):
        items = [_unordered_rows(x) for x in v]
        if key in _ROW_LISTS or (key == "tables" and all(isinstance(x, dict) and ("table" in x or "table_name" in x)
                                                         for x in items)):
            # QueryRows.tables and a query set's table updates: upstream lists them in hash-map order
            return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
        return items
    return v


def _sorted(items: list) -> list:
    return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))


def _unordered_v10(body: Any) -> Any:
    """A `/schema?version=10` body with upstream's hash-map ordered lists sorted: the `Tables`, `Types` and
    `Schedules` and `RowLevelSecurity` sections, each table's indexes, constraints and sequences, and the
    tables' `ExplicitNames` entries (upstream re-exports them from hash maps)."""
    if not (isinstance(body, dict) and isinstance(body.get("sections"), list)):
        return body
    sections = []
    for sec in body["sections"]:
        (key, items), = sec.items()
        if key == "Tables":
            items = _sorted([{k: (_sorted(v) if k in ("indexes", "constraints", "sequences") else v)
                              for k, v in t.items()} for t in items])
        elif key in ("Types", "Schedules", "RowLevelSecurity"):  # Schedules: collected in the tables' order
            items = _sorted(items)
        elif key == "ExplicitNames":  # its table entries come in the tables' order
            entries = items["entries"]
            items = {**items, "entries": _sorted([e for e in entries if "Table" in e])
                     + [e for e in entries if "Table" not in e]}
        sections.append({key: items})
    return {**body, "sections": sections}


_RLS_LOG = "Creating row level security "


def _unordered_rls_logs(lines: list) -> list:
    """Module log lines with each run of ``Creating row level security `SQL` `` lines sorted: upstream logs them
    while iterating the module def's row-level-security hash map, so their order differs from run to run."""
    out: list = []
    run: list = []
    for line in lines + [None]:
        if isinstance(line, dict) and str(line.get("message", "")).startswith(_RLS_LOG):
            run.append(line)
            continue
        out += _sorted(run)
        run = []
        if line is not None:
            out.append(line)
    return out


def _strip(step: dict) -> dict:
    step = {k: v for k, v in step.items() if k != "raw_frames_hex"}
    body = step.get("body")
    if step.get("step") == "schema v10" and "body" in step:
        step["body"] = _unordered_v10(body)
    elif step.get("step") == "schema v9" and isinstance(body, dict) and "row_level_security" in body:
        # upstream's RawModuleDefV9 export lists row-level security from a hash map too
        step["body"] = {**body, "row_level_security": _sorted(body["row_level_security"])}
    if isinstance(step.get("body_lines"), list):
        step["body_lines"] = _unordered_rls_logs(step["body_lines"])
    return _unordered_rows(step)


def compare(module: str, expected: list[dict], actual: list[dict],
            known: list[Deviation] = ()) -> tuple[list[str], set[Deviation]]:
    """(readable report of unexplained differences, the deviations that were needed)."""
    problems: list[str] = []
    used: set[Deviation] = set()
    if [s["step"] for s in expected] != [s["step"] for s in actual]:
        problems.append("the steps differ:\n" + "\n".join(difflib.unified_diff(
            [s["step"] for s in expected], [s["step"] for s in actual], "real server", "ours", lineterm="")))
        return problems, used
    for e, a in zip(expected, actual, strict=True):
        e, a = _strip(e), _strip(a)
        unexplained = []
        for p in diff_paths(e, a):
            dev = next((d for d in known if d.covers(module, e["step"], p)), None)
            if dev is None:
                unexplained.append(p)
            else:
                used.add(dev)
        if unexplained:
            ej = json.dumps(e, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
            aj = json.dumps(a, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
            problems.append(f"step {e['step']!r} differs at {', '.join(unexplained[:8])}"
                            + (f" (+{len(unexplained) - 8} more)" if len(unexplained) > 8 else "") + ":\n"
                            + "\n".join(list(difflib.unified_diff(ej, aj, "real server", "ours", lineterm="",
                                                                  n=2))[:80]))
    return problems, used


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    exp, act = (json.load(open(p)) for p in argv[:2])
    problems, _ = compare(exp["module"], exp["steps"], act["steps"])
    print("\n\n".join(problems) or "same")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
