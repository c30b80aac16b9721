"""``zhol adapter population seed|serve`` as commands: exit codes, port file, SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from zhol.adapters.population import cli
from zhol.population.v1 import population_pb2 as pb
from zhol.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# The population commands under a bare parser, as cli/main.py registers them.
ENTRY = (
    "import argparse, sys\n"
    "from zhol.adapters.population import cli\n"
    "parser = argparse.ArgumentParser(prog='zhol adapter')\n"
    "cli.add_parser(parser.add_subparsers(dest='adapter', required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zhol adapter")
    cli.add_parser(parser.add_subparsers(dest="adapter", required=True))
    return parser.parse_args(list(argv))


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
    port_file = tmp_path / "population.port"
    config = tmp_path / "population.toml"
    config.write_text('grace_seconds = 1.0\nlisten = "127.0.0.1:0"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHOL_POPULATION_")}
    process = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "population", "serve", "--db", str(db),
         "--port-file", str(port_file), "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.05)
        port = int(port_file.read_text())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            page = pb_grpc.PopulationRegistryStub(channel).ListPersons(
                pb.ListPersonsRequest(page_size=10), timeout=10
            )
        assert len(page.persons) == 10
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"127.0.0.1:{port}" in out
    assert not port_file.exists()
