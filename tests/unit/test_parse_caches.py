"""Identifier and IIN parsing is memoised: valid values are reused, failures never are."""

from __future__ import annotations

import pytest

from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId, ServiceId, SubsystemId, parse_grpc_path
from zhol.core.iin import Iin

VALID_IIN = "900101301233"


def code_of(excinfo: pytest.ExceptionInfo[ZholError]) -> str:
    return excinfo.value.code.name


def test_valid_identifiers_are_parsed_once_and_reused() -> None:
    text = "KZ/GOV/MJ/population"
    first = SubsystemId.parse(text)
    assert first == SubsystemId(MemberId("KZ", "GOV", "MJ"), "population")
    assert SubsystemId.parse(text) is first
    assert MemberId.parse("KZ/GOV/MJ") is MemberId.parse("KZ/GOV/MJ")
    assert GatewayId.parse("KZ/GOV/MJ/gw1") is GatewayId.parse("KZ/GOV/MJ/gw1")
    service = ServiceId.of(first, "zhol.population.v1.PopulationRegistry", "GetPerson")
    assert ServiceId.of(first, "zhol.population.v1.PopulationRegistry", "GetPerson") is service
    assert parse_grpc_path("/a.B/C") == ("a.B", "C")


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (SubsystemId.parse, "KZ/GOV/MJ"),
        (SubsystemId.parse, "KZ/XXX/MJ/population"),
        (SubsystemId.parse, "KZ/GOV/MJ/population\n"),
        (MemberId.parse, "KZ/GOV/MJ/extra"),
        (GatewayId.parse, "KZ/GOV//gw1"),
        (parse_grpc_path, "a.B/C"),
        (Iin.parse, "900101301234"),  # wrong check digit
        (Iin.parse, "90010130012"),
    ],
)
def test_invalid_input_fails_every_time(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):  # a failure is not remembered as a value
        with pytest.raises(ZholError) as excinfo:
            parse(text)
        assert code_of(excinfo) == "InvalidIdentifier"


def test_invalid_method_of_a_valid_subsystem_fails_every_time() -> None:
    subsystem = SubsystemId.parse("KZ/GOV/MJ/population")
    for _ in range(2):
        with pytest.raises(ZholError) as excinfo:
            ServiceId.of(subsystem, "zhol.population.v1.PopulationRegistry", "Get-Person")
        assert code_of(excinfo) == "InvalidIdentifier"


def test_iin_is_reused_and_keeps_its_meaning() -> None:
    iin = Iin.parse(VALID_IIN)
    assert Iin.parse(VALID_IIN) is iin
    assert iin.value == VALID_IIN and str(iin) == VALID_IIN
    assert iin.birth_date.isoformat() == "1990-01-01"
