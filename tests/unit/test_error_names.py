"""The catalogued code names as a type: mypy refuses a misspelt code before a caller
ever sees KeyError (core/errors.py is the one catalogue)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import get_args

import pytest
from mypy import api as mypy_api

from zhol.core.errors import CATALOGUE, ErrorName, ZholError

ROOT = Path(__file__).resolve().parents[2]


def test_the_literal_and_the_catalogue_name_the_same_codes() -> None:
    names = get_args(ErrorName)
    assert len(names) == len(set(names)), "a name is listed twice in ErrorName"
    catalogued = {code.name for code in CATALOGUE}
    only_in_literal, only_in_catalogue = set(names) - catalogued, catalogued - set(names)
    assert (only_in_literal, only_in_catalogue) == (set(), set())


def test_a_misspelt_code_still_fails_at_run_time() -> None:
    with pytest.raises(KeyError):
        ZholError("AccesDenied")  # type: ignore[arg-type]  # the misspelling under test


def test_mypy_refuses_a_misspelt_code_and_accepts_a_catalogued_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """\
            from zhol.core.errors import ZholError

            ok = ZholError("AccessDenied")
            wrong = ZholError("AccesDenied")
            """
        )
    )
    # From the worktree root, with its configuration: zhol resolves to this checkout.
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tmp_path / "mypy_cache"),
            str(snippet),
        ]
    )  # fmt: skip
    assert status == 1, stdout + stderr
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert errors[0].startswith(f"{snippet}:4:"), stdout
    assert "[arg-type]" in errors[0]
