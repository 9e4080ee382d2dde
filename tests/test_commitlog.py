"""Commit log: round trips, recovery of torn tails vs. refusal of middle corruption, segments, snapshots."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.commitlog import CommitLog, CommitLogCorrupted, CommitLogError
from harness.commitlog.segment import FRAME_SIZE, HEADER_SIZE, segment_name


def payload(i: int) -> bytes:
    return hashlib.blake2b(str(i).encode(), digest_size=16).digest() * (i % 5) + bytes([i % 256])


def seg_path(d: Path, base: int = 0) -> Path:
    return d / "commitlog" / segment_name(base)


def segments(d: Path) -> list[Path]:
    return sorted((d / "commitlog").glob("*.log"))


def fill(d: Path, n: int, **kw: object) -> None:
    with CommitLog(d, durability="none", **kw) as log:  # type: ignore[arg-type]
        for i in range(n):
            assert log.append(payload(i)) == i


def all_records(d: Path, **kw: object) -> list[tuple[int, bytes]]:
    with CommitLog(d, durability="none", **kw) as log:  # type: ignore[arg-type]
        return list(log.replay())


def flip(path: Path, pos: int, mask: int = 0x10) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))


def record_starts(path: Path) -> list[int]:
    data = path.read_bytes()
    pos, out = HEADER_SIZE, []
    while pos < len(data):
        out.append(pos)
        pos += FRAME_SIZE + int.from_bytes(data[pos : pos + 4], "little")
    return out


# ---------------------------------------------------------------- basics


@pytest.mark.parametrize("policy", ["none", "every", "group"])
def test_round_trip_and_reopen_continue(tmp_path: Path, policy: str) -> None:
    with CommitLog(tmp_path, durability=policy) as log:  # type: ignore[arg-type]
        assert [log.append(payload(i)) for i in range(20)] == list(range(20))
        assert log.append_many([payload(i) for i in range(20, 30)]) == list(range(20, 30))
        assert list(log.replay()) == [(i, payload(i)) for i in range(30)]
    with CommitLog(tmp_path, durability=policy) as log:  # type: ignore[arg-type]
        assert log.next_offset == 30 and log.durable_offset == 29 and not log.recovery_warnings
        assert log.append(b"") == 30  # empty payloads are legal
        assert log.append(bytearray(b"ba")) == 31 and log.append(memoryview(b"mv")) == 32
    recs = all_records(tmp_path)
    assert recs == [(i, payload(i)) for i in range(30)] + [(30, b""), (31, b"ba"), (32, b"mv")]


def test_durable_offset_per_policy(tmp_path: Path) -> None:
    with CommitLog(tmp_path / "every", durability="every") as log:
        log.append(b"a")
        assert log.durable_offset == 0
    with CommitLog(tmp_path / "group", durability="group") as log:
        assert log.commit_barrier() == -1
        log.append(b"a")
        log.append(b"b")
        assert log.durable_offset == -1  # written, not yet fsynced
        assert log.commit_barrier() == 1 and log.durable_offset == 1
        assert log.append_many([b"c", b"d"]) == [2, 3] and log.durable_offset == 3
        assert log.append_many([]) == []


def test_replay_snapshot_ignores_later_appends(tmp_path: Path) -> None:
    with CommitLog(tmp_path, durability="none") as log:
        log.append_many([b"a", b"b"])
        it = log.replay()
        log.append(b"c")
        assert [o for o, _ in it] == [0, 1]


def test_directory_lock(tmp_path: Path) -> None:
    log = CommitLog(tmp_path, durability="none")
    with pytest.raises(CommitLogError, match="already open"):
        CommitLog(tmp_path, durability="none")
    log.close()
    log.close()  # idempotent
    with pytest.raises(CommitLogError, match="closed"):
        log.append(b"x")
    CommitLog(tmp_path, durability="none").close()


def test_io_error_fails_the_log_until_reopen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = CommitLog(tmp_path, durability="every")
    log.append(b"ok")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "EIO")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    monkeypatch.setattr(os, "fdatasync", broken_fsync)  # what the log uses for records (segment.datasync)
    with pytest.raises(CommitLogError, match="I/O failed"):
        log.append(b"maybe")
    with pytest.raises(CommitLogError, match="failed earlier"):
        log.append(b"never")
    monkeypatch.undo()
    log.close()
    with CommitLog(tmp_path, durability="every") as log2:
        assert [p for _, p in log2.replay()] == [b"ok", b"maybe"]  # written, only its fsync failed


# ---------------------------------------------------------------- the zero-filled tail of a fsyncing log


def frames_end(path: Path) -> int:
    """Byte position after the last record (record_starts stops at the first zero length)."""
    data = path.read_bytes()
    pos = HEADER_SIZE
    while pos + FRAME_SIZE <= len(data) and int.from_bytes(data[pos : pos + 16], "little"):
        pos += FRAME_SIZE + int.from_bytes(data[pos : pos + 4], "little")
    return pos


def test_fsyncing_log_writes_records_into_a_zero_tail_and_a_crash_loses_nothing(tmp_path: Path) -> None:
    src, crashed = tmp_path / "src", tmp_path / "crashed"
    log = CommitLog(src, durability="group")
    for i in range(50):
        log.append(payload(i))
    log.commit_barrier()
    seg = seg_path(src)
    end = frames_end(seg)
    data = seg.read_bytes()
    assert len(data) >= end + (1 << 20) - 4096 and not any(data[end:])  # zeros ahead of the last record
    shutil.copytree(src, crashed)  # the files as a killed process leaves them (never closed)
    log.close()
    assert seg.stat().st_size == end  # a clean close cuts the tail off
    with CommitLog(crashed, durability="group") as log2:
        assert log2.recovery_warnings == []  # the tail is where the log ends, not damage
        assert list(log2.replay()) == [(i, payload(i)) for i in range(50)]
        assert log2.append(b"after") == 50
        log2.commit_barrier()
    assert all_records(crashed) == [(i, payload(i)) for i in range(50)] + [(50, b"after")]
    assert seg_path(crashed).stat().st_size == frames_end(seg_path(crashed))


def test_torn_record_in_the_zero_tail_is_still_a_torn_tail(tmp_path: Path) -> None:
    log = CommitLog(tmp_path, durability="every")
    for i in range(3):
        log.append(payload(i))
    seg = seg_path(tmp_path)
    end = frames_end(seg)
    with open(seg, "r+b") as f:  # half a frame header, as a write cut short by a crash leaves it
        f.seek(end)
        f.write(b"\x07\x00\x00\x00\x99\x88")
    shutil.copytree(tmp_path / "commitlog", tmp_path / "copy" / "commitlog")
    log.close()
    with CommitLog(tmp_path / "copy", durability="every") as log2:
        assert "torn tail" in log2.recovery_warnings[0]
        assert log2.next_offset == 3
    assert seg_path(tmp_path / "copy").stat().st_size == end


def test_sealed_segments_have_no_zero_tail_and_none_durability_writes_none(tmp_path: Path) -> None:
    with CommitLog(tmp_path / "g", durability="group", max_segment_size=1024) as log:
        for i in range(60):
            log.append(payload(i))
        sealed = segments(tmp_path / "g")[:-1]
        assert len(sealed) >= 2 and all(p.stat().st_size == frames_end(p) for p in sealed)
        active = segments(tmp_path / "g")[-1]
        assert frames_end(active) < active.stat().st_size == 1024  # zeros up to the segment size, no further
    with CommitLog(tmp_path / "n", durability="none") as log:
        for i in range(20):
            log.append(payload(i))
        assert seg_path(tmp_path / "n").stat().st_size == frames_end(seg_path(tmp_path / "n"))


# ---------------------------------------------------------------- torn tails


def test_torn_tail_at_every_byte_cut_of_last_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    fill(src, 6)
    seg = seg_path(src)
    size = seg.stat().st_size
    last = record_starts(seg)[-1]
    for cut in range(last, size):
        d = tmp_path / f"cut{cut}"
        shutil.copytree(src, d)
        os.truncate(seg_path(d), cut)
        with CommitLog(d, durability="every") as log:
            assert list(log.replay()) == [(i, payload(i)) for i in range(5)]
            assert bool(log.recovery_warnings) == (cut > last)
            assert seg_path(d).stat().st_size == last
            assert log.append(b"new") == 5
        assert all_records(d) == [(i, payload(i)) for i in range(5)] + [(5, b"new")]


def test_torn_tail_inside_a_batch(tmp_path: Path) -> None:
    with CommitLog(tmp_path, durability="group") as log:
        log.append_many([b"a" * 10, b"b" * 10, b"c" * 10, b"d" * 10])
    seg = seg_path(tmp_path)
    os.truncate(seg, record_starts(seg)[2] + 5)
    assert all_records(tmp_path) == [(0, b"a" * 10), (1, b"b" * 10)]


def test_bad_crc_in_last_record_is_truncated(tmp_path: Path) -> None:
    fill(tmp_path, 4)
    seg = seg_path(tmp_path)
    flip(seg, seg.stat().st_size - 1)
    with CommitLog(tmp_path, durability="none") as log:
        assert log.next_offset == 3 and "torn tail" in log.recovery_warnings[0]
        # it says what is known (where the log now ends), not that the dropped bytes were never acknowledged
        assert "ends before tx 3" in log.recovery_warnings[0]
        assert "never acknowledged" not in log.recovery_warnings[0]


def test_zero_filled_tail_is_truncated(tmp_path: Path) -> None:
    fill(tmp_path, 3)
    with open(seg_path(tmp_path), "ab") as f:
        f.write(bytes(4096))  # what a power loss may leave: size extended, data never written
    assert all_records(tmp_path) == [(i, payload(i)) for i in range(3)]


def test_empty_log_with_torn_first_record(tmp_path: Path) -> None:
    fill(tmp_path, 1)
    os.truncate(seg_path(tmp_path), HEADER_SIZE + 3)
    with CommitLog(tmp_path, durability="none") as log:
        assert log.next_offset == 0 and list(log.replay()) == []


# ---------------------------------------------------------------- middle corruption


def test_flipped_bit_in_middle_record_raises(tmp_path: Path) -> None:
    src = tmp_path / "src"
    fill(src, 5)
    starts = record_starts(seg_path(src))
    victim, nxt = starts[2], starts[3]
    for pos in range(victim, nxt):  # every byte of the frame: length, crc, tx_offset, payload
        d = tmp_path / f"flip{pos}"
        shutil.copytree(src, d)
        flip(seg_path(d), pos)
        with pytest.raises(CommitLogCorrupted) as info:
            CommitLog(d, durability="none")
        assert info.value.path == seg_path(d) and info.value.byte_offset == victim
        assert segment_name(0) in str(info.value) and str(victim) in str(info.value)
        assert seg_path(d).stat().st_size == seg_path(src).stat().st_size  # nothing was truncated


def test_corruption_in_sealed_segment_raises(tmp_path: Path) -> None:
    fill(tmp_path, 40, max_segment_size=256)
    first = segments(tmp_path)[0]
    flip(first, record_starts(first)[-1] + FRAME_SIZE)  # payload of the last record of segment 0
    with pytest.raises(CommitLogCorrupted) as info:
        CommitLog(tmp_path, durability="none", max_segment_size=256)
    assert info.value.path == first


def test_corrupt_header_of_sealed_segment_raises(tmp_path: Path) -> None:
    fill(tmp_path, 40, max_segment_size=256)
    flip(segments(tmp_path)[1], 0)
    with pytest.raises(CommitLogCorrupted, match="magic"):
        CommitLog(tmp_path, durability="none")


def test_missing_segment_raises(tmp_path: Path) -> None:
    fill(tmp_path, 40, max_segment_size=256)
    segments(tmp_path)[1].unlink()
    with pytest.raises(CommitLogCorrupted, match="expected"):
        CommitLog(tmp_path, durability="none")


def test_replay_detects_corruption_after_open(tmp_path: Path) -> None:
    fill(tmp_path, 5)
    with CommitLog(tmp_path, durability="none") as log:
        flip(seg_path(tmp_path), record_starts(seg_path(tmp_path))[1] + FRAME_SIZE)
        with pytest.raises(CommitLogCorrupted):
            list(log.replay())


# ---------------------------------------------------------------- segments


def test_rollover_and_replay_across_segments(tmp_path: Path) -> None:
    limit = 300
    with CommitLog(tmp_path, durability="group", max_segment_size=limit) as log:
        for i in range(60):
            log.append(payload(i))
        big = b"B" * 1000  # larger than a segment: gets one of its own
        assert log.append(big) == 60
        assert log.append_many([payload(i) for i in range(61, 100)]) == list(range(61, 100))
        log.commit_barrier()
    expected = [(i, payload(i)) for i in range(60)] + [(60, big)] + [(i, payload(i)) for i in range(61, 100)]
    segs = segments(tmp_path)
    assert len(segs) > 10
    bases = [int(p.stem) for p in segs]
    for p in segs:
        recs = record_starts(p)
        assert p.stat().st_size <= limit or len(recs) == 1
    with CommitLog(tmp_path, durability="none", max_segment_size=limit) as log:
        assert list(log.replay()) == expected
        for start in [0, 1, 59, 60, 61, *bases, 99, 100]:
            assert list(log.replay(start)) == expected[start:]
        assert log.append(b"more") == 100
    assert [int(p.stem) for p in segments(tmp_path)][: len(bases)] == bases


def test_empty_new_segment_after_crash_is_repaired(tmp_path: Path) -> None:
    fill(tmp_path, 3)
    fresh = seg_path(tmp_path, 3)
    fresh.write_bytes(b"")  # rollover crashed right after creating the file
    with CommitLog(tmp_path, durability="every") as log:
        assert log.next_offset == 3 and log.recovery_warnings
        assert log.append(b"x") == 3
    assert all_records(tmp_path)[-1] == (3, b"x")


def test_torn_tail_then_zeroed_segment(tmp_path: Path) -> None:
    fill(tmp_path, 3)
    seg = seg_path(tmp_path)
    os.truncate(seg, seg.stat().st_size - 1)
    seg_path(tmp_path, 3).write_bytes(bytes(HEADER_SIZE))
    with CommitLog(tmp_path, durability="none") as log:
        assert log.next_offset == 2
    assert [p.name for p in segments(tmp_path)] == [segment_name(0)]


# ---------------------------------------------------------------- snapshots


def test_snapshot_and_replay_after(tmp_path: Path) -> None:
    with CommitLog(tmp_path, durability="group") as log:
        assert log.latest_snapshot() is None
        log.append_many([payload(i) for i in range(20)])
        log.write_snapshot(9, b"state@9")
        for i in range(20, 25):
            log.append(payload(i))
        with pytest.raises(ValueError):
            log.write_snapshot(25, b"ahead of the log")
    with CommitLog(tmp_path, durability="group") as log:
        assert log.latest_snapshot() == (9, b"state@9")
        rec = log.recover()
        assert (rec.snapshot_offset, rec.snapshot) == (9, b"state@9")
        assert list(rec.records) == [(i, payload(i)) for i in range(10, 25)]
    assert not [p for p in (tmp_path / "snapshots").iterdir() if not p.name.endswith(".snap")]


def test_snapshot_flushes_log_first(tmp_path: Path) -> None:
    with CommitLog(tmp_path, durability="group") as log:
        log.append(b"a")
        assert log.durable_offset == -1
        log.write_snapshot(0, b"s")
        assert log.durable_offset == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_corrupt_newest_snapshot_falls_back(tmp_path: Path, damage: str) -> None:
    with CommitLog(tmp_path, durability="none") as log:
        log.append_many([payload(i) for i in range(15)])
        log.write_snapshot(4, b"S" * 100)
        newest = log.write_snapshot(9, b"T" * 100)
    if damage == "flip":
        flip(newest, newest.stat().st_size - 10)
    elif damage == "truncate":
        os.truncate(newest, newest.stat().st_size - 1)
    else:
        newest.write_bytes(b"")
    with CommitLog(tmp_path, durability="none") as log:
        assert log.latest_snapshot() == (4, b"S" * 100)
        assert [o for o, _ in log.recover().records] == list(range(5, 15))


def test_keep_last_n_snapshots(tmp_path: Path) -> None:
    with CommitLog(tmp_path, durability="none", keep_snapshots=2) as log:
        log.append_many([b"x"] * 10)
        for off in (1, 3, 5, 7):
            log.write_snapshot(off, str(off).encode())
    assert sorted(int(p.stem) for p in (tmp_path / "snapshots").iterdir()) == [5, 7]


def test_snapshot_ahead_of_log_is_refused(tmp_path: Path) -> None:
    with CommitLog(tmp_path, durability="none") as log:
        log.append_many([b"x"] * 10)
        log.write_snapshot(8, b"s")
    for p in segments(tmp_path):
        p.unlink()
    with pytest.raises(CommitLogCorrupted, match="ahead of the log"):
        CommitLog(tmp_path, durability="none")


def test_compact(tmp_path: Path) -> None:
    kw = {"durability": "every", "max_segment_size": 200}
    with CommitLog(tmp_path, **kw) as log:  # type: ignore[arg-type]
        assert log.compact() == []  # no snapshot: nothing is covered
        log.append_many([payload(i) for i in range(60)])
        log.write_snapshot(20, b"s20")
        log.write_snapshot(40, b"s40")
        before = segments(tmp_path)
        deleted = log.compact()  # bound = oldest retained snapshot (20), so 20's fallback still replays
        assert deleted and all(p not in segments(tmp_path) for p in deleted)
        assert log.first_offset <= 21
        assert len(segments(tmp_path)) == len(before) - len(deleted)
        with pytest.raises(CommitLogError, match="compacted"):
            log.replay(0)
        log.compact(before_offset=1000)  # capped by the newest snapshot
        assert log.first_offset <= 41
    with CommitLog(tmp_path, **kw) as log:  # type: ignore[arg-type]
        rec = log.recover()
        assert rec.snapshot_offset == 40
        assert list(rec.records) == [(i, payload(i)) for i in range(41, 60)]
        assert log.append(b"after") == 60


# ---------------------------------------------------------------- threads


def test_append_thread_with_concurrent_barriers(tmp_path: Path) -> None:
    n = 3000
    with CommitLog(tmp_path, durability="group", max_segment_size=8192) as log:
        done = threading.Event()
        seen: list[int] = []
        errors: list[Exception] = []

        def barriers() -> None:
            try:
                while not done.is_set():
                    d = log.commit_barrier()
                    assert d <= log.last_offset
                    seen.append(d)
            except (AssertionError, CommitLogError) as exc:  # pragma: no cover - surfaced below
                errors.append(exc)

        t = threading.Thread(target=barriers)
        t.start()
        for i in range(n):
            assert log.append(payload(i)) == i
            if i % 500 == 0:
                log.append_many([])
        done.set()
        t.join()
        assert not errors
        assert seen == sorted(seen)
        assert log.commit_barrier() == n - 1
    assert all_records(tmp_path) == [(i, payload(i)) for i in range(n)]
