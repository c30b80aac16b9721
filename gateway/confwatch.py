"""The gateway's watch on the registry: new configuration versions within a second.

Polling (gateway/confsource.py) finds a new version within the poll interval (60 s
by default); a registration should reach every gateway within seconds. So the gateway
also keeps one ConfigurationWatch stream open to the registry (registry/watch.py).
Each configuration pushed on it goes through ConfSource.offer: verified against the
anchor exactly like a fetched one, never older than the one held. Polling goes on
underneath: while the stream is down (the registry restarts, a proxy cuts it) the
gateway polls as before and reconnects the watch with a backoff of at most RETRY_S; a
reconnected watch sends the newest version at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable

from zhol.core.errors import ZholError
from zhol.gateway.confsource import RETRY_JITTER, RETRY_S, ConfSource
from zhol.registry.client import watch_global_conf

log = logging.getLogger("zhol.gateway.conf")

# (the version the gateway holds, set when the watch is to end) -> the registry's
# notices: (version, signed configuration or b"" for a heartbeat); ends by raising, or
# returns once the event is set.
WatchFn = Callable[[int, asyncio.Event], AsyncIterator[tuple[int, bytes]]]
# How long stop() lets the watch end by itself before cancelling its task.
STOP_WAIT_S = 2.0

FIRST_RETRY_S = 0.25
# The registry sends a heartbeat every 15 s (registry/watch.py): a watch silent for
# this long is taken as dead and opened again.
WATCH_IDLE_S = 45.0


def registry_watch(address: str, idle_timeout_s: float = WATCH_IDLE_S) -> WatchFn:
    """The watch on the registry at ``address`` (plaintext gRPC, as the configuration
    fetch: what it carries is signed, and verified here against the anchor)."""

    def watch(known_version: int, stop: asyncio.Event) -> AsyncIterator[tuple[int, bytes]]:
        return watch_global_conf(address, known_version, idle_timeout_s, stop)

    return watch


def reconnect_delay_s(failures_in_a_row: int, jitter: float) -> float:
    """Seconds before the next attempt: 0.25 s after a stream that worked, doubling with
    each failed attempt up to RETRY_S, spread by ``jitter`` (-1 to 1) so a federation's
    gateways do not all call a returning registry at once."""
    base = min(FIRST_RETRY_S * 2.0 ** max(failures_in_a_row - 1, 0), RETRY_S)
    return base * (1 + RETRY_JITTER * jitter)


class ConfWatch:
    """Keeps the watch open and hands what it brings to the ConfSource."""

    def __init__(self, source: ConfSource, watch: WatchFn) -> None:
        self._source = source
        self._watch = watch
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.connected = False
        self.notices = 0  # notices received, heartbeats included (tests, diagnostics)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the watch: its call is cancelled first, so the task ends by itself."""
        self._stop.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_WAIT_S)
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected = False

    def _held(self) -> int:
        trusted = self._source.loaded
        return 0 if trusted is None else trusted.conf.version

    async def _take(self, version: int, signed: bytes) -> None:
        if signed:
            self._source.offer(signed)
        elif version > self._held():
            # Told of a newer version without it (not what the registry does): fetch it.
            await self._source.refresh()

    async def _run(self) -> None:
        failures = 0
        lost_logged = False
        while not self._stop.is_set():
            try:
                async for version, signed in self._watch(self._held(), self._stop):
                    if not self.connected:
                        self.connected = True
                        failures = 0
                        if lost_logged:
                            log.info("global configuration watch open again")
                            lost_logged = False
                    self.notices += 1
                    await self._take(version, signed)
            except ZholError as err:
                reason = err.full_code
            except Exception as exc:  # any transport failure: poll, and try again
                reason = type(exc).__name__
            else:
                reason = "ended"
            self.connected = False
            if self._stop.is_set():
                return
            failures += 1
            if not lost_logged:
                log.warning(
                    "global configuration watch down (%s): polling until it is back", reason
                )
                lost_logged = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(reconnect_delay_s(failures, random.uniform(-1, 1))):
                    await self._stop.wait()
