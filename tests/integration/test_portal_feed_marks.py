"""Marking the life-events feed's entries read, over real HTTP against the portal on a
real in-process federation (population behind the Ministry of Justice's gateway, read
through the portal's own gateway for the citizen's minor children).

The entries are handed to the portal's own EventSink servicer (the gateway's delivery
path is tested on the demo federation in test_portal_feed.py); the marks go through
the POST forms a browser without JavaScript would send.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.bus_federation import PORTAL_GATEWAY, Federation, start_federation
from tests.integration.test_portal import parent_of_minor, stranger
from tests.portal_client import csrf_of, sign_in
from tests.sqlite_rows import rows
from zhol.bus.v1 import bus_pb2
from zhol.health.v1 import health_pb2
from zhol.portal.app import create_app
from zhol.portal.feed import FEED_STORE, FeedSink
from zhol.portal.i18n import CATALOGUES
from zhol.portal.settings import PortalSettings

pytestmark = pytest.mark.integration

EN = CATALOGUES["en"]
NEW = f'<span class="badge">{EN["feed_new"]}</span>'
MARK = 'action="/feed/read"'


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = await start_federation(tmp_path, persons=200, agencies=("population", "portal"))
    try:
        yield fed
    finally:
        await fed.stop()


@pytest.fixture
async def client(federation: Federation, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = PortalSettings(
        gateway=federation.is_address(PORTAL_GATEWAY), demo=True, secure_cookies=False,
        feed_db=tmp_path / "feed.db",
    )  # fmt: skip
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as test_client:
        yield test_client


async def deliver(client: TestClient, message_id: str, iin: str) -> None:
    event = health_pb2.ClinicAttached(iin=iin, clinic_id="PHC-75-001", reason="newborn")
    kept = await FeedSink(client.app[FEED_STORE]).handle(
        bus_pb2.EventDelivery(
            message_id=message_id, event_id=message_id, topic="zhol.health.v1.ClinicAttached",
            publisher="KZ/GOV/MOH/health", payload=event.SerializeToString(),
        )  # fmt: skip
    )
    assert kept


async def feed(client: TestClient) -> str:
    answer = await client.get("/feed?lang=en")
    assert answer.status == 200
    return await answer.text()


def unread(page: str) -> int:
    return int(page.split(f'{EN["feed_unread"]}: <strong>')[1].split("<")[0])


async def post(client: TestClient, path: str, form: dict[str, str]) -> int:
    answer = await client.post(path, data=form, allow_redirects=False)
    return answer.status


async def test_a_citizen_marks_their_own_entries_read_and_no_one_elses(
    federation: Federation, client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zhol.portal")
    db = federation.layout.population_db
    parent, _, child = parent_of_minor(db)
    other = stranger(db, parent, child)
    await deliver(client, "own", parent)
    await deliver(client, "childs", child)
    await deliver(client, "others", other)
    marks = tmp_path / "feed.db"

    await sign_in(client, parent)
    page = await feed(client)
    assert page.count(NEW) == 2 and page.count(MARK) == 2 and unread(page) == 2
    assert 'value="others"' not in page
    csrf = csrf_of(page)

    # Refused, and nothing marked: no CSRF token, a stranger's entry, no such entry,
    # a malformed id.
    assert await post(client, "/feed/read", {"message_id": "own"}) == 403
    assert await post(client, "/feed/read", {"csrf": csrf, "message_id": "others"}) == 404
    assert await post(client, "/feed/read", {"csrf": csrf, "message_id": "nothing"}) == 404
    for bad in ("", "x" * 129, "own\n"):
        assert await post(client, "/feed/read", {"csrf": csrf, "message_id": bad}) == 400
    assert await post(client, "/feed/read-all", {"csrf": csrf, "until": "soon"}) == 400
    assert rows(marks, "SELECT count(*) FROM feed_reads") == [(0,)]

    # The child's entry, then everything the page showed.
    assert await post(client, "/feed/read", {"csrf": csrf, "message_id": "childs"}) == 303
    page = await feed(client)
    assert unread(page) == 1 and page.count(NEW) == 1
    assert 'value="childs"' not in page and 'value="own"' in page
    until = page.split('name="until" value="')[1].split('"')[0]
    await deliver(client, "later", parent)  # arrives after the page was shown
    assert await post(client, "/feed/read-all", {"csrf": csrf, "until": until}) == 303
    page = await feed(client)
    assert unread(page) == 1 and 'value="later"' in page  # still new: not seen yet
    assert rows(marks, "SELECT iin, message_id FROM feed_reads ORDER BY message_id") == [
        (parent, "childs"), (parent, "own")]

    # The stranger's entry is still new for the stranger: the parent's marks are theirs.
    client.session.cookie_jar.clear()
    await sign_in(client, other)
    page = await feed(client)
    assert unread(page) == 1 and 'value="others"' in page and 'value="own"' not in page

    # Signed out, a mark leads to the sign-in page and changes nothing.
    client.session.cookie_jar.clear()
    answer = await client.post("/feed/read", data={"message_id": "others"},
                               allow_redirects=False)  # fmt: skip
    assert answer.status == 303 and answer.headers["Location"].startswith("/signin")
    assert rows(marks, "SELECT count(*) FROM feed_reads") == [(2,)]

    # Population down: a child's entry cannot be told from a stranger's (503), the
    # citizen's own can still be marked.
    await sign_in(client, parent)
    await deliver(client, "childs-2", child)
    csrf = csrf_of(await feed(client))
    await federation.population.stop(0)
    assert await post(client, "/feed/read", {"csrf": csrf, "message_id": "childs-2"}) == 503
    assert await post(client, "/feed/read", {"csrf": csrf, "message_id": "later"}) == 303
    assert rows(marks, "SELECT count(*) FROM feed_reads WHERE message_id = 'childs-2'") == [(0,)]

    # The portal's log names routes, never an IIN or a message id.
    logged = caplog.text
    assert parent not in logged and child not in logged and "childs" not in logged
