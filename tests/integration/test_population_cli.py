"""``zhol adapter population seed|serve`` as commands: exit codes, port file, SIGTERM."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import parse_adapter, serve_adapter
from zhol.adapters.population import cli
from zhol.population.v1 import population_pb2 as pb
from zhol.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration


def parse(*argv: str) -> argparse.Namespace:
    return parse_adapter(cli, *argv)


def test_seed_command_reports_json_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "p.db"
    args = parse("population", "seed", "--db", str(db), "--count", "120", "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["persons"] == 120
    assert args.func(args) == 2
    assert "--replace" in capsys.readouterr().err
    again = parse("population", "seed", "--db", str(db), "--count", "60", "--replace")
    assert again.func(again) == 0
    assert "60 persons" in capsys.readouterr().out


def test_serve_without_a_database_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("population", "serve", "--db", str(tmp_path / "missing.db"))
    assert args.func(args) == 2
    assert "seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("population", "seed", "--db", str(tmp_path / "x.db"), "--count", "-1")


def test_serve_writes_the_port_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    seeded = parse("population", "seed", "--db", str(db), "--count", "50")
    assert seeded.func(seeded) == 0
    with serve_adapter(cli, "population", db, tmp_path) as served:
        port = served.port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            page = pb_grpc.PopulationRegistryStub(channel).ListPersons(
                pb.ListPersonsRequest(page_size=10), timeout=10
            )
        assert len(page.persons) == 10
        returncode, out, err = served.stop()
    assert returncode == 0, err
    assert f"127.0.0.1:{port}" in out
    assert not served.port_file.exists()
