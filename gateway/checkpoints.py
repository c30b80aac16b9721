"""Signed checkpoints of the gateway's message log (docs/protocol.md, "Checkpoints").

Every few seconds, or once enough records were added (both set in gateway.toml), and
when the gateway stops, the gateway signs its log's tree head as a C2SP checkpoint
with its Ed25519 log key (keys/log.key), never one per message and never on a
message's path. Each checkpoint is kept in ``DATA_DIR/checkpoints/`` as standard
files: ``<size>.note``, the signed note exactly as C2SP's signed-note verifiers read
it, and, from the second on, ``<size>.proof``, the consistency proof from the
previous checkpoint (``old <size>`` then one base64 hash per line, as in C2SP
tlog-witness's add-checkpoint), so the chain can be checked file by file.

The timestamper and the witness client add ``<size>.tsr`` and ``<size>.cosig`` beside
each note, in size order. They keep the checkpoints still waiting for theirs in memory
(PendingCheckpoints): one scan of the directory when they start, then the store tells
them of each checkpoint it writes, so a pass costs the work left, not the directory's
size (a year of checkpoints at the default rate is millions of files).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zhol.gateway.messagelog import TreeHead, log_consistency_proof, tree_head
from zhol.security.signednote import (
    Checkpoint,
    NoteSigner,
    format_checkpoint,
    gateway_origin,
    sign_note,
)

log = logging.getLogger("zhol.gateway.checkpoints")

_NAME_DIGITS = 20  # a u64 size, zero-padded so the files sort by size
NOTE_SUFFIX = ".note"


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When a new checkpoint is due: the log grew, and either ``interval_s`` passed since
    the last one or ``every_records`` records were added since it."""

    interval_s: float = 10.0
    every_records: int = 1000

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.every_records < 1:
            raise ValueError("checkpoint interval and record count must be positive")

    def due(self, *, size: int, last_size: int, now_ms: int, last_ms: int | None) -> bool:
        if size <= last_size:
            return False
        if last_ms is None or size - last_size >= self.every_records:
            return True
        return now_ms - last_ms >= self.interval_s * 1000


def proof_text(old_size: int, proof: Sequence[bytes]) -> str:
    """``old <size>`` and the proof's hashes in base64, one per line."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return "".join(line + "\n" for line in lines)


def parse_proof_text(text: str) -> tuple[int, tuple[bytes, ...]]:
    """The old size and hashes of a ``.proof`` file; ValueError if it is not one."""
    lines = text.split("\n")
    if len(lines) < 2 or lines[-1] != "" or not lines[0].startswith("old "):
        raise ValueError("not a consistency proof file")
    old = lines[0][4:]
    if not old.isdigit() or (old != "0" and old.startswith("0")):
        raise ValueError("bad old size")
    return int(old), tuple(base64.b64decode(line, validate=True) for line in lines[1:-1])


def size_in_name(name: str, suffix: str) -> int | None:
    """The size ``<20 digits><suffix>`` names, None for any other name (``.tmp`` files,
    a bundle's ``.cosigned.note``)."""
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    if len(stem) != _NAME_DIGITS or not stem.isdigit() or not stem.isascii():
        return None
    return int(stem)


@dataclass(frozen=True, slots=True)
class Backlog:
    """The checkpoints without one kind of companion file (``.tsr``, ``.cosig``):
    ``last_done`` the largest size that has one (0: none), ``pending`` the sizes of the
    notes still without one, smallest first; ``more``: there are more, all larger, left
    out to bound memory (a folder scanned again finds them)."""

    last_done: int
    pending: tuple[int, ...]
    more: bool = False


@dataclass(slots=True)
class _Tally:
    """A fingerprint of a set of sizes: two sets with equal count, sum and sum of
    squares are taken to be the same (a missing file and a stray one do not cancel out
    as they would in a count)."""

    count: int = 0
    total: int = 0
    squares: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.total += size
        self.squares += size * size


def smallest(sizes: Iterable[int], limit: int) -> tuple[list[int], bool]:
    """The ``limit`` smallest of ``sizes`` (distinct), sorted, and whether any was left
    out; memory within ``limit``."""
    kept: list[int] = []  # a max-heap of the smallest so far, as negatives
    more = False
    for size in sizes:
        if len(kept) < limit:
            heapq.heappush(kept, -size)
        elif size < -kept[0]:
            heapq.heapreplace(kept, -size)
            more = True
        else:
            more = True
    return sorted(-k for k in kept), more


def left_to_do(
    names: Callable[[], Iterable[str]], suffix: str, *, fill_gaps: bool, limit: int
) -> Backlog:
    """What is left to do for ``suffix``, from the directory's file names (``names``
    gives them afresh on each call; it is called two or three times): at most ``limit``
    sizes, the smallest.

    Companion files are written in size order, so the notes above the largest one are
    the work left. A note below it without one (a token deleted by hand) is pending too
    when ``fill_gaps`` (a timestamp can be asked for at any time): found by comparing
    fingerprints of the notes up to there and of the companion files, and only then are
    those sizes collected. Without ``fill_gaps`` (the witness cosigns only above its
    latest) it is left out.
    """
    last_done = 0
    companions = _Tally()
    for name in names():
        size = size_in_name(name, suffix)
        if size is not None:
            companions.add(size)
            last_done = max(last_done, size)
    covered = _Tally()

    def above() -> Iterable[int]:
        for name in names():
            size = size_in_name(name, NOTE_SUFFIX)
            if size is None:
                continue
            if size > last_done:
                yield size
            else:
                covered.add(size)

    pending, more = smallest(above(), limit)
    if not fill_gaps or covered == companions:
        return Backlog(last_done, tuple(pending), more)
    notes_below: set[int] = set()
    done: set[int] = set()
    for name in names():
        size = size_in_name(name, NOTE_SUFFIX)
        if size is not None and size <= last_done:
            notes_below.add(size)
        elif (size := size_in_name(name, suffix)) is not None:
            done.add(size)
    gaps, gaps_more = smallest(notes_below - done, limit)
    merged = gaps + pending
    return Backlog(last_done, tuple(merged[:limit]), more or gaps_more or len(merged) > limit)


def merge_new(
    pending: Sequence[int], written: Iterable[int], last_done: int, limit: int
) -> tuple[list[int], bool]:
    """``pending`` with the sizes written since, smallest first, each once (the first
    scan may have seen a note it is also told of), nothing at or below ``last_done``
    that was not pending already; at most ``limit``, and whether any was left out."""
    new = [s for s in written if s > last_done]
    if not new:
        return list(pending[:limit]), len(pending) > limit
    if new == sorted(set(new)) and (not pending or new[0] > pending[-1]):
        # The usual case, new checkpoints after the pending ones: no sort.
        merged = [*pending, *new]
        return merged[:limit], len(merged) > limit
    return smallest(set(pending) | set(new), limit)


class CheckpointStore:
    """The checkpoint files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._listeners: list[Callable[[int], None]] = []

    def on_write(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(size)`` after each checkpoint this store writes (from the
        writing thread: it must be quick and thread-safe)."""
        self._listeners.append(listener)

    def names(self) -> Iterable[str]:
        """The directory's file names, streamed (one pass over the directory)."""
        if not self.directory.is_dir():
            return
        with os.scandir(self.directory) as entries:
            for entry in entries:
                yield entry.name

    def note_path(self, size: int) -> Path:
        return self.directory / f"{size:0{_NAME_DIGITS}d}.note"

    def proof_path(self, size: int) -> Path:
        return self.directory / f"{size:0{_NAME_DIGITS}d}.proof"

    def sizes(self) -> list[int]:
        """The sizes checkpointed, smallest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            int(p.stem)
            for p in self.directory.glob("*.note")
            if p.stem.isdigit() and len(p.stem) == _NAME_DIGITS
        )

    def latest(self) -> int | None:
        """The largest size checkpointed, in one pass that keeps nothing else."""
        sizes = (size_in_name(n, NOTE_SUFFIX) for n in self.names())
        return max((s for s in sizes if s is not None), default=None)

    def write(self, size: int, note: bytes, proof: str | None) -> None:
        """Write the proof, then the note (whose presence marks the checkpoint), each
        durably: a crash leaves either a whole checkpoint or none."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if proof is not None:
            write_durably(self.proof_path(size), proof.encode("ascii"))
        write_durably(self.note_path(size), note)
        for listener in self._listeners:
            listener(size)


class PendingCheckpoints:
    """The checkpoints still without their ``suffix`` file, kept in memory: found by one
    scan of the directory on the first ``pending()`` (after a restart, a note written
    but not yet given its file is found again), then told by the store of each new
    checkpoint. A pass costs the backlog, not the number of checkpoints kept.

    At most ``limit`` are held (a long backlog, e.g. while no authority is approved,
    must not grow memory and each pass without end): the smallest ones; the others
    are all larger, and the folder is scanned again once those held are done."""

    LIMIT = 10_000

    def __init__(
        self, store: CheckpointStore, suffix: str, *, fill_gaps: bool, limit: int = LIMIT
    ) -> None:
        self._store = store
        self._suffix = suffix
        self._fill_gaps = fill_gaps
        self._limit = limit
        self._lock = threading.Lock()
        self._written: list[int] = []  # told by the store, not merged yet
        self._pending: list[int] = []
        self._scan = True  # the folder holds pending checkpoints not in _pending
        self.last_done = 0
        store.on_write(self._told)  # before the scan: a note written meanwhile is not lost

    def _told(self, size: int) -> None:
        with self._lock:
            # While some are left on disk, so is every newer one: they are all larger,
            # and taking one before them would break the size order.
            if not self._scan and len(self._written) < self._limit:
                self._written.append(size)
            else:
                self._scan = True

    def pending(self) -> list[int]:
        """At most ``limit`` sizes without the file, the smallest, smallest first
        (blocking: the first call, and one once the held ones are done while more wait
        on disk, scans the folder)."""
        if self._scan and not self._pending:
            with self._lock:
                self._scan = False
                self._written = []  # the scan sees them
            backlog = left_to_do(
                self._store.names, self._suffix, fill_gaps=self._fill_gaps, limit=self._limit
            )
            self._pending, self.last_done = list(backlog.pending), backlog.last_done
            if backlog.more:
                self._scan = True
        with self._lock:
            written, self._written = self._written, []
            if self._scan:
                written = []  # on disk, after some left there: the next scan finds them
        if written:
            self._pending, more = merge_new(self._pending, written, self.last_done, self._limit)
            if more:
                self._scan = True
        return list(self._pending)

    def forget(self, size: int) -> None:
        """``size``'s note is gone from the folder (archived after waiting too long,
        gateway/checkpoint_archive.py): stop waiting for it; ``last_done`` stays."""
        if size in self._pending:
            self._pending.remove(size)

    def done(self, size: int) -> None:
        """``size`` has its file now (written durably)."""
        if size in self._pending:
            self._pending.remove(size)
        self.last_done = max(self.last_done, size)


def write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpointer:
    """Signs checkpoints of one gateway's log as the policy says, off the message path."""

    TICK_S = 1.0

    def __init__(
        self,
        *,
        gateway_id: str,
        log_path: Path,
        store: CheckpointStore,
        signer_key: NoteSigner,
        policy: CheckpointPolicy,
        now_ms: Callable[[], int],
    ) -> None:
        if signer_key.name != gateway_origin(gateway_id):
            raise ValueError("the log key's note name must be the gateway's origin")
        self._origin = gateway_origin(gateway_id)
        self._log_path = log_path
        self._store = store
        self._signer = signer_key
        self._policy = policy
        self._now_ms = now_ms
        self._last_size = store.latest() or 0
        self._last_ms: int | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def last_size(self) -> int:
        return self._last_size

    def checkpoint_now(self) -> TreeHead | None:
        """Sign and store a checkpoint of the log as committed, if it grew; blocking."""
        head = tree_head(self._log_path)
        if head.size <= self._last_size:
            return None
        proof = None
        if self._last_size > 0:
            hashes = log_consistency_proof(self._log_path, self._last_size, head.size)
            proof = proof_text(self._last_size, hashes)
        text = format_checkpoint(Checkpoint(self._origin, head.size, head.root_hash))
        self._store.write(head.size, sign_note(text, [self._signer]), proof)
        self._last_size = head.size
        self._last_ms = self._now_ms()
        return head

    async def _tick(self) -> None:
        head = await asyncio.to_thread(tree_head, self._log_path)
        if self._policy.due(
            size=head.size, last_size=self._last_size, now_ms=self._now_ms(), last_ms=self._last_ms
        ):
            await asyncio.to_thread(self.checkpoint_now)

    async def _run(self) -> None:
        if self._last_ms is None:
            self._last_ms = self._now_ms()  # the first interval counts from the start
        while True:
            await asyncio.sleep(self.TICK_S)
            try:
                await self._tick()
            except Exception:  # keep going: the next tick tries again
                log.exception("checkpoint failed")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop ticking, then sign a last checkpoint of everything logged."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.to_thread(self.checkpoint_now)
        except Exception:
            log.exception("final checkpoint failed")
