"""The gateway's standard gRPC health status (grpc.health.v1.Health, Check and Watch).

Load balancers, Kubernetes gRPC probes, Envoy and grpc_health_probe ask it. The
gateway answers SERVING only while an exchange could succeed as far as the gateway
itself is concerned: a verified global configuration that has not expired (the rule
LoadConfiguration applies: fail closed) and a message log that accepts writes.
``decide`` is the rule, pure; ``HealthWatch`` feeds it every second and pushes the
result into the servicer both gRPC servers carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.gateway.confsource import ConfSource
from zhol.gateway.messagelog import LogRecord, MessageLog

log = logging.getLogger("zhol.gateway.health")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
EXCHANGE_SERVICE = bus_pb2.DESCRIPTOR.services_by_name["Exchange"].full_name
# "" is the server as a whole; both names get the same status.
SERVICES = ("", EXCHANGE_SERVICE)

# Why the gateway is not serving: stable words for logs and operators (no personal data).
NO_CONFIGURATION = "no-global-conf"
CONFIGURATION_EXPIRED = "global-conf-expired"
LOG_CLOSED = "message-log-closed"
LOG_WRITE_FAILED = "message-log-write-failed"
TIMESTAMPING_OVERDUE = "timestamping-overdue"

CHECK_INTERVAL_S = 1.0
# A failed write keeps the gateway NOT_SERVING at least this long; after it a
# successful probe (the log is open and its write lock can be taken) clears it, so a
# gateway that a load balancer stopped sending traffic to can come back by itself.
LOG_FAILURE_HOLD_MS = 10_000
# A fault the probe cannot see (a full disk takes the lock but not the rows) would
# otherwise flip the status every hold: each failure since the last real write that
# succeeded doubles the hold, up to this.
LOG_FAILURE_MAX_HOLD_MS = 300_000


def log_failure_hold_ms(failures_in_a_row: int) -> int:
    """How long a write failure holds NOT_SERVING, given the failures (each cleared by
    a probe) since the last write that succeeded: 10 s, 20 s, 40 s... up to 5 min."""
    if failures_in_a_row <= 1:
        return LOG_FAILURE_HOLD_MS
    return min(LOG_FAILURE_HOLD_MS << min(failures_in_a_row - 1, 16), LOG_FAILURE_MAX_HOLD_MS)


@dataclass(frozen=True, slots=True)
class HealthInputs:
    now_ms: int
    # Expiry of the verified configuration in force (expired or not); None: none loaded.
    conf_expires_at_ms: int | None
    log_accepting: bool
    # When the last write failed, unless a write or a probe succeeded since.
    log_failed_at_ms: int | None
    # A checkpoint waited longer than the limit for its timestamp (gateway/timestamping.py).
    timestamping_overdue: bool = False


@dataclass(frozen=True, slots=True)
class Health:
    status: health_pb2.HealthCheckResponse.ServingStatus
    reasons: tuple[str, ...]

    @property
    def serving(self) -> bool:
        return self.status == SERVING


def decide(inputs: HealthInputs) -> Health:
    """SERVING when nothing stands in an exchange's way, else NOT_SERVING and why."""
    reasons: list[str] = []
    if inputs.conf_expires_at_ms is None:
        reasons.append(NO_CONFIGURATION)
    elif inputs.now_ms >= inputs.conf_expires_at_ms:  # GlobalConf.check_fresh's rule
        reasons.append(CONFIGURATION_EXPIRED)
    if not inputs.log_accepting:
        reasons.append(LOG_CLOSED)
    elif inputs.log_failed_at_ms is not None:
        reasons.append(LOG_WRITE_FAILED)
    if inputs.timestamping_overdue:
        reasons.append(TIMESTAMPING_OVERDUE)
    return Health(NOT_SERVING if reasons else SERVING, tuple(reasons))


class WatchedMessageLog(MessageLog):
    """The message log, remembering whether its last write failed, and how many
    failures (each cleared by a probe since) came in a row without a write succeeding."""

    def __init__(self, path: Path, clock: Clock, *, max_batch: int = 1024) -> None:
        super().__init__(path, clock, max_batch=max_batch)
        self.failed_at_ms: int | None = None
        self.failures_in_a_row = 0

    async def append(self, records: Sequence[LogRecord]) -> None:
        try:
            await super().append(records)
        except ZholError as err:
            if err.code.name == "LoggingFailed":
                if self.failed_at_ms is None:
                    self.failures_in_a_row += 1
                self.failed_at_ms = self.clock.now_ms()
            raise
        self.failed_at_ms = None
        self.failures_in_a_row = 0

    def probe(self) -> bool:
        """Whether the log could take a write now: open, and its write lock obtainable.

        Writes nothing (the log is append-only evidence). Blocking: run it in a thread.
        """
        if not self.accepting:
            return False
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        return True


@dataclass(frozen=True, slots=True)
class ConfHeld:
    """What the running gateway holds in memory, as `zhol gateway refresh` reports it:
    whether its watch on the registry is open (None: it keeps none, a custom fetch) and
    the configuration version in force with when it was generated (None: none)."""

    watching: bool | None
    version: int | None = None
    generated_at_ms: int | None = None


def conf_held(conf: ConfSource, watching: Callable[[], bool] | None) -> ConfHeld:
    trusted = conf.loaded
    return ConfHeld(
        watching=None if watching is None else watching(),
        version=None if trusted is None else trusted.conf.version,
        generated_at_ms=None if trusted is None else trusted.conf.generated_at_ms,
    )


def conf_expiry(conf: ConfSource) -> int | None:
    """Expiry of the verified configuration loaded, expired or not; None if none."""
    trusted = conf.loaded
    return None if trusted is None else trusted.conf.expires_at_ms


class HealthPublisher(Protocol):
    """Where the status and its reasons go besides gRPC (gateway/healthfile.py)."""

    def open(self) -> None: ...
    def publish(
        self, status: str, reasons: tuple[str, ...], now_ms: int, held: ConfHeld | None = None
    ) -> None: ...
    def close(self) -> None: ...


class HealthWatch:
    """Re-evaluates the gateway's health every second and tells the servicer, and the
    publisher (for `zhol gateway status`) whenever the status or its reasons change,
    or the configuration held or the state of the watch on the registry."""

    def __init__(
        self,
        conf: ConfSource,
        message_log: WatchedMessageLog,
        clock: Clock,
        interval_s: float = CHECK_INTERVAL_S,
        publisher: HealthPublisher | None = None,
        timestamping_overdue: Callable[[], bool] | None = None,
        watching: Callable[[], bool] | None = None,
    ) -> None:
        self.servicer = health_aio.HealthServicer()
        self._conf = conf
        self._log = message_log
        self._clock = clock
        self._interval_s = interval_s
        self._publisher = publisher
        self._timestamping_overdue = timestamping_overdue
        self._watching = watching  # whether the registry watch is open; None: no watch
        self._task: asyncio.Task[None] | None = None
        self.current: Health | None = None
        self._published: tuple[Health, ConfHeld] | None = None

    async def check(self) -> Health:
        """Evaluate once and publish the result; logs a WARNING when the status changes."""
        await self._retry_failed_log()
        health = decide(
            HealthInputs(
                now_ms=self._clock.now_ms(),
                conf_expires_at_ms=conf_expiry(self._conf),
                log_accepting=self._log.accepting,
                log_failed_at_ms=self._log.failed_at_ms,
                timestamping_overdue=(
                    self._timestamping_overdue is not None and self._timestamping_overdue()
                ),
            )
        )
        previous, self.current = self.current, health
        if self._publisher is not None:
            held = conf_held(self._conf, self._watching)
            if self._published != (health, held):
                status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
                self._publisher.publish(status_name, health.reasons, self._clock.now_ms(), held)
                self._published = (health, held)
        if previous is None or previous.status != health.status:
            for service in SERVICES:
                await self.servicer.set(service, health.status)
            if previous is not None or not health.serving:
                log.warning(
                    "health %s reasons=%s",
                    health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
                    ",".join(health.reasons) or "-",
                )
        return health

    async def _retry_failed_log(self) -> None:
        """Clear a write failure older than its hold once the log could take writes again."""
        failed_at = self._log.failed_at_ms
        hold_ms = log_failure_hold_ms(self._log.failures_in_a_row)
        if failed_at is None or self._clock.now_ms() - failed_at < hold_ms:
            return
        # Unless a newer failure came while the probe ran.
        if await asyncio.to_thread(self._log.probe) and self._log.failed_at_ms == failed_at:
            self._log.failed_at_ms = None

    async def start(self) -> None:
        if self._publisher is not None:
            self._publisher.open()
        await self.check()  # the servers start with the real status, never a default
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.servicer.enter_graceful_shutdown()
        if self._publisher is not None:
            self._publisher.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:  # keep watching; a bug here must not stop the probes
                log.exception("health check failed")
