"""The gateway's health rule (pure) and the message log's write-failure tracking."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.test_messagelog import record
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.gateway.health import (
    CONFIGURATION_EXPIRED,
    LOG_CLOSED,
    LOG_FAILURE_HOLD_MS,
    LOG_FAILURE_MAX_HOLD_MS,
    LOG_WRITE_FAILED,
    NO_CONFIGURATION,
    NOT_SERVING,
    SERVING,
    ConfHeld,
    HealthInputs,
    HealthWatch,
    WatchedMessageLog,
    decide,
    log_failure_hold_ms,
)
from zhol.gateway.messagelog import LogRecord

NOW = 1_790_000_000_000


def inputs(**changes: object) -> HealthInputs:
    healthy: dict[str, object] = {
        "now_ms": NOW,
        "conf_expires_at_ms": NOW + 600_000,
        "log_accepting": True,
        "log_failed_at_ms": None,
    }
    return HealthInputs(**{**healthy, **changes})  # type: ignore[arg-type]


def test_healthy_gateway_is_serving_with_no_reasons() -> None:
    health = decide(inputs())
    assert (health.status, health.reasons, health.serving) == (SERVING, (), True)


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"conf_expires_at_ms": None}, (NO_CONFIGURATION,)),
        ({"conf_expires_at_ms": NOW}, (CONFIGURATION_EXPIRED,)),  # expiry instant: expired
        ({"conf_expires_at_ms": NOW - 1}, (CONFIGURATION_EXPIRED,)),
        ({"log_accepting": False}, (LOG_CLOSED,)),
        ({"log_failed_at_ms": NOW - 5}, (LOG_WRITE_FAILED,)),
        # A closed log is the cause; a failed write behind it adds nothing.
        ({"log_accepting": False, "log_failed_at_ms": NOW}, (LOG_CLOSED,)),
        (
            {"conf_expires_at_ms": NOW - 1, "log_failed_at_ms": NOW},
            (CONFIGURATION_EXPIRED, LOG_WRITE_FAILED),
        ),
    ],
)
def test_each_fault_is_not_serving_and_named(
    changes: dict[str, object], reasons: tuple[str, ...]
) -> None:
    health = decide(inputs(**changes))
    assert (health.status, health.reasons, health.serving) == (NOT_SERVING, reasons, False)


def test_one_millisecond_before_expiry_still_serves() -> None:
    assert decide(inputs(conf_expires_at_ms=NOW + 1)).status == SERVING


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[WatchedMessageLog]:
    log = WatchedMessageLog(tmp_path / "messagelog.db", FixedClock(NOW))
    log.open()
    yield log
    log.close()


async def test_a_failed_write_is_remembered_until_a_write_succeeds(
    watched: WatchedMessageLog,
) -> None:
    assert (watched.accepting, watched.failed_at_ms, watched.probe()) == (True, None, True)
    logged = record(str(uuid.uuid4()))
    await watched.append([logged])
    with pytest.raises(ZholError) as caught:
        await watched.append([logged])  # the same record again: the log refuses it
    assert caught.value.code.name == "LoggingFailed"
    assert watched.failed_at_ms == NOW
    assert watched.accepting  # still open: the failure alone makes it NOT_SERVING
    await watched.append([record(str(uuid.uuid4()))])
    assert watched.failed_at_ms is None


async def test_a_closed_log_neither_accepts_nor_probes_well(watched: WatchedMessageLog) -> None:
    watched.close()
    with pytest.raises(ZholError):
        await watched.append([record(str(uuid.uuid4()))])
    assert (watched.accepting, watched.failed_at_ms, watched.probe()) == (False, NOW, False)


def test_the_hold_doubles_with_each_failure_in_a_row_up_to_five_minutes() -> None:
    holds = [log_failure_hold_ms(n) for n in range(0, 8)]
    assert holds[:5] == [LOG_FAILURE_HOLD_MS, LOG_FAILURE_HOLD_MS, 20_000, 40_000, 80_000]
    assert holds[-1] == LOG_FAILURE_MAX_HOLD_MS == log_failure_hold_ms(10_000)


async def already_logged(log: WatchedMessageLog) -> LogRecord:
    logged = record(str(uuid.uuid4()))
    await log.append([logged])
    return logged


async def fail_once(log: WatchedMessageLog, logged: LogRecord) -> None:
    with pytest.raises(ZholError):
        await log.append([logged])  # a duplicate: the log refuses it


async def test_failures_count_in_a_row_until_a_write_succeeds(
    watched: WatchedMessageLog,
) -> None:
    logged = await already_logged(watched)
    await fail_once(watched, logged)
    await fail_once(watched, logged)  # the same failure still standing: not a new one
    assert watched.failures_in_a_row == 1
    watched.failed_at_ms = None  # what a successful probe does
    await fail_once(watched, logged)
    assert watched.failures_in_a_row == 2
    await watched.append([record(str(uuid.uuid4()))])
    assert (watched.failed_at_ms, watched.failures_in_a_row) == (None, 0)


def stand_in_conf(expires_at_ms: int, version: int = 1) -> SimpleNamespace:
    """What HealthWatch reads of a ConfSource: the loaded configuration's expiry, and
    for its publisher its version and when it was generated."""
    conf = SimpleNamespace(expires_at_ms=expires_at_ms, version=version, generated_at_ms=NOW)
    return SimpleNamespace(loaded=SimpleNamespace(conf=conf))


async def test_a_failure_that_comes_back_holds_not_serving_twice_as_long(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    log = WatchedMessageLog(tmp_path / "messagelog.db", clock)
    log.open()
    watch = HealthWatch(stand_in_conf(NOW + 10**9), log, clock)  # type: ignore[arg-type]
    try:
        logged = await already_logged(log)
        await fail_once(log, logged)
        assert (await watch.check()).reasons == (LOG_WRITE_FAILED,)
        clock.advance(LOG_FAILURE_HOLD_MS / 1000)
        assert (await watch.check()).serving  # the probe found the log writable
        # Traffic comes back and the write fails again: now held for 20 s.
        await fail_once(log, logged)
        clock.advance(LOG_FAILURE_HOLD_MS / 1000)
        assert not (await watch.check()).serving
        clock.advance(LOG_FAILURE_HOLD_MS / 1000)
        assert (await watch.check()).serving
        # A write that succeeds starts the count again.
        await log.append([record(str(uuid.uuid4()))])
        await fail_once(log, logged)
        clock.advance(LOG_FAILURE_HOLD_MS / 1000)
        assert (await watch.check()).serving
    finally:
        await watch.stop()
        log.close()


class RecordingPublisher:
    """A HealthPublisher that keeps what it was told (the file itself: test_healthfile)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, ConfHeld | None]] = []

    def open(self) -> None:
        pass

    def publish(
        self, status: str, reasons: tuple[str, ...], now_ms: int, held: ConfHeld | None = None
    ) -> None:
        self.published.append((status, held))

    def close(self) -> None:
        pass


async def test_the_watch_state_and_the_version_held_are_published_when_they_change(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    log = WatchedMessageLog(tmp_path / "messagelog.db", clock)
    log.open()
    conf = stand_in_conf(NOW + 10**9, version=7)
    watching = [False]
    publisher = RecordingPublisher()
    watch = HealthWatch(
        conf,  # type: ignore[arg-type]
        log,
        clock,
        publisher=publisher,
        watching=lambda: watching[0],
    )
    try:
        await watch.check()
        await watch.check()  # nothing changed: nothing published again
        assert publisher.published == [("SERVING", ConfHeld(False, 7, NOW))]
        watching[0] = True  # the watch opened: published though the status is the same
        await watch.check()
        conf.loaded.conf.version = 8  # a new version pushed
        await watch.check()
        assert [held for _, held in publisher.published[1:]] == [
            ConfHeld(True, 7, NOW),
            ConfHeld(True, 8, NOW),
        ]
    finally:
        await watch.stop()
        log.close()
