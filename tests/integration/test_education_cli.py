"""``zhol adapter education seed|serve`` as commands: exit codes, port file, SIGTERM."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import parse_adapter, serve_adapter
from zhol.adapters.education import cli
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.education.v1 import education_pb2 as pb
from zhol.education.v1 import education_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration


def parse(*argv: str) -> argparse.Namespace:
    return parse_adapter(cli, *argv)


def test_seed_command_reads_population_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    population = tmp_path / "population.db"
    seed_population(population, 400, seed=4)
    db = tmp_path / "e.db"
    args = parse("education", "seed", "--db", str(db), "--population-db", str(population),
                 "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["districts"] >= 83 and report["queue_entries"] > 0 and report["enrolments"] > 0
    assert args.func(args) == 2
    assert "--replace" in capsys.readouterr().err
    again = parse("education", "seed", "--db", str(db), "--replace")
    assert again.func(again) == 0
    assert "0 queue entries" in capsys.readouterr().out
    missing = parse("education", "seed", "--db", str(tmp_path / "x.db"), "--population-db",
                    str(tmp_path / "none.db"))
    assert missing.func(missing) == 2


def test_serve_without_a_database_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("education", "serve", "--db", str(tmp_path / "missing.db"))
    assert args.func(args) == 2
    assert "seed" in capsys.readouterr().err
    bad = parse("education", "serve", "--db", str(tmp_path / "missing.db"), "--gateway", "nope")
    assert bad.func(bad) == 2


def test_serve_writes_the_port_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    seeded = parse("education", "seed", "--db", str(db))
    assert seeded.func(seeded) == 0
    with serve_adapter(cli, "education", db, tmp_path) as served:
        port = served.port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            found = pb_grpc.EducationRegistryStub(channel).ListSchools(
                pb.ListSchoolsRequest(region="Astana city"), timeout=10
            )
        assert len(found.schools) >= 10
        returncode, out, err = served.stop()
    assert returncode == 0, err
    assert f"127.0.0.1:{port}" in out
    assert not served.port_file.exists()
