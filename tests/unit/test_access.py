"""Access requests: the provider's gateway checks each request itself (it trusts no
consumer gateway), keeps it pending, grants nothing; decisions happen once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline_harness import (
    CLIENT,
    CONSUMER_GATEWAY,
    GRPC_SERVICE,
    PROVIDER,
    START_MS,
    Bus,
    header,
    in_memory_bus,
    sealed_request,
)
from zhol.bus.v1 import access_pb2, bus_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import ServiceId
from zhol.gateway import access
from zhol.gateway.access import (
    ACCESS_SERVICE,
    LIST_ACCESS_REQUESTS,
    REQUEST_ACCESS,
    check_reason,
    parse_ask,
)
from zhol.gateway.accessstore import APPROVED, PENDING, REJECTED, AccessRequestStore
from zhol.security.globalconf import subsystem_to_pb

GET_PERSON = ServiceId.of(PROVIDER, GRPC_SERVICE, "GetPerson")


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    with in_memory_bus(tmp_path) as running:
        yield running


def ask(**fields: str) -> bytes:
    values = {"grpc_service": GRPC_SERVICE, "method": "GetPerson", "reason": "benefit checks"}
    values.update(fields)
    return access_pb2.RequestAccessRequest(**values).SerializeToString()  # type: ignore[arg-type]


def sealed(
    bus: Bus, body: bytes, method: str = REQUEST_ACCESS, **fields: object
) -> bus_pb2.SignedMessage:
    """An Access request sealed by the consumer's gateway as a careless or hostile one
    might: nothing checked on its side."""
    service = bus_pb2.ServiceId(
        subsystem=subsystem_to_pb(PROVIDER), grpc_service=ACCESS_SERVICE, method=method
    )
    signer = bus.trust.gateways[CONSUMER_GATEWAY].signer
    return sealed_request(signer, header(service=service, **{"data_subject": "", **fields}), body)


async def served(bus: Bus, message: bus_pb2.SignedMessage) -> str:
    try:
        await bus.serve(message)
    except ZholError as err:
        return err.code.name
    return "ok"


def store(bus: Bus) -> AccessRequestStore:
    found = bus.provider.parts.access_requests
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (ask(grpc_service="zhol.population.v1.Nothing", method=""), "UnknownService"),
        (ask(method="Nothing"), "UnknownService"),
        (
            ask(grpc_service="", method="", topic="zhol.population.v1.BirthRegistered"),
            "UnknownTopic",
        ),
        (ask(reason=""), "InvalidRequest"),
        (ask(reason="x" * 1001), "InvalidRequest"),
        (ask(reason="ok\x1b[2Jwiped"), "InvalidRequest"),
        (ask(grpc_service="", method=""), "InvalidRequest"),
        (ask(topic="zhol.population.v1.BirthRegistered"), "InvalidRequest"),
        (ask(gateway=str(CONSUMER_GATEWAY)), "UnknownService"),
        (b"\xff", "InvalidRequest"),
    ],
    ids=[
        "unknown service",
        "unknown method",
        "unknown topic",
        "empty reason",
        "long reason",
        "escape in reason",
        "no target",
        "both targets",
        "another gateway",
        "not protobuf",
    ],  # fmt: skip
)
async def test_the_provider_gateway_checks_a_request_itself(
    bus: Bus, body: bytes, code: str
) -> None:
    before = len(bus.provider.log.recent_request_ids(0))
    assert await served(bus, sealed(bus, body)) == code
    assert len(bus.provider.log.recent_request_ids(0)) == before, "a refusal was logged"
    assert store(bus).received() == []
    assert bus.provider_is.calls == []


async def test_a_request_about_a_data_subject_is_refused(bus: Bus) -> None:
    assert await served(bus, sealed(bus, ask(), data_subject="900101400013")) == "InvalidRequest"
    assert store(bus).received() == []


async def test_a_kept_request_is_pending_and_grants_nothing(bus: Bus) -> None:
    message = sealed(bus, ask())
    x = await bus.serve(message)
    assert x.response is not None and bus.provider_is.calls == []
    answer = access_pb2.RequestAccessResponse.FromString(x.response.body).request
    assert answer.request_id == bus_pb2.MessageHeader.FromString(message.header).message_id
    (kept,) = store(bus).received()
    assert kept.request_id == answer.request_id and kept.status == PENDING
    assert (kept.client, kept.target) == (str(CLIENT), str(GET_PERSON))
    with pytest.raises(ZholError) as refused:
        bus.provider.local.current().authorize(CLIENT, GET_PERSON)
    assert refused.value.code.name == "AccessDenied"
    # The same right again while the first waits: refused before the log.
    before = len(bus.provider.log.recent_request_ids(0))
    assert await served(bus, sealed(bus, ask())) == "DuplicateAccessRequest"
    assert len(bus.provider.log.recent_request_ids(0)) == before
    # The client's own requests, and only its own, are listed back to it.
    listing = await bus.serve(
        sealed(
            bus, access_pb2.ListAccessRequestsRequest().SerializeToString(), LIST_ACCESS_REQUESTS
        )
    )
    assert listing.response is not None
    listed = access_pb2.ListAccessRequestsResponse.FromString(listing.response.body)
    assert [r.request_id for r in listed.requests] == [kept.request_id]


async def test_a_client_has_a_bounded_number_of_pending_requests(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access, "MAX_PENDING_PER_CLIENT", 1)
    assert await served(bus, sealed(bus, ask())) == "ok"
    assert await served(bus, sealed(bus, ask(method="GetAddress"))) == "TooManyAccessRequests"
    assert len(store(bus).received()) == 1


async def test_a_decision_is_made_once_and_a_failed_grant_leaves_it_pending(bus: Bus) -> None:
    await bus.serve(sealed(bus, ask()))
    (kept,) = store(bus).received()

    def failing(_: object) -> None:
        raise ZholError("InvalidRequest", "disk full, say")

    with pytest.raises(ZholError):
        store(bus).decide(kept.request_id, APPROVED, "", START_MS, failing)
    assert store(bus).received()[0].status == PENDING
    granted: list[str] = []
    decided = store(bus).decide(
        kept.request_id, APPROVED, "ok", START_MS, lambda r: granted.append(r.target)
    )
    assert (decided.status, decided.decision_reason, granted) == (APPROVED, "ok", [kept.target])
    for status in (APPROVED, REJECTED):
        with pytest.raises(ZholError) as twice:
            store(bus).decide(kept.request_id, status, "again", START_MS)
        assert twice.value.code.name == "AccessRequestDecided"
    with pytest.raises(ZholError) as unknown:
        store(bus).decide("0190a3c8-0000-7000-8000-000000000000", REJECTED, "no", START_MS)
    assert unknown.value.code.name == "UnknownAccessRequest"


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001, "tab\there", "rtl\u202eoverride"])
def test_a_reason_must_be_readable_text(reason: str) -> None:
    with pytest.raises(ZholError) as refused:
        check_reason(reason)
    assert refused.value.code.name == "InvalidRequest"


def test_a_request_names_a_service_or_a_topic() -> None:
    parsed = parse_ask(ask(method=""))
    assert (parsed.grpc_service, parsed.method, parsed.topic) == (GRPC_SERVICE, "", "")
    assert parse_ask(ask(reason="é" * 1000)).reason == "é" * 1000
