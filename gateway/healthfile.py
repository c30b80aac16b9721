"""The running gateway's health, published in its data directory for `zhol gateway status`.

The gRPC health service answers SERVING or NOT_SERVING only; an operator also needs
the reasons, and a stopped or crashed gateway must not look healthy. So:

- ``gateway.lock``: the running gateway holds an exclusive flock(2) on it for its whole
  life. The kernel drops the lock when the process ends, however it ends, so a lock
  that can be taken means no gateway runs on this directory.
- ``health.json``: the status and its reasons (gateway/health.py), with the
  configuration version the gateway holds and whether its watch on the registry is
  open (what `zhol gateway refresh` reports), rewritten atomically on every change.
  If it cannot be written (a full disk) it is removed, which needs no space, rather
  than left saying something no longer true.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from zhol.gateway.health import ConfHeld
from zhol.gateway.status import HealthFacts

log = logging.getLogger("zhol.gateway.health")

HEALTH_FILE = "health.json"
LOCK_FILE = "gateway.lock"


class HealthFile:
    """Publishes one gateway's health into its data directory while it runs."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / HEALTH_FILE
        self._lock_path = data_dir / LOCK_FILE
        self._lock: IO[bytes] | None = None
        self._write_failed = False

    def open(self) -> None:
        """Take the lock that says this gateway runs (kept until close)."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._lock_path.open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Not ours to decide here: the listening ports stop a second gateway.
            log.warning("another process holds %s", self._lock_path.name)
        self._lock = lock

    def publish(
        self, status: str, reasons: tuple[str, ...], now_ms: int, held: ConfHeld | None = None
    ) -> None:
        doc: dict[str, Any] = {
            "status": status, "reasons": list(reasons), "since_ms": now_ms, "pid": os.getpid(),
        }  # fmt: skip
        if held is not None:
            doc["conf"] = {
                "watching": held.watching,
                "version": held.version,
                "generated_at_ms": held.generated_at_ms,
            }
        tmp = self._path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self._path)
        except OSError as exc:
            for leftover in (tmp, self._path):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
            if not self._write_failed:
                log.warning("cannot write %s: %s", HEALTH_FILE, exc.strerror or type(exc).__name__)
            self._write_failed = True
            return
        self._write_failed = False

    def close(self) -> None:
        """The gateway stops: its health file goes, then the lock."""
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None


def read_health(data_dir: Path) -> HealthFacts:
    """What the gateway on ``data_dir`` published, and whether it runs at all."""
    if not _locked(data_dir / LOCK_FILE):
        return HealthFacts(running=False)
    try:
        doc = json.loads((data_dir / HEALTH_FILE).read_text())
        status, reasons = str(doc["status"]), tuple(str(r) for r in doc["reasons"])
    except (OSError, ValueError, KeyError, TypeError):
        return HealthFacts(running=True)  # running, health unknown
    return HealthFacts(True, status, reasons, _held(doc.get("conf")))


def _held(doc: object) -> ConfHeld | None:
    """The configuration held as published; None when absent or not understood."""
    if not isinstance(doc, dict):
        return None
    watching, version, generated = (doc.get(k) for k in ("watching", "version", "generated_at_ms"))
    if not (watching is None or isinstance(watching, bool)):
        return None
    if not all(
        v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (version, generated)
    ):
        return None
    return ConfHeld(watching, version, generated)


def _locked(path: Path) -> bool:
    """Whether a process holds the lock; a shared lock we can take means none does."""
    try:
        lock = path.open("rb")
    except FileNotFoundError:
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
