"""`zhol scenario` retries a step an agency answers while briefly down, and only that."""

from __future__ import annotations

import grpc
import pytest

from zhol.cli.scenario import retry_delay

CODE = grpc.StatusCode


@pytest.mark.parametrize("code", [CODE.UNAVAILABLE, CODE.DEADLINE_EXCEEDED])
def test_transient_answers_are_retried_with_doubling_delays(code: grpc.StatusCode) -> None:
    delays = [retry_delay(code, n, waited_s=0.0, budget_s=30.0) for n in range(1, 7)]
    assert delays == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


@pytest.mark.parametrize(
    "code",
    [CODE.FAILED_PRECONDITION, CODE.NOT_FOUND, CODE.ALREADY_EXISTS, CODE.PERMISSION_DENIED,
     CODE.INVALID_ARGUMENT, CODE.INTERNAL, CODE.UNAUTHENTICATED, CODE.RESOURCE_EXHAUSTED],
)  # fmt: skip
def test_a_decision_or_refusal_is_never_retried(code: grpc.StatusCode) -> None:
    assert retry_delay(code, 1, waited_s=0.0, budget_s=30.0) is None


def test_retries_stop_once_the_next_wait_would_pass_the_bound() -> None:
    assert retry_delay(CODE.UNAVAILABLE, 20, waited_s=27.9, budget_s=30.0) == 2.0
    assert retry_delay(CODE.UNAVAILABLE, 20, waited_s=28.1, budget_s=30.0) is None
    assert retry_delay(CODE.UNAVAILABLE, 1, waited_s=0.0, budget_s=0.0) is None
