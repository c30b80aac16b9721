"""`zhol bench`, end-to-end births: how many births per second the four agencies finish.

A birth is registered at population (its own system calls its adapter, as
``zhol scenario birth`` does); it is finished when every downstream decision exists:
the childbirth lump sum and the child-care allowance in pension, the newborn's clinic
attachment in health, its kindergarten queue place in education. Each agency makes its
decision on the BirthRegistered event alone, reading population over the bus.

The federation runs as real processes in its own data directory. One warm-up birth
goes first (gateways fetching their configuration, channels, TLS sessions); then
``--births`` registrations, ``--birth-concurrency`` in flight, and the clock runs from
the first registration until a poll of the adapters' databases (read-only, batched,
never through the bus) finds every decision. The bench then checks that each decision
exists exactly once and that no delivery was dead-lettered; otherwise it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from zhol.adapters.runtime.store import today_in_kz
from zhol.cli.demo import start_federation
from zhol.cli.federation import ALL_AGENCIES, GatewaySpec, Layout, Ports, gateways_of
from zhol.cli.processes import Supervisor, cpu_seconds
from zhol.core.clock import SystemClock
from zhol.population.v1 import population_pb2 as pop

# Enough citizens for a few hundred mothers; small enough to seed in seconds.
PERSONS = 2000
POLL_S = 0.05
SETTLE_S = 0.5
REGISTER = "/zhol.population.v1.PopulationRegistry/RegisterBirth"
LIST_PERSONS = "/zhol.population.v1.PopulationRegistry/ListPersons"
# What each agency must have decided, once, for every newborn.
DECISIONS = ("childbirth_lump_sum", "child_care_allowance", "clinic_attachment", "queue_place")


def add_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--births", type=int, default=300, help="births to register end to end (0: skip this part)"
    )
    bench.add_argument("--birth-concurrency", type=int, default=12, help="registrations in flight")
    bench.add_argument("--births-only", action="store_true",
                       help="skip the direct-vs-bus calls, run only the births")  # fmt: skip


@dataclass(frozen=True, slots=True)
class BirthsResult:
    births: int
    seconds: float
    messages: int
    duplicates: tuple[str, ...]  # "<child> <decision> x<count>" for decisions made twice
    missing: tuple[str, ...]  # "<child> <decision>" never made
    dead_letters: int
    unpublished: int  # decisions' events still in an agency's outbox after the run settled
    cpu_s: dict[str, float]

    @property
    def exactly_once(self) -> bool:
        return not (self.duplicates or self.missing or self.dead_letters or self.unpublished)

    def as_json(self) -> dict[str, Any]:
        return {
            "births": self.births,
            "births_seconds": round(self.seconds, 3),
            # Not every birth finished: no rate to report (and the bench fails).
            "births_per_s": 0.0 if self.missing else round(self.births / self.seconds, 1),
            "messages_per_birth": round(self.messages / self.births, 2) if self.births else 0.0,
            "cpu_ms_per_birth": {
                name: round(s * 1000 / self.births, 2) for name, s in self.cpu_s.items()
            },
            "births_exactly_once": self.exactly_once,
            "births_duplicates": list(self.duplicates[:10]),
            "births_missing": list(self.missing[:10]),
            "births_dead_letters": self.dead_letters,
            "births_unpublished_events": self.unpublished,
        }


def report(args: argparse.Namespace, result: dict[str, Any] | None = None) -> int:
    """Add the births (unless ``--births 0``) to ``result``, print it; 1 unless exactly once."""
    result = dict(result or {})
    if args.births:
        with tempfile.TemporaryDirectory(prefix="zhol-bench-births-") as tmp:
            root = args.data_dir / "births" if args.data_dir else Path(tmp)
            try:
                result.update(run(args, root))
            except (RuntimeError, TimeoutError, grpc.RpcError) as exc:
                print(f"births bench failed: {exc}", file=sys.stderr)
                return 1
    if "machine" not in result:
        from zhol.cli.bench import _machine  # bench.py imports this module

        result["machine"] = _machine()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0 if result.get("births_exactly_once", True) else 1


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Start a four-agency federation under ``root`` and measure ``args.births`` births."""
    if args.births < 1 or args.birth_concurrency < 1:
        raise ValueError("--births and --birth-concurrency must be at least 1")
    layout = Layout(root.resolve())
    with Supervisor(layout.logs) as supervisor:
        ports = start_federation(layout, "127.0.0.1", PERSONS, supervisor, ALL_AGENCIES)
        pids = {name: supervisor.pid(name) for name in supervisor.processes}
        result = asyncio.run(measure(layout, ports, pids, args.births, args.birth_concurrency))
        supervisor.check_alive()
    return result.as_json()


async def measure(
    layout: Layout, ports: Ports, pids: dict[str, int], births: int, concurrency: int
) -> BirthsResult:
    async with grpc.aio.insecure_channel(ports.adapter_address("population")) as channel:
        register = channel.unary_unary(
            REGISTER,
            request_serializer=pop.RegisterBirthRequest.SerializeToString,
            response_deserializer=pop.RegisterBirthResponse.FromString,
        )
        mothers, fathers = await parents(channel)
        decisions = Decisions(layout)
        # Warm-up: the gateways fetch their configuration, channels and sessions open.
        warm = await register(birth_request(mothers[0], fathers[0]), timeout=30)
        if not await decisions.wait([warm.child.iin], timeout=60):
            raise RuntimeError(f"the warm-up birth was not decided in 60 s; see {layout.logs}")
        await settle(layout)
        logged_before = count_log_records(layout)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        bench_cpu = time.process_time()  # registering and polling share the machine too
        children: list[str] = []
        started = time.perf_counter()
        await register_all(register, mothers, fathers, births, concurrency, children)
        await decisions.wait(children, timeout=max(60.0, births / 2))
        seconds = time.perf_counter() - started
        cpu_s = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu_s["bench"] = time.process_time() - bench_cpu
        await settle(layout)
        messages = count_log_records(layout) - logged_before
    counts = decisions.counts(children)
    return BirthsResult(
        births=births,
        seconds=seconds,
        messages=messages,
        duplicates=tuple(f"{c} {d} x{n}" for (c, d), n in sorted(counts.items()) if n > 1),
        missing=tuple(f"{c} {d}" for c in children for d in DECISIONS if not counts[(c, d)]),
        dead_letters=count_dead_letters(layout),
        unpublished=count_unpublished(layout),
        cpu_s=cpu_s,
    )


async def parents(channel: grpc.aio.Channel) -> tuple[list[str], list[str]]:
    """Living women aged 18-45 and men aged 18-60 from population (as the scenario picks)."""
    list_persons = channel.unary_unary(
        LIST_PERSONS,
        request_serializer=pop.ListPersonsRequest.SerializeToString,
        response_deserializer=pop.ListPersonsResponse.FromString,
    )
    today = today_in_kz(SystemClock())
    mothers: list[str] = []
    fathers: list[str] = []
    token = ""
    while True:
        page = await list_persons(pop.ListPersonsRequest(page_size=1000, page_token=token),
                                  timeout=30)  # fmt: skip
        for p in page.persons:
            age = _age(p.birth_date, today)
            if p.deceased:
                continue
            if p.sex == pop.SEX_FEMALE and 18 <= age <= 45:
                mothers.append(p.iin)
            elif p.sex == pop.SEX_MALE and 18 <= age <= 60:
                fathers.append(p.iin)
        token = page.next_page_token
        if not token:
            break
    if not mothers or not fathers:
        raise RuntimeError("population has no living parents aged 18-45 / 18-60")
    return mothers, fathers


def birth_request(mother: str, father: str) -> pop.RegisterBirthRequest:
    today = today_in_kz(SystemClock())
    return pop.RegisterBirthRequest(
        mother_iin=mother,
        father_iin=father,
        # Unique, so population never takes it for the same birth registered twice.
        first_name="Bench" + uuid.uuid4().hex[:8].capitalize(),
        last_name="Benchova",
        sex=pop.SEX_FEMALE,
        birth_date=pop.Date(year=today.year, month=today.month, day=today.day),
    )


async def register_all(
    register: Any,
    mothers: Sequence[str],
    fathers: Sequence[str],
    births: int,
    concurrency: int,
    children: list[str],
) -> None:
    """``births`` registrations, ``concurrency`` in flight; appends each child's IIN."""
    numbers = iter(range(births))

    async def worker() -> None:
        for n in numbers:
            request = birth_request(mothers[(n + 1) % len(mothers)], fathers[n % len(fathers)])
            answer = await register(request, timeout=30)
            children.append(answer.child.iin)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Decisions:
    """Reads the decisions straight from the three deciding agencies' databases."""

    def __init__(self, layout: Layout) -> None:
        self._dbs = {name: layout.adapter_db(name) for name in ("pension", "health", "education")}

    def counts(self, children: Sequence[str]) -> Counter[tuple[str, str]]:
        """(child, decision) -> how many times it was made."""
        counts: Counter[tuple[str, str]] = Counter()
        for chunk in _chunks(children, 500):
            marks = ",".join("?" * len(chunk))
            with _read_only(self._dbs["pension"]) as db:
                for child, kind, n in db.execute(
                    f"SELECT subject_iin, kind, count(*) FROM benefits WHERE subject_iin IN"
                    f" ({marks}) AND kind IN ('childbirth_lump_sum', 'child_care_allowance')"
                    " GROUP BY subject_iin, kind", chunk,
                ):  # fmt: skip
                    counts[(child, kind)] = n
            with _read_only(self._dbs["health"]) as db:
                for child, n in db.execute(
                    f"SELECT iin, count(*) FROM attachments WHERE iin IN ({marks})"
                    " AND reason = 'newborn' GROUP BY iin", chunk,
                ):  # fmt: skip
                    counts[(child, "clinic_attachment")] = n
            with _read_only(self._dbs["education"]) as db:
                for child, n in db.execute(
                    f"SELECT iin, count(*) FROM queue_entries WHERE iin IN ({marks})"
                    " AND reason = 'newborn' GROUP BY iin", chunk,
                ):  # fmt: skip
                    counts[(child, "queue_place")] = n
        return counts

    async def wait(self, children: Sequence[str], timeout: float) -> bool:
        """Poll until every child has every decision; False when ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        pending = list(children)
        while pending:
            counts = self.counts(pending)
            pending = [c for c in pending if not all(counts[(c, d)] for d in DECISIONS)]
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True


async def settle(layout: Layout, timeout: float = 30.0) -> None:
    """Wait until no event waits in an outbox and the message logs stopped growing."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = count_log_records(layout)
        if now == last and not count_pending(layout) and not count_unpublished(layout):
            return
        last = now
        await asyncio.sleep(SETTLE_S)


def _gateways() -> tuple[GatewaySpec, ...]:
    return gateways_of(ALL_AGENCIES)


def count_log_records(layout: Layout) -> int:
    """Message-log records on all four gateways."""
    total = 0
    for spec in _gateways():
        with _read_only(layout.gateway(spec.id) / "messagelog.db") as db:
            total += db.execute("SELECT count(*) FROM messages").fetchone()[0]
    return total


def _outbox_count(layout: Layout, state: str) -> int:
    total = 0
    for spec in _gateways():
        path = layout.gateway(spec.id) / "events.db"
        if path.exists():
            with _read_only(path) as db:
                total += db.execute(
                    "SELECT count(*) FROM outbox WHERE state = ?", (state,)
                ).fetchone()[0]
    return total


def count_pending(layout: Layout) -> int:
    return _outbox_count(layout, "pending")


def count_unpublished(layout: Layout) -> int:
    """Events the agencies enqueued that their publishers have not handed to a gateway."""
    total = 0
    for name in ALL_AGENCIES:
        with _read_only(layout.adapter_db(name)) as db:
            total += db.execute(
                "SELECT count(*) FROM bus_outbox WHERE published_at_ms IS NULL"
            ).fetchone()[0]
    return total


def count_dead_letters(layout: Layout) -> int:
    return _outbox_count(layout, "dead")


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        yield db
    finally:
        db.close()


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _age(born: pop.Date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
