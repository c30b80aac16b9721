"""'Who used my data' asks every gateway the portal's own gateway lists (Discovery), and
a parent sees their minor child's timeline; on a real in-process federation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from markupsafe import escape

from tests.integration.bus_federation import (
    PORTAL_GATEWAY,
    PROVIDER_GATEWAY,
    Federation,
    start_federation,
)
from tests.integration.test_portal import parent_of_minor, stranger
from tests.portal_client import demo_portal, sign_in, usage_html
from tests.waiting import until
from zhol.cli.federation import provision_gateways
from zhol.gateway.messagelog import list_records
from zhol.portal.i18n import CATALOGUES
from zhol.portal.reads import CHILD_PURPOSE
from zhol.portal.service_names import SERVICE_NAMES
from zhol.portal.usage import CHILD_USAGE_PURPOSE

pytestmark = pytest.mark.integration

EN = {key: str(escape(value)) for key, value in CATALOGUES["en"].items()}  # as on the page
HEALTH_GATEWAY = "KZ/GOV/MOH/gw1"
AGENCY_OPTIONS = re.compile(r'<select id="agency"[^>]*>(.*?)</select>', re.S)
GET_PERSON = SERVICE_NAMES["en"]["zhol.population.v1.PopulationRegistry/GetPerson"]
ROW = re.compile(r"<tr>\s*<th scope=\"row\">.*?</tr>", re.S)


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = await start_federation(tmp_path, persons=200, agencies=("population", "portal"))
    try:
        yield fed
    finally:
        await fed.stop()


def portal_app(federation: Federation, gateway: str = "") -> TestServer:
    # usage_refresh_s=0: the test changes the federation between pages.
    return demo_portal(gateway or federation.is_address(PORTAL_GATEWAY), usage_refresh_s=0)


@pytest.fixture
async def client(federation: Federation) -> AsyncIterator[TestClient]:
    async with TestClient(portal_app(federation)) as test_client:
        yield test_client


def agencies(html: str) -> set[str]:
    found = AGENCY_OPTIONS.search(html)
    assert found
    return set(re.findall(r'<option value="([^"]+)"', found.group(1)))


def usage_queries(federation: Federation, gateway: str, subject: str) -> list[dict[str, object]]:
    """The FindUsage requests about ``subject`` that ``gateway`` received."""
    log = federation.layout.gateway(gateway) / "messagelog.db"
    return [
        r
        for r in list_records(log, limit=10_000)
        if "Usage" in str(r["service"])
        and r["data_subject"] == subject
        and (r["kind"], r["direction"]) == ("request", "in")
    ]


async def test_a_gateway_that_joins_later_is_asked(
    federation: Federation, client: TestClient
) -> None:
    citizen, _, _ = parent_of_minor(federation.layout.population_db)
    await sign_in(client, citizen)
    assert (await client.get("/me")).status == 200
    html = await usage_html(client)
    assert agencies(html) == {"KZ/GOV/MJ", "KZ/GOV/MDDIAI"}
    assert GET_PERSON in html and EN["usage_missing"] not in html
    assert usage_queries(federation, PROVIDER_GATEWAY, citizen)

    # The Ministry of Health joins: its gateway is registered, granted the portal's usage
    # right and started; nothing of the portal changes.
    await provision_gateways(
        federation.layout, federation.ports, ("population", "portal", "health")
    )
    await federation.start_gateway(HEALTH_GATEWAY)
    portal_gateway = federation.gateways[PORTAL_GATEWAY]

    async def knows_health() -> bool:
        await portal_gateway.conf.refresh()
        return any(str(g) == HEALTH_GATEWAY for g in portal_gateway.conf.current().conf.gateways)

    await until(knows_health, timeout=30, what="the portal's gateway lists the new gateway")
    html = await usage_html(client)
    assert agencies(html) == {"KZ/GOV/MJ", "KZ/GOV/MDDIAI", "KZ/GOV/MOH"}
    assert EN["usage_missing"] not in html
    assert usage_queries(federation, HEALTH_GATEWAY, citizen), "the new gateway was asked"


async def test_discovery_down_is_named_on_the_page(federation: Federation) -> None:
    citizen, _, _ = parent_of_minor(federation.layout.population_db)
    async with TestClient(portal_app(federation)) as client:
        await sign_in(client, citizen)
        assert GET_PERSON not in await usage_html(client)  # nothing read yet
        await client.get("/me")
        assert GET_PERSON in await usage_html(client)
        # The portal's gateway stops: the list read last is used, and the page says so.
        await federation.gateways.pop(PORTAL_GATEWAY).stop(0)
        html = await usage_html(client)
        assert EN["usage_discovery_stale"] in html and EN["usage_missing"] in html
    # A portal that never read the list says that nobody could be asked.
    async with TestClient(portal_app(federation, "127.0.0.1:1")) as client:
        await sign_in(client, citizen)
        html = await usage_html(client)
        assert EN["usage_discovery_unavailable"] in html and not ROW.findall(html)


async def test_a_parent_sees_their_minor_childs_timeline(
    federation: Federation, client: TestClient
) -> None:
    db = federation.layout.population_db
    parent, _, child = parent_of_minor(db)
    await sign_in(client, parent)
    assert (await client.get(f"/person/{child}")).status == 200  # reads about the child
    own = await usage_html(client)
    assert f'<option value="{child}"' in own  # the choice of whose timeline

    html = await usage_html(client, f"whom={child}")
    assert f"{EN['usage_of_child']} {child}" in html
    rows = [r for r in ROW.findall(html) if GET_PERSON in r]
    assert rows and all(str(escape(CHILD_PURPOSE)) in r for r in rows)
    asked = usage_queries(federation, PROVIDER_GATEWAY, child)
    assert asked and {r["purpose"] for r in asked} == {CHILD_USAGE_PURPOSE}
    assert {r["user_id"] for r in asked} == {f"citizen:{parent}"}


async def test_anyone_elses_timeline_is_refused_and_nothing_asked(
    federation: Federation, client: TestClient
) -> None:
    db = federation.layout.population_db
    parent, _, child = parent_of_minor(db)
    other = stranger(db, parent, child)
    await sign_in(client, parent)
    for whom in (other, f" {other} "):
        answer = await client.get(f"/usage?whom={whom}")
        assert answer.status == 403
    for gateway in (PROVIDER_GATEWAY, PORTAL_GATEWAY):
        assert usage_queries(federation, gateway, other) == []
    for bad in ("12345", "abc", "0" * 12):
        assert (await client.get(f"/usage?whom={bad}")).status == 400
