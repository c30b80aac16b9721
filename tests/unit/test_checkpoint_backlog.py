"""What is left to timestamp and cosign among the checkpoint files (gateway/checkpoints.py
left_to_do, merge_new, PendingCheckpoints): pure over file names, and on a real folder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from zhol.gateway.checkpoints import (
    Backlog,
    CheckpointStore,
    PendingCheckpoints,
    left_to_do,
    merge_new,
    size_in_name,
)


def name(size: int, suffix: str) -> str:
    return f"{size:020d}{suffix}"


def files(notes: Iterable[int], tsr: Iterable[int] = (), cosig: Iterable[int] = ()) -> list[str]:
    """A checkpoint folder's names, in no particular order (as a directory lists them)."""
    names = [name(s, ".note") for s in notes] + [name(s, ".proof") for s in notes]
    names += [name(s, ".tsr") for s in tsr] + [name(s, ".cosig") for s in cosig]
    names += ["x.note", name(9, ".tsr.tmp"), name(9, ".cosigned.note"), "0042.note"]
    return list(reversed(names))


def test_a_file_name_gives_its_size_only_in_the_documented_form() -> None:
    assert size_in_name(name(42, ".note"), ".note") == 42
    assert size_in_name(name(42, ".tsr"), ".note") is None
    for other in ("0042.note", name(42, ".tsr.tmp"), name(42, ".cosigned.note"), ".note"):
        assert size_in_name(other, ".note") is None, other
        assert size_in_name(other, ".tsr") is None, other


def test_the_work_left_is_the_notes_above_the_last_companion_file() -> None:
    names = files([3, 7, 12, 20, 31], tsr=[3, 7, 12], cosig=[3])
    listed = lambda: names  # noqa: E731
    assert left_to_do(listed, ".tsr", fill_gaps=True, limit=100) == Backlog(12, (20, 31))
    assert left_to_do(listed, ".cosig", fill_gaps=False, limit=100) == Backlog(3, (7, 12, 20, 31))
    assert left_to_do(lambda: files([]), ".tsr", fill_gaps=True, limit=100) == Backlog(0, ())
    assert left_to_do(lambda: files([5, 9]), ".tsr", fill_gaps=True, limit=100) == Backlog(
        0, (5, 9)
    )
    done = files([5, 9], tsr=[5, 9])
    assert left_to_do(lambda: done, ".tsr", fill_gaps=True, limit=100) == Backlog(9, ())


def test_a_token_missing_below_the_newest_is_asked_for_again_a_cosignature_is_not() -> None:
    # 7's token deleted by hand: the authority can still stamp it; the witness cannot
    # cosign below its latest, so 7 is not pending for it (the audit counts it).
    names = files([3, 7, 12, 20], tsr=[3, 12], cosig=[3, 12])
    assert left_to_do(lambda: names, ".tsr", fill_gaps=True, limit=100) == Backlog(12, (7, 20))
    assert left_to_do(lambda: names, ".cosig", fill_gaps=False, limit=100) == Backlog(12, (20,))
    # A stray token without its note does not hide a missing one.
    stray = files([3, 7, 12], tsr=[3, 5, 12])
    assert left_to_do(lambda: stray, ".tsr", fill_gaps=True, limit=100) == Backlog(12, (7,))


def test_new_checkpoints_join_the_pending_ones_once_and_in_order() -> None:
    assert merge_new([20, 31], [40, 31, 35], 12, 100) == ([20, 31, 35, 40], False)
    assert merge_new([20, 31], [35, 40], 12, 100) == ([20, 31, 35, 40], False)
    assert merge_new([7, 20], [], 12, 100) == ([7, 20], False)  # a gap being filled stays
    assert merge_new([], [12, 5], 12, 100) == ([], False)  # nothing at or below the last done
    # Bounded: the smallest kept, and it says some were left out.
    assert merge_new([20, 31], [35, 40], 12, 3) == ([20, 31, 35], True)
    assert merge_new([20, 31], [40, 25], 12, 3) == ([20, 25, 31], True)


def test_a_long_backlog_keeps_the_smallest_and_says_more_wait() -> None:
    names = files(range(1, 11), tsr=[1, 2], cosig=[1, 2])
    assert left_to_do(lambda: names, ".tsr", fill_gaps=True, limit=3) == Backlog(
        2, (3, 4, 5), more=True
    )
    assert left_to_do(lambda: names, ".tsr", fill_gaps=True, limit=8) == Backlog(
        2, tuple(range(3, 11)), more=False
    )
    gappy = files(range(1, 11), tsr=[2, 5])
    assert left_to_do(lambda: gappy, ".tsr", fill_gaps=True, limit=3) == Backlog(
        5, (1, 3, 4), more=True
    )


def test_pending_checkpoints_scan_once_then_follow_the_store(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    store.write(3, b"n3", None)
    store.write(7, b"n7", "old 3\n")
    (tmp_path / "checkpoints" / name(3, ".tsr")).write_bytes(b"t")
    waiting = PendingCheckpoints(store, ".tsr", fill_gaps=True)
    store.write(12, b"n12", "old 7\n")  # written before the first pass: found once
    assert waiting.pending() == [7, 12]
    assert waiting.last_done == 3
    # A note that appears behind the store's back (not written through it) is not
    # looked for: passes no longer list the directory.
    (tmp_path / "checkpoints" / name(15, ".note")).write_bytes(b"n15")
    store.write(20, b"n20", "old 12\n")
    assert waiting.pending() == [7, 12, 20]
    waiting.done(7)
    waiting.done(12)
    assert waiting.pending() == [20]
    assert waiting.last_done == 12
    # After a restart, one scan finds everything without its file again.
    again = PendingCheckpoints(store, ".tsr", fill_gaps=True)
    assert again.pending() == [7, 12, 15, 20]


def test_pending_checkpoints_beyond_the_limit_wait_on_disk_in_order(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    for size in (1, 2, 3):
        store.write(size, b"n", None)
    waiting = PendingCheckpoints(store, ".cosig", fill_gaps=False, limit=2)
    assert waiting.pending() == [1, 2]  # 3 left on disk
    (tmp_path / "checkpoints" / name(1, ".cosig")).write_bytes(b"c")
    waiting.done(1)
    store.write(4, b"n", None)  # there is room, but 4 is not taken before 3
    assert waiting.pending() == [2]
    (tmp_path / "checkpoints" / name(2, ".cosig")).write_bytes(b"c")
    waiting.done(2)
    assert waiting.pending() == [3, 4]  # scanned again once the held ones were done
    store.write(5, b"n", None)
    (tmp_path / "checkpoints" / name(3, ".cosig")).write_bytes(b"c")
    waiting.done(3)
    assert waiting.pending() == [4, 5]
    assert waiting.last_done == 3
