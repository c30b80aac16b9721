"""Access requests over the bus (zhol.bus.v1.Access) through real gateways, driven by
the real command-line functions: request -> pending -> still refused -> decided."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

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
from zhol.bus.v1 import access_pb2
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.core.errors import parse_full_code
from zhol.gateway.access import REQUEST_ACCESS_PATH
from zhol.gateway.accessstore import FILE_NAME
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import list_records

pytestmark = pytest.mark.asyncio(loop_scope="module")

POPULATION = "KZ/GOV/MJ/population"
REGISTRY = "zhol.population.v1.PopulationRegistry"
GET_PERSON_RIGHT = f"{POPULATION}/{REGISTRY}/GetPerson"
ACCESS_SERVICE = "zhol.bus.v1.Access/RequestAccess"


@dataclass
class Bus:
    fed: Federation
    consumer_dir: Path
    provider_dir: Path
    iin: str


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bus]:
    fed = await start_federation(tmp_path_factory.mktemp("access"))
    try:
        provider_dir = fed.layout.gateway(PROVIDER_GATEWAY)
        # The demo grants pension GetPerson; take it back, so that it must ask.
        deny = ["gateway", "deny", "--dir", str(provider_dir), "--client", CLIENT]
        assert zhol([*deny, "--service", GET_PERSON_RIGHT]) == 0
        yield Bus(fed, fed.layout.gateway(CONSUMER_GATEWAY), provider_dir, some_iin(fed, 0))
    finally:
        await fed.stop()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The catalogued code the command reported last (its name, without the hop)."""
        last = self.err.strip().splitlines()[-1]
        return parse_full_code(last.split(":", 1)[0].strip())[1].name

    def json(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """The real `zhol` entry point, in a thread: the gateways share this event loop."""
    capsys.readouterr()
    code = await asyncio.to_thread(zhol, list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def request_argv(bus: Bus, *target: str, reason: str = "childbirth benefit checks") -> list[str]:
    return [
        "gateway", "request-access", "--dir", str(bus.consumer_dir), "--client", CLIENT,
        "--provider", POPULATION, *target, "--reason", reason, "--json",
    ]  # fmt: skip


async def request(capsys: pytest.CaptureFixture[str], bus: Bus, *target: str) -> str:
    run = await cli(capsys, *request_argv(bus, *target))
    assert run.code == 0, run.err
    (sent,) = run.json()
    assert sent["status"] == "pending" and sent["gateway"] == PROVIDER_GATEWAY
    return str(sent["request_id"])


async def listed(capsys: pytest.CaptureFixture[str], directory: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    run = await cli(capsys, "gateway", "access-requests", "--dir", str(directory), "--json", *extra)
    assert run.code == 0, run.err
    return {r["request_id"]: r for r in run.json()}


async def refused(coro) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await coro
    full = error_code(caught.value)
    assert full is not None, "refused by the bus, not by an IS"
    return parse_full_code(full)[1].name


def kept(directory: Path) -> int:
    """How many requests a gateway keeps (received) or remembers (sent)."""
    with sqlite3.connect(directory / FILE_NAME) as db:
        return int(
            db.execute(
                "SELECT (SELECT count(*) FROM received) + (SELECT count(*) FROM sent)"
            ).fetchone()[0]
        )


def logged(directory: Path) -> int:
    return len(list_records(directory / "messagelog.db"))


async def test_a_request_grants_nothing_until_the_provider_approves_it(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await refused(get_person(bus.fed.is_address(), bus.iin)) == "AccessDenied"

    request_id = await request(capsys, bus, "--service", f"{REGISTRY}/GetPerson")

    pending = (await listed(capsys, bus.provider_dir, "--status", "pending"))[request_id]
    assert pending["client"] == CLIENT and pending["provider"] == POPULATION
    assert pending["grpc_service"] == REGISTRY and pending["method"] == "GetPerson"
    assert pending["reason"] == "childbirth benefit checks" and pending["user_id"] == "operator"
    assert pending["requested_at_unix_ms"] > 0 and pending["decided_at_unix_ms"] == 0
    # Pending is not granted: the call is still refused, and no right was written.
    assert await refused(get_person(bus.fed.is_address(), bus.iin)) == "AccessDenied"
    assert GET_PERSON_RIGHT not in rights(bus.provider_dir)
    sent = (await listed(capsys, bus.consumer_dir, "--sent"))[request_id]
    assert sent["status"] == "pending" and sent["checked_at_unix_ms"] > 0

    approved = await cli(capsys, "gateway", "approve", "--dir", str(bus.provider_dir), request_id)
    assert approved.code == 0, approved.err
    assert GET_PERSON_RIGHT in rights(bus.provider_dir)

    async def answered() -> bool:
        try:
            await get_person(bus.fed.is_address(), bus.iin)
        except grpc.aio.AioRpcError:
            return False
        return True

    await until(answered, what="GetPerson allowed after the approval")
    decided = (await listed(capsys, bus.consumer_dir, "--sent"))[request_id]
    assert decided["status"] == "approved" and decided["decided_at_unix_ms"] > 0

    # The request and its answer, signed, in both gateways' logs; the status query too.
    consumer = list_records(bus.consumer_dir / "messagelog.db", message_id=request_id)
    provider = list_records(bus.provider_dir / "messagelog.db", message_id=request_id)
    assert {(r["kind"], r["direction"]) for r in consumer} == {
        ("request", "out"),
        ("response", "in"),
    }
    assert {(r["kind"], r["direction"]) for r in provider} == {
        ("request", "in"),
        ("response", "out"),
    }
    for record in consumer + provider:
        assert record["client"] == CLIENT and record["service"] == f"{POPULATION}/{ACCESS_SERVICE}"
        assert record["status_code"] == 0 and not record["mismatch"]
    statuses = [
        r for r in list_records(bus.provider_dir / "messagelog.db")
        if r["service"].endswith("/zhol.bus.v1.Access/ListAccessRequests")
    ]  # fmt: skip
    assert statuses, "the consumer's status queries crossed the bus"

    # Decided once: approving or rejecting it again changes nothing.
    for again in (["approve"], ["reject", "--reason", "changed my mind"]):
        run = await cli(
            capsys, "gateway", *again[:1], "--dir", str(bus.provider_dir), request_id, *again[1:]
        )
        assert (run.code, run.error) == (1, "AccessRequestDecided")
    assert (await listed(capsys, bus.provider_dir))[request_id]["status"] == "approved"


def rights(directory: Path) -> set[str]:
    local = LocalConfStore(directory / "local.db")
    try:
        return {str(r).split(" -> ")[1] for r in local.rights() if str(r.client) == CLIENT}
    finally:
        local.close()


def subscriptions(directory: Path) -> set[str]:
    local = LocalConfStore(directory / "local.db")
    try:
        return {str(s) for s in local.subscriptions()}
    finally:
        local.close()


async def test_the_consumer_sees_a_rejection_and_its_reason(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = await request(capsys, bus, "--service", f"{REGISTRY}/ChangeName")
    before = rights(bus.provider_dir)
    run = await cli(
        capsys, "gateway", "reject", "--dir", str(bus.provider_dir), request_id,
        "--reason", "pension does not change names",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert rights(bus.provider_dir) == before

    text = await cli(capsys, "gateway", "access-requests", "--dir", str(bus.consumer_dir), "--sent")
    assert text.code == 0, text.err
    (line,) = [x for x in text.out.splitlines() if x.startswith(request_id)]
    assert "rejected" in line and "pension does not change names" in line
    seen = (await listed(capsys, bus.consumer_dir, "--sent", "--status", "rejected"))[request_id]
    assert seen["decision_reason"] == "pension does not change names"
    assert seen["target"] == f"{POPULATION}/{REGISTRY}/ChangeName"


async def test_an_approved_topic_request_subscribes_the_client(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = f"{POPULATION}/zhol.population.v1.AddressChanged"
    request_id = await request(capsys, bus, "--topic", topic)
    assert f"{CLIENT} <- {topic}" not in subscriptions(bus.provider_dir)
    run = await cli(
        capsys, "gateway", "approve", "--dir", str(bus.provider_dir), request_id,
        "--reason", "welcome",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert f"{CLIENT} <- {topic}" in subscriptions(bus.provider_dir)
    seen = (await listed(capsys, bus.consumer_dir, "--sent", "--client", CLIENT))[request_id]
    assert (seen["status"], seen["decision_reason"]) == ("approved", "welcome")


BAD_REQUESTS = {
    "unknown service": (["--service", "zhol.population.v1.Nothing"], {}, "UnknownService"),
    "unknown method": (["--service", f"{REGISTRY}/Nothing"], {}, "UnknownService"),
    "unknown topic": (["--topic", "zhol.population.v1.NothingHappened"], {}, "UnknownTopic"),
    "unregistered client": (
        ["--service", REGISTRY],
        {CLIENT: "KZ/GOV/MLSPP/nobody"},
        "UnknownClient",
    ),
    "unregistered provider": (
        ["--service", REGISTRY],
        {POPULATION: "KZ/GOV/MJ/nobody"},
        "UnknownSubsystem",
    ),
    "empty reason": (
        ["--service", REGISTRY],
        {"childbirth benefit checks": "  "},
        "InvalidRequest",
    ),
    "oversized reason": (
        ["--service", REGISTRY],
        {"childbirth benefit checks": "x" * 1001},
        "InvalidRequest",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
async def test_a_bad_request_is_refused_and_nothing_is_recorded(
    bus: Bus, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    target, replace, code = BAD_REQUESTS[case]
    argv = [replace.get(a, a) for a in request_argv(bus, *target)]
    before = [(kept(d), logged(d)) for d in (bus.consumer_dir, bus.provider_dir)]
    run = await cli(capsys, *argv)
    assert run.code != 0 and run.error == code, run.err
    assert [(kept(d), logged(d)) for d in (bus.consumer_dir, bus.provider_dir)] == before


@pytest.mark.parametrize("reason", ["", " ", "x" * 1001, "bell\x07"])
async def test_the_gateway_refuses_a_bad_reason_from_any_is(bus: Bus, reason: str) -> None:
    """The command line checks the reason first; an IS calling directly meets the same."""
    before = [(kept(d), logged(d)) for d in (bus.consumer_dir, bus.provider_dir)]
    body = access_pb2.RequestAccessRequest(grpc_service=REGISTRY, reason=reason)
    call = call_raw(
        bus.fed.is_address(), REQUEST_ACCESS_PATH, body.SerializeToString(),
        (*bus_metadata(), ("zhol-provider", POPULATION)),
    )  # fmt: skip
    assert await refused(call) == "InvalidRequest"
    assert [(kept(d), logged(d)) for d in (bus.consumer_dir, bus.provider_dir)] == before


async def test_a_second_pending_request_for_the_same_right_is_refused(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    await request(capsys, bus, "--service", f"{REGISTRY}/RegisterDeath")
    received = kept(bus.provider_dir)
    run = await cli(capsys, *request_argv(bus, "--service", f"{REGISTRY}/RegisterDeath"))
    assert (run.code, run.error) == (1, "DuplicateAccessRequest")
    assert kept(bus.provider_dir) == received


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["approve", "0190a3c8-0000-7000-8000-000000000000"], "UnknownAccessRequest"),
        (
            ["reject", "0190a3c8-0000-7000-8000-000000000000", "--reason", "no"],
            "UnknownAccessRequest",
        ),
        (["approve", "not-an-id"], "InvalidRequest"),
        (["reject", "0190a3c8-0000-7000-8000-000000000000", "--reason", " "], "InvalidRequest"),
    ],
)
async def test_a_bad_decision_is_refused_and_changes_nothing(
    bus: Bus, capsys: pytest.CaptureFixture[str], argv: list[str], code: str
) -> None:
    before = (kept(bus.provider_dir), rights(bus.provider_dir))
    run = await cli(capsys, "gateway", argv[0], "--dir", str(bus.provider_dir), *argv[1:])
    assert run.code != 0 and run.error == code, run.err
    assert (kept(bus.provider_dir), rights(bus.provider_dir)) == before
