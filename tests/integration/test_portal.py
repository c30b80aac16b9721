"""The citizen portal against a real in-process federation: the portal's own gateway
(KZ/GOV/MDDIAI/gw1) reading population at the Ministry of Justice's gateway."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.bus_federation import PORTAL_GATEWAY, Federation, start_federation
from tests.portal_client import sign_in
from zhol.gateway.messagelog import list_records
from zhol.portal.app import create_app
from zhol.portal.i18n import CATALOGUES
from zhol.portal.reads import OWN_PURPOSE
from zhol.portal.settings import PortalSettings

pytestmark = pytest.mark.integration



@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = await start_federation(tmp_path, persons=200, agencies=("population", "portal"))
    try:
        yield fed
    finally:
        await fed.stop()


@pytest.fixture
async def client(federation: Federation) -> AsyncIterator[TestClient]:
    settings = PortalSettings(
        gateway=federation.is_address(PORTAL_GATEWAY), demo=True, secure_cookies=False
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as test_client:
        yield test_client


def parent_of_minor(db: Path) -> tuple[str, str, str]:
    """(parent IIN, parent's last name, a minor child's IIN) from the seeded population."""
    cutoff = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=17 * 366)).isoformat()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT p.iin, p.last_name, c.iin FROM family_links f"
            " JOIN persons p ON p.iin = f.iin JOIN persons c ON c.iin = f.relative_iin"
            " WHERE f.relation = 'child' AND c.birth_date > ? AND p.death_date IS NULL"
            " ORDER BY p.iin LIMIT 1",
            (cutoff,),
        ).fetchone()
    assert row, "the seed has no parent of a minor"
    return row[0], row[1], row[2]


def stranger(db: Path, *not_these: str) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT iin FROM persons ORDER BY iin").fetchall()
    return next(r[0] for r in rows if r[0] not in not_these)


async def test_me_family_and_child_pages_read_over_the_bus(
    federation: Federation, client: TestClient
) -> None:
    db = federation.layout.population_db
    parent, last_name, child = parent_of_minor(db)
    await sign_in(client, parent)
    me = await client.get("/me")
    html = await me.text()
    assert me.status == 200 and last_name in html
    assert CATALOGUES["kk"]["KZ/GOV/MJ/population"] in html  # the owner is named
    # Only population runs here: the other registries' parts say they could not be
    # read, naming their owners, and the rest of the page is there.
    assert CATALOGUES["kk"]["KZ/GOV/MOH/health"] in html
    assert CATALOGUES["kk"]["part_unavailable"] in html
    family = await client.get("/family?lang=en")
    html = await family.text()
    assert family.status == 200 and f'href="/person/{child}"' in html
    assert CATALOGUES["en"]["KZ/GOV/MJ/population"] in html
    assert (await client.get(f"/person/{child}")).status == 200
    # Each read is in the portal gateway's log: the citizen acting, about the subject.
    records = list_records(federation.layout.gateway(PORTAL_GATEWAY) / "messagelog.db", limit=1000)
    requests = [r for r in records if r["kind"] == "request"]
    own = [r for r in requests if r["data_subject"] == parent]
    assert own and all(r["user_id"] == f"citizen:{parent}" for r in requests)
    assert any(r["purpose"] == OWN_PURPOSE for r in own)
    assert any(r["data_subject"] == child for r in requests)


async def test_another_citizens_data_is_refused(federation: Federation, client: TestClient) -> None:
    db = federation.layout.population_db
    parent, _, child = parent_of_minor(db)
    other = stranger(db, parent, child)
    await sign_in(client, parent)
    log = federation.layout.gateway(PORTAL_GATEWAY) / "messagelog.db"
    answer = await client.get(f"/person/{other}")
    assert answer.status == 403
    assert CATALOGUES["kk"]["error_403"] in await answer.text()
    # The refusal read only the citizen's own family, never the stranger's record.
    assert not [r for r in list_records(log, limit=1000) if r["data_subject"] == other]
    assert (await client.get("/person/12345")).status == 404
    # Signed in as the child's parent; the child signed in cannot open the parent's page.
    client.session.cookie_jar.clear()
    await sign_in(client, child)
    assert (await client.get(f"/person/{parent}")).status == 403


async def test_a_registry_down_blanks_only_its_part(
    federation: Federation, client: TestClient
) -> None:
    parent, _, _ = parent_of_minor(federation.layout.population_db)
    await sign_in(client, parent)
    await federation.population.stop(0)
    me = await client.get("/me")
    html = await me.text()
    assert me.status == 200  # the page renders, saying which part could not be read
    assert CATALOGUES["kk"]["part_unavailable"] in html
    assert CATALOGUES["kk"]["KZ/GOV/MJ/population"] in html
