"""Pushing new global configuration versions to the gateways that watch the registry.

A gateway keeps one ConfigurationWatch/WatchGlobalConfiguration stream open. The
registry sends a notice at once (with the signed configuration when it is newer than
the one the gateway holds), then one with each new version as soon as it is published,
and a heartbeat when nothing happened for HEARTBEAT_S, so a gateway notices a dead
stream. Registrations approved by another process (`zhol registry approve`) change
the database, not this one: the announcer looks at the store's change counter every
CHECK_S (one small SQLite read) while anyone watches, and publishes then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from zhol.core.clock import Clock
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import abort_with
from zhol.registry.model import ConfVersion
from zhol.registry.service import ConfPublisher
from zhol.registry.v1 import watch_pb2, watch_pb2_grpc

log = logging.getLogger("zhol.registry.watch")

# A registration reaches the watching gateways within this (plus the network).
CHECK_S = 0.25
# Watchers hear from the registry at least this often; gateways treat a stream
# silent for three times as long as dead.
HEARTBEAT_S = 15.0


class ConfAnnouncer:
    """Tells every watcher about each newly published configuration version.

    Looks for new versions only while at least one watcher is connected; the task
    doing so ends with the last watcher (and so with the server's streams).
    """

    def __init__(
        self,
        publisher: ConfPublisher,
        clock: Clock,
        *,
        check_s: float = CHECK_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self._publisher = publisher
        self._clock = clock
        self._check_s = check_s
        self._heartbeat_s = heartbeat_s
        self._latest: ConfVersion | None = None
        self._changed = asyncio.Event()
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        return self._watchers

    async def check(self) -> ConfVersion:
        """Publish a new version if the store changed (or the latest aged), and wake
        the watchers when the version moved; returns the latest."""
        published = await asyncio.to_thread(self._publisher.current, self._clock.now_ms())
        latest = self._latest
        if latest is None or published.version > latest.version:
            self._latest = published
            woken, self._changed = self._changed, asyncio.Event()
            woken.set()
            return published
        return latest

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._check_s)
            try:
                await self.check()
            except Exception as exc:  # keep watching: the next check may succeed
                log.warning("configuration check failed: %s", type(exc).__name__)

    async def watch(self, known_version: int) -> AsyncIterator[tuple[ConfVersion, bool]]:
        """(latest version, whether it is news to the watcher): at once, then at each
        new version, and as a heartbeat (not news) after heartbeat_s of silence."""
        self._watchers += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            latest = await self.check()
            while True:
                news = latest.version > known_version
                yield latest, news
                if news:
                    known_version = latest.version
                changed = self._changed
                if self._latest is not None and self._latest.version > known_version:
                    latest = self._latest  # published while the notice was being sent
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._heartbeat_s):
                        await changed.wait()
                assert self._latest is not None
                latest = self._latest
        finally:
            self._watchers -= 1
            if self._watchers == 0 and self._task is not None:
                self._task.cancel()
                self._task = None


def notice(version: ConfVersion, news: bool) -> watch_pb2.GlobalConfigurationNotice:
    return watch_pb2.GlobalConfigurationNotice(
        version=version.version,
        generated_at_unix_ms=version.generated_at_ms,
        signed_configuration=version.signed if news else b"",
    )


class ConfigurationWatchService(watch_pb2_grpc.ConfigurationWatchServicer):
    """grpc.aio servicer for zhol.registry.v1.ConfigurationWatch."""

    def __init__(self, announcer: ConfAnnouncer) -> None:
        self._announcer = announcer

    async def WatchGlobalConfiguration(
        self,
        request: watch_pb2.WatchGlobalConfigurationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[watch_pb2.GlobalConfigurationNotice]:
        try:
            async for version, news in self._announcer.watch(request.known_version):
                yield notice(version, news)
        except ZholError as err:
            await abort_with(context, err if err.hop is Hop.REGISTRY else err.at(Hop.REGISTRY))
        except (asyncio.CancelledError, GeneratorExit):
            raise  # the watcher left, or the server stops
        except Exception as exc:
            internal = ZholError("InternalError", type(exc).__name__, hop=Hop.REGISTRY)
            log.exception("registry internal error %s", internal.error_id)
            await abort_with(context, internal)
