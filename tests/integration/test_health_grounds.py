"""Health's recorded grounds of state-paid insurance over real gRPC (rules.RECORDED_GROUNDS).

The world of test_health_service: the real health server, its reads going to a gateway
stand-in carrying the real population and pension servicers on seeded databases. Each
category insures a person whom nothing else insures; a refusal changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import rpc_error
from tests.integration.test_health_service import (
    DEATH,
    TODAY,
    World,
    date_of,
    hdate,
    pdate,
    record_a_june_contribution,
    running_world,
    unknown_iin,
)
from zhol.adapters.health import cli
from zhol.health.v1 import health_pb2 as pb
from zhol.pension.v1 import pension_pb2
from zhol.population.v1 import population_pb2 as pop

pytestmark = pytest.mark.integration

PENSION = "KZ/GOV/MLSPP/pension"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path, pension=True) as running:
        assert running.with_pension, "adapters.pension is not importable"
        yield running


async def uninsured(world: World, count: int) -> list[str]:
    """Living persons with no state-paid period, no contribution in pension's window and
    nothing else that insures them today."""
    day = TODAY.isoformat()
    state_paid = {iin for (iin,) in world.health_rows(
        "SELECT iin FROM insurance_periods WHERE valid_from <= ?"
        " AND (valid_to IS NULL OR valid_to >= ?)", day, day)}
    found: list[str] = []
    for (iin,) in world.population_rows(
        "SELECT iin FROM persons WHERE death_date IS NULL AND birth_date BETWEEN ? AND ?"
        " ORDER BY iin", "1960-01-01", "2004-12-31",
    ):
        if iin in state_paid:
            continue
        answer = await world.pension.IsInsuredByContributions(
            pension_pb2.IsInsuredByContributionsRequest(iin=iin)
        )
        if answer.paid_months == 0 and not (await status(world, iin)).insured:
            found.append(iin)  # nothing else insures them (a full-time study, a child)
            if len(found) == count:
                return found
    raise AssertionError(f"fewer than {count} uninsured persons in the seed")


async def status(world: World, iin: str) -> pb.InsuranceStatus:
    return await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin))


def snapshot(world: World) -> dict[str, list[tuple]]:
    shot = world.snapshot()
    shot["state_insured_grounds"] = world.health_rows(
        "SELECT * FROM state_insured_grounds ORDER BY id"
    )
    return shot


def reads(world: World) -> list[tuple[str, str]]:
    return [(method.rsplit("/", 1)[-1], meta["zhol-data-subject"])
            for method, meta in world.reads.calls if "/zhol.bus.v1." not in method]


async def test_a_prisoner_and_a_detainee_are_state_insured_whether_or_not_working(
    world: World,
) -> None:
    prisoner, detainee = await uninsured(world, 2)
    assert (await status(world, prisoner)).insured is False
    recorded = await world.health.RecordStateInsuredGround(pb.RecordStateInsuredGroundRequest(
        iin=prisoner, social_category="prisoner", from_date=hdate(dt.date(2025, 5, 10)),
        basis="MIA CEC list 2025-05 no. 17",
    ))
    assert (recorded.iin, recorded.social_category, date_of(recorded.to_date)) == (
        prisoner, "prisoner", None,
    )
    assert date_of(recorded.recorded_on) == TODAY
    world.reads.calls.clear()
    answer = await status(world, prisoner)
    assert (answer.insured, answer.category, answer.social_category) == (
        True, "state_paid", "prisoner",
    )
    assert (date_of(answer.valid_from), date_of(answer.valid_to)) == (dt.date(2025, 5, 10), None)
    assert "MIA CEC list 2025-05 no. 17" in answer.source
    # regardless of work: pension is not asked
    assert "IsInsuredByContributions" not in [m for m, _ in reads(world)]
    # released yesterday: the period ends, nothing insures the person today
    ended = await world.health.EndStateInsuredGround(pb.EndStateInsuredGroundRequest(
        iin=prisoner, social_category="prisoner", from_date=hdate(dt.date(2025, 5, 10)),
        to_date=hdate(TODAY - dt.timedelta(days=1)),
    ))
    assert date_of(ended.to_date) == dt.date(2025, 6, 1)
    assert (await status(world, prisoner)).insured is False
    # held in a pre-trial detention facility from today
    await world.health.RecordStateInsuredGround(pb.RecordStateInsuredGroundRequest(
        iin=detainee, social_category="detainee", from_date=hdate(TODAY),
        to_date=hdate(dt.date(2025, 8, 1)), basis="SIZO-1 list",
    ))
    answer = await status(world, detainee)
    assert (answer.insured, answer.social_category, date_of(answer.valid_to)) == (
        True, "detainee", dt.date(2025, 8, 1),
    )
    # a death registered in population ends the recorded period on the death date
    await world.population.RegisterDeath(
        pop.RegisterDeathRequest(iin=detainee, death_date=pdate(TODAY))
    )
    await world.deliver_population_event(DEATH, detainee)
    listed = await world.health.ListStateInsuredGrounds(
        pb.ListStateInsuredGroundsRequest(iin=detainee)
    )
    assert [(g.social_category, date_of(g.to_date)) for g in listed.grounds] == [
        ("detainee", TODAY),
    ]


async def test_a_non_working_kandas_is_state_insured_until_a_contribution_appears(
    world: World, tmp_path: Path,
) -> None:
    (kandas,) = await uninsured(world, 1)
    assert (await status(world, kandas)).insured is False
    # the operator's command, against the running system
    code = await asyncio.to_thread(
        run_cli, "record", "--target", world.running.address, "--iin", kandas,
        "--category", "non_working_kandas", "--from", "2025-03-15", "--basis",
        "kandas status, migration service decision 55",
    )
    assert code == cli.EXIT_OK
    world.reads.calls.clear()
    answer = await status(world, kandas)
    assert (answer.insured, answer.category, answer.social_category) == (
        True, "state_paid", "non_working_kandas",
    )
    assert (date_of(answer.valid_from), date_of(answer.valid_to)) == (
        dt.date(2025, 6, 1), dt.date(2025, 6, 30),  # the month asked about
    )
    assert "decision 55" in answer.source and "2025-03 to 2025-06" in answer.source
    assert [m for m, _ in reads(world)][:1] == ["IsInsuredByContributions"]
    assert all(subject == kandas for _, subject in reads(world))
    # A contribution for this very month: the person works, the category is gone.
    await record_a_june_contribution(world, tmp_path / "pension.db", kandas)
    answer = await status(world, kandas)
    assert (answer.insured, answer.category, answer.social_category) == (False, "", "")


async def test_a_non_working_carer_of_a_person_with_group_1_disability(world: World) -> None:
    carer, cared_for, group_2 = await uninsured(world, 3)
    await world.health.RecordDisabilityConclusion(pb.RecordDisabilityConclusionRequest(
        iin=cared_for, group=1, from_date=hdate(dt.date(2025, 1, 10)),
        to_date=hdate(dt.date(2025, 6, 20)),
    ))
    await world.health.RecordDisabilityConclusion(pb.RecordDisabilityConclusionRequest(
        iin=group_2, group=2, from_date=hdate(dt.date(2025, 1, 10)),
    ))
    assert (await status(world, carer)).insured is False
    # a person with a group-2 conclusion is not one whose carer the state insures
    before = snapshot(world)
    error = await rpc_error(world.health.RecordStateInsuredGround(
        pb.RecordStateInsuredGroundRequest(
            iin=carer, social_category="carer_of_disabled_group_1",
            from_date=hdate(dt.date(2025, 2, 1)), basis="carer list 9", cared_for_iin=group_2,
        )))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert snapshot(world) == before
    recorded = await world.health.RecordStateInsuredGround(pb.RecordStateInsuredGroundRequest(
        iin=carer, social_category="carer_of_disabled_group_1",
        from_date=hdate(dt.date(2025, 2, 1)), basis="carer list 9", cared_for_iin=cared_for,
    ))
    assert recorded.cared_for_iin == cared_for
    world.reads.calls.clear()
    answer = await status(world, carer)
    assert (answer.insured, answer.category, answer.social_category) == (
        True, "state_paid", "carer_of_disabled_group_1",
    )
    # this month, cut at the conclusion's last day
    assert (date_of(answer.valid_from), date_of(answer.valid_to)) == (
        dt.date(2025, 6, 1), dt.date(2025, 6, 20),
    )
    assert "carer list 9" in answer.source and "group 1" in answer.source
    assert cared_for not in answer.source  # the other person's IIN is not shown
    assert ("GetPerson", cared_for) in reads(world)
    # the person cared for dies: no more cover for the carer
    await world.population.RegisterDeath(
        pop.RegisterDeathRequest(iin=cared_for, death_date=pdate(TODAY))
    )
    answer = await status(world, carer)
    assert (answer.insured, answer.social_category) == (False, "")


async def test_bad_grounds_are_refused_and_change_nothing(world: World) -> None:
    person, cared_for = await uninsured(world, 2)
    await world.health.RecordStateInsuredGround(pb.RecordStateInsuredGroundRequest(
        iin=person, social_category="detainee", from_date=hdate(dt.date(2025, 5, 1)),
        to_date=hdate(dt.date(2025, 5, 31)), basis="SIZO-2 list",
    ))
    before = snapshot(world)

    def ground(**fields: object) -> pb.RecordStateInsuredGroundRequest:
        base: dict[str, object] = {
            "iin": person, "social_category": "prisoner", "from_date": hdate(TODAY),
            "basis": "MIA CEC list",
        }
        base.update(fields)
        return pb.RecordStateInsuredGroundRequest(**base)  # type: ignore[arg-type]

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    refused = grpc.StatusCode.FAILED_PRECONDITION
    cases = [
        (ground(social_category="astronaut"), invalid),
        (ground(social_category="pensioner"), invalid),  # not a recorded category
        (ground(iin="12345"), invalid),
        (ground(iin=person[:-1] + str((int(person[-1]) + 1) % 10)), invalid),  # bad check digit
        (ground(from_date=hdate(dt.date(2025, 5, 2)), to_date=hdate(dt.date(2025, 5, 1))),
         invalid),
        (ground(from_date=hdate(TODAY + dt.timedelta(days=1))), invalid),
        (ground(basis=""), invalid),
        (ground(cared_for_iin=cared_for), invalid),  # a prisoner cares for nobody
        (ground(social_category="carer_of_disabled_group_1"), invalid),  # for whom?
        (ground(social_category="detainee", from_date=hdate(dt.date(2025, 5, 31))), refused),
        (ground(social_category="carer_of_disabled_group_1", cared_for_iin=cared_for),
         refused),  # no group-1 conclusion in health's records
        (ground(iin=unknown_iin()), grpc.StatusCode.NOT_FOUND),
    ]
    for request, code in cases:
        error = await rpc_error(world.health.RecordStateInsuredGround(request))
        assert error.code() == code, request
    end = pb.EndStateInsuredGroundRequest(
        iin=person, social_category="detainee", from_date=hdate(dt.date(2025, 5, 1)),
        to_date=hdate(dt.date(2025, 6, 30)),
    )
    error = await rpc_error(world.health.EndStateInsuredGround(end))  # lengthens
    assert error.code() == refused
    end.from_date.CopyFrom(hdate(dt.date(2025, 5, 2)))
    error = await rpc_error(world.health.EndStateInsuredGround(end))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # the operator's command: an unknown person is refused (1), a bad date is usage (2)
    code = await asyncio.to_thread(
        run_cli, "record", "--target", world.running.address, "--iin", unknown_iin(),
        "--category", "prisoner", "--from", "2025-06-01", "--basis", "list",
    )
    assert code == cli.EXIT_FAILED
    code = await asyncio.to_thread(
        run_cli, "record", "--target", world.running.address, "--iin", person,
        "--category", "prisoner", "--from", "2025-06-01", "--to", "2025-05-01",
        "--basis", "list",
    )
    assert code == cli.EXIT_USAGE
    assert snapshot(world) == before
    listed = await world.health.ListStateInsuredGrounds(
        pb.ListStateInsuredGroundsRequest(iin=person)
    )
    assert [(g.social_category, date_of(g.to_date)) for g in listed.grounds] == [
        ("detainee", dt.date(2025, 5, 31)),
    ]


def run_cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="zhol adapter")
    cli.add_parser(parser.add_subparsers(dest="adapter", required=True))
    args = parser.parse_args(["health", "ground", *argv])
    return int(args.func(args))
