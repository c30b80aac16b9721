"""The evidence of a 'who used my data' entry, downloaded from the portal and checked with
`zhol audit verify`, against a real federation: the portal asks each gateway over the
bus (zhol.bus.v1.Usage/GetEvidence) through its own gateway.

The Ministry of Justice's gateway (KZ/GOV/MJ/gw1) signs a checkpoint every 0.3 s, which
the registry's witness cosigns and a real RFC 3161 authority timestamps; the portal's
own gateway signs none while the tests run, so its records cannot be proven yet.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.bus_federation import (
    PORTAL_GATEWAY,
    PROVIDER_GATEWAY,
    Federation,
    bus_metadata,
    call_raw,
    error_code,
)
from tests.integration.test_checkpoint_timestamps import start_federation_with_tsa
from tests.integration.test_portal import parent_of_minor, stranger
from tests.portal_client import demo_portal, sign_in
from tests.waiting import until
from zhol.bus.v1 import usage_pb2
from zhol.core.metadata import PROVIDER_KEY
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.messagelog import list_records, tree_head
from zhol.gateway.usage import GET_EVIDENCE_PATH
from zhol.portal.i18n import CATALOGUES
from zhol.portal.usage import UsageTarget

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

EN = CATALOGUES["en"]
PORTAL = "KZ/GOV/MDDIAI/portal"
UNREACHABLE = "KZ/GOV/MLSPP/gw1"  # a target the federation does not have
TARGETS = (
    UsageTarget(PROVIDER_GATEWAY, "KZ/GOV/MJ/population"),
    UsageTarget(PORTAL_GATEWAY, PORTAL),
    UsageTarget(UNREACHABLE, "KZ/GOV/MLSPP/pension"),
)
LINK = re.compile(r'href="/usage/evidence\?([^"]+)"')


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    root = tmp_path_factory.mktemp("evidence")
    federation, tsa = await start_federation_with_tsa(
        root, persons=200, agencies=("population", "portal")
    )
    try:
        await federation.restart_gateway(
            PROVIDER_GATEWAY, "checkpoint_interval_s = 0.3\ntimestamp_interval_s = 0.2\n"
        )
        await federation.restart_gateway(
            PORTAL_GATEWAY, "checkpoint_interval_s = 3600\ncheckpoint_every_records = 1000000\n"
        )
        yield federation
    finally:
        await federation.stop()
        await tsa.stop()


def portal_app(federation: Federation) -> TestServer:
    return demo_portal(federation.is_address(PORTAL_GATEWAY), usage_targets=TARGETS)


@pytest_asyncio.fixture(loop_scope="module")
async def client(fed: Federation) -> AsyncIterator[TestClient]:
    async with TestClient(portal_app(fed)) as test_client:
        yield test_client


def links(page: str) -> list[tuple[str, str]]:
    """(gateway, message id) of every evidence link on a /usage page."""
    found = []
    for query in LINK.findall(page):
        fields = dict(p.split("=", 1) for p in html_lib.unescape(query).split("&"))
        found.append((fields["gateway"].replace("%2F", "/"), fields["message_id"]))
    return found


def message_ids(federation: Federation, gateway: str, iin: str) -> set[str]:
    log = federation.layout.gateway(gateway) / "messagelog.db"
    return {
        r["message_id"]
        for r in list_records(log, limit=1000)
        if r["data_subject"] == iin and "GetPerson" in r["service"]
    }


async def until_proven(federation: Federation) -> None:
    """Until a timestamped, cosigned checkpoint of the Ministry's log covers every record."""
    data = federation.layout.gateway(PROVIDER_GATEWAY)
    store = CheckpointStore(data / "checkpoints")
    logged = tree_head(data / "messagelog.db").size

    def covered() -> bool:
        return any(
            s >= logged
            and store.note_path(s).with_suffix(".tsr").exists()
            and store.note_path(s).with_suffix(".cosig").exists()
            for s in store.sizes()
        )

    await until(covered, timeout=30, what="a timestamped, cosigned checkpoint covering the log")


def evidence_url(gateway: str, message_id: str, extra: str = "") -> str:
    return f"/usage/evidence?gateway={gateway}&message_id={message_id}&lang=en{extra}"


async def test_a_citizen_downloads_an_entrys_evidence_and_zhol_audit_verify_accepts_it(
    fed: Federation, client: TestClient, tmp_path: Path
) -> None:
    citizen, _, _ = parent_of_minor(fed.layout.population_db)
    await sign_in(client, citizen)
    assert (await client.get("/me")).status == 200
    page = await (await client.get("/usage?lang=en")).text()
    reads = message_ids(fed, PROVIDER_GATEWAY, citizen)
    offered = [m for g, m in links(page) if g == PROVIDER_GATEWAY and m in reads]
    assert offered, "each entry the Ministry's gateway recorded offers its evidence"
    message_id = offered[0]
    await until_proven(fed)

    answer = await client.get(evidence_url(PROVIDER_GATEWAY, message_id))
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.headers["Content-Disposition"] == (
        f'attachment; filename="evidence-{message_id}-KZ_GOV_MJ_gw1.json"'
    )
    data = await answer.read()
    doc = json.loads(data)
    assert doc["format"] == "zhol-evidence-bundle/v1" and doc["gateway"] == PROVIDER_GATEWAY
    records = [r["columns"] for r in doc["records"]]
    kinds = {(r["kind"], r["direction"]) for r in records}
    assert kinds == {("request", "in"), ("response", "out")}
    assert all(r["message_id"] == message_id and r["data_subject"] == citizen for r in records)

    # The file alone and the federation's anchor: the real CLI, in its own process.
    saved = tmp_path / "evidence.json"
    saved.write_bytes(data)
    command = [sys.executable, "-m", "zhol.cli.main", "audit", "verify", str(saved)]
    verified = subprocess.run(
        [*command, "--anchor", str(fed.layout.anchor)], capture_output=True, text=True, timeout=120
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "RESULT: verified" in verified.stdout


async def test_another_citizens_entry_is_not_found_and_nothing_of_it_leaks(
    fed: Federation, client: TestClient
) -> None:
    db = fed.layout.population_db
    citizen, _, child = parent_of_minor(db)
    other = stranger(db, citizen, child)
    async with TestClient(portal_app(fed)) as other_client:
        await sign_in(other_client, other)
        assert (await other_client.get("/me")).status == 200
    theirs = sorted(message_ids(fed, PROVIDER_GATEWAY, other))
    assert theirs
    await until_proven(fed)  # provable: only its data subject keeps it from this citizen
    await sign_in(client, citizen)
    pages = []
    for message_id in (theirs[0], str(uuid.uuid4())):
        # Nothing in the URL names the data subject: the signed-in citizen is the one.
        for extra in ("", f"&data_subject={other}&iin={other}"):
            answer = await client.get(evidence_url(PROVIDER_GATEWAY, message_id, extra))
            assert answer.status == 404
            assert "Content-Disposition" not in answer.headers
            body = await answer.text()
            assert EN["evidence_not_found"] in body and other not in body
            pages.append(body)
    # Someone else's entry and one that never existed look the same.
    assert len(set(pages)) == 1


async def test_an_entry_no_checkpoint_proves_yet_says_try_again_later(
    fed: Federation, client: TestClient
) -> None:
    citizen, _, _ = parent_of_minor(fed.layout.population_db)
    await sign_in(client, citizen)
    await client.get("/me")
    page = await (await client.get("/usage?lang=en")).text()
    reads = message_ids(fed, PORTAL_GATEWAY, citizen)
    message_id = next(m for g, m in links(page) if g == PORTAL_GATEWAY and m in reads)
    answer = await client.get(evidence_url(PORTAL_GATEWAY, message_id))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "60"
    assert "Content-Disposition" not in answer.headers
    assert EN["evidence_not_ready"] in await answer.text()


async def test_bad_requests_and_an_unreachable_gateway(fed: Federation, client: TestClient) -> None:
    citizen, _, _ = parent_of_minor(fed.layout.population_db)
    good = str(uuid.uuid4())
    signed_out = await client.get(evidence_url(PROVIDER_GATEWAY, good), allow_redirects=False)
    assert signed_out.status == 303 and signed_out.headers["Location"].startswith("/signin")
    await sign_in(client, citizen)
    for query in (
        f"gateway={PROVIDER_GATEWAY}&message_id=x",
        f"gateway={PROVIDER_GATEWAY}&message_id={good.upper()}",
        f"gateway={PROVIDER_GATEWAY}&message_id={good}0",
        f"gateway=KZ/GOV/XX/gw1&message_id={good}",
        f"gateway=../../etc&message_id={good}",
        f"message_id={good}",
        f"gateway={PROVIDER_GATEWAY}",
    ):
        assert (await client.get(f"/usage/evidence?{query}")).status == 400, query
    answer = await client.get(evidence_url(UNREACHABLE, good))
    assert answer.status == 502
    assert EN["evidence_unavailable"] in await answer.text()


async def test_the_gateway_answers_only_about_the_declared_subject(fed: Federation) -> None:
    """GetEvidence on the bus: the codes the portal's pages stand on."""
    db = fed.layout.population_db
    citizen, _, child = parent_of_minor(db)
    other = stranger(db, citizen, child)
    async with TestClient(portal_app(fed)) as other_client:
        await sign_in(other_client, other)
        assert (await other_client.get("/me")).status == 200
    theirs = sorted(message_ids(fed, PROVIDER_GATEWAY, other))
    await until_proven(fed)

    async def ask(subject: str, declared: str, message_id: str) -> str | None:
        request = usage_pb2.GetEvidenceRequest(
            data_subject=subject, message_id=message_id, gateway=PROVIDER_GATEWAY
        )
        metadata = bus_metadata(client=PORTAL, data_subject=declared) + (
            (PROVIDER_KEY, "KZ/GOV/MJ/population"),
        )
        try:
            body, _ = await call_raw(
                fed.is_address(PORTAL_GATEWAY),
                GET_EVIDENCE_PATH,
                request.SerializeToString(),
                metadata,
            )
        except grpc.aio.AioRpcError as exc:
            return error_code(exc)
        answer = usage_pb2.GetEvidenceResponse.FromString(body)
        assert answer.gateway == PROVIDER_GATEWAY
        return "bundle" if json.loads(answer.bundle)["records"] else None

    assert await ask(other, other, theirs[0]) == "bundle"
    assert await ask(citizen, citizen, theirs[0]) == "Server.ServerProxy.EvidenceNotFound"
    assert await ask(citizen, citizen, str(uuid.uuid4())) == "Server.ServerProxy.EvidenceNotFound"
    assert await ask(other, citizen, theirs[0]) == "Server.ServerProxy.AccessDenied"
    assert await ask(other, other, theirs[0].upper()) == "Client.InvalidRequest"


async def test_a_parent_downloads_the_evidence_of_a_minor_childs_entry(
    fed: Federation, client: TestClient
) -> None:
    db = fed.layout.population_db
    citizen, _, child = parent_of_minor(db)
    other = stranger(db, citizen, child)
    await sign_in(client, citizen)
    assert (await client.get(f"/person/{child}")).status == 200  # a read about the child
    page = await (await client.get(f"/usage?whom={child}&lang=en")).text()
    reads = message_ids(fed, PROVIDER_GATEWAY, child)
    offered = [m for g, m in links(page) if g == PROVIDER_GATEWAY and m in reads]
    assert offered, "the child's timeline offers the evidence of its entries"
    assert all(f"whom={child}" in html_lib.unescape(q) for q in LINK.findall(page))
    await until_proven(fed)

    answer = await client.get(evidence_url(PROVIDER_GATEWAY, offered[0], f"&whom={child}"))
    assert answer.status == 200
    records = [r["columns"] for r in json.loads(await answer.read())["records"]]
    assert records and all(r["data_subject"] == child for r in records)
    # Without the child named, the entry is not the citizen's own: not found.
    assert (await client.get(evidence_url(PROVIDER_GATEWAY, offered[0]))).status == 404
    # Anyone else's IIN is refused before anything is asked; a malformed one is 400.
    portal_log = fed.layout.gateway(PORTAL_GATEWAY) / "messagelog.db"

    def about_other() -> int:
        return sum(r["data_subject"] == other for r in list_records(portal_log, limit=100000))

    before = about_other()
    refused = await client.get(evidence_url(PROVIDER_GATEWAY, offered[0], f"&whom={other}"))
    assert refused.status == 403
    assert (await client.get(evidence_url(PROVIDER_GATEWAY, offered[0], "&whom=12"))).status == 400
    assert about_other() == before
