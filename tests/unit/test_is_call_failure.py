"""gateway.transport.is_call_failure: a call to our IS that got no answer of the IS's
own, told by its gRPC status code (never by the words of its details)."""

from __future__ import annotations

import grpc
import pytest

from zhol.gateway.localconf import IsEndpoint
from zhol.gateway.transport import is_call_failure

PLAIN = IsEndpoint("127.0.0.1:5001", "plaintext", b"")
PINNED = IsEndpoint("127.0.0.1:5001", "tls", b"-----BEGIN CERTIFICATE-----\n")


@pytest.mark.parametrize("endpoint", [PLAIN, PINNED])
def test_no_connection_is_service_failed_whatever_the_details_say(endpoint: IsEndpoint) -> None:
    failure = is_call_failure(grpc.StatusCode.UNAVAILABLE, endpoint)
    assert failure is not None and failure.code.name == "ServiceFailed"


@pytest.mark.parametrize("endpoint", [PLAIN, PINNED])
def test_no_answer_in_time_is_a_timeout(endpoint: IsEndpoint) -> None:
    failure = is_call_failure(grpc.StatusCode.DEADLINE_EXCEEDED, endpoint)
    assert failure is not None and failure.code.name == "Timeout"


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    ],
)
def test_any_other_status_is_the_is_answering(code: grpc.StatusCode) -> None:
    assert is_call_failure(code, PINNED) is None
