"""Once-only, enforced on the schemas: only population holds a citizen's personal details.

Every other agency keeps the IIN and its own facts and reads identity, birth
date, sex and address from population over the bus when it needs them.
"""

from __future__ import annotations

import importlib
import sqlite3

import pytest

# Columns that would be a copy of what population owns.
PERSONAL = {
    "first_name", "last_name", "patronymic", "full_name", "birth_date", "date_of_birth",
    "sex", "gender", "citizenship", "address", "street", "building", "apartment",
    "locality",
}  # fmt: skip
# Where a citizen lives is personal too; an institution's own location is not, so
# these may appear only in tables that hold no citizen (no iin column).
LOCATION = {"region", "district", "name"}
OTHER_AGENCIES = ("pension", "health", "education")


def columns(agency: str) -> dict[str, set[str]]:
    schema = importlib.import_module(f"adapters.{agency}.schema")
    db = sqlite3.connect(":memory:")
    schema.ensure_schema(db)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables}


@pytest.mark.parametrize("agency", OTHER_AGENCIES)
def test_no_other_agency_stores_personal_details(agency: str) -> None:
    found = columns(agency)
    assert found, f"{agency} has no tables"
    for table, names in found.items():
        assert not names & PERSONAL, f"{agency}.{table} copies {names & PERSONAL}"
        citizen_keys = {n for n in names if n == "iin" or n.endswith("_iin")}
        if citizen_keys:
            assert not names & LOCATION, f"{agency}.{table} copies {names & LOCATION}"


def test_population_is_where_those_details_live() -> None:
    found = columns("population")
    everything = set().union(*found.values())
    assert {"first_name", "last_name", "birth_date", "sex", "street"} <= everything
