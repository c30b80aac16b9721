"""Signed checkpoints of the gateway's message log (docs/protocol.md, "Checkpoints").

Every few seconds, or once enough records were added (both set in gateway.toml), and
when the gateway stops, the gateway signs its log's tree head as a C2SP checkpoint
with its Ed25519 log key (keys/log.key), never one per message and never on a
message's path. Each checkpoint is kept in ``DATA_DIR/checkpoints/`` as standard
files: ``<size>.note``, the signed note exactly as C2SP's signed-note verifiers read
it, and, from the second on, ``<size>.proof``, the consistency proof from the
previous checkpoint (``old <size>`` then one base64 hash per line, as in C2SP
tlog-witness's add-checkpoint), so the chain can be checked file by file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
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


class CheckpointStore:
    """The checkpoint files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

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
        sizes = self.sizes()
        return sizes[-1] if sizes else None

    def write(self, size: int, note: bytes, proof: str | None) -> None:
        """Write the proof, then the note (whose presence marks the checkpoint), each
        durably: a crash leaves either a whole checkpoint or none."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if proof is not None:
            write_durably(self.proof_path(size), proof.encode("ascii"))
        write_durably(self.note_path(size), note)


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
