"""'Who used my data': the targets read from Discovery, the services' readable names,
and whose timeline the form asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import jinja2
import pytest
from google.protobuf.message import Message
from markupsafe import escape

from zhol.bus.v1 import discovery_pb2, usage_pb2
from zhol.cli.federation import SUBSYSTEMS
from zhol.core.busclient import BusCallError
from zhol.education.v1 import education_pb2
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import pension_pb2
from zhol.population.v1 import population_pb2
from zhol.portal import usage
from zhol.portal.directory import Directory, UsageDirectory, directory_from
from zhol.portal.i18n import LANGUAGES, text
from zhol.portal.service_names import SERVICE_NAMES, agency_label, service_name
from zhol.portal.usage import Filters, UsageTarget, parse_filters

CHILD = "150101500011"  # a well-formed IIN (check digit)
MJ = UsageTarget("KZ/GOV/MJ/gw1", "KZ/GOV/MJ/civil")


def members(*gateways: tuple[str, str]) -> discovery_pb2.ListMembersResponse:
    """An answer listing each (subsystem, gateway) under its member."""
    answer = discovery_pb2.ListMembersResponse(configuration_version=7)
    by_member: dict[str, discovery_pb2.DiscoveredMember] = {}
    for subsystem, gateway in gateways:
        member_id = subsystem.rpartition("/")[0]
        if member_id not in by_member:
            by_member[member_id] = answer.members.add(id=member_id, name=f"name of {member_id}")
        by_member[member_id].subsystems.add(id=subsystem, gateways=[gateway])
    return answer


def test_every_gateway_is_a_target_with_a_subsystem_it_serves() -> None:
    answer = members(
        ("KZ/GOV/MJ/population", "KZ/GOV/MJ/gw1"),
        ("KZ/GOV/MJ/civil", "KZ/GOV/MJ/gw1"),
        ("KZ/GOV/MJ/civil", "KZ/GOV/MJ/gw2"),
        ("KZ/GOV/SRC/taxes", "KZ/GOV/SRC/gw1"),
    )
    answer.members.add(id="KZ/GOV/NEW")  # a member with no subsystem yet
    directory = directory_from(answer)
    assert directory.targets == (
        MJ,
        UsageTarget("KZ/GOV/MJ/gw2", "KZ/GOV/MJ/civil"),
        UsageTarget("KZ/GOV/SRC/gw1", "KZ/GOV/SRC/taxes"),
    )
    assert directory.members == ("KZ/GOV/MJ", "KZ/GOV/NEW", "KZ/GOV/SRC")
    assert directory.names["KZ/GOV/SRC"] == "name of KZ/GOV/SRC" and directory.version == 7


class Bus:
    """Answers ListMembers with ``answer``, or fails while ``down``; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.answer = members(("KZ/GOV/MJ/population", "KZ/GOV/MJ/gw1"))

    async def call(self, method: str, request: Message, response_type: type, **_: Any) -> Any:
        self.calls += 1
        if self.down:
            raise BusCallError(method, grpc.StatusCode.UNAVAILABLE, "down")
        return self.answer


async def test_the_list_is_read_once_a_minute_not_per_page() -> None:
    bus, now = Bus(), [0.0]
    directory = UsageDirectory(bus, (), timeout=1, refresh_s=60, clock=lambda: now[0])  # type: ignore[arg-type]
    first = await directory.current()
    now[0] = 59
    assert await directory.current() is first and bus.calls == 1
    bus.answer = members(
        ("KZ/GOV/MJ/population", "KZ/GOV/MJ/gw1"), ("KZ/GOV/MOH/health", "KZ/GOV/MOH/gw1")
    )
    now[0] = 61  # a minute on: read again, and the gateway that joined is there
    later = await directory.current()
    assert bus.calls == 2 and [t.gateway for t in later.targets] == [
        "KZ/GOV/MJ/gw1",
        "KZ/GOV/MOH/gw1",
    ]
    bus.down, now[0] = True, 200  # down: the last list, marked stale; retried next page
    stale = await directory.current()
    assert stale.problem == "stale" and stale.targets == later.targets
    assert (await directory.current()).problem == "stale" and bus.calls == 4


async def test_no_list_ever_read_asks_nobody_and_fixed_targets_ask_no_list() -> None:
    bus = Bus()
    bus.down = True
    assert await UsageDirectory(bus, (), timeout=1).current() == Directory(  # type: ignore[arg-type]
        (), (), problem="unavailable"
    )
    bus.down = False
    fixed = await UsageDirectory(bus, (MJ,), timeout=1).current()  # type: ignore[arg-type]
    assert fixed.targets == (MJ,) and fixed.members == ("KZ/GOV/MJ",)
    assert bus.calls == 1  # only the first directory's attempt


def test_whose_timeline_is_an_iin_carried_by_the_paging_links() -> None:
    filters = parse_filters({"whom": f" {CHILD} "}, ())
    assert filters.whom == CHILD and f"whom={CHILD}" in filters.query(page=2)
    assert parse_filters({}, ()).whom == ""
    for bad in ("12345", "150101500012", "x" * 12):
        with pytest.raises(ValueError):
            parse_filters({"whom": bad}, ())


SERVICES = (
    population_pb2.DESCRIPTOR.services_by_name["PopulationRegistry"],
    pension_pb2.DESCRIPTOR.services_by_name["PensionRegistry"],
    health_pb2.DESCRIPTOR.services_by_name["HealthRegistry"],
    education_pb2.DESCRIPTOR.services_by_name["EducationRegistry"],
    usage_pb2.DESCRIPTOR.services_by_name["Usage"],
    discovery_pb2.DESCRIPTOR.services_by_name["Discovery"],
)


def test_every_registry_method_bus_metaservice_and_topic_has_a_name_in_each_language() -> None:
    keys = {f"{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    keys |= {topic for sub in SUBSYSTEMS for topic in sub.topics}
    for lang in LANGUAGES:
        missing = keys - set(SERVICE_NAMES[lang])
        assert not missing, f"{lang}: {sorted(missing)}"
        assert all(SERVICE_NAMES[lang][k].strip() for k in keys)
    assert set(SERVICE_NAMES["kk"]) == set(SERVICE_NAMES["ru"]) == set(SERVICE_NAMES["en"])
    assert service_name("ru", "zhol.taxes.v1.TaxRegistry", "GetDeclaration") is None


def render(lang: str, rows: tuple[usage.Row, ...]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(usage.__file__).parent / "templates"), autoescape=True
    )
    registered = {"KZ/GOV/SRC": "State Revenue Committee"}
    context = {
        "lang": lang,
        "languages": (),
        "t": lambda key: text(lang, key),
        "path": "/usage",
        "signed_in": True,
        "csrf": "",
        "demo": False,
        "filters": Filters(),
        "agencies": ("KZ/GOV/MJ", "KZ/GOV/SRC"),
        "directory": Directory((), ("KZ/GOV/MJ", "KZ/GOV/SRC"), registered),
        "children": (),
        "subject": CHILD,
        "child_view": False,
        "timeline": usage.Timeline(rows, False, False),
        "missing": (),
        "agency": lambda m: agency_label(lang, m, registered),
        "service_label": lambda r: service_name(lang, r.grpc_service, r.method),
    }
    return env.get_template("usage.html").render(context)


def row(service: str, member: str = "KZ/GOV/MES") -> usage.Row:
    grpc_service, _, method = service.rpartition("/")
    return usage.Row(
        at_ms=1_700_000_000_000,
        message_id="m",
        client=f"{member}/x",
        client_member=member,
        user_id="u",
        service=f"KZ/GOV/MJ/population/{service}",
        grpc_service=grpc_service,
        method=method,
        purpose="p",
        access=usage_pb2.USAGE_ACCESS_READ,
        gateways=("KZ/GOV/MJ/gw1",),
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_shows_translated_names_and_raw_unknown_ones_as_english(lang: str) -> None:
    known = "zhol.population.v1.PopulationRegistry/GetPerson"
    html = render(lang, (row(known), row("zhol.taxes.v1.TaxRegistry/GetDeclaration", "KZ/GOV/SRC")))
    assert str(escape(SERVICE_NAMES[lang][known])) in html
    assert ": GetPerson<" not in html
    assert '<span lang="en">GetDeclaration</span>' in html
    # Agencies: by name in the language, or as registered (English) for a newcomer.
    assert text(lang, "KZ/GOV/MES") in html
    assert '<td class="agency" lang="en">State Revenue Committee</td>' in html
    assert '<option value="KZ/GOV/SRC" lang="en">State Revenue Committee</option>' in html
