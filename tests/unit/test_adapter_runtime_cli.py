"""adapters.runtime.cli: the ``zhol adapter AGENCY seed|serve`` parts every adapter
shares: arguments, the checks before seeding, settings for serving, exit codes (no
sockets: ``run`` is the test's own function)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from zhol.adapters.runtime import cli as runtime_cli
from zhol.adapters.runtime import server as runtime
from zhol.core.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

AGENCY = "testagency"


@dataclass(frozen=True, slots=True)
class AgencySettings(runtime.AdapterSettings):
    subsystem: str = "KZ/GOV/TEST/agency"


@dataclass(frozen=True, slots=True)
class Report:
    things: int
    seconds: float


class Agency:
    """An adapter's cli.py in small: records what its seed and run were called with."""

    def __init__(self, run_result: int | BaseException = EXIT_OK) -> None:
        self.run_result = run_result
        self.served: list[AgencySettings] = []
        self.seeded: list[tuple[Path, bool]] = []  # (db, did the db exist when seeding)

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="zhol adapter")
        commands = runtime_cli.add_agency_parser(
            parser.add_subparsers(dest="adapter", required=True), AGENCY,
            help="a test agency", description="A test agency's adapter.",
        )
        runtime_cli.add_seed_parser(
            commands, self.seed_command, help="create a test database",
            options=lambda seed: seed.add_argument("--population-db", type=Path),
        )
        runtime_cli.add_serve_parser(
            commands, AGENCY, help="serve", gateway_help="our gateway",
            load=runtime.settings_loader(AgencySettings, "ZHOL_TESTAGENCY_"), run=self.run,
            seed_usage="--db PATH --population-db PATH",
        )
        return parser

    def __call__(self, *argv: str) -> int:
        args = self.parser().parse_args(list(argv))
        return int(args.func(args))

    def run(self, settings: AgencySettings) -> int:
        self.served.append(settings)
        if isinstance(self.run_result, BaseException):
            raise self.run_result
        return self.run_result

    def seed_command(self, args: argparse.Namespace) -> int:
        def seed(progress: runtime_cli.Progress | None) -> Report:
            assert progress is None, "no progress lines when stderr is not a terminal"
            self.seeded.append((args.db, args.db.exists()))
            args.db.write_bytes(b"seeded")
            return Report(things=3, seconds=0.25)

        return runtime_cli.seed_command(
            args, population=args.population_db, seed=seed,
            summary=lambda db, report: f"seeded {db}: {report.things} things",
            json_extra={"as_of": "2026-06-15"},
        )


# -- arguments ---------------------------------------------------------------------------

def test_a_command_is_required_and_the_flags_parse() -> None:
    parser = Agency().parser()
    with pytest.raises(SystemExit):
        parser.parse_args([AGENCY])
    args = parser.parse_args([AGENCY, "serve", "--db", "a.db", "--listen", "127.0.0.1:7",
                              "--port-file", "p", "--gateway", "127.0.0.1:8",
                              "--config", "c.toml"])
    assert (args.db, args.listen, args.port_file, args.gateway, args.config) == (
        Path("a.db"), "127.0.0.1:7", Path("p"), "127.0.0.1:8", Path("c.toml"))
    assert getattr(args, f"{AGENCY}_command") == "serve"
    seed = parser.parse_args([AGENCY, "seed", "--db", "a.db"])
    assert (seed.seed, seed.replace, seed.json, seed.population_db) == (1, False, False, None)
    with pytest.raises(SystemExit):
        parser.parse_args([AGENCY, "seed"])  # --db is required


def test_seed_options_stand_between_db_and_the_common_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        Agency().parser().parse_args([AGENCY, "seed", "--help"])
    usage = capsys.readouterr().out
    order = [usage.index(flag) for flag in ("--db", "--population-db", "--seed", "--replace",
                                            "--json")]
    assert order == sorted(order)


def test_serve_help_names_the_agencys_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        Agency().parser().parse_args([AGENCY, "serve", "--help"])
    assert "ZHOL_TESTAGENCY_*" in capsys.readouterr().out


# -- seed --------------------------------------------------------------------------------

def test_seed_prints_one_line_or_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agency = Agency()
    db = tmp_path / "a.db"
    assert agency(AGENCY, "seed", "--db", str(db)) == EXIT_OK
    assert capsys.readouterr().out == f"seeded {db}: 3 things\n"
    other = tmp_path / "b.db"
    assert agency(AGENCY, "seed", "--db", str(other), "--json") == EXIT_OK
    out = capsys.readouterr().out
    assert json.loads(out) == {"db": str(other), "as_of": "2026-06-15", "things": 3,
                               "seconds": 0.25}
    assert list(json.loads(out)) == ["db", "as_of", "things", "seconds"]


def test_seed_refusals_are_usage_errors_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agency = Agency()
    assert agency(AGENCY, "seed", "--db", str(tmp_path)) == EXIT_USAGE
    assert "is a directory" in capsys.readouterr().err
    db = tmp_path / "a.db"
    missing = tmp_path / "population.db"
    assert agency(AGENCY, "seed", "--db", str(db), "--population-db", str(missing)) == (
        EXIT_USAGE
    )
    assert "no population database" in capsys.readouterr().err
    assert not db.exists()
    db.write_bytes(b"precious")
    assert agency(AGENCY, "seed", "--db", str(db)) == EXIT_USAGE
    assert "--replace" in capsys.readouterr().err
    assert db.read_bytes() == b"precious"
    assert agency.seeded == []


def test_replace_removes_the_database_and_its_wal_files_first(tmp_path: Path) -> None:
    agency = Agency()
    db = tmp_path / "a.db"
    companions = [db, tmp_path / "a.db-wal", tmp_path / "a.db-shm"]
    for path in companions:
        path.write_bytes(b"old")
    population = tmp_path / "population.db"
    population.write_bytes(b"")
    assert agency(AGENCY, "seed", "--db", str(db), "--population-db", str(population),
                  "--replace") == EXIT_OK
    assert agency.seeded == [(db, False)], "the old file was gone before seeding"
    assert db.read_bytes() == b"seeded"
    assert not any(path.exists() for path in companions[1:])


# -- serve -------------------------------------------------------------------------------

def test_serve_runs_with_flags_over_the_environment_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "a.db"
    db.write_bytes(b"")
    config = tmp_path / "agency.toml"
    config.write_text('listen = "127.0.0.1:7000"\ngrace_seconds = 3.0\n')
    monkeypatch.setenv("ZHOL_TESTAGENCY_GRACE_SECONDS", "0.5")
    monkeypatch.setenv("ZHOL_TESTAGENCY_LISTEN", "127.0.0.1:7001")
    agency = Agency(run_result=7)
    assert agency(AGENCY, "serve", "--db", str(db), "--config", str(config),
                  "--listen", "127.0.0.1:7002", "--gateway", "127.0.0.1:8000") == 7
    assert agency.served == [AgencySettings(
        db_path=db, listen="127.0.0.1:7002", grace_seconds=0.5,
        gateway_address="127.0.0.1:8000",
    )]


def test_serve_tls_flags_become_settings(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    db.write_bytes(b"")
    agency = Agency()
    assert agency(AGENCY, "serve", "--db", str(db), "--tls-cert", "is.pem", "--tls-key", "is.key",
                  "--tls-client-ca", "gw.pem") == EXIT_OK  # fmt: skip
    (settings,) = agency.served
    assert (settings.tls_cert, settings.tls_key, settings.tls_client_ca) == (
        Path("is.pem"), Path("is.key"), Path("gw.pem")
    )
    assert settings.tls_mode == "mtls"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--config", "missing.toml"], "error: no settings file"),
        (["--tls-key", "is.key"], "error: bad testagency settings: tls_cert and tls_key"),
        (["--gateway", "nowhere"], "error: bad testagency settings: gateway_address"),
        (["--listen", "nowhere"], "error: bad testagency settings: listen"),
    ],
)
def test_bad_configuration_is_a_usage_error_and_nothing_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.db").write_bytes(b"")
    agency = Agency()
    assert agency(AGENCY, "serve", "--db", "a.db", *extra) == EXIT_USAGE
    assert capsys.readouterr().err.startswith(message)
    assert agency.served == []


def test_serve_without_a_database_says_how_to_seed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agency = Agency()
    missing = tmp_path / "missing.db"
    assert agency(AGENCY, "serve", "--db", str(missing)) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"error: no database at {missing} (create it with: zhol adapter testagency seed"
        " --db PATH --population-db PATH)\n"
    )
    assert agency(AGENCY, "serve") == EXIT_USAGE, "db_path is a required setting"
    assert agency.served == []


@pytest.mark.parametrize("error", [OSError("cannot listen on 127.0.0.1:1"),
                                   RuntimeError("Failed to bind to address 127.0.0.1:1")])
def test_a_server_that_cannot_start_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    db = tmp_path / "a.db"
    db.write_bytes(b"")
    assert Agency(run_result=error)(AGENCY, "serve", "--db", str(db)) == EXIT_FAILED
    assert capsys.readouterr().err == f"error: cannot serve: {error}\n"


def test_seed_with_population_passes_the_files_and_the_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Path, Path | None, int]] = []

    def seed_database(path: Path, population_db: Path | None, seed: int, *,
                      progress: runtime_cli.Progress | None = None) -> Report:
        calls.append((path, population_db, seed))
        return Report(things=1, seconds=0.0)

    command = runtime_cli.seed_with_population(
        seed_database, lambda db, report: f"seeded {db}: {report.things}"
    )
    db = tmp_path / "a.db"
    population = tmp_path / "population.db"
    population.write_bytes(b"")
    args = argparse.Namespace(db=db, population_db=population, seed=9, replace=False,
                              json=False)
    assert command(args) == EXIT_OK
    assert capsys.readouterr().out == f"seeded {db}: 1\n"
    missing = argparse.Namespace(db=db, population_db=tmp_path / "none.db", seed=9,
                                 replace=False, json=False)
    assert command(missing) == EXIT_USAGE
    assert calls == [(db, population, 9)]
