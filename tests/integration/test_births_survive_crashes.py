"""A run of births while a subscriber's gateway and an adapter crash and come back.

Real processes (the demo federation): the pension gateway and the health adapter
are killed with SIGKILL halfway through and restarted. In the end every newborn
has exactly one childbirth benefit, one child-care allowance, one clinic
attachment and one kindergarten queue place: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import grpc

from zhol.cli.demo import start_federation
from zhol.cli.federation import ALL_AGENCIES, Layout
from zhol.cli.processes import Supervisor
from zhol.population.v1 import population_pb2 as pop

BIRTHS = 12


def mothers(layout: Layout, count: int) -> list[str]:
    uri = f"{layout.population_db.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(
            "SELECT iin FROM persons WHERE sex = 'F' AND death_date IS NULL"
            " AND birth_date BETWEEN '1985-01-01' AND '2004-01-01' ORDER BY iin LIMIT ?",
            (count,),
        ).fetchall()
    assert len(rows) == count, "the seed has too few mothers"
    return [r[0] for r in rows]


def count(db_path: Path, sql: str, children: list[str]) -> dict[str, int]:
    uri = f"{db_path.resolve().as_uri()}?mode=ro"
    marks = ",".join("?" * len(children))
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return dict(db.execute(sql.format(marks=marks), children).fetchall())


def decisions(layout: Layout, children: list[str]) -> dict[str, dict[str, int]]:
    return {
        "lump_sum": count(
            layout.adapter_db("pension"),
            "SELECT subject_iin, COUNT(*) FROM benefits WHERE kind = 'childbirth_lump_sum'"
            " AND subject_iin IN ({marks}) GROUP BY subject_iin",
            children,
        ),
        "allowance": count(
            layout.adapter_db("pension"),
            "SELECT subject_iin, COUNT(*) FROM benefits WHERE kind = 'child_care_allowance'"
            " AND subject_iin IN ({marks}) GROUP BY subject_iin",
            children,
        ),
        "clinic": count(
            layout.adapter_db("health"),
            "SELECT iin, COUNT(*) FROM attachments WHERE reason = 'newborn'"
            " AND iin IN ({marks}) GROUP BY iin",
            children,
        ),
        "queue": count(
            layout.adapter_db("education"),
            "SELECT iin, COUNT(*) FROM queue_entries WHERE reason = 'newborn'"
            " AND iin IN ({marks}) GROUP BY iin",
            children,
        ),
    }


async def register_births(address: str, mother_iins: list[str], tag: str) -> list[str]:
    children = []
    async with grpc.aio.insecure_channel(address) as channel:
        register = channel.unary_unary(
            "/zhol.population.v1.PopulationRegistry/RegisterBirth",
            request_serializer=pop.RegisterBirthRequest.SerializeToString,
            response_deserializer=pop.RegisterBirthResponse.FromString,
        )
        for n, mother in enumerate(mother_iins):
            answer = await register(
                pop.RegisterBirthRequest(
                    mother_iin=mother,
                    last_name="Test",
                    first_name=f"Child{tag}{n}",
                    sex=pop.SEX_FEMALE if n % 2 else pop.SEX_MALE,
                    birth_date=pop.Date(year=2026, month=11, day=1 + n % 20),
                ),
                timeout=10,
            )
            children.append(answer.child.iin)
    return children


def test_every_decision_exactly_once_across_crashes(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with Supervisor(layout.logs) as supervisor:
        ports = start_federation(layout, "127.0.0.1", 1500, supervisor, ALL_AGENCIES)
        population = ports.adapter_address("population")
        mother_iins = mothers(layout, BIRTHS)
        half = BIRTHS // 2
        children = asyncio.run(register_births(population, mother_iins[:half], "a"))
        supervisor.kill("mlspp-gw1")
        supervisor.kill("health")
        children += asyncio.run(register_births(population, mother_iins[half:], "b"))
        time.sleep(1.0)  # the publishers retry into the gap
        supervisor.restart("mlspp-gw1")
        supervisor.restart("health")
        deadline = time.monotonic() + 60
        expected = {child: 1 for child in children}
        while time.monotonic() < deadline:
            found = decisions(layout, children)
            if all(per_child == expected for per_child in found.values()):
                break
            time.sleep(0.5)
        found = decisions(layout, children)
        for kind, per_child in found.items():
            assert per_child == expected, f"{kind}: {per_child}"
