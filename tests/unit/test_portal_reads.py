"""Who counts as a minor child, and that every read the portal makes is granted."""

from __future__ import annotations

import datetime as dt

from zhol.cli.federation import PORTAL, RIGHTS, service_methods
from zhol.core.iin import make_iin
from zhol.population.v1 import population_pb2
from zhol.portal.reads import PORTAL_READS, is_minor, minor_children


def iin_born(day: dt.date) -> str:
    made = make_iin(day, female=True, serial=1) or make_iin(day, female=True, serial=2)
    assert made is not None
    return made.value


def test_a_child_is_a_minor_until_the_eighteenth_birthday() -> None:
    child = iin_born(dt.date(2008, 6, 15))
    assert is_minor(child, dt.date(2026, 6, 14))
    assert not is_minor(child, dt.date(2026, 6, 15))


def test_only_minor_children_and_never_a_malformed_iin() -> None:
    today = dt.date(2026, 12, 5)
    young, adult = iin_born(dt.date(2015, 1, 1)), iin_born(dt.date(2000, 1, 1))
    family = population_pb2.Family(
        children=[
            population_pb2.Relative(iin=young, relation="child"),
            population_pb2.Relative(iin=adult, relation="child"),
            population_pb2.Relative(iin="not-an-iin", relation="child"),
        ],
        parents=[population_pb2.Relative(iin=iin_born(dt.date(2016, 1, 1)), relation="mother")],
    )
    assert minor_children(family, today) == (young,)


def test_every_portal_read_exists_and_is_granted_to_the_portal() -> None:
    granted = {target for client, target in RIGHTS if client == PORTAL}
    assert granted == set(PORTAL_READS)
    for target in PORTAL_READS:
        *_, service, method = target.split("/")
        assert method in service_methods(service)
