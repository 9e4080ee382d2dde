"""Run every example against a server with both CLIs and print a transcript (how examples.txt was made).

    python docs/real-server/run_examples.py --server http://127.0.0.1:3850 --wasm-dir DIR \
        --spacetime 'spacetimedb-cli --root-dir CLI_ROOT' --describe-dir OUT > examples.txt

DIR holds `<example>.wasm` from `spacetime-py build examples/<example> -o DIR/<example>.wasm`. The real CLI
(`--spacetime`, logged in to the server as its default) publishes each example as `real-<example>` and
`spacetime-py publish` as `py-<example>`; then the real CLI runs the example's calls, SQL, a subscription (with
a call made while it waits), `logs` and `describe --json` on `real-*`, and `spacetime-py` the same on `py-*`
(no `subscribe` verb). Run it once against the real server and once against `spacetime-py start`, then
`--normalize` both and diff them (diff-vs-spacetime-py-start.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ID1 = "0x" + "0" * 63 + "1"
ID2 = "0x" + "0" * 63 + "2"
ID3 = "0x" + "0" * 63 + "3"


def ident(h: str) -> str:
    return json.dumps({"__identity__": h})


# per example: steps (verb, args...) run with both CLIs; ("sub", query, n, trigger-call-args) is a subscription
# (real CLI only) with a call made once the initial rows are printed; ("sleep", s); ("curl", method, path, body)
EXAMPLES: dict[str, list[tuple]] = {
    "quickstart": [
        ("call", "set_name", '"Alice"'), ("call", "send_message", '"hello world"'), ("call", "send_message", '""'),
        ("call", "no_such_reducer"), ("call", "send_message", "1", "2"),
        ("sql", "SELECT * FROM message"), ("sql", "SELECT name, online FROM user"), ("sql", "SELECT * FROM nope"),
        ("sub", "SELECT * FROM message", 1, ("send_message", '"while subscribed"')),
    ],
    "reminders": [
        ("call", "remind_me", '"tea"', "200"), ("sleep", 1.0), ("sql", "SELECT what FROM fired"),
        ("sql", "SELECT * FROM reminder"),
        ("sub", "SELECT * FROM fired", 1, ("remind_me", '"cake"', "100")),
    ],
    "sdk_test": [
        ("call", "insert_one_u8", "7"), ("call", "insert_one_u_8", "7"), ("call", "insert_one_string", '"héllo"'),
        ("call", "insert_pk_u_32", "1", "2"), ("call", "insert_pk_u_32", "1", "3"),
        ("call", "insert_one_identity", ident(ID1)), ("call", "insert_caller_one_identity"),
        ("call", "insert_one_simple_enum", '{"zero": []}'), ("call", "insert_one_simple_enum", '{"Zero": []}'),
        ("call", "no_op_succeeds"),
        ("sql", "SELECT * FROM one_u8"), ("sql", "SELECT * FROM one_u_8"), ("sql", "SELECT * FROM one_string"),
        ("sql", "SELECT * FROM pk_u_32"), ("sql", "SELECT * FROM one_identity"),
        ("sql", "SELECT * FROM one_simple_enum"), ("sql", "SELECT COUNT(*) AS n FROM one_u_8"),
        ("sub", "SELECT * FROM one_u_8", 1, ("insert_one_u_8", "9")),
    ],
    "keynote": [
        ("call", "seed", "3", "100"), ("call", "transfer", "0", "1", "30"), ("call", "transfer", "1", "1", "5"),
        ("sql", "SELECT * FROM accounts"),
        ("curl", "POST", "call/transfer", '{"from": 1, "to": 2, "amount": 7}'),
        ("sql", "SELECT * FROM accounts WHERE id = 2"),
        ("sub", "SELECT * FROM accounts WHERE id = 0", 1, ("transfer", "0", "2", "1")),
    ],
    "http_api": [
        ("call", "add_note", '"apple"'), ("call", "add_note", '"zebra"'),
        ("sql", "SELECT text FROM note"), ("sql", "SELECT text FROM short_notes"),
        ("curl", "GET", "route/notes", None),
        ("sub", "SELECT * FROM short_notes", 1, ("add_note", '"banana"')),
    ],
    "sdk_test_view": [
        ("call", "insert_player", ident(ID1), "0"), ("call", "insert_player", ident(ID2), "1"),
        ("call", "insert_player", ID3, "0"),
        ("sql", "SELECT * FROM players_at_level_0"), ("sql", "SELECT * FROM player"),
        ("sql", "SELECT * FROM my_player"), ("sql", "SELECT * FROM player_location"),
        ("sub", "SELECT * FROM players_at_level_0", 1, ("delete_player", ident(ID1))),
    ],
    "sdk_test_view_pk": [
        ("call", "insert_view_pk_player", "1", '"a"'), ("call", "insert_view_pk_membership", "1", "1"),
        ("call", "update_view_pk_player", "1", '"b"'),
        ("sql", "SELECT * FROM all_view_pk_players"), ("sql", "SELECT * FROM sender_view_pk_players_a"),
        ("sub", "SELECT * FROM all_view_pk_players", 1, ("update_view_pk_player", "1", '"c"')),
    ],
    "sdk_test_procedural_view_pk": [
        ("call", "insert_left", "1", "5"), ("call", "insert_right", "2", "5"),
        ("sql", "SELECT * FROM sender_left_view"), ("sql", "SELECT id, filter FROM left_source"),
        ("sub", "SELECT * FROM sender_left_view", 1, ("update_left", "1", "6")),
    ],
    "sdk_test_case_conversion": [
        ("call", "CreatePlayer1", '"alice"', "2"), ("call", "create_player_1", '"alice"', "2"),
        ("call", "add_person_2", '"bob"', "1", "30", "100"), ("call", "banPlayer1", "1", "9"),
        ("sql", "SELECT * FROM player1"), ("sql", "SELECT * FROM Player1Canonical"),
        ("sql", "SELECT * FROM person_2"), ("sql", "SELECT * FROM Level2Person"),
        ("sub", "SELECT * FROM person_2", 1, ("add_person_2", '"carol"', "1", "40", "5")),
    ],
    "sdk_test_procedure": [
        ("call", "return_primitive", "1", "2"), ("call", "return_struct", "3", '"x"'),
        ("call", "return_enum_a", "4"), ("call", "return_enum_b", '"y"'), ("call", "will_panic"),
        ("call", "insert_with_tx_commit"), ("call", "insert_with_tx_rollback"), ("call", "invalid_request"),
        ("sql", "SELECT * FROM my_table"),
        ("sub", "SELECT * FROM proc_inserts_into", 1, ("schedule_proc",)),
    ],
    "sdk_test_connect_disconnect": [
        ("call", "identity_connected"), ("sql", "SELECT COUNT(*) AS n FROM disconnected"),
        ("sub", "SELECT * FROM disconnected", 1, ("--anonymous", "identity_connected")),
    ],
    "sdk_test_event_table": [
        ("call", "emit_test_event", '"a"', "1"), ("call", "noop"), ("sql", "SELECT * FROM test_event"),
        ("sub", "SELECT * FROM test_event", 1, ("emit_multiple_test_events",)),
    ],
    "sdk_test_procedure_concurrency": [
        ("call", "insert_reducer_row"), ("call", "procedure_schedule_reducer_between_inserts"),
        ("sleep", 1.0), ("sql", "SELECT insertion_context FROM procedure_concurrency_row"),
        ("sub", "SELECT * FROM procedure_concurrency_row", 2, ("schedule_procedure_then_reducer",)),
    ],
}


class Runner:
    def __init__(self, server: str, wasm_dir: Path, spacetime: list[str], describe_dir: Path | None) -> None:
        self.server, self.wasm_dir, self.spacetime, self.describe_dir = server, wasm_dir, spacetime, describe_dir
        self.py = ["spacetime-py"]

    def show(self, argv: list[str], out: str, rc: int, shown: list[str] | None = None) -> None:
        print("$ " + shlex.join(shown or argv))
        if out:
            print(out.rstrip("\n"))
        print(f"[exit {rc}]\n", flush=True)

    def run(self, real: bool, args: list[str], shown: list[str] | None = None, show: bool = True,
            stdout_file: Path | None = None) -> str:
        argv = (self.spacetime if real else self.py) + args + ([] if real else ["--server", self.server])
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "250"})
        out = p.stderr + p.stdout
        if stdout_file is not None:
            stdout_file.write_text(p.stdout)
            out = p.stderr
        if show:
            self.show(argv, out, p.returncode, (["spacetime" if real else "spacetime-py"] + (shown or args)))
        return p.stdout

    def subscribe(self, db: str, query: str, n: int, trigger: tuple) -> None:
        argv = self.spacetime + ["subscribe", db, query, "--print-initial-update", "-n", str(n), "-t", "30"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        lines: list[str] = []
        first = threading.Event()

        def pump() -> None:
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("{"):
                    first.set()
            first.set()

        t = threading.Thread(target=pump)
        t.start()
        first.wait(30)
        time.sleep(0.5)
        flags = [a for a in trigger if a.startswith("--")]  # e.g. --anonymous: a fresh identity calls
        trigger = tuple(a for a in trigger if not a.startswith("--"))
        trig = subprocess.run(self.spacetime + ["call", *flags, db, *trigger], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        rc = proc.wait(60)
        t.join()
        shown = ["spacetime", "subscribe", db, query, "--print-initial-update", "-n", str(n), "-t", "30"]
        called = shlex.join([*flags, db, *trigger])
        self.show(argv, "".join(lines) + f"  (while waiting: spacetime call {called} -> exit {trig.returncode})",
                  rc, shown)

    def example(self, name: str, steps: list[tuple]) -> None:
        wasm = self.wasm_dir / f"{name}.wasm"
        dbs = {True: "real-" + name.replace("_", "-"), False: "py-" + name.replace("_", "-")}
        print(f"######## {name}")
        self.run(True, ["publish", "--bin-path", str(wasm), dbs[True], "-y"])
        self.run(False, ["publish", "-b", str(wasm), dbs[False], "-y"])
        for real in (True, False):
            db = dbs[real]
            print(f"######## {name} with {'spacetime (real CLI)' if real else 'spacetime-py'}")
            for step in steps:
                verb = step[0]
                if verb == "sleep":
                    time.sleep(step[1])
                elif verb == "call":
                    self.run(real, ["call", db, *step[1:]])
                elif verb == "sql":
                    self.run(real, ["sql", db, step[1]])
                elif verb == "sub":
                    if real:
                        self.subscribe(db, step[1], step[2], step[3])
                elif verb == "curl":
                    _, method, path, body = step
                    url = f"{self.server}/v1/database/{db}/{path}"
                    argv = ["curl", "-s", "-w", r"\n%{http_code}\n", "-X", method, url]
                    if body is not None:
                        argv += ["-H", "content-type: application/json", "-d", body]
                    p = subprocess.run(argv, capture_output=True, text=True)
                    self.show(argv, p.stdout, p.returncode)
            time.sleep(0.5)
            self.run(real, ["logs", db])
            out = None
            if self.describe_dir is not None:
                out = self.describe_dir / f"{'real-cli' if real else 'py-cli'}-{name}.json"
            self.run(real, ["describe", db, "--json"], shown=["describe", db, "--json", ">", f"{name}.json"],
                     stdout_file=out)


_SUBS = [
    (re.compile(r"(0x)?c200[0-9a-f]{60}"), "<ID>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)"), "<TS>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "<HOST>"),
    (re.compile(r'"__timestamp_micros_since_unix_epoch__":\s*\d+'), '"__timestamp_micros_since_unix_epoch__":<N>'),
    (re.compile(r'"__connection_id__":\s*\d+'), '"__connection_id__":<N>'),
    (re.compile(r"(Created new database with name: [\w-]+, identity: |Created new database [\w-]+ \()<ID>"),
     r"\1<ID>"),
]


def normalize(text: str) -> str:
    """Identities, timestamps, host:port and connection ids replaced, so two runs can be diffed."""
    for pat, rep in _SUBS:
        text = pat.sub(rep, text)
    return text.replace("real-", "DB-").replace("py-", "DB-")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server")
    ap.add_argument("--wasm-dir", type=Path)
    ap.add_argument("--spacetime", help="the real CLI command line (logged in, this server as its default)")
    ap.add_argument("--describe-dir", type=Path)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--normalize", type=Path, help="print this transcript normalized and exit")
    a = ap.parse_args(argv)
    if a.normalize:
        sys.stdout.write(normalize(a.normalize.read_text()))
        return 0
    r = Runner(a.server, a.wasm_dir, shlex.split(a.spacetime), a.describe_dir)
    for name, steps in EXAMPLES.items():
        if not a.only or name in a.only:
            r.example(name, steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
