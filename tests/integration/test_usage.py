"""'Who used my data' (zhol.bus.v1.Usage/FindUsage) through real gateways."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import (
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    get_person,
    start_federation,
)
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.bus.v1 import usage_pb2
from zhol.cli import federation
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.core.errors import parse_full_code
from zhol.gateway.messagelog import list_records
from zhol.gateway.usage import FIND_USAGE_PATH

pytestmark = pytest.mark.asyncio(loop_scope="module")

POPULATION = "KZ/GOV/MJ/population"  # served by PROVIDER_GATEWAY; has no usage right
# The subsystem a query names (zhol-provider) to reach each gateway.
TARGETS = {PROVIDER_GATEWAY: POPULATION, CONSUMER_GATEWAY: CLIENT}
GET_PERSON_CALLS = 3


@dataclass
class Usage:
    fed: Federation
    a: str
    b: str
    b_message_ids: set[str]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def usage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Usage]:
    # The demo's provisioning grants a subsystem marked reads_usage the right on every
    # gateway (the portal, in the demo); here the pension system plays that client.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            federation,
            "SUBSYSTEMS",
            tuple(replace(s, reads_usage=s.id == CLIENT) for s in federation.SUBSYSTEMS),
        )
        fed = await start_federation(tmp_path_factory.mktemp("usage"))
    try:
        a, b = some_iin(fed, 0), some_iin(fed, 1)
        for _ in range(GET_PERSON_CALLS):
            await get_person(fed.is_address(), a)
        await get_person(fed.is_address(), b)
        b_ids = {
            r["message_id"] for r in list_records(log_path(fed, CONSUMER_GATEWAY), data_subject=b)
        }
        yield Usage(fed, a, b, b_ids)
    finally:
        await fed.stop()


def log_path(fed: Federation, gateway_id: str):  # type: ignore[no-untyped-def]
    return fed.layout.gateway(gateway_id) / "messagelog.db"


async def find_usage(
    fed: Federation,
    target: str,
    request: usage_pb2.FindUsageRequest,
    *,
    client: str = CLIENT,
    declared: str | None = None,
    via: str = CONSUMER_GATEWAY,
) -> tuple[usage_pb2.FindUsageResponse, dict[str, str]]:
    md = bus_metadata(
        client=client,
        data_subject=request.data_subject if declared is None else declared,
        purpose="the citizen's own request",
        user_id="IIN:" + request.data_subject,
    )
    body, trailers = await call_raw(
        fed.is_address(via),
        FIND_USAGE_PATH,
        request.SerializeToString(),
        (*md, ("zhol-provider", TARGETS[target])),
    )
    return usage_pb2.FindUsageResponse.FromString(body), trailers


async def refused(coro) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await coro
    full = error_code(caught.value)
    assert full is not None, "refused by the bus, not by an IS"
    return parse_full_code(full)[1].name


@pytest.mark.parametrize("target", [PROVIDER_GATEWAY, CONSUMER_GATEWAY])
async def test_each_gateway_tells_who_read_the_subject(usage: Usage, target: str) -> None:
    answer, _ = await find_usage(
        usage.fed, target, usage_pb2.FindUsageRequest(data_subject=usage.a, limit=1000)
    )
    assert answer.gateway == target
    reads = [e for e in answer.entries if e.method == "GetPerson"]
    # Each GetPerson is a request and a response in each gateway's log.
    assert len(reads) == 2 * GET_PERSON_CALLS
    for e in reads:
        assert e.client == CLIENT and e.client_member == "KZ/GOV/MLSPP"
        assert e.user_id == "EE:tester" and e.purpose == "integration test"
        assert e.service == f"{POPULATION}/zhol.population.v1.PopulationRegistry/GetPerson"
        assert e.grpc_service == "zhol.population.v1.PopulationRegistry"
        assert e.access == usage_pb2.USAGE_ACCESS_READ
        assert e.message_id and e.kind in ("request", "response")
    assert {(e.kind, e.direction) for e in reads} == (
        {("request", "in"), ("response", "out")}
        if target == PROVIDER_GATEWAY
        else {("request", "out"), ("response", "in")}
    )
    times = [(e.logged_at_unix_ms) for e in answer.entries]
    assert times == sorted(times, reverse=True), "newest first"
    assert not {e.message_id for e in answer.entries} & usage.b_message_ids
    assert not answer.next_page_token


async def test_a_client_without_the_right_is_denied(usage: Usage) -> None:
    fed = usage.fed
    request = usage_pb2.FindUsageRequest(data_subject=usage.a)
    for target in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        before = len(list_records(log_path(fed, target)))
        code = await refused(
            find_usage(fed, target, request, client=POPULATION, via=PROVIDER_GATEWAY)
        )
        assert code == "AccessDenied"
        new = list_records(log_path(fed, target))[before:]
        # The target logged nothing it received: at most the caller's own request, out.
        assert [(r["kind"], r["direction"]) for r in new if r["direction"] == "in"] == []


async def test_a_query_about_another_subject_is_refused(usage: Usage) -> None:
    for target in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        about_b = usage_pb2.FindUsageRequest(data_subject=usage.b)
        assert await refused(find_usage(usage.fed, target, about_b, declared=usage.a)) == (
            "AccessDenied"
        )
        assert await refused(find_usage(usage.fed, target, about_b, declared="")) == (
            "AccessDenied"
        )


async def test_pages_add_up_to_the_whole_answer(usage: Usage) -> None:
    whole, _ = await find_usage(
        usage.fed, PROVIDER_GATEWAY, usage_pb2.FindUsageRequest(data_subject=usage.a)
    )
    paged: list[usage_pb2.UsageEntry] = []
    token = ""
    for _ in range(len(whole.entries) + 10):  # bounded: a repeating page must not loop forever
        page, _ = await find_usage(
            usage.fed,
            PROVIDER_GATEWAY,
            usage_pb2.FindUsageRequest(data_subject=usage.a, limit=2, page_token=token),
        )
        assert len(page.entries) <= 2
        paged += page.entries
        token = page.next_page_token
        if not token:
            break
    assert not token
    # Our own queries are logged as they go: compare what both saw before the paging.
    seen = {e.message_id + e.kind + e.direction for e in whole.entries}
    assert [e for e in paged if e.message_id + e.kind + e.direction in seen] == list(whole.entries)
    oldest = whole.entries[-1].logged_at_unix_ms
    ranged, _ = await find_usage(
        usage.fed,
        PROVIDER_GATEWAY,
        usage_pb2.FindUsageRequest(
            data_subject=usage.a, from_unix_ms=oldest, to_unix_ms=oldest + 1
        ),
    )
    assert ranged.entries and all(e.logged_at_unix_ms == oldest for e in ranged.entries)


async def test_the_query_itself_is_logged_at_both_ends(usage: Usage) -> None:
    fed = usage.fed
    request = usage_pb2.FindUsageRequest(data_subject=usage.a, gateway=PROVIDER_GATEWAY)
    _, trailers = await find_usage(fed, PROVIDER_GATEWAY, request)
    message_id = trailers["zhol-message-id"]
    for gateway in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        records = list_records(log_path(fed, gateway), message_id=message_id)
        assert len(records) == 2 and not any(r["mismatch"] for r in records)
        assert {r["data_subject"] for r in records} == {usage.a}
    later, _ = await find_usage(fed, PROVIDER_GATEWAY, request)
    mine = [e for e in later.entries if e.message_id == message_id]
    assert {e.method for e in mine} == {"FindUsage"}
    assert {e.access for e in mine} == {usage_pb2.USAGE_ACCESS_READ}


async def test_a_query_pinned_to_another_gateway_finds_no_route(usage: Usage) -> None:
    request = usage_pb2.FindUsageRequest(data_subject=usage.a, gateway=CONSUMER_GATEWAY)
    assert await refused(find_usage(usage.fed, PROVIDER_GATEWAY, request)) == "UnknownService"


async def test_the_operator_grants_the_right_and_reads_the_same_entries(
    usage: Usage, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = usage.fed
    directory = str(fed.layout.gateway(PROVIDER_GATEWAY))
    request = usage_pb2.FindUsageRequest(data_subject=usage.a, limit=1000)
    base = ["gateway", "allow-usage", "--dir", directory, "--client", POPULATION]
    assert zhol(base) == 0
    # The running gateway applies the operator's commit within a second.
    ok: list[usage_pb2.FindUsageResponse] = []

    async def granted() -> bool:
        try:
            ok.append(
                (await find_usage(fed, PROVIDER_GATEWAY, request, client=POPULATION,
                                  via=PROVIDER_GATEWAY))[0]
            )  # fmt: skip
        except grpc.aio.AioRpcError:
            return False
        return True

    await until(granted, timeout=30, what="the usage right applied")
    capsys.readouterr()
    assert zhol(["gateway", "usage-rights", "--dir", directory, "--json"]) == 0
    assert capsys.readouterr().out.split() == [f'"{POPULATION}"', f'"{CLIENT}"']
    assert zhol(["gateway", "deny-usage", "--dir", directory, "--client", POPULATION]) == 0
    capsys.readouterr()
    log_args = ["log", "usage", "--gateway", directory, "--data-subject", usage.a, "--json"]
    assert zhol([*log_args, "--limit", "1000"]) == 0
    local = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The log holds what the bus answered, and the answer's own exchange after it.
    remote_ids = [e.message_id + e.kind + e.direction for e in ok[-1].entries]
    local_ids = [e["message_id"] + e["kind"] + e["direction"] for e in local]
    assert [i for i in local_ids if i in set(remote_ids)] == remote_ids
    assert {(e["client"], e["user_id"], e["method"], e["access"]) for e in local} >= {
        (CLIENT, "EE:tester", "GetPerson", "USAGE_ACCESS_READ")
    }
    assert zhol([*log_args[:-3], "--data-subject", "12345"]) == 2
