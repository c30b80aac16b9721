"""The life-events feed on a real demo federation (every component its own process).

A birth registered in population makes pension, health and education decide with no
application; each decision event reaches the portal through its gateway's EventSink
delivery. The parents signed in at the portal see the decisions in their feed and
the child on their family page; another citizen sees none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import time
from pathlib import Path

import aiohttp
import grpc
import markupsafe
import pytest

from tests.portal_client import sign_in
from zhol.cli.demo import start_federation
from zhol.cli.federation import PORTAL_AGENCY, Layout
from zhol.cli.processes import Supervisor
from zhol.population.v1 import population_pb2 as pop
from zhol.portal.i18n import CATALOGUES

pytestmark = pytest.mark.integration

EN = CATALOGUES["en"]
KZ_TIME = dt.timezone(dt.timedelta(hours=5))
DECISIONS = ("feed_benefit_childbirth_lump_sum", "feed_clinic_attached", "feed_queued")


def shown(text: str) -> str:
    """``text`` as the autoescaped page holds it."""
    return str(markupsafe.escape(text))


def parents_and_stranger(layout: Layout) -> tuple[str, str, str]:
    """A living woman of child-bearing age, a living man and a third adult, none related."""
    uri = f"{layout.population_db.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        woman, man, other = (
            db.execute(
                "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin"
                " AND a.valid_to IS NULL WHERE p.sex = ? AND p.death_date IS NULL"
                " AND p.birth_date BETWEEN ? AND ? ORDER BY p.iin LIMIT 1 OFFSET ?",
                (sex, "1985-01-01", "2000-12-31", offset),
            ).fetchone()[0]
            for sex, offset in (("F", 0), ("M", 0), ("F", 1))
        )
    return woman, man, other


async def register_birth(address: str, mother: str, father: str) -> str:
    today = dt.datetime.now(KZ_TIME).date() - dt.timedelta(days=1)
    async with grpc.aio.insecure_channel(address) as channel:
        register = channel.unary_unary(
            "/zhol.population.v1.PopulationRegistry/RegisterBirth",
            request_serializer=pop.RegisterBirthRequest.SerializeToString,
            response_deserializer=pop.RegisterBirthResponse.FromString,
        )
        answer = await register(
            pop.RegisterBirthRequest(
                mother_iin=mother, father_iin=father, last_name="Feedova",
                first_name="Aruzhan", sex=pop.SEX_FEMALE,
                birth_date=pop.Date(year=today.year, month=today.month, day=today.day),
            ),
            timeout=10,
        )  # fmt: skip
    return str(answer.child.iin)


def portal_session(url: str) -> aiohttp.ClientSession:
    # Cookies for 127.0.0.1 need an unsafe jar; paths relative to the portal's URL.
    return aiohttp.ClientSession(
        base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=30),
    )  # fmt: skip


async def feed_of(url: str, iin: str, wait_for: tuple[str, ...], timeout: float = 90) -> str:
    """The feed page (English) of ``iin`` signed in, once it shows every text of
    ``wait_for`` (the decisions travel through three agencies and two gateways)."""
    async with portal_session(url) as http:
        await sign_in(http, iin)  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout
        while True:
            answer = await http.get("/feed?lang=en")
            page = await answer.text()
            assert answer.status == 200
            if all(text in page for text in wait_for) or time.monotonic() > deadline:
                return page
            await asyncio.sleep(0.5)


async def family_of(url: str, iin: str) -> str:
    async with portal_session(url) as http:
        await sign_in(http, iin)  # type: ignore[arg-type]
        answer = await http.get("/family?lang=en")
        assert answer.status == 200
        return await answer.text()


def test_a_birth_brings_the_parents_its_decisions(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with Supervisor(layout.logs) as supervisor:
        ports = start_federation(layout, "127.0.0.1", 400, supervisor)
        url = f"http://{ports.adapter_address(PORTAL_AGENCY)}"
        mother, father, stranger = parents_and_stranger(layout)
        child = asyncio.run(register_birth(ports.adapter_address("population"), mother, father))
        expected = tuple(shown(EN[key]) for key in DECISIONS)

        page = asyncio.run(feed_of(url, mother, expected))
        for text in expected:
            assert text in page, f"the mother's feed lacks {text!r}"
        assert f'href="/person/{child}"' in page  # the decisions name the child
        assert EN["KZ/GOV/MLSPP/pension"] in page and EN["KZ/GOV/MOH/health"] in page
        assert shown(EN["feed_why_benefit_childbirth_lump_sum"]) in page
        assert "BirthRegistered" in page  # the basis the benefit rests on, from its event

        # The father sees the decisions about his minor child (the benefit is paid to
        # the mother, about the child), and the child on his family page.
        page = asyncio.run(feed_of(url, father, expected))
        for text in expected:
            assert text in page, f"the father's feed lacks {text!r}"
        assert f'href="/person/{child}"' in asyncio.run(family_of(url, father))

        # Another citizen sees none of it.
        page = asyncio.run(feed_of(url, stranger, (), timeout=0))
        assert EN["feed_none"] in page and child not in page
        assert not any(text in page for text in expected)
