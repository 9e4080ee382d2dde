"""Group commit alone: the durability thread's fsyncs and CPU under a busy writer, commit delay 0 vs default.

Usage: python benchmarks/bench_group_commit.py [--seconds 3] [--rounds 3] [--work-us 100] [--delays 0 1]
                                                [--dir PATH]

A writer thread stands for a database executor with a deep queue (the keynote load): it burns `--work-us` of
CPU (a reducer call), appends a ~100-byte record and notifies the GroupCommitter, in a loop.  A second
configuration is a lone caller: append, notify, wait until durable, repeat (one client, one call in flight).
Each `--delays` value (ms; 0 = fsync again as soon as the previous fsync ended, the behaviour before the commit
delay) runs on a fresh log, alternating, `--rounds` times.  Reported per run: transactions/s, fsyncs/s,
transactions per fsync, the durability thread's CPU per transaction (/proc, Linux) and the append-to-durable
latency p50/p99.  Use --dir on the disk the server will use (fsync on tmpfs costs nothing).
"""

from __future__ import annotations

import argparse
import bisect
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.commitlog import CommitLog  # noqa: E402
from harness.host.durability import GroupCommitter  # noqa: E402

RECORD = b"r" * 100


def thread_cpu(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(directory: Path, delay_ms: float, seconds: float, work_us: float, lone: bool) -> str:
    log = CommitLog(directory, durability="group")
    committer = GroupCommitter(log, max_delay=delay_ms / 1e3)
    durable_at: list[tuple[int, float]] = []
    committer.add_listener(lambda off: durable_at.append((off, time.perf_counter())))
    appended: list[float] = []  # append time by offset
    lock = threading.Lock()
    work = work_us / 1e6
    end = time.perf_counter() + seconds
    cpu0 = thread_cpu(committer._thread.native_id)
    t0 = time.perf_counter()
    while (now := time.perf_counter()) < end:
        while time.perf_counter() - now < work:  # the reducer call
            pass
        with lock:
            off = log.append(RECORD)
            appended.append(time.perf_counter())
            committer.notify()
        if lone:
            committer.wait_durable(off, timeout=10)
    committer.wait_durable(log.last_offset, timeout=10)
    elapsed = time.perf_counter() - t0
    cpu = thread_cpu(committer._thread.native_id) - cpu0
    n, fsyncs = len(appended), committer.batches
    offs = [o for o, _ in durable_at]
    lat = sorted(durable_at[bisect.bisect_left(offs, o)][1] - t for o, t in enumerate(appended))
    committer.stop()
    log.close()
    return (f"{n / elapsed:8.0f} tx/s  {fsyncs / elapsed:6.0f} fsyncs/s  {n / max(fsyncs, 1):6.1f} tx/fsync  "
            f"durability CPU {cpu / n * 1e6:5.1f} us/tx  append->durable p50 {lat[len(lat) // 2] * 1e3:.2f} ms  "
            f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work-us", type=float, default=100.0, help="CPU per transaction of the writer")
    ap.add_argument("--delays", type=float, nargs="*", default=[0.0, 1.0], help="commit delays to compare (ms)")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-group-", dir=args.dir))
    try:
        for lone in (False, True):
            print("lone caller (1 call in flight):" if lone else
                  f"busy writer ({args.work_us:g} us of CPU per transaction):", flush=True)
            for rnd in range(args.rounds):
                for delay in args.delays:
                    d = base / f"{lone}-{rnd}-{delay}"
                    line = run(d, delay, args.seconds, args.work_us, lone)
                    print(f"  delay {delay:g} ms: {line}", flush=True)
                    shutil.rmtree(d)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
