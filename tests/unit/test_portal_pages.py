"""The portal actions' pure parts: the address form's checks and how an owner's answer
becomes the result page's status."""

from __future__ import annotations

import grpc
import pytest

from zhol.core.busclient import BusCallError
from zhol.portal.pages import _STATUS, _outcome, parse_address

GOOD = {"region": "Astana", "locality": "Astana", "street": "Abay  avenue", "building": "3"}


def test_an_address_is_taken_with_its_whitespace_collapsed() -> None:
    address = parse_address({**GOOD, "apartment": " 12 "})
    assert (address.street, address.apartment, address.district) == ("Abay avenue", "12", "")


@pytest.mark.parametrize(
    "change",
    [{"street": ""}, {"building": "  "}, {"region": "x" * 101}, {"district": "a\x00b"}],
)
def test_an_incomplete_or_oversized_address_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        parse_address({**GOOD, **change})


@pytest.mark.parametrize(
    ("status", "zhol_error", "problem", "http"),
    [
        (grpc.StatusCode.FAILED_PRECONDITION, None, "refused_by_owner", 409),
        (grpc.StatusCode.ALREADY_EXISTS, None, "refused_by_owner", 409),
        (grpc.StatusCode.INVALID_ARGUMENT, None, "invalid_by_owner", 400),
        (grpc.StatusCode.PERMISSION_DENIED, "Server.ServerProxy.AccessDenied", "refused", 403),
        (grpc.StatusCode.UNAVAILABLE, "Server.ClientProxy.NetworkError", "unavailable", 503),
        (grpc.StatusCode.INTERNAL, None, "unavailable", 503),
        # the bus's own INVALID_ARGUMENT is not the owner's reason to show
        (grpc.StatusCode.INVALID_ARGUMENT, "Client.DataSubjectMismatch", "refused", 403),
    ],
)
def test_the_owners_answer_decides_the_result(
    status: grpc.StatusCode, zhol_error: str | None, problem: str, http: int
) -> None:
    outcome = _outcome("KZ/GOV/MOH/health", BusCallError("m", status, "why", zhol_error=zhol_error))
    assert outcome.problem == problem and _STATUS[problem] == http
    assert outcome.reason == ("why" if problem.endswith("_by_owner") else "")
