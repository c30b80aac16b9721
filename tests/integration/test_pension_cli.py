"""``zhol adapter pension seed|serve`` as commands: reports, exit codes, settings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.adapter_helpers import parse_adapter
from zhol.adapters.pension import cli
from zhol.adapters.pension.server import load_pension_settings
from zhol.adapters.population.seed import seed_database as seed_population

pytestmark = pytest.mark.integration


def parse(*argv: str) -> argparse.Namespace:
    return parse_adapter(cli, *argv)


def test_seed_command_reports_json_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    population = tmp_path / "population.db"
    seed_population(population, 80, seed=4)
    db = tmp_path / "pension.db"
    argv = ("pension", "seed", "--db", str(db), "--population-db", str(population),
            "--as-of", "2026-06-15")
    args = parse(*argv, "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["persons_read"] == 80 and report["as_of"] == "2026-06-15"
    assert args.func(args) == 2
    assert "--replace" in capsys.readouterr().err
    again = parse(*argv, "--replace")
    assert again.func(again) == 0
    assert "80 persons" in capsys.readouterr().out
    missing = parse("pension", "seed", "--db", str(tmp_path / "x.db"), "--population-db",
                    str(tmp_path / "none.db"))
    assert missing.func(missing) == 2
    with pytest.raises(SystemExit):
        parse(*argv[:-1], "15.06.2026")


def test_serve_without_a_database_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("pension", "serve", "--db", str(tmp_path / "missing.db"))
    assert args.func(args) == 2
    assert "seed" in capsys.readouterr().err
    bad = parse("pension", "serve", "--db", str(tmp_path / "missing.db"), "--gateway", "nope")
    assert bad.func(bad) == 2


def test_settings_from_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "pension.toml"
    config.write_text('db_path = "p.db"\ngateway_address = "127.0.0.1:7001"\n')
    settings = load_pension_settings(
        config, environ={"ZHOL_PENSION_BUS_TIMEOUT": "2.5", "ZHOL_PENSION_PUBLISH_EVENTS": "no"}
    )
    assert settings.gateway_address == "127.0.0.1:7001"
    assert settings.subsystem == "KZ/GOV/MLSPP/pension"
    assert settings.bus_timeout == 2.5 and settings.publish_events is False
    with pytest.raises(ValueError):
        load_pension_settings(config, environ={"ZHOL_PENSION_LISTEN": "nowhere"})
