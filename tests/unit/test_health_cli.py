"""``zhol adapter health seed|serve`` argument handling and exit codes (no sockets)."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import pytest

from zhol.adapters.health import cli
from zhol.adapters.health.server import HealthSettings, load_health_settings
from zhol.adapters.population.seed import seed_database as seed_population


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zhol adapter")
    cli.add_parser(parser.add_subparsers(dest="adapter", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_seed_with_a_population_reports_json(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    population = tmp_path / "population.db"
    seed_population(population, 120, seed=4)
    db = tmp_path / "health.db"
    assert run("health", "seed", "--db", str(db), "--population-db", str(population),
               "--json") == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["db"] == str(db) and report["clinics"] > 0 and report["attachments"] > 0
    assert report["unplaced"] == 0
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM attachments").fetchone()[0] == (
            report["attachments"]
        )
    finally:
        conn.close()
    # an existing file is kept unless --replace
    assert run("health", "seed", "--db", str(db)) == cli.EXIT_USAGE
    assert run("health", "seed", "--db", str(db), "--replace") == cli.EXIT_OK
    assert "clinics" in capsys.readouterr().out


def test_seed_and_serve_refuse_missing_files(tmp_path: Path) -> None:
    db = tmp_path / "health.db"
    missing = tmp_path / "nothing.db"
    assert run("health", "seed", "--db", str(db), "--population-db", str(missing)) == (
        cli.EXIT_USAGE
    )
    assert not db.exists()
    assert run("health", "serve", "--db", str(missing)) == cli.EXIT_USAGE
    assert run("health", "serve", "--db", str(db), "--config", str(missing)) == cli.EXIT_USAGE
    assert run("health", "serve", "--db", str(db), "--gateway", "nowhere") == cli.EXIT_USAGE
    assert run("health", "serve") == cli.EXIT_USAGE


def test_settings_from_environment(tmp_path: Path) -> None:
    settings = load_health_settings(
        None,
        environ={"ZHOL_HEALTH_DB_PATH": str(tmp_path / "h.db"),
                 "ZHOL_HEALTH_GATEWAY_ADDRESS": "127.0.0.1:7003"},
    )
    assert settings == HealthSettings(db_path=tmp_path / "h.db", gateway_address="127.0.0.1:7003")
    assert settings.subsystem == "KZ/GOV/MOH/health"
    with pytest.raises(ValueError):
        HealthSettings(db_path=tmp_path / "h.db", listen="nowhere")
    with pytest.raises(ValueError):
        HealthSettings(db_path=tmp_path / "h.db", bus_timeout=0)
