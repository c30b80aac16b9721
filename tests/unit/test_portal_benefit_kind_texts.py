"""Every benefit kind the pension registry decides has its name, its feed line and the
feed's reason in the portal's three languages (a new kind is noticed here)."""

from __future__ import annotations

import pytest

from zhol.adapters.pension.model import BenefitKind
from zhol.portal.i18n import CATALOGUES, LANGUAGES


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_benefit_kind_has_its_texts(lang: str) -> None:
    keys = [f"{prefix}{kind.value}" for kind in BenefitKind
            for prefix in ("benefit_", "feed_benefit_", "feed_why_benefit_")]
    assert [key for key in keys if not CATALOGUES[lang].get(key)] == []
