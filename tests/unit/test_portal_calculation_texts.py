"""Every calculation item name the pension registry emits has a label in the portal's
three languages, and the calculation table shows the label (an unknown name raw, in
English)."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

import zhol.adapters.pension as pension_package
import zhol.portal as portal_package
from zhol.portal.i18n import CATALOGUES, LANGUAGES, text


def emitted_names() -> set[str]:
    """The names of every ``CalcItem(...)`` built in the pension adapter's code, read
    from the source so that a new item is noticed without a sample input reaching it.
    Only a literal name can be checked: a computed one fails here."""
    names: set[str] = set()
    for path in sorted(Path(pension_package.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "CalcItem"):  # fmt: skip
                continue
            first = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "name"), None)
            )
            if isinstance(first, ast.Starred):  # rebuilding stored rows (model.py)
                continue
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{path.name}:{node.lineno}: a CalcItem name the portal cannot translate"
            )
            names.add(first.value)
    return names


def test_the_scan_finds_the_calculations_items() -> None:
    assert {"base_share", "mci", "birth_order", "retirement_age", "carer_share"} <= (
        emitted_names()
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_emitted_item_name_has_a_label(lang: str) -> None:
    missing = sorted(n for n in emitted_names() if not CATALOGUES[lang].get(f"calc_{n}"))
    assert missing == []


def render_row(lang: str, name: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(portal_package.__file__).parent / "templates"),
        autoescape=True,
    )
    item = SimpleNamespace(name=name, value="0.54", unit="share", note="rule table BASE")
    return env.get_template("calculation_item.html").render(
        item=item, t=lambda key: text(lang, key)
    )


def test_the_row_shows_the_label_and_the_owners_note_in_english() -> None:
    row = render_row("ru", "base_share")
    assert f'<th scope="row">{CATALOGUES["ru"]["calc_base_share"]}</th>' in row
    assert "base_share" not in row and '<td lang="en">rule table BASE</td>' in row


def test_an_unknown_name_is_shown_raw_and_marked_english() -> None:
    assert '<th scope="row" lang="en">new_coefficient</th>' in render_row("kk", "new_coefficient")
