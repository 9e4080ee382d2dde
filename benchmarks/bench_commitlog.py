"""Commit log throughput: appends/s per durability policy against raw os.write (+ os.fsync) of the same bytes.

Usage: python benchmarks/bench_commitlog.py [--payload 256] [--seconds 0.4] [--reps 5] [--dir PATH]

Each CommitLog configuration is paired with a raw baseline measured in the same run on the same
filesystem, writing the identical frame bytes with the identical number of fsyncs:
  none        <-> os.write per record, no fsync
  every       <-> os.write + os.fsync per record
  group xK    <-> K appends then one commit_barrier  vs  one os.write of K frames + one os.fsync
  many xK     <-> append_many(K)                     vs  the same raw batch
The ratio is log/raw appends/s (1.0 = no overhead beyond the syscalls). fsync latency on shared or
virtual disks drifts a lot within seconds, so raw and log runs alternate ``--reps`` times and the medians
are reported. Use --dir on the disk the server
will use: fsync on tmpfs costs nothing and makes every policy look alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.commitlog import CommitLog
from harness.commitlog.segment import encode_frame


def timed(seconds: float, step: Callable[[], int]) -> float:
    """Run ``step`` (returns records done) repeatedly for ~``seconds``; return records per second."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        n += step()
    return n / elapsed


def bench_raw(root: Path, payload: bytes, batch: int, fsync: bool, seconds: float) -> float:
    path = root / f"raw-{batch}-{fsync}.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    offset = 0

    def step() -> int:
        nonlocal offset
        data = b"".join(encode_frame(offset + k, payload) for k in range(batch))
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
        offset += batch
        return batch

    try:
        return timed(seconds, step)
    finally:
        os.close(fd)
        path.unlink()


def bench_log(root: Path, payload: bytes, mode: str, batch: int, seconds: float) -> float:
    d = root / f"log-{mode}-{batch}"
    policy = {"none": "none", "every": "every"}.get(mode, "group")
    log = CommitLog(d, durability=policy)  # type: ignore[arg-type]

    def single() -> int:
        log.append(payload)
        return 1

    def group() -> int:
        for _ in range(batch):
            log.append(payload)
        log.commit_barrier()
        return batch

    def many() -> int:
        log.append_many([payload] * batch)
        return batch

    step = {"none": single, "every": single, "group": group, "many": many}[mode]
    try:
        return timed(seconds, step)
    finally:
        log.close()
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payload", type=int, default=256, help="payload bytes per record")
    ap.add_argument("--seconds", type=float, default=0.4, help="duration of each measurement")
    ap.add_argument("--reps", type=int, default=5, help="alternating raw/log repetitions (median is shown)")
    ap.add_argument("--dir", type=Path, default=None, help="directory on the disk to measure (default: a temp dir)")
    args = ap.parse_args()
    payload = os.urandom(args.payload)
    root = Path(tempfile.mkdtemp(prefix="bench_commitlog_", dir=args.dir))
    configs = [("none", 1, False), ("every", 1, True)]
    configs += [(mode, k, True) for mode in ("group", "many") for k in (1, 10, 100)]
    print(f"payload {args.payload} B, median of {args.reps} x {args.seconds:.1f} s, dir {root}")
    print(f"{'config':<12}{'log appends/s':>16}{'raw appends/s':>16}{'log/raw':>10}{'fsyncs/s':>12}")
    try:
        for mode, batch, fsync in configs:
            raws, gots = [], []
            for _ in range(args.reps):
                raws.append(bench_raw(root, payload, batch, fsync, args.seconds))
                gots.append(bench_log(root, payload, mode, batch, args.seconds))
            raw, got = statistics.median(raws), statistics.median(gots)
            label = mode if mode in ("none", "every") else f"{mode} x{batch}"
            fsyncs = f"{got / batch:,.0f}" if fsync else "-"
            print(f"{label:<12}{got:>16,.0f}{raw:>16,.0f}{got / raw:>10.2f}{fsyncs:>12}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
