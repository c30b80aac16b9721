"""The gateway's health rule (pure) and the message log's write-failure tracking."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.errors import ZholError
from gateway.health import (
    CONFIGURATION_EXPIRED,
    LOG_CLOSED,
    LOG_WRITE_FAILED,
    NO_CONFIGURATION,
    NOT_SERVING,
    SERVING,
    HealthInputs,
    WatchedMessageLog,
    decide,
)
from tests.unit.test_messagelog import record

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
