"""core.iin: parsing, check digits and building IINs (DOMAIN.md: the citizen's key)."""

from __future__ import annotations

import datetime as dt

import pytest

from zhol.core.errors import ZholError
from zhol.core.iin import Iin, check_digit, make_iin


def _reference_check_digit(first_eleven: str) -> int | None:
    """The rule written out independently: weights 1..11, then 3..11,1,2, mod 11."""
    digits = [int(c) for c in first_eleven]
    total = sum(d * w for d, w in zip(digits, range(1, 12), strict=True)) % 11
    if total == 10:
        weights = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
        total = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if total == 10:
            return None
    return total


def _invalid(text: str) -> ZholError:
    with pytest.raises(ZholError) as caught:
        Iin.parse(text)
    assert caught.value.code.name == "InvalidIdentifier"
    return caught.value


@pytest.mark.parametrize(
    ("text", "birth_date", "female"),
    [
        ("850304300178", dt.date(1985, 3, 4), False),  # 8+10+12+24+21+10+77 = 162 = 8 mod 11
        ("040917600011", dt.date(2004, 9, 17), True),
        ("991231100427", dt.date(1899, 12, 31), False),
        ("850304301808", dt.date(1985, 3, 4), False),  # needs the second weights
    ],
)
def test_valid_iins_parse_with_birth_date_and_sex(
    text: str, birth_date: dt.date, female: bool
) -> None:
    iin = Iin.parse(text)
    assert iin.value == text
    assert str(iin) == text
    assert iin.birth_date == birth_date
    assert iin.is_female is female


def test_check_digit_uses_the_second_weights_when_the_first_sum_gives_ten() -> None:
    first = "85030430180"
    assert sum(int(c) * w for c, w in zip(first, range(1, 12), strict=True)) % 11 == 10
    assert check_digit(first) == 8
    assert Iin.parse(first + "8").value == "850304301808"
    _invalid(first + "0")


def test_wrong_check_digit_is_rejected() -> None:
    _invalid("850304300179")
    _invalid("850304300170")


def test_unissuable_numbers_are_rejected_whatever_the_last_digit() -> None:
    first = "85030430181"  # both weightings give 10
    assert check_digit(first) is None
    assert make_iin(dt.date(1985, 3, 4), False, 181) is None
    for last in "0123456789":
        _invalid(first + last)


@pytest.mark.parametrize("digit", ["0", "7", "8", "9"])
def test_bad_century_and_sex_digit_is_rejected(digit: str) -> None:
    first = "850304" + digit + "0017"
    _invalid(first + str(_reference_check_digit(first) or 0))


@pytest.mark.parametrize("date_part", ["850230", "851301", "850000", "000229"])
def test_impossible_birth_date_is_rejected(date_part: str) -> None:
    # 1900 was not a leap year, so 29 February 1900 (digit 3) does not exist.
    first = date_part + "30017"
    _invalid(first + str(_reference_check_digit(first) or 0))


def test_leap_day_of_a_leap_year_is_accepted() -> None:
    iin = make_iin(dt.date(2000, 2, 29), True, 5)
    assert iin is not None
    assert Iin.parse(iin.value).birth_date == dt.date(2000, 2, 29)


@pytest.mark.parametrize(
    "text", ["85030430017a", "8503043001 8", "+85030430017", "８５０３０４３００１７８", "", " "]
)
def test_non_digits_are_rejected(text: str) -> None:
    _invalid(text)


@pytest.mark.parametrize("text", ["85030430017", "8503043001780", "8", "0" * 20])
def test_wrong_length_is_rejected(text: str) -> None:
    _invalid(text)


def test_make_iin_agrees_with_the_rule_and_round_trips() -> None:
    for year, month, day in ((1940, 1, 1), (1999, 12, 31), (2000, 1, 1), (2024, 6, 15)):
        date = dt.date(year, month, day)
        for female in (False, True):
            for serial in range(0, 200, 7):
                iin = make_iin(date, female, serial)
                prefix = date.strftime("%y%m%d")
                assert (iin is None) == (_reference_check_digit(
                    f"{prefix}{(year // 100 - 18) * 2 + 1 + female}{serial:04d}") is None)
                if iin is not None:
                    parsed = Iin.parse(iin.value)
                    assert parsed.birth_date == date
                    assert parsed.is_female is female
                    assert int(iin.value[7:11]) == serial
