"""Crash test: every offset acknowledged before SIGKILL must be in the reopened log with its exact payload.

A child process appends in a loop and prints each offset only after it is acknowledged (append returned
under "every"; a commit_barrier covering it returned under "group", with appends running on another
thread). The parent SIGKILLs it at an arbitrary moment, three times in a row on the same directory (so later
runs also exercise recovery of whatever the previous kill left behind), then checks the acknowledged set.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.commitlog import CommitLog

REPO = Path(__file__).resolve().parents[1]


def payload(i: int) -> bytes:
    return hashlib.blake2b(str(i).encode(), digest_size=32).digest() * (1 + i % 13)


CHILD_SRC = (
    "import hashlib\n"
    + inspect.getsource(payload)
    + """
import sys, threading
sys.path.insert(0, sys.argv[1])
from harness.commitlog import CommitLog
log = CommitLog(sys.argv[2], durability=sys.argv[3], max_segment_size=16384)
out = sys.stdout
if sys.argv[3] == "every":
    while True:
        i = log.next_offset
        off = log.append(payload(i))
        assert off == i
        out.write(f"{off}\\n")
        out.flush()
else:
    def writer():
        i = log.next_offset
        while True:
            if i % 7 == 0:
                log.append_many([payload(j) for j in range(i, i + 5)])
                i += 5
            else:
                log.append(payload(i))
                i += 1
    acked = log.last_offset
    threading.Thread(target=writer, daemon=True).start()
    while True:
        durable = log.commit_barrier()
        if durable > acked:
            out.write("".join(f"{o}\\n" for o in range(acked + 1, durable + 1)))
            out.flush()
            acked = durable
"""
)


def run_and_kill(directory: Path, policy: str, want: int, max_seconds: float = 1.5) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_SRC, str(REPO), str(directory), policy],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    buf = b""
    deadline = time.monotonic() + max_seconds
    fd = proc.stdout.fileno()
    while buf.count(b"\n") < want and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            buf += os.read(fd, 65536)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    buf += proc.stdout.read()  # lines already printed were acknowledged too
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, err
    lines = buf.split(b"\n")[:-1]  # a final line without newline was cut mid-print: not counted
    return [int(x) for x in lines]


@pytest.mark.parametrize("policy", ["every", "group"])
def test_acknowledged_records_survive_sigkill(tmp_path: Path, policy: str) -> None:
    acked: list[int] = []
    recovered_end = 0
    for _ in range(3):
        got = run_and_kill(tmp_path, policy, want=300)
        assert got, "child acknowledged nothing"
        # each run acknowledges consecutive offsets, starting where the previous crash's log ended
        assert got == list(range(recovered_end, recovered_end + len(got)))
        acked += got
        with CommitLog(tmp_path, durability="none") as log:
            present = dict(log.replay())
            assert sorted(present) == list(range(len(present)))  # contiguous from 0
            for off in acked:
                assert off in present, f"acknowledged tx {off} lost"
                assert present[off] == payload(off)
            for off, data in present.items():  # unacknowledged but present records are intact too
                assert data == payload(off)
            recovered_end = len(present)
    assert len(list((tmp_path / "commitlog").glob("*.log"))) > 1  # rollovers happened under the kills
