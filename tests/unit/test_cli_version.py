"""`zhol --version` names the installed distribution's version, from pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from zhol.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_projects(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"zhol {project['version']}"
