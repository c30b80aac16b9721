"""'Who used my data' in the portal, against a real in-process federation: the portal
asks the Ministry of Justice's gateway and its own (KZ/GOV/MDDIAI/gw1) over the bus."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.bus_federation import (
    PORTAL_GATEWAY,
    PROVIDER_GATEWAY,
    Federation,
    start_federation,
)
from tests.integration.test_portal import parent_of_minor, stranger
from tests.portal_client import demo_portal, sign_in, usage_html
from zhol.gateway.messagelog import list_records
from zhol.portal.i18n import CATALOGUES
from zhol.portal.service_names import SERVICE_NAMES
from zhol.portal.usage import KAZAKHSTAN, UsageTarget

pytestmark = pytest.mark.integration

EN = CATALOGUES["en"]
POPULATION_SERVICE = "zhol.population.v1.PopulationRegistry"
TARGETS = (
    UsageTarget(PROVIDER_GATEWAY, "KZ/GOV/MJ/population"),
    UsageTarget(PORTAL_GATEWAY, "KZ/GOV/MDDIAI/portal"),
)
ROW = re.compile(r"<tr>\s*<th scope=\"row\">.*?</tr>", re.S)
MESSAGE = re.compile(r'<td class="message"><code>([^<]+)</code></td>')


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = await start_federation(tmp_path, persons=200, agencies=("population", "portal"))
    try:
        yield fed
    finally:
        await fed.stop()


def portal_app(federation: Federation) -> TestServer:
    return demo_portal(federation.is_address(PORTAL_GATEWAY), usage_targets=TARGETS)


@pytest.fixture
async def client(federation: Federation) -> AsyncIterator[TestClient]:
    async with TestClient(portal_app(federation)) as test_client:
        yield test_client


def provider_message_ids(federation: Federation, iin: str) -> set[str]:
    """The message ids of the exchanges about ``iin`` in the Ministry of Justice's log."""
    log = federation.layout.gateway(PROVIDER_GATEWAY) / "messagelog.db"
    return {r["message_id"] for r in list_records(log, limit=1000) if r["data_subject"] == iin}


async def test_the_timeline_shows_every_gateways_uses_of_the_citizens_data(
    federation: Federation, client: TestClient
) -> None:
    citizen, _, _ = parent_of_minor(federation.layout.population_db)
    await sign_in(client, citizen)
    assert (await client.get("/me")).status == 200
    assert (await client.get("/family")).status == 200
    html = await usage_html(client)
    assert "<caption>" in html and '<th scope="col">' in html and '<label for="agency">' in html
    rows = ROW.findall(html)
    names = [SERVICE_NAMES["en"][f"{POPULATION_SERVICE}/{m}"] for m in ("GetPerson", "GetFamily")]
    reads = [r for r in rows if any(name in r for name in names)]
    assert reads, "the portal's reads of population are on the timeline"
    for row in reads:
        assert EN["KZ/GOV/MDDIAI"] in row  # the agency, by name
        assert '<td class="client">KZ/GOV/MDDIAI/portal</td>' in row
        assert f'<td class="user">citizen:{citizen}</td>' in row
        assert EN["usage_read"] in row
        # Logged at both ends: the portal's gateway and the Ministry of Justice's.
        assert f"{PORTAL_GATEWAY}, {PROVIDER_GATEWAY}" in row
    shown = set(MESSAGE.findall(html))
    assert provider_message_ids(federation, citizen) - shown <= _queries_after(federation, html)
    # Newest first, in Kazakhstan's time.
    times = re.findall(r'<time datetime="([^"]+)">', html)
    assert times == sorted(times, reverse=True) and times[0].endswith("+05:00")
    assert EN["usage_missing"] not in html
    # The page is in the citizen's language: Kazakh by default.
    kk = await (await client.get("/usage?lang=kk")).text()
    assert CATALOGUES["kk"]["usage_caption"] in kk and CATALOGUES["kk"]["KZ/GOV/MDDIAI"] in kk


def _queries_after(federation: Federation, html: str) -> set[str]:
    """FindUsage queries logged while the page was being answered (not on it yet)."""
    log = federation.layout.gateway(PROVIDER_GATEWAY) / "messagelog.db"
    return {r["message_id"] for r in list_records(log, limit=1000) if "Usage" in r["service"]}


async def test_filters_by_agency_and_time(federation: Federation, client: TestClient) -> None:
    citizen, _, _ = parent_of_minor(federation.layout.population_db)
    await sign_in(client, citizen)
    await client.get("/me")
    today = dt.datetime.now(KAZAKHSTAN).date()
    everything = ROW.findall(await usage_html(client))
    assert everything
    portal_only = ROW.findall(await usage_html(client, "agency=KZ/GOV/MDDIAI"))
    assert portal_only and all(f'"agency">{EN["KZ/GOV/MDDIAI"]}<' in r for r in portal_only)
    # The Ministry of Justice used nothing of this citizen's (it only answered).
    html = await usage_html(client, "agency=KZ/GOV/MJ")
    assert not ROW.findall(html) and EN["usage_none"] in html
    assert ROW.findall(await usage_html(client, f"from={today}&to={today}"))
    assert not ROW.findall(await usage_html(client, f"from={today + dt.timedelta(days=1)}"))
    assert not ROW.findall(await usage_html(client, f"to={today - dt.timedelta(days=1)}"))
    for bad in ("agency=KZ/GOV/XX", "from=2026-13-01", "from=2026-02-02&to=2026-02-01", "page=0"):
        assert (await client.get(f"/usage?{bad}")).status == 400


async def test_another_citizens_uses_never_appear(
    federation: Federation, client: TestClient
) -> None:
    db = federation.layout.population_db
    citizen, _, child = parent_of_minor(db)
    other = stranger(db, citizen, child)
    async with TestClient(portal_app(federation)) as other_client:
        await sign_in(other_client, other)
        assert (await other_client.get("/me")).status == 200
    await sign_in(client, citizen)
    await client.get("/me")
    others = provider_message_ids(federation, other)
    assert others
    # No IIN can be given to the page: whatever the URL names, the subject is the citizen.
    for query in ("", f"iin={other}", f"data_subject={other}&subject={other}"):
        html = await usage_html(client, query)
        assert ROW.findall(html)
        assert other not in html
        assert not set(MESSAGE.findall(html)) & others
    # Signed out, there is no timeline at all.
    client.session.cookie_jar.clear()
    answer = await client.get("/usage", allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/signin")


async def test_a_gateway_down_leaves_its_part_missing(
    federation: Federation, client: TestClient
) -> None:
    citizen, _, _ = parent_of_minor(federation.layout.population_db)
    await sign_in(client, citizen)
    await client.get("/me")
    await federation.gateways.pop(PROVIDER_GATEWAY).stop(0)
    html = await usage_html(client)
    assert EN["usage_missing"] in html and PROVIDER_GATEWAY in html
    rows = ROW.findall(html)
    assert rows, "the portal's own gateway still answers"
    assert all(PROVIDER_GATEWAY not in r.split('class="gateways">')[1] for r in rows)
