"""The life-events feed on a real demo federation (every component its own process).

A birth registered in population makes pension, health and education decide with no
application; each decision event reaches the portal through its gateway's EventSink
delivery. The parents signed in at the portal see the decisions in their feed and
the child on their family page; another citizen sees none of it. Pension's retirement
run assigns the age pension to those who reached the age and health records a
disability conclusion, and each person sees the decision in their own feed.

The menu of every page counts the entries the citizen has not marked read, the
children's included, in words.

One demo federation serves every test of the module (starting one takes seconds); the
tests use different persons.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import markupsafe
import pytest

from tests.portal_client import csrf_of, sign_in
from zhol.adapters.pension import calculation, schema, store
from zhol.adapters.pension.model import (
    BenefitDecision,
    BenefitKind,
    CalcItem,
    Frequency,
    Month,
    Payment,
)
from zhol.cli.demo import start_federation
from zhol.cli.federation import PORTAL, PORTAL_AGENCY, SUBSYSTEMS, Layout, Ports
from zhol.cli.processes import Supervisor
from zhol.core.ids import SubsystemId
from zhol.gateway.localconf import LocalConfStore
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import pension_pb2, recalculation_pb2
from zhol.population.v1 import population_pb2 as pop
from zhol.portal.feed import FEED_TOPICS
from zhol.portal.i18n import CATALOGUES

pytestmark = pytest.mark.integration

EN = CATALOGUES["en"]
KZ_TIME = dt.timezone(dt.timedelta(hours=5))
DECISIONS = ("feed_benefit_childbirth_lump_sum", "feed_clinic_attached", "feed_queued")


def shown(text: str) -> str:
    """``text`` as the autoescaped page holds it."""
    return str(markupsafe.escape(text))


def parents_and_stranger(layout: Layout, offset: int = 0) -> tuple[str, str, str]:
    """A living woman of child-bearing age, a living man and a third adult, none related
    (``offset``: another such trio, for another test)."""
    uri = f"{layout.population_db.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        woman, man, other = (
            db.execute(
                "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin"
                " AND a.valid_to IS NULL WHERE p.sex = ? AND p.death_date IS NULL"
                " AND p.birth_date BETWEEN ? AND ? ORDER BY p.iin LIMIT 1 OFFSET ?",
                (sex, "1985-01-01", "2000-12-31", skip),
            ).fetchone()[0]
            for sex, skip in (("F", offset), ("M", offset), ("F", offset + 1))
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


@dataclass(frozen=True)
class Demo:
    layout: Layout
    ports: Ports

    @property
    def url(self) -> str:
        return f"http://{self.ports.adapter_address(PORTAL_AGENCY)}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    layout = Layout(tmp_path_factory.mktemp("feed-demo"))
    with Supervisor(layout.logs) as supervisor:
        yield Demo(layout, start_federation(layout, "127.0.0.1", 400, supervisor))


def call(address: str, method: str, request: Any, answer: type[Any]) -> Any:
    """One unary call to an agency's own system (as its staff's tools would)."""

    async def once() -> Any:
        async with grpc.aio.insecure_channel(address) as channel:
            rpc = channel.unary_unary(
                method, request_serializer=type(request).SerializeToString,
                response_deserializer=answer.FromString,
            )  # fmt: skip
            return await rpc(request, timeout=60)

    return asyncio.run(once())


def test_a_birth_brings_the_parents_its_decisions(demo: Demo) -> None:
    layout, ports, url = demo.layout, demo.ports, demo.url
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


def test_the_age_pension_and_a_disability_reach_the_persons_feed(demo: Demo) -> None:
    # Pension's retirement run, as its operators start it: as of a day three years on,
    # so that the seeded federation surely has persons reaching the age by then with no
    # age pension yet (the seed assigns the pensions of those who reached it before).
    as_of = dt.datetime.now(KZ_TIME).date() + dt.timedelta(days=3 * 365)
    run = call(
        demo.ports.adapter_address("pension"),
        "/zhol.pension.v1.PensionRegistry/AssignRetirementPensions",
        pension_pb2.AssignRetirementPensionsRequest(
            as_of=pension_pb2.Date(year=as_of.year, month=as_of.month, day=as_of.day)
        ),
        pension_pb2.AssignRetirementPensionsResponse,
    )
    assert run.assigned, "nobody reaches the retirement age by then in the seed"
    pensioner = run.assigned[0]
    assert pensioner.kind == "age"
    page = asyncio.run(feed_of(demo.url, pensioner.iin, (shown(EN["feed_pension_age"]),)))
    assert shown(EN["feed_pension_age"]) in page, "the age pension did not reach the feed"
    assert shown(EN["feed_why_pension_age"]) in page and EN["KZ/GOV/MLSPP/pension"] in page
    assert shown(pensioner.basis) in page  # the basis, as pension wrote it
    assert f"{pensioner.monthly_amount:,}".replace(",", "\u00a0") in page
    eff = pensioner.effective_from
    assert f"{eff.day:02d}.{eff.month:02d}.{eff.year:04d}" in page

    # Health records the medical advisory commission's conclusion about the same person.
    today = dt.datetime.now(KZ_TIME).date()
    conclusion = call(
        demo.ports.adapter_address("health"),
        "/zhol.health.v1.HealthRegistry/RecordDisabilityConclusion",
        health_pb2.RecordDisabilityConclusionRequest(
            iin=pensioner.iin, group=2,
            from_date=health_pb2.Date(year=today.year, month=today.month, day=today.day),
        ),  # fmt: skip
        health_pb2.DisabilityConclusion,
    )
    page = asyncio.run(feed_of(demo.url, pensioner.iin, (shown(EN["feed_disability"]),)))
    assert shown(EN["feed_disability"]) in page, "the conclusion did not reach the feed"
    assert conclusion.conclusion_id in page and EN["KZ/GOV/MOH/health"] in page


def test_the_publishers_let_the_portal_subscribe_to_every_topic_of_the_feed(
    demo: Demo,
) -> None:
    portal = SubsystemId.parse(PORTAL)
    gateways = {s.id: s.gateway for s in SUBSYSTEMS}
    for topic, kind in FEED_TOPICS.items():
        store = LocalConfStore(demo.layout.gateway(gateways[kind.publisher]) / "local.db")
        try:
            subscribers = store.current().subscribers(SubsystemId.parse(kind.publisher), topic)
        finally:
            store.close()
        assert portal in subscribers, topic


def test_a_recalculated_benefit_reaches_the_persons_feed(demo: Demo) -> None:
    # A disability benefit as an earlier release decided it: one amount for every month,
    # below the size in force (issue 14 items 3 and 4), written into pension's database.
    uri = f"{demo.layout.population_db.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        (person,) = db.execute(
            "SELECT iin FROM persons WHERE death_date IS NULL AND sex = 'M'"
            " AND birth_date BETWEEN '1970-01-01' AND '1984-12-31' ORDER BY iin LIMIT 1"
        ).fetchone()
    today = dt.datetime.now(KZ_TIME).date()
    first = Month.of(today).plus(-2)
    old = 100_000  # below 2.2 PM of any year since 2023
    decision = BenefitDecision(
        BenefitKind.DISABILITY_BENEFIT, person, person, old, Frequency.MONTHLY,
        first.first_day, None, "health DisabilityEstablished, conclusion MSE-FEED-OLD",
        (CalcItem("group", "1"),), (), tuple(Payment(first.plus(i), old) for i in range(12)),
    )  # fmt: skip
    conn = schema.connect(demo.layout.adapter_db("pension"))
    try:
        conn.execute("BEGIN IMMEDIATE")
        benefit_id = store.insert_benefit(conn, decision, today=first.first_day, now_ms=0)
        conn.execute("COMMIT")
    finally:
        conn.close()

    answer = call(
        demo.ports.adapter_address("pension"),
        "/zhol.pension.v1.PensionRecalculation/RecalculateBenefits",
        recalculation_pb2.RecalculateBenefitsRequest(),
        recalculation_pb2.RecalculateBenefitsResponse,
    )
    (done,) = [r for r in answer.recalculated if r.decision_id == benefit_id]
    new = calculation.disability_amount(1, None, Month.of(today))
    assert (done.old_amount, done.new_amount) == (old, new)
    assert done.arrears_total == sum(
        calculation.disability_amount(1, None, first.plus(i)) - old for i in range(2))
    title = shown(EN["feed_recalculated_disability_benefit"])
    page = asyncio.run(feed_of(demo.url, person, (title,)))
    assert title in page, "the recalculation did not reach the feed"
    assert shown(EN["feed_why_recalculated"]) in page
    assert f"{new:,}".replace(",", "\u00a0") in page
    assert shown(done.reason) in page  # the rule and what changed, as pension wrote it


def test_the_menu_counts_the_unread_entries_on_every_page(demo: Demo) -> None:
    mother, father, stranger = parents_and_stranger(demo.layout, offset=4)
    child = asyncio.run(register_birth(demo.ports.adapter_address("population"), mother, father))
    expected = tuple(shown(EN[key]) for key in DECISIONS)

    def menu(lang: str, n: int) -> str:
        return f'({CATALOGUES[lang]["feed_new_count"].replace("{n}", str(n))})'

    async def check() -> None:
        async with portal_session(demo.url) as http:
            await sign_in(http, father)  # type: ignore[arg-type]
            page = await feed_of_signed_in(http, expected)
            new = page.count('class="badge"')
            assert new >= len(DECISIONS)  # all about his child: none is his own
            # Every page, those that read no family too (the children as last read).
            for path in ("/me", "/pension", "/health", "/family", "/usage", "/feed",
                         f"/person/{child}/education"):  # fmt: skip
                html = await (await http.get(f"{path}?lang=en")).text()
                assert menu("en", new) in html, path
            assert menu("ru", new) in await (await http.get("/education?lang=ru")).text()
            assert menu("kk", new) in await (await http.get("/pension?lang=kk")).text()

            # One entry marked read: one fewer; all marked read: no count.
            message_id = page.split('name="message_id" value="', 1)[1].split('"', 1)[0]
            read = {"csrf": csrf_of(page), "message_id": message_id}
            assert (await http.post("/feed/read", data=read)).status == 200  # to /feed
            html = await (await http.get("/pension?lang=en")).text()
            assert menu("en", new - 1) in html
            page = await (await http.get("/feed?lang=en")).text()
            until = page.split('name="until" value="', 1)[1].split('"', 1)[0]
            form = {"csrf": csrf_of(page), "until": until}
            assert (await http.post("/feed/read-all", data=form)).status == 200
            html = await (await http.get("/pension?lang=en")).text()
            assert f'{EN["feed"]}</a>' in html and 'class="menu-unread"' not in html

        # The mother's marks are her own: her count is untouched by the father's.
        async with portal_session(demo.url) as http:
            await sign_in(http, mother)  # type: ignore[arg-type]
            page = await feed_of_signed_in(http, expected)
            html = await (await http.get("/pension?lang=en")).text()
            assert menu("en", page.count('class="badge"')) in html
        # Another citizen: nothing new about them, no count.
        async with portal_session(demo.url) as http:
            await sign_in(http, stranger)  # type: ignore[arg-type]
            html = await (await http.get("/me?lang=en")).text()
            assert 'class="menu-unread"' not in html and child not in html

    asyncio.run(check())


async def feed_of_signed_in(
    http: aiohttp.ClientSession, wait_for: tuple[str, ...], timeout: float = 90
) -> str:
    """The feed page (English) once it shows every text of ``wait_for``."""
    deadline = time.monotonic() + timeout
    while True:
        page = await (await http.get("/feed?lang=en")).text()
        if all(text in page for text in wait_for) or time.monotonic() > deadline:
            assert all(text in page for text in wait_for), "the decisions did not arrive"
            return page
        await asyncio.sleep(0.5)
