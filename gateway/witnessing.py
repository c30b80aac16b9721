"""Getting the gateway's checkpoints cosigned by the registry's witness (docs/protocol.md,
'Witness').

A background task, never on a message's path: for each ``<size>.note`` in
``DATA_DIR/checkpoints/`` above the last ``<size>.cosig``, smallest first (kept in
memory: gateway/checkpoints.py PendingCheckpoints), it submits the
note with a consistency proof from the largest size already cosigned (the witness's
latest for this gateway: from the note's own ``.proof`` file when that starts there,
else computed from the log), checks the returned cosignature with the witness key of
the verified global configuration, and writes it durably as ``<size>.cosig``: the
witness's signature line exactly as returned (``— <witness name> base64(...)``), so
that ``<size>.note`` followed by it is the checkpoint with both signatures. When the
registry is away, or refuses, it backs off (doubling up to BACKOFF_MAX_S) and tries
again; traffic never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from zhol.core.errors import ZholError
from zhol.gateway.checkpoints import (
    CheckpointStore,
    PendingCheckpoints,
    parse_proof_text,
    write_durably,
)
from zhol.gateway.messagelog import log_consistency_proof
from zhol.security.signednote import NoteError, Verifier, parse_note, verify_cosignature

log = logging.getLogger("zhol.gateway.witnessing")

COSIG_SUFFIX = ".cosig"

# (note, old size, consistency proof) -> the witness's cosignature line
Submit = Callable[[bytes, int, tuple[bytes, ...]], Awaitable[str]]


def cosig_path(store: CheckpointStore, size: int) -> Path:
    return store.note_path(size).with_suffix(COSIG_SUFFIX)


def cosigned_sizes(store: CheckpointStore) -> list[int]:
    """The checkpointed sizes that have a cosignature, smallest first (a whole scan: for
    tests and tools, not the witnessing passes)."""
    return [s for s in store.sizes() if cosig_path(store, s).exists()]


class Witnessing:
    """Submits uncosigned checkpoints to the witness and stores the cosignatures."""

    TICK_S = 1.0
    BACKOFF_MAX_S = 60.0

    def __init__(
        self,
        *,
        store: CheckpointStore,
        log_path: Path,
        submit: Submit,
        witness: Callable[[], Verifier | None],
    ) -> None:
        self._store = store
        self._log_path = log_path
        self._submit = submit
        self._witness = witness
        # The witness cosigns only above its latest for us: no gap below is ever filled.
        self._waiting = PendingCheckpoints(store, COSIG_SUFFIX, fill_gaps=False)
        self._task: asyncio.Task[None] | None = None

    async def witness_pending(self) -> int:
        """Submit every uncosigned checkpoint in order; returns how many got cosigned.
        Raises on the first failure (the next round starts again from there)."""
        verifier = self._witness()
        if verifier is None:
            raise ZholError("NotConfigured", "the global configuration names no witness")
        done = 0
        for size in await asyncio.to_thread(self._waiting.pending):
            old_size = self._waiting.last_done
            try:
                note = await asyncio.to_thread(self._store.note_path(size).read_bytes)
            except FileNotFoundError:  # archived uncosigned after the documented wait
                self._waiting.forget(size)
                continue
            proof = await asyncio.to_thread(self._proof, old_size, size)
            line = await self._submit(note, old_size, proof)
            try:
                text, _ = parse_note(note)
                verify_cosignature(text, line, verifier)
            except NoteError as exc:
                raise ZholError("InvalidSignature", f"cosignature refused: {exc.reason}") from None
            await asyncio.to_thread(
                write_durably, cosig_path(self._store, size), line.encode("utf-8")
            )
            self._waiting.done(size)
            done += 1
        return done

    def _proof(self, old_size: int, size: int) -> tuple[bytes, ...]:
        if old_size == 0:
            return ()
        path = self._store.proof_path(size)
        if path.exists():
            with contextlib.suppress(ValueError):
                stored_old, hashes = parse_proof_text(path.read_text("ascii"))
                if stored_old == old_size:
                    return hashes
        return log_consistency_proof(self._log_path, old_size, size)

    async def _run(self) -> None:
        delay = self.TICK_S
        while True:
            await asyncio.sleep(delay)
            try:
                await self.witness_pending()
            except ZholError as err:
                delay = min(delay * 2, self.BACKOFF_MAX_S)
                log.warning("witnessing failed (%s); retrying in %.0f s", err.full_code, delay)
                continue
            except Exception:  # keep going: the next round tries again
                delay = min(delay * 2, self.BACKOFF_MAX_S)
                log.exception("witnessing failed; retrying in %.0f s", delay)
                continue
            delay = self.TICK_S

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
