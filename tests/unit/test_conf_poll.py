"""How often a gateway polls the registry for the global configuration (pure rule)."""

from __future__ import annotations

from zhol.gateway.confsource import RETRY_JITTER, RETRY_S, poll_interval_s


def test_a_healthy_gateway_polls_at_the_configurations_pace() -> None:
    assert poll_interval_s(60.0, None, urgent=False, jitter=0.9) == 60.0
    assert poll_interval_s(60.0, 30.0, urgent=False, jitter=-0.9) == 30.0
    assert poll_interval_s(60.0, 300.0, urgent=False, jitter=0.0) == 60.0


def test_a_failing_or_expired_gateway_retries_within_seconds_with_jitter() -> None:
    low = poll_interval_s(60.0, 60.0, urgent=True, jitter=-1.0)
    high = poll_interval_s(60.0, 60.0, urgent=True, jitter=1.0)
    assert low == RETRY_S * (1 - RETRY_JITTER) and high == RETRY_S * (1 + RETRY_JITTER)
    assert high < 5.0  # the target: serving again within 5 s of the registry's return
    assert poll_interval_s(0.5, None, urgent=True, jitter=1.0) == 0.5  # never slower than asked
