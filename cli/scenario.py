"""``zhol scenario``: life events run end to end against a running demo federation.

Each scenario acts as one agency's own information system (the civil registry office
calls its population adapter directly), then waits for the other agencies to react
to the events that crossed the bus, prints their decisions and the bus messages from
every gateway's message log, and checks the end state: exit 0 when every expected
decision was made exactly once, 1 otherwise.

An agency that is briefly down (its adapter or a gateway on the way restarting) answers
UNAVAILABLE or DEADLINE_EXCEEDED, as the bus does for NetworkError, ServiceFailed and
Timeout: such a step is tried again, 0.2 s doubling up to 2 s as the outbox does, for
at most ``--retry-for`` seconds, then the scenario fails with the last code. Any other
answer is the agency's decision and is never retried. A write retried after an answer
that was lost cannot act twice: population refuses a second identical birth, and the
end-state checks count every decision.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from zhol.adapters.pension import rules as pension_rules
from zhol.adapters.pension.calculation import survivor_end
from zhol.adapters.pension.sources import study_of
from zhol.adapters.population import reference
from zhol.adapters.runtime.store import today_in_kz
from zhol.core.clock import SystemClock
from zhol.education.v1 import education_pb2 as ed
from zhol.gateway import messagelog
from zhol.health.v1 import health_pb2 as hl
from zhol.pension.v1 import pension_pb2 as pen
from zhol.population.v1 import population_pb2 as pop

IMPLEMENTED = ("birth", "address", "death", "retirement", "disability", "clinic")
NOT_YET: tuple[str, ...] = ()

T = TypeVar("T", bound=Message)

# What an agency answers while it, or the bus behind it, is briefly down (the bus's
# TRANSPORT and TIMEOUT categories; the outbox retries the same two).
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
RETRY_FOR_S = 30.0
FIRST_RETRY_S = 0.2
MAX_RETRY_S = 2.0
# A restarted adapter is dialled again within a second, not after gRPC's reconnect
# backoff (up to two minutes), which would outlast the retries.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def retry_delay(code: grpc.StatusCode, failures: int, waited_s: float,
                budget_s: float) -> float | None:
    """Seconds to wait before trying a step again after its ``failures``-th failure in a
    row (1-based) with ``code``, ``waited_s`` after its first try; None: fail now."""
    if code not in TRANSIENT:
        return None
    delay = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, failures - 1))
    if waited_s + delay > budget_s:
        return None
    return delay


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "scenario",
        help="run a life event end to end against a running demo",
        description="Run a life event end to end against a running `zhol demo` and "
        "check every agency's decision; exit 0 when all were made exactly once.",
    )
    p.add_argument("name", choices=(*IMPLEMENTED, *NOT_YET, "all"),
                   help="the life event to run, or all of them")
    p.add_argument("--federation", default="demo-data/federation.json",
                   help="federation.json written by zhol demo (default %(default)s)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds to wait for the agencies' decisions (default %(default)s)")
    p.add_argument("--retry-for", type=float, default=RETRY_FOR_S,
                   help="seconds to keep retrying a step an agency answers UNAVAILABLE "
                   "or DEADLINE_EXCEEDED (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        fed = json.loads(Path(args.federation).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read federation {args.federation}: {exc}", file=sys.stderr)
        return 3  # could not check (docs/operators.md's exit codes)
    retry_for = getattr(args, "retry_for", RETRY_FOR_S)
    return asyncio.run(_run(fed, args.name, args.timeout, retry_for))


async def _run(fed: dict[str, Any], name: str, timeout: float,
               retry_for: float = RETRY_FOR_S) -> int:
    names = [*IMPLEMENTED, *NOT_YET] if name == "all" else [name]
    results: dict[str, str] = {}
    async with Clients(fed, retry_for) as c:
        for n in names:
            if n in NOT_YET:
                print(f"NOT IMPLEMENTED YET: {n}")
                results[n] = "NOT IMPLEMENTED"
                continue
            print(f"=== scenario {n} ===")
            try:
                ok = await SCENARIOS[n](c, timeout)
            except grpc.aio.AioRpcError as exc:
                print(f"FAILED: {exc.code().name}: {exc.details()}")
                ok = False
            results[n] = "PASS" if ok else "FAIL"
            print(f"--- {n}: {results[n]}\n")
    if len(names) > 1:
        print("=== summary ===")
        for n, r in results.items():
            print(f"  {n:<11} {r}")
    return 0 if all(r == "PASS" for r in results.values()) else 1


class Clients:
    """Raw unary calls to the four agencies' adapters (their own systems, not the bus)."""

    def __init__(self, fed: dict[str, Any], retry_for: float = RETRY_FOR_S) -> None:
        self.fed = fed
        self.retry_for = retry_for
        self._addr = {k: v["address"] for k, v in fed["adapters"].items()}
        self._ch: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> Clients:
        for name, addr in self._addr.items():
            self._ch[name] = grpc.aio.insecure_channel(addr, CHANNEL_OPTIONS)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ch in self._ch.values():
            await ch.close()

    async def call(self, adapter: str, method: str, req: Message, resp: type[T]) -> T:
        fn = self._ch[adapter].unary_unary(
            method, request_serializer=type(req).SerializeToString,
            response_deserializer=resp.FromString)
        first = time.monotonic()
        failures = 0
        while True:
            try:
                answer = await fn(req, timeout=10)
            except grpc.aio.AioRpcError as exc:
                failures += 1
                delay = retry_delay(exc.code(), failures, time.monotonic() - first,
                                    self.retry_for)
                if delay is None:
                    raise
                if failures == 1:
                    print(f"{adapter}: {exc.code().name} ({exc.details()}); retrying for up "
                          f"to {self.retry_for:.0f}s")
                await asyncio.sleep(delay)
                continue
            if failures:
                print(f"{adapter}: answered after {failures} retries "
                      f"({time.monotonic() - first:.1f}s)")
            return answer

    # population
    async def person(self, iin: str) -> pop.Person:
        return await self.call("population", "/zhol.population.v1.PopulationRegistry/GetPerson",
                               pop.GetPersonRequest(iin=iin), pop.Person)

    async def family(self, iin: str) -> pop.Family:
        return await self.call("population", "/zhol.population.v1.PopulationRegistry/GetFamily",
                               pop.GetFamilyRequest(iin=iin), pop.Family)

    async def persons(self) -> list[pop.Person]:
        out: list[pop.Person] = []
        token = ""
        while True:
            r = await self.call("population", "/zhol.population.v1.PopulationRegistry/ListPersons",
                                pop.ListPersonsRequest(page_size=1000, page_token=token),
                                pop.ListPersonsResponse)
            out.extend(r.persons)
            token = r.next_page_token
            if not token:
                return out

    # the other agencies
    async def benefits(self, iin: str) -> list[pen.Benefit]:
        r = await self.call("pension", "/zhol.pension.v1.PensionRegistry/ListBenefits",
                            pen.ListBenefitsRequest(iin=iin), pen.ListBenefitsResponse)
        return list(r.benefits)

    async def attachment(self, iin: str) -> hl.Attachment | None:
        try:
            return await self.call("health", "/zhol.health.v1.HealthRegistry/GetAttachment",
                                   hl.GetAttachmentRequest(iin=iin), hl.Attachment)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def attachments(self, iin: str) -> list[hl.Attachment]:
        r = await self.call("health", "/zhol.health.v1.HealthRegistry/ListAttachments",
                            hl.ListAttachmentsRequest(iin=iin), hl.ListAttachmentsResponse)
        return list(r.attachments)

    async def clinics(self, region: str, district: str) -> list[hl.Clinic]:
        r = await self.call("health", "/zhol.health.v1.HealthRegistry/ListClinics",
                            hl.ListClinicsRequest(region=region, district=district),
                            hl.ListClinicsResponse)
        return list(r.clinics)

    async def queue(self, iin: str) -> ed.QueuePosition | None:
        try:
            return await self.call(
                "education", "/zhol.education.v1.EducationRegistry/GetQueuePosition",
                ed.GetQueuePositionRequest(iin=iin), ed.QueuePosition)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise


# ---------------------------------------------------------------- helpers

def _date(d: dt.date) -> pop.Date:
    return pop.Date(year=d.year, month=d.month, day=d.day)


def _fmt(d: Any) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if d.year else "-"



async def _work_and_study(c: Clients, iin: str, today: dt.date) -> set[tuple[str, str]]:
    """The districts of the person's employers (pension) and colleges or universities
    (education) of periods in force today: health attaches by them too."""
    def current(ended: pen.Date | ed.Date) -> bool:
        return not ended.year or (ended.year, ended.month, ended.day) >= (
            today.year, today.month, today.day)

    work = await c.call("pension", "/zhol.pension.v1.PensionRegistry/GetEmploymentPeriods",
                        pen.GetEmploymentPeriodsRequest(iin=iin), pen.GetEmploymentPeriodsResponse)
    studies = await c.call("education", "/zhol.education.v1.EducationRegistry/ListStudies",
                           ed.ListStudiesRequest(iin=iin), ed.ListStudiesResponse)
    return ({(w.employer_region, w.employer_district) for w in work.periods
             if current(w.ended_on)}
            | {(s.institution.region, s.institution.district) for s in studies.studies
               if current(s.ended_on)})


def _age(p: pop.Person, today: dt.date) -> int:
    b = p.birth_date
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _poll(timeout: float, check: Callable[[], Awaitable[list[str]]]) -> list[str]:
    """Run ``check`` until it reports nothing missing or ``timeout`` passes; the last
    list of what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        missing = await check()
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(0.5)


def _print_bus(fed: dict[str, Any], since_ms: int) -> None:
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for gw in fed["gateways"]:
        try:
            recs = messagelog.list_records(
                Path(gw["data_dir"]) / "messagelog.db", since_ms=since_ms)
        except (FileNotFoundError, OSError) as exc:
            print(f"  ({gw['id']}: no message log: {exc})")
            continue
        rows.extend((r["logged_at_ms"], gw["id"], r) for r in recs)
    rows.sort(key=lambda t: t[0])
    print(f"bus messages since the scenario started ({len(rows)}):")
    for _, gw_id, r in rows:
        print(f"  {gw_id:<16} {r.get('direction') or '':<8} {r.get('kind') or '':<9} "
              f"{r.get('client') or '':<22} {r.get('service') or ''}  "
              f"purpose={r.get('purpose') or '-'!r} subject={r.get('data_subject') or '-'}")


def _report(missing: list[str]) -> bool:
    if missing:
        print("MISSING / WRONG:")
        for m in missing:
            print(f"  - {m}")
        return False
    print("end state: every decision made exactly once")
    return True


def _unique_name() -> str:
    # Unique per run, so population does not refuse a duplicate birth.
    return "Scen" + uuid.uuid4().hex[:8].capitalize()


# ---------------------------------------------------------------- birth

async def _birth(c: Clients, timeout: float, *, quiet_bus: bool = False) -> tuple[bool, str]:
    today = today_in_kz(SystemClock())
    people = await c.persons()
    mothers = [p for p in people if p.sex == pop.SEX_FEMALE and not p.deceased
               and 18 <= _age(p, today) <= 45]
    if not mothers:
        print("no living woman aged 18-45 in population")
        return False, ""
    mother = await c.person(mothers[len(mothers) // 2].iin)
    started = _now_ms()
    name = _unique_name()
    r = await c.call(
        "population", "/zhol.population.v1.PopulationRegistry/RegisterBirth",
        pop.RegisterBirthRequest(mother_iin=mother.iin, first_name=name,
                                 last_name=mother.last_name, sex=pop.SEX_FEMALE,
                                 birth_date=_date(today)),
        pop.RegisterBirthResponse)
    child = r.child.iin
    print(f"population: birth registered, act {r.act.act_id}: child {child} {name} "
          f"{mother.last_name}, mother {mother.iin} {mother.first_name} {mother.last_name} "
          f"({_age(mother, today)}), born {_fmt(r.child.birth_date)} in "
          f"{r.child.address.district}, {r.child.address.region}")

    state: dict[str, Any] = {}

    async def check() -> list[str]:
        bs = [b for b in await c.benefits(child) if b.subject_iin == child]
        att = await c.attachment(child)
        q = await c.queue(child)
        state.update(benefits=bs, att=att, q=q)
        missing = []
        for kind in ("childbirth_lump_sum", "child_care_allowance"):
            n = sum(1 for b in bs if b.kind == kind)
            if n != 1:
                missing.append(f"pension: {n} {kind} benefits for the child (want 1)")
        if att is None or att.detached_on.year or att.reason != "newborn":
            missing.append(f"health: no open newborn attachment (got {att and att.reason!r})")
        if q is None or q.entry.status != ed.QUEUE_STATUS_WAITING \
                or q.entry.reason != ed.QUEUE_REASON_NEWBORN:
            missing.append("education: no waiting newborn queue entry")
        return missing

    missing = await _poll(timeout, check)
    print("decisions:")
    for b in state.get("benefits", []):
        print(f"  pension:   {b.kind} {b.amount} {b.currency} {b.frequency} to {b.recipient_iin} "
              f"from {_fmt(b.period_from)} to {_fmt(b.period_to)} [{b.status}] basis {b.basis}")
    att = state.get("att")
    if att is not None:
        print(f"  health:    attached to {att.clinic_id} ({att.clinic.name}, "
              f"{att.clinic.district}) on {_fmt(att.attached_on)}, reason {att.reason}")
    q = state.get("q")
    if q is not None:
        e = q.entry
        print(f"  education: queue entry {e.queue_entry_id} in {e.district}, {e.region}, "
              f"queued {_fmt(e.queued_on)}, {ed.QueueStatus.Name(e.status)}, "
              f"{ed.QueueReason.Name(e.reason)}, position {q.position} of {q.waiting_in_district}")
    if not quiet_bus:
        _print_bus(c.fed, started)
    return _report(missing), child


async def scenario_birth(c: Clients, timeout: float) -> bool:
    ok, _ = await _birth(c, timeout)
    return ok


# ---------------------------------------------------------------- address

async def scenario_address(c: Clients, timeout: float) -> bool:
    print("first, a birth so that a child has a clinic and a queue entry:")
    ok, child = await _birth(c, timeout, quiet_bus=True)
    if not ok:
        print("the birth did not complete; cannot move the child")
        return False
    person = await c.person(child)
    before_q = await c.queue(child)
    before_att = await c.attachment(child)
    assert before_q is not None and before_att is not None
    old = person.address
    target: tuple[str, str, str] | None = None
    for region, (_, districts) in reference.REGIONS.items():
        for district, locality in districts:
            if (region, district) == (old.region, old.district):
                continue
            if await c.clinics(region, district):
                target = (region, district, locality)
                break
        if target:
            break
    if target is None:
        print("no other district with a clinic")
        return False
    region, district, locality = target
    new_addr = pop.Address(region=region, district=district, locality=locality,
                           street=reference.STREETS[0], building="1", apartment="1")
    started = _now_ms()
    await c.call("population", "/zhol.population.v1.PopulationRegistry/ChangeAddress",
                 pop.ChangeAddressRequest(iin=child, address=new_addr), pop.Address)
    print(f"\npopulation: address of {child} changed from {old.district}, {old.region} "
          f"to {district}, {region}")

    state: dict[str, Any] = {}

    async def check() -> list[str]:
        att = await c.attachment(child)
        atts = await c.attachments(child)
        q = await c.queue(child)
        state.update(att=att, atts=atts, q=q)
        missing = []
        if att is None or att.detached_on.year:
            missing.append("health: no open attachment")
        elif att.clinic.district != district or att.clinic.region != region:
            missing.append(f"health: attached in {att.clinic.district}, not {district}")
        elif att.reason != "address_change":
            missing.append(f"health: attachment reason {att.reason!r}, want address_change")
        closed = [a for a in atts if a.detached_on.year and a.detach_reason == "address_change"]
        if len(closed) != 1:
            missing.append(f"health: {len(closed)} attachments closed for address_change (want 1)")
        # every agency's answer shows the child where population has them now (read at
        # answer time over the bus, no copy kept)
        benefits = await c.call("pension", "/zhol.pension.v1.PensionRegistry/ListBenefits",
                                pen.ListBenefitsRequest(iin=child), pen.ListBenefitsResponse)
        shown = {"pension": benefits, "health": att, "education": q}
        state["shown"] = {k: v.person.address.district if v else "-" for k, v in shown.items()}
        for agency, district_now in state["shown"].items():
            if district_now != district:
                missing.append(f"{agency}: answer shows the child in {district_now!r}")
        if q is None:
            missing.append("education: no queue entry")
        else:
            e = q.entry
            if (e.region, e.district) != (region, district):
                missing.append(f"education: queue entry in {e.district}, not {district}")
            if e.queued_on != before_q.entry.queued_on:
                missing.append("education: queued_on changed on the move")
            if e.status != ed.QUEUE_STATUS_WAITING:
                missing.append("education: entry not waiting")
            if e.queue_entry_id != before_q.entry.queue_entry_id:
                missing.append("education: a new queue entry instead of a move")
            if len(q.moves) != 1:
                missing.append(f"education: {len(q.moves)} moves recorded (want 1)")
        return missing

    missing = await _poll(timeout, check)
    print("decisions:")
    for a in state.get("atts", []):
        print(f"  health:    {a.clinic_id} ({a.clinic.district}) attached {_fmt(a.attached_on)} "
              f"reason {a.reason}; detached {_fmt(a.detached_on)} {a.detach_reason or ''}")
    q = state.get("q")
    if q is not None:
        e = q.entry
        print(f"  education: queue entry {e.queue_entry_id} now in {e.district}, {e.region}, "
              f"queued {_fmt(e.queued_on)} (was {_fmt(before_q.entry.queued_on)}), "
              f"{ed.QueueStatus.Name(e.status)}, position {q.position} of {q.waiting_in_district}")
        for m in q.moves:
            print(f"             moved {m.from_district} -> {m.to_district} on {_fmt(m.moved_on)} "
                  f"({ed.QueueReason.Name(m.reason)})")
    answers = ", ".join(f"{k} {v}" for k, v in state.get("shown", {}).items())
    print(f"  answers show the child's registered district as: {answers}")
    _print_bus(c.fed, started)
    return _report(missing)


# ---------------------------------------------------------------- death

async def _children_by_age(c: Clients, fam: pop.Family, today: dt.date
                           ) -> tuple[list[pop.Person], list[pop.Person]]:
    """The living children of a family read: (under 18 today, 18 and over)."""
    minors: list[pop.Person] = []
    adults: list[pop.Person] = []
    for rel in fam.children:
        child = await c.person(rel.iin)
        if not child.deceased:
            (minors if _age(child, today) < 18 else adults).append(child)
    return minors, adults


async def _full_time_student(c: Clients, child: pop.Person, today: dt.date) -> bool:
    """A child of 18 to 22 whom pension counts as a dependant on a death today: a
    full-time study at a college or for a bachelor's degree in force (education
    ListStudies, pension's rule SURVIVOR_STUDENT)."""
    if _age(child, today) >= pension_rules.SURVIVOR_STUDENT.at(today).until_age:
        return False
    found = await c.call("education", "/zhol.education.v1.EducationRegistry/ListStudies",
                         ed.ListStudiesRequest(iin=child.iin), ed.ListStudiesResponse)
    born = dt.date(child.birth_date.year, child.birth_date.month, child.birth_date.day)
    studies = tuple(study_of(s) for s in found.studies)
    return survivor_end(born, today, studies).study is not None


async def _pick_deceased(c: Clients, today: dt.date
                         ) -> tuple[pop.Person, pop.Person, pop.Family] | None:
    """A living married adult with a living spouse (no burial benefit yet) and an open
    clinic attachment; one with a living child under 18 if there is one among the first
    candidates, else the first such person whose couple could have a child now."""
    people = await c.persons()
    candidates = [p for p in people if not p.deceased and _age(p, today) >= 30]
    fallback = None
    for p in candidates[::-1][:200]:
        fam = await c.family(p.iin)
        if not fam.spouse.iin:
            continue
        sp = await c.person(fam.spouse.iin)
        if sp.deceased or sp.sex == p.sex:
            continue
        att = await c.attachment(p.iin)
        if att is None or att.detached_on.year:
            continue
        if any(b.kind == "burial_benefit" for b in await c.benefits(sp.iin)):
            continue
        minors, _ = await _children_by_age(c, fam, today)
        if minors:
            return p, sp, fam
        mother = p if p.sex == pop.SEX_FEMALE else sp
        if fallback is None and _age(mother, today) <= 45:
            fallback = (p, sp)
    if fallback is None:
        return None
    p, sp = fallback
    mother, father = (p, sp) if p.sex == pop.SEX_FEMALE else (sp, p)
    r = await c.call(
        "population", "/zhol.population.v1.PopulationRegistry/RegisterBirth",
        pop.RegisterBirthRequest(mother_iin=mother.iin, father_iin=father.iin,
                                 first_name=_unique_name(), last_name=father.last_name,
                                 sex=pop.SEX_MALE, birth_date=_date(today)),
        pop.RegisterBirthResponse)
    print(f"no candidate with a child under 18: registered the birth of {r.child.iin} "
          f"(act {r.act.act_id}) to {mother.iin} and {father.iin} first")
    return p, sp, await c.family(p.iin)


async def scenario_death(c: Clients, timeout: float) -> bool:
    today = today_in_kz(SystemClock())
    picked = await _pick_deceased(c, today)
    if picked is None:
        print("no living married adult with an open clinic attachment")
        return False
    deceased, spouse, fam = picked
    minors, adults = await _children_by_age(c, fam, today)
    # Of age and in full-time study: a survivor pension too (SURVIVOR_STUDENT).
    students = {a.iin for a in adults if await _full_time_student(c, a, today)}
    # The burial payments due: the budget's if a pension or a state social benefit is paid
    # to the deceased, the savings' if the deceased has pension savings.
    before = await c.call("pension", "/zhol.pension.v1.PensionRegistry/GetPensionStatus",
                          pen.GetPensionStatusRequest(iin=deceased.iin), pen.PensionStatus)
    receives = before.receives_pension or any(
        b.kind == "disability_benefit" and b.recipient_iin == deceased.iin
        and b.status == "active" for b in await c.benefits(deceased.iin))
    want = {"burial_benefit": int(receives),
            "burial_savings_payment": int(before.savings_balance > 0)}
    started = _now_ms()
    r = await c.call("population", "/zhol.population.v1.PopulationRegistry/RegisterDeath",
                     pop.RegisterDeathRequest(iin=deceased.iin, death_date=_date(today)),
                     pop.RegisterDeathResponse)
    print(f"population: death registered, act {r.act.act_id}: {deceased.iin} "
          f"{deceased.first_name} {deceased.last_name} ({_age(deceased, today)}), "
          f"spouse {spouse.iin} {spouse.first_name} {spouse.last_name}; living children "
          f"under 18: {', '.join(f'{m.iin} ({_age(m, today)})' for m in minors) or 'none'}; "
          f"18 and over: {len(adults)}")

    state: dict[str, Any] = {}

    async def survivor_pensions(iin: str) -> list[pen.PensionAssignment]:
        st = await c.call("pension", "/zhol.pension.v1.PensionRegistry/GetPensionStatus",
                          pen.GetPensionStatusRequest(iin=iin), pen.PensionStatus)
        return [a for a in st.assignments
                if a.kind == "survivor" and a.breadwinner_iin == deceased.iin]

    async def check() -> list[str]:
        bs = [b for b in await c.benefits(deceased.iin)
              if b.kind in want and b.subject_iin == deceased.iin]
        att = await c.attachment(deceased.iin)
        atts = await c.attachments(deceased.iin)
        survivors = {m.iin: await survivor_pensions(m.iin)
                     for m in (*minors, *(a for a in adults if a.iin in students))}
        of_adults = {a.iin: await survivor_pensions(a.iin) for a in adults
                     if a.iin not in students}
        state.update(burial=bs, att=att, atts=atts, survivors=survivors)
        missing = []
        for kind, count in want.items():
            of_kind = [b for b in bs if b.kind == kind]
            if len(of_kind) != count:
                missing.append(f"pension: {len(of_kind)} {kind} for the deceased (want {count})")
            elif of_kind and of_kind[0].recipient_iin != spouse.iin:
                missing.append(f"pension: {kind} to {of_kind[0].recipient_iin}, not the spouse")
        if att is not None and not att.detached_on.year:
            missing.append("health: the attachment is still open")
        elif not any(a.detach_reason == "death" for a in atts):
            missing.append("health: no attachment closed for death")
        for child, got in survivors.items():
            if len(got) != 1:
                missing.append(f"pension: {len(got)} survivor pensions for {child} (want 1)")
            elif not got[0].calculation.items or not got[0].ends_on.year \
                    or not got[0].sources or got[0].status != "active":
                missing.append(f"pension: the survivor pension of {child} has no breakdown, "
                               "end date or sources, or is not active")
        for child, got in of_adults.items():
            if got:
                missing.append(f"pension: {len(got)} survivor pensions for {child}, 18 or over "
                               "and not in full-time study (want none)")
        return missing

    missing = await _poll(timeout, check)
    print("decisions:")
    for b in state.get("burial", []):
        print(f"  pension:   {b.kind} {b.amount} {b.currency} {b.frequency} to {b.recipient_iin} "
              f"[{b.status}] basis {b.basis}")
    shown = False
    for child, got in state.get("survivors", {}).items():
        for a in got:
            srcs = ", ".join(f"{s.service.rsplit('/', 1)[-1]}({s.data_subject})"
                             for s in a.sources)
            print(f"  pension:   survivor pension {a.monthly_amount} {a.currency}/month to "
                  f"{child} from {_fmt(a.effective_from)} until {_fmt(a.ends_on)} "
                  f"[{a.status}]; sources: {srcs}")
            if not shown:
                shown = True
                for line in a.calculation.explanation:
                    print(f"             {line}")
    for a in state.get("atts", []):
        if a.detached_on.year:
            print(f"  health:    {a.clinic_id} detached {_fmt(a.detached_on)} ({a.detach_reason})")
    _print_bus(c.fed, started)
    return _report(missing)


# ---------------------------------------------------------------- retirement

def _two_months_ahead(today: dt.date) -> dt.date:
    m = today.month + 2
    return dt.date(today.year + (m - 1) // 12, (m - 1) % 12 + 1, 1)


async def _assign(c: Clients, as_of: dt.date) -> pen.AssignRetirementPensionsResponse:
    return await c.call(
        "pension", "/zhol.pension.v1.PensionRegistry/AssignRetirementPensions",
        pen.AssignRetirementPensionsRequest(
            as_of=pen.Date(year=as_of.year, month=as_of.month, day=as_of.day)),
        pen.AssignRetirementPensionsResponse)


async def scenario_retirement(c: Clients, timeout: float) -> bool:
    as_of = _two_months_ahead(today_in_kz(SystemClock()))
    started = _now_ms()
    r = await _assign(c, as_of)
    print(f"pension: AssignRetirementPensions as of {as_of}: scanned {r.persons_scanned}, "
          f"reached age {r.reached_age}, already assigned {r.already_assigned}, "
          f"assigned now {len(r.assigned)}")
    missing: list[str] = []
    if not r.assigned:
        if r.reached_age and r.already_assigned == r.reached_age:
            print(f"nobody new: all {r.reached_age} persons of retirement age on {as_of} "
                  "already receive an age pension (an earlier run assigned them)")
        elif not r.reached_age:
            print(f"nobody reaches retirement age by {as_of} in this population")
        else:
            missing.append(f"pension: {r.reached_age - r.already_assigned} persons of "
                           "retirement age without an age pension, none assigned")
    print("decisions:")
    for a in r.assigned:
        srcs = ", ".join(f"{s.provider} {s.service.rsplit('/', 1)[-1]}" for s in a.sources)
        print(f"  pension:   {a.iin} {a.kind} pension {a.monthly_amount} {a.currency}/month "
              f"from {_fmt(a.effective_from)} [{a.status}]; sources: {srcs or '-'}")
    for a in r.assigned:
        st = await c.call("pension", "/zhol.pension.v1.PensionRegistry/GetPensionStatus",
                          pen.GetPensionStatusRequest(iin=a.iin), pen.PensionStatus)
        ages = [x for x in st.assignments if x.kind == "age"]
        if not st.receives_pension or len(ages) != 1:
            missing.append(f"pension: {a.iin} has {len(ages)} age assignments (want 1)")
            continue
        calc = ages[0].calculation
        # The rule that made the person of age, with its source (the first explanation).
        print(f"  rule:      {a.iin}: {calc.explanation[0] if calc.explanation else '-'}")
        if not calc.items or calc.monthly_amount != ages[0].monthly_amount:
            missing.append(f"pension: {a.iin} status has no calculation breakdown")
        if not any(s.provider and s.service for s in ages[0].sources):
            missing.append(f"pension: {a.iin} status shows no source read over the bus")
    if r.assigned:
        st = await c.call("pension", "/zhol.pension.v1.PensionRegistry/GetPensionStatus",
                          pen.GetPensionStatusRequest(iin=r.assigned[0].iin), pen.PensionStatus)
        calc = st.assignments[0].calculation
        print(f"breakdown for {st.iin}: base {calc.base_pension} + solidarity "
              f"{calc.solidarity_part} + accumulative {calc.accumulative_part} = "
              f"{calc.monthly_amount} (service {calc.years_of_service:.1f} years, "
              f"retirement age {calc.retirement_age})")
        for line in calc.explanation:
            print(f"    {line}")
    again = await _assign(c, as_of)
    print(f"second run as of {as_of}: assigned {len(again.assigned)}, "
          f"already assigned {again.already_assigned} of {again.reached_age}")
    if again.assigned:
        missing.append(f"pension: the second run assigned {len(again.assigned)} more (want 0)")
    _print_bus(c.fed, started)
    return _report(missing)


# ---------------------------------------------------------------- disability

# The disability benefit of group 1 in subsistence minimums, from 1 July 2023.
GROUP_1_PM = Decimal("2.2")


async def scenario_disability(c: Clients, timeout: float) -> bool:
    today = today_in_kz(SystemClock())
    people = await c.persons()
    person = None
    for p in people[::-1]:
        if p.deceased or not 18 <= _age(p, today) <= 55:
            continue
        if any(b.kind == "disability_benefit" for b in await c.benefits(p.iin)):
            continue
        person = await c.person(p.iin)
        break
    if person is None:
        print("no living adult aged 18-55 without a disability benefit")
        return False
    started = _now_ms()
    concl = await c.call(
        "health", "/zhol.health.v1.HealthRegistry/RecordDisabilityConclusion",
        hl.RecordDisabilityConclusionRequest(
            iin=person.iin, group=1,
            from_date=hl.Date(year=today.year, month=today.month, day=today.day)),
        hl.DisabilityConclusion)
    # Group 1 from 1 July 2023: 2.2 subsistence minimums, at the PM in force this month
    # (Social Code; lada.kz 147819): 111,872 tenge a month in 2026.
    due = pension_rules.tenge(
        pension_rules.SUBSISTENCE_MINIMUM.at(today.replace(day=1)) * GROUP_1_PM)
    print(f"health: disability conclusion {concl.conclusion_id}: {person.iin} "
          f"{person.first_name} {person.last_name} ({_age(person, today)}), group {concl.group} "
          f"from {_fmt(concl.from_date)} to {_fmt(concl.to_date)}")

    state: dict[str, Any] = {}

    async def check() -> list[str]:
        bs = [b for b in await c.benefits(person.iin)
              if b.kind == "disability_benefit" and b.subject_iin == person.iin]
        ins = await c.call("health", "/zhol.health.v1.HealthRegistry/GetInsuranceStatus",
                           hl.GetInsuranceStatusRequest(iin=person.iin), hl.InsuranceStatus)
        state.update(benefits=bs, ins=ins)
        missing = []
        if len(bs) != 1:
            missing.append(f"pension: {len(bs)} disability benefits (want 1)")
        elif bs[0].amount != due:
            missing.append(f"pension: group 1 pays {bs[0].amount} (want 2.2 PM = {due})")
        if not ins.insured or ins.category != "state_paid" \
                or ins.social_category != "disabled_group_1_2":
            missing.append(f"health: insurance {ins.category!r}/{ins.social_category!r}, "
                           "want state_paid/disabled_group_1_2")
        return missing

    missing = await _poll(timeout, check)
    print("decisions:")
    _print_benefits(state.get("benefits", []))
    ins = state.get("ins")
    if ins is not None:
        print(f"  health:    insured={ins.insured} {ins.category} {ins.social_category} "
              f"from {_fmt(ins.valid_from)} to {_fmt(ins.valid_to)}, source {ins.source}")
    missing += await _disabled_child(c, timeout, people, today)
    _print_bus(c.fed, started)
    return _report(missing)


def _print_benefits(benefits: list[pen.Benefit]) -> None:
    for b in benefits:
        print(f"  pension:   {b.kind} {b.amount} {b.currency} {b.frequency} to {b.recipient_iin} "
              f"from {_fmt(b.period_from)} to {_fmt(b.period_to)} [{b.status}] basis {b.basis}")


async def _disabled_child(c: Clients, timeout: float, people: list[pop.Person],
                          today: dt.date) -> list[str]:
    """A child's conclusion: pension pays the child and, once, the living mother the
    carer's benefit (health's reaction is the adult case's, not checked again)."""
    child = mother = None
    for p in people[::-1]:
        if p.deceased or not 1 <= _age(p, today) <= 15:
            continue
        if await c.benefits(p.iin):
            continue
        mothers = [r.iin for r in (await c.family(p.iin)).parents if r.relation == "mother"]
        if mothers and not (await c.person(mothers[0])).deceased:
            child, mother = p, mothers[0]
            break
    if child is None:
        return ["no living child aged 1-15 with a living mother and no benefits"]
    concl = await c.call(
        "health", "/zhol.health.v1.HealthRegistry/RecordDisabilityConclusion",
        hl.RecordDisabilityConclusionRequest(
            iin=child.iin, group=2,
            from_date=hl.Date(year=today.year, month=today.month, day=today.day)),
        hl.DisabilityConclusion)
    print(f"health: disability conclusion {concl.conclusion_id}: child {child.iin} "
          f"({_age(child, today)}), mother {mother}, group {concl.group}")
    found: list[pen.Benefit] = []

    async def check() -> list[str]:
        found[:] = [b for b in await c.benefits(child.iin) if b.subject_iin == child.iin]
        missing = []
        for kind, recipient in (("disability_benefit", child.iin),
                                ("carer_of_disabled_child", mother)):
            got = [b for b in found if b.kind == kind and b.recipient_iin == recipient]
            if len(got) != 1:
                missing.append(f"pension: {len(got)} {kind} to {recipient} (want 1)")
        return missing

    missing = await _poll(timeout, check)
    print("decisions (child):")
    _print_benefits(found)
    return missing


# ---------------------------------------------------------------- clinic

async def scenario_clinic(c: Clients, timeout: float) -> bool:
    today = today_in_kz(SystemClock())
    people = await c.persons()
    chosen = None
    for p in people:
        if p.deceased or _age(p, today) < 18:
            continue
        addr = await c.call("population", "/zhol.population.v1.PopulationRegistry/GetAddress",
                            pop.GetAddressRequest(iin=p.iin), pop.Address)
        if not addr.district:
            continue
        att = await c.attachment(p.iin)
        current = att.clinic_id if att is not None and not att.detached_on.year else ""
        options = [k for k in await c.clinics(addr.region, addr.district)
                   if k.clinic_id != current and k.attached < k.capacity]
        if options:
            chosen = (p, addr, current, options[0])
            break
    if chosen is None:
        print("no living adult with an address and another clinic in their district")
        return False
    p, addr, current, clinic = chosen
    print(f"person: {p.iin} {p.first_name} {p.last_name} ({_age(p, today)}), lives in "
          f"{addr.district}, {addr.region}; attached now to {current or 'no clinic'}")
    started = _now_ms()
    att = await c.call("health", "/zhol.health.v1.HealthRegistry/AttachToClinic",
                       hl.AttachToClinicRequest(iin=p.iin, clinic_id=clinic.clinic_id),
                       hl.Attachment)
    print(f"health: AttachToClinic {clinic.clinic_id} ({clinic.name}) -> attached "
          f"{_fmt(att.attached_on)}, reason {att.reason}")
    missing: list[str] = []
    now = await c.attachment(p.iin)
    if now is None or now.clinic_id != clinic.clinic_id or now.detached_on.year:
        missing.append(f"health: GetAttachment shows {now and now.clinic_id}, "
                       f"not {clinic.clinic_id}")
    elif now.reason != "request":
        missing.append(f"health: attachment reason {now.reason!r}, want request")
    if current:
        atts = await c.attachments(p.iin)
        if not any(a.clinic_id == current and a.detached_on.year for a in atts):
            missing.append(f"health: the old attachment to {current} was not closed")
    # a district where the person neither lives, works nor studies (health ATTACHMENT)
    elsewhere = {(addr.region, addr.district)} | await _work_and_study(c, p.iin, today)
    other = next((k for k in await c.clinics("", "")
                  if (k.region, k.district) not in elsewhere), None)
    if other is None:
        missing.append("health: no clinic in another district to try")
    else:
        try:
            await c.call("health", "/zhol.health.v1.HealthRegistry/AttachToClinic",
                         hl.AttachToClinicRequest(iin=p.iin, clinic_id=other.clinic_id),
                         hl.Attachment)
            missing.append(f"health: attached to {other.clinic_id} in {other.district}, "
                           "another district")
        except grpc.aio.AioRpcError as exc:
            print(f"health: AttachToClinic {other.clinic_id} ({other.district}, {other.region}) "
                  f"refused: {exc.code().name}: {exc.details()}")
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                missing.append(f"health: other district refused with {exc.code().name}, "
                               "want FAILED_PRECONDITION")
        after = await c.attachment(p.iin)
        if after is None or after.clinic_id != clinic.clinic_id:
            missing.append("health: the refused request changed the attachment")
    print("decisions:")
    for a in await c.attachments(p.iin):
        print(f"  health:    {a.clinic_id} attached {_fmt(a.attached_on)} reason {a.reason}; "
              f"detached {_fmt(a.detached_on)} {a.detach_reason or ''}")
    _print_bus(c.fed, started)
    return _report(missing)


SCENARIOS: dict[str, Callable[[Clients, float], Awaitable[bool]]] = {
    "birth": scenario_birth,
    "address": scenario_address,
    "death": scenario_death,
    "retirement": scenario_retirement,
    "disability": scenario_disability,
    "clinic": scenario_clinic,
}
