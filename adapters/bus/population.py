"""Typed reads of the population registry (KZ/GOV/MJ/population) through the bus.

Other agencies keep only IINs and their own facts (once-only); whenever they need a
citizen's name, birth date, sex, address or family they ask here, with a purpose that
the gateways log and the citizen can see. Each point read names the citizen as the
data subject. Failures are ``BusCallError``: an unknown IIN is NOT_FOUND with
``zhol_error`` None (the registry itself answered).
"""

from __future__ import annotations

from adapters.bus.client import BusClient
from zhol.population.v1 import population_pb2

SERVICE = "/zhol.population.v1.PopulationRegistry"
GET_PERSON = f"{SERVICE}/GetPerson"
GET_ADDRESS = f"{SERVICE}/GetAddress"
GET_FAMILY = f"{SERVICE}/GetFamily"
LIST_PERSONS = f"{SERVICE}/ListPersons"

# Topics the registry publishes (the event message's full name).
BIRTH_REGISTERED = population_pb2.BirthRegistered.DESCRIPTOR.full_name
DEATH_REGISTERED = population_pb2.DeathRegistered.DESCRIPTOR.full_name
ADDRESS_CHANGED = population_pb2.AddressChanged.DESCRIPTOR.full_name


class PopulationReader:
    def __init__(self, bus: BusClient, *, timeout: float = 5.0) -> None:
        self._bus = bus
        self._timeout = timeout

    async def get_person(self, iin: str, *, purpose: str) -> population_pb2.Person:
        return await self._bus.call(
            GET_PERSON, population_pb2.GetPersonRequest(iin=iin), population_pb2.Person,
            purpose=purpose, data_subject=iin, timeout=self._timeout,
        )

    async def get_address(self, iin: str, *, purpose: str) -> population_pb2.Address:
        return await self._bus.call(
            GET_ADDRESS, population_pb2.GetAddressRequest(iin=iin), population_pb2.Address,
            purpose=purpose, data_subject=iin, timeout=self._timeout,
        )

    async def get_family(self, iin: str, *, purpose: str) -> population_pb2.Family:
        return await self._bus.call(
            GET_FAMILY, population_pb2.GetFamilyRequest(iin=iin), population_pb2.Family,
            purpose=purpose, data_subject=iin, timeout=self._timeout,
        )

    async def list_persons(
        self, page_size: int, page_token: str, *, purpose: str
    ) -> population_pb2.ListPersonsResponse:
        """One page of persons in IIN order (no single data subject)."""
        return await self._bus.call(
            LIST_PERSONS,
            population_pb2.ListPersonsRequest(page_size=page_size, page_token=page_token),
            population_pb2.ListPersonsResponse,
            purpose=purpose, timeout=self._timeout,
        )
