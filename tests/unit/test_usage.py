"""The pure parts of 'who used my data': classification, queries, pages, the local right."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline_harness import (
    CLIENT,
    CONSUMER_GATEWAY,
    PROVIDER,
    PROVIDER_GATEWAY,
    START_MS,
    Bus,
    header,
    in_memory_bus,
    sealed_request,
)
from tests.pipeline_harness import SUBJECT as HARNESS_SUBJECT
from tests.unit.test_messagelog import record
from zhol.bus.v1 import bus_pb2, usage_pb2
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.usage import (
    FIND_USAGE,
    USAGE_SERVICE,
    Cursor,
    UsageQuery,
    check_subject,
    classify,
    find_usage,
    parse_query,
)
from zhol.security.globalconf import subsystem_to_pb

SUBJECT = "900101300126"
OTHER = "900101300136"
POPULATION = "KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry"
BIG = 1 << 20


@pytest.mark.parametrize(
    ("method", "access"),
    [
        ("GetPerson", usage_pb2.USAGE_ACCESS_READ),
        ("ListAttachments", usage_pb2.USAGE_ACCESS_READ),
        ("IsInsuredByContributions", usage_pb2.USAGE_ACCESS_READ),
        ("FindUsage", usage_pb2.USAGE_ACCESS_READ),
        ("RegisterBirth", usage_pb2.USAGE_ACCESS_CHANGE),
        ("ChangeAddress", usage_pb2.USAGE_ACCESS_CHANGE),
        ("AttachToClinic", usage_pb2.USAGE_ACCESS_CHANGE),
        ("AssignRetirementPensions", usage_pb2.USAGE_ACCESS_CHANGE),
        # A read verb must be a whole word: these change.
        ("Issue", usage_pb2.USAGE_ACCESS_CHANGE),
        ("Getaway", usage_pb2.USAGE_ACCESS_CHANGE),
    ],
)
def test_a_method_reads_or_changes_by_its_name(method: str, access: int) -> None:
    assert classify(f"{POPULATION}/{method}") == access


def test_an_event_is_classified_as_an_event() -> None:
    topic = "KZ/GOV/MJ/population/zhol.population.v1.BirthRegistered"
    assert classify(topic) == usage_pb2.USAGE_ACCESS_EVENT


def request(**fields: object) -> bytes:
    return usage_pb2.FindUsageRequest(**fields).SerializeToString()  # type: ignore[arg-type]


def test_a_query_is_parsed_with_its_defaults() -> None:
    query = parse_query(request(data_subject=SUBJECT, gateway="KZ/GOV/MJ/gw1"))
    assert query == UsageQuery(SUBJECT, 100, None, 0, 0, GatewayId.parse("KZ/GOV/MJ/gw1"))
    assert parse_query(request(data_subject=SUBJECT, page_token="17.4")).after == Cursor(17, 4)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\xff\xff", "InvalidRequest"),
        (request(data_subject=""), "InvalidIdentifier"),
        (request(data_subject="900101300127"), "InvalidIdentifier"),  # bad check digit
        (request(data_subject=SUBJECT, limit=1001), "InvalidRequest"),
        (request(data_subject=SUBJECT, page_token="17"), "InvalidRequest"),
        (request(data_subject=SUBJECT, page_token="a.b"), "InvalidRequest"),
        (request(data_subject=SUBJECT, page_token="-1.2"), "InvalidRequest"),
        (request(data_subject=SUBJECT, from_unix_ms=-1), "InvalidRequest"),
        (request(data_subject=SUBJECT, from_unix_ms=5, to_unix_ms=5), "InvalidRequest"),
        (request(data_subject=SUBJECT, gateway="KZ/GOV"), "InvalidIdentifier"),
    ],
)
def test_a_malformed_query_is_refused(body: bytes, code: str) -> None:
    with pytest.raises(ZholError) as caught:
        parse_query(body)
    assert caught.value.code.name == code


def test_a_query_must_declare_its_own_subject() -> None:
    query = parse_query(request(data_subject=SUBJECT))
    check_subject(query, SUBJECT)
    for declared in ("", OTHER):
        with pytest.raises(ZholError) as caught:
            check_subject(query, declared)
        assert caught.value.code.name == "AccessDenied"


@pytest.fixture
def filled_log(tmp_path: Path) -> Path:
    """Five exchanges about SUBJECT (two logged in the same millisecond), one about OTHER."""
    clock = FixedClock()
    log = MessageLog(tmp_path / "messagelog.db", clock)
    log.open()

    async def fill() -> None:
        for n in range(5):
            mid = str(uuid.uuid4())
            await log.append(
                (
                    record(mid, "request", "in", data_subject=SUBJECT),
                    record(mid, "response", "out", data_subject=SUBJECT),
                )
            )
            if n != 2:
                clock.advance(1)
        await log.append((record(str(uuid.uuid4()), data_subject=OTHER),))

    asyncio.run(fill())
    log.close()
    return log.path


def test_the_answer_is_the_subjects_records_newest_first(filled_log: Path) -> None:
    answer = find_usage(filled_log, parse_query(request(data_subject=SUBJECT)), BIG)
    assert len(answer.entries) == 10 and not answer.next_page_token
    order = [(e.logged_at_unix_ms, e.kind) for e in answer.entries]
    assert order == sorted(order, key=lambda o: o[0], reverse=True)
    first = answer.entries[0]
    assert (first.kind, first.direction, first.method) == ("response", "out", "GetPerson")
    assert first.client == "KZ/GOV/MLSPP/pension" and first.client_member == "KZ/GOV/MLSPP"
    assert (first.user_id, first.purpose) == ("KZ:officer-17", "pension case 42")
    assert first.peer_gateway == "KZ/GOV/MJ/gw1"


@pytest.mark.parametrize("limit", [1, 3, 4])
def test_pages_follow_each_other_without_gaps_or_repeats(filled_log: Path, limit: int) -> None:
    whole = find_usage(filled_log, parse_query(request(data_subject=SUBJECT)), BIG).entries
    seen: list[usage_pb2.UsageEntry] = []
    token = ""
    for _ in range(len(whole) + 1):  # a page that repeats itself must not loop forever
        page = find_usage(
            filled_log,
            parse_query(request(data_subject=SUBJECT, limit=limit, page_token=token)),
            BIG,
        )
        assert 0 < len(page.entries) <= limit
        seen += page.entries
        token = page.next_page_token
        if not token:
            break
    assert not token and seen == list(whole)


def test_a_page_stays_within_the_message_size(filled_log: Path) -> None:
    one = find_usage(filled_log, parse_query(request(data_subject=SUBJECT)), BIG).entries[0]
    small = 1024 + 3 * (one.ByteSize() + 8)
    page = find_usage(filled_log, parse_query(request(data_subject=SUBJECT)), small)
    assert len(page.entries) == 3 and page.next_page_token


def test_a_time_range_selects_on_the_logged_time(filled_log: Path) -> None:
    whole = find_usage(filled_log, parse_query(request(data_subject=SUBJECT)), BIG).entries
    newest = whole[0].logged_at_unix_ms
    query = parse_query(request(data_subject=SUBJECT, from_unix_ms=newest - 999))
    assert [e.logged_at_unix_ms for e in find_usage(filled_log, query, BIG).entries] == [
        newest,
        newest,
    ]
    query = parse_query(request(data_subject=SUBJECT, to_unix_ms=newest))
    assert len(find_usage(filled_log, query, BIG).entries) == 8


def test_an_unreadable_log_is_a_logging_failure(tmp_path: Path) -> None:
    with pytest.raises(ZholError) as caught:
        find_usage(tmp_path / "none.db", parse_query(request(data_subject=SUBJECT)), BIG)
    assert caught.value.code.name == "LoggingFailed"


def test_the_usage_right_is_denied_by_default_and_granted_locally(tmp_path: Path) -> None:
    portal = SubsystemId.parse("KZ/GOV/MDDIAI/portal")
    store = LocalConfStore(tmp_path / "local.db")
    try:
        with pytest.raises(ZholError) as caught:
            store.current().authorize_usage(portal)
        assert caught.value.code.name == "AccessDenied"
        store.allow_usage(portal, 1)
        store.current().authorize_usage(portal)
        assert store.usage_rights() == [portal]
        assert store.deny_usage(portal) == 1
        with pytest.raises(ZholError):
            store.current().authorize_usage(portal)
    finally:
        store.close()


# -- the target gateway's own checks, whatever the consumer gateway did ------------------


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    with in_memory_bus(tmp_path) as running:
        yield running


def usage_request(bus: Bus, body: bytes, **fields: object) -> bus_pb2.SignedMessage:
    """A FindUsage request sealed by the consumer's gateway, as a careless or hostile
    one might seal it: nothing checked on its side."""
    service = bus_pb2.ServiceId(
        subsystem=subsystem_to_pb(PROVIDER), grpc_service=USAGE_SERVICE, method=FIND_USAGE
    )
    signer = bus.trust.gateways[CONSUMER_GATEWAY].signer
    return sealed_request(signer, header(service=service, **fields), body)


async def served(bus: Bus, message: bus_pb2.SignedMessage) -> str:
    try:
        await bus.serve(message)
    except ZholError as err:
        return err.full_code
    return "ok"


async def test_the_target_gateway_checks_a_usage_query_itself(bus: Bus) -> None:
    mine = request(data_subject=HARNESS_SUBJECT)
    before = len(bus.provider.log.recent_request_ids(0))
    assert await served(bus, usage_request(bus, mine)) == "Server.ServerProxy.AccessDenied"
    bus.provider.local.allow_usage(CLIENT, START_MS)
    other = request(data_subject=SUBJECT)
    assert await served(bus, usage_request(bus, other)) == "Server.ServerProxy.AccessDenied"
    assert await served(bus, usage_request(bus, mine, data_subject="")) == (
        "Server.ServerProxy.AccessDenied"
    )
    pinned = request(data_subject=HARNESS_SUBJECT, gateway=str(CONSUMER_GATEWAY))
    assert await served(bus, usage_request(bus, pinned)) == "Server.ServerProxy.UnknownService"
    assert await served(bus, usage_request(bus, b"\xff")) == "Client.InvalidRequest"
    assert len(bus.provider.log.recent_request_ids(0)) == before, "a refusal was logged"
    x = await bus.serve(usage_request(bus, mine))
    assert x.response is not None
    assert usage_pb2.FindUsageResponse.FromString(x.response.body).gateway == str(PROVIDER_GATEWAY)
    assert bus.provider_is.calls == [], "a usage query never reaches an IS"
