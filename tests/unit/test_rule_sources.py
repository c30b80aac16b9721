"""No rule table lacks a source: every public rule of the agencies' rule modules names
its source, in its rows, in its own ``source`` or in its module's ``RULE_SOURCES``
(issue 14). A rule added without one fails here."""

from __future__ import annotations

import datetime as dt
import types
from typing import TypeVar

import pytest

from zhol.adapters.education import rules as education_rules
from zhol.adapters.health import rules as health_rules
from zhol.adapters.pension import childcare, employer_contribution, solidarity
from zhol.adapters.pension import rules as pension_rules

RULE_MODULES = (pension_rules, solidarity, childcare, employer_contribution, health_rules,
                education_rules)


def public_rules(module: types.ModuleType) -> dict[str, object]:
    """The module's upper-case names that hold a rule: not text (a source, a code), a
    date (a rule's start), a flag or a type."""
    return {
        name: value for name, value in vars(module).items()
        if name.isupper() and not name.startswith("_") and name != "RULE_SOURCES"
        and not isinstance(value, (str, dt.date, bool, type, TypeVar))
    }


def missing_sources(module: types.ModuleType) -> list[str]:
    declared: dict[str, str] = getattr(module, "RULE_SOURCES", {})
    missing = []
    for name, value in public_rules(module).items():
        rows = getattr(value, "rows", None)
        if rows is not None:  # a dated or yearly table: each row its own source
            missing += [f"{name} row {i}" for i, row in enumerate(rows) if not row.source.strip()]
        elif isinstance(getattr(value, "source", None), str):
            if not value.source.strip():  # type: ignore[attr-defined]
                missing.append(name)
        elif isinstance(value, dict) and value and all(
            isinstance(getattr(v, "source", None), str) for v in value.values()
        ):
            missing += [f"{name}[{k}]" for k, v in value.items() if not v.source.strip()]
        elif not declared.get(name, "").strip():
            missing.append(name)
    return missing


@pytest.mark.parametrize("module", RULE_MODULES, ids=lambda m: m.__name__)
def test_no_rule_table_lacks_a_source(module: types.ModuleType) -> None:
    assert missing_sources(module) == []


@pytest.mark.parametrize("module", RULE_MODULES, ids=lambda m: m.__name__)
def test_every_declared_source_names_a_rule_of_its_module(module: types.ModuleType) -> None:
    declared = getattr(module, "RULE_SOURCES", {})
    assert set(declared) <= set(public_rules(module))


def test_a_rule_without_a_source_is_found() -> None:
    module = types.ModuleType("zhol.adapters.example.rules")
    module.SOME_LIMIT = 7  # type: ignore[attr-defined]
    module.SOURCE_TEXT = "not a rule"  # type: ignore[attr-defined]
    assert missing_sources(module) == ["SOME_LIMIT"]
    module.RULE_SOURCES = {"SOME_LIMIT": "system choice"}  # type: ignore[attr-defined]
    assert missing_sources(module) == []
