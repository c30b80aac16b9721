"""The Kazakh individual identification number (DOMAIN.md: the citizen's key).

12 digits: YYMMDD birth date, a century-and-sex digit (1..6), a 4-digit serial and a
mod-11 check digit (weights 1..11, or 3..11,1,2 when the first sum gives 10).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from zhol.core.errors import ZholError

_WEIGHTS_1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_WEIGHTS_2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_CENTURY = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}


def check_digit(first_eleven: str) -> int | None:
    """The check digit for 11 digits, or None when the number cannot be issued."""
    digits = [ord(c) - 48 for c in first_eleven]
    total = sum(d * w for d, w in zip(digits, _WEIGHTS_1, strict=True)) % 11
    if total == 10:
        total = sum(d * w for d, w in zip(digits, _WEIGHTS_2, strict=True)) % 11
        if total == 10:
            return None
    return total


@dataclass(frozen=True, slots=True, order=True)
class Iin:
    value: str

    @classmethod
    def parse(cls, text: str) -> Iin:
        return _parse_iin(text)

    @property
    def birth_date(self) -> dt.date:
        century = _CENTURY[int(self.value[6])]
        v = self.value
        return dt.date(century + int(v[0:2]), int(v[2:4]), int(v[4:6]))

    @property
    def is_female(self) -> bool:
        return int(self.value[6]) % 2 == 0

    def __str__(self) -> str:
        return self.value


# Every message about a citizen carries an IIN: valid ones are memoised (failures are not).
@lru_cache(maxsize=8192)
def _parse_iin(text: str) -> Iin:
    if len(text) != 12 or not text.isascii() or not text.isdigit():
        raise ZholError("InvalidIdentifier", "an IIN is exactly 12 digits")
    century_sex = ord(text[6]) - 48
    if century_sex not in _CENTURY:
        raise ZholError("InvalidIdentifier", "IIN digit 7 (century and sex) must be 1..6")
    try:
        dt.date(_CENTURY[century_sex] + int(text[0:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise ZholError("InvalidIdentifier", "IIN does not start with a valid date") from None
    if check_digit(text[:11]) != ord(text[11]) - 48:
        raise ZholError("InvalidIdentifier", "IIN check digit is wrong") from None
    return Iin(text)


def make_iin(birth_date: dt.date, female: bool, serial: int) -> Iin | None:
    """Build a valid IIN, or None when this serial gives no issuable check digit."""
    base = (birth_date.year // 100 - 18) * 2 + 1 + (1 if female else 0)
    first = f"{birth_date:%y%m%d}{base}{serial:04d}"
    digit = check_digit(first)
    return None if digit is None else Iin(first + str(digit))
