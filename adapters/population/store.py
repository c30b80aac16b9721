"""The population registry's data access layer: SQL in, frozen dataclasses out.

One ``PopulationStore`` wraps one SQLite connection and must be used by one thread
at a time. Reads are single statements (each sees one committed snapshot); every
write is one ``BEGIN IMMEDIATE`` transaction that validates inside the transaction
and rolls back on any failure, so a refused request changes nothing. Failures are the
``RegistryError`` subclasses of ``model`` (the table there says which is which).

Each registered birth, death and address change also enqueues its event
(``zhol.population.v1.BirthRegistered``, ``DeathRegistered``, ``AddressChanged``) in the
bus outbox inside the same transaction: the event exists exactly when the act does.
Events carry identifiers and dates only; subscribers read the rest through the bus.
A name change publishes no event: nobody else holds a name to update.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from google.protobuf.message import Message

from zhol.adapters.bus.outbox import enqueue_event
from zhol.adapters.population import schema
from zhol.adapters.population.model import (
    CITIZENSHIP_KZ,
    ActKind,
    Address,
    AddressChange,
    AlreadyRecorded,
    BirthRegistration,
    ChangedName,
    CivilAct,
    Exhausted,
    Family,
    InvalidInput,
    NameChange,
    NameChangeReason,
    NotAllowed,
    NotFound,
    Person,
    PersonPage,
    RegisteredBirth,
    Relation,
    Relative,
    Sex,
)
from zhol.adapters.runtime.store import AgencyStore
from zhol.core.errors import ZholError
from zhol.core.iin import Iin, make_iin
from zhol.population.v1 import population_pb2 as events

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_NAME_LENGTH = 100
MAX_ADDRESS_FIELD_LENGTH = 200
ACT_PREFIX = "MJ-"

_PERSON_COLUMNS = """
    SELECT p.iin, p.last_name, p.first_name, p.patronymic, p.sex, p.birth_date,
           p.citizenship, p.death_date,
           a.region, a.district, a.locality, a.street, a.building, a.apartment,
           a.registered_on
    FROM persons AS p
    LEFT JOIN addresses AS a ON a.iin = p.iin AND a.valid_to IS NULL
"""
_GET_PERSON = _PERSON_COLUMNS + " WHERE p.iin = ?"
_LIST_PERSONS = _PERSON_COLUMNS + " WHERE p.iin > ? ORDER BY p.iin LIMIT ?"
_GET_ADDRESS = """
    SELECT region, district, locality, street, building, apartment, registered_on
    FROM addresses WHERE iin = ? AND valid_to IS NULL
"""
_GET_TEMPORARY = """
    SELECT region, district, locality, street, building, apartment, registered_on, until
    FROM temporary_addresses
    WHERE iin = ? AND valid_to IS NULL AND (until IS NULL OR until >= ?)
"""
_GET_LINKS = """
    SELECT f.relative_iin, f.relation
    FROM family_links AS f JOIN persons AS p ON p.iin = f.relative_iin
    WHERE f.iin = ?
    ORDER BY p.birth_date, f.relative_iin
"""
_SEX = {"M": Sex.MALE, "F": Sex.FEMALE}


class PopulationStore(AgencyStore, agency="population", schema=schema):
    # -- reads -------------------------------------------------------------------------

    def get_person(self, iin: Iin) -> Person:
        row = self._conn.execute(_GET_PERSON, (iin.value,)).fetchone()
        if row is None:
            raise NotFound(f"no person with IIN {iin}")
        return _person(row)

    def list_persons(self, page_size: int = 0, page_token: str = "") -> PersonPage:
        """Persons in IIN order; ``page_size`` 0 means 100, above 1000 means 1000."""
        if page_size < 0:
            raise InvalidInput("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_page_token(page_token) if page_token else ""
        rows = self._conn.execute(_LIST_PERSONS, (after, size + 1)).fetchall()
        persons = tuple(_person(row) for row in rows[:size])
        token = encode_page_token(persons[-1].iin) if len(rows) > size else ""
        return PersonPage(persons, token)

    def get_address(self, iin: Iin, *, temporary: bool = False) -> Address:
        """The permanent address, or (``temporary``) the temporary registration in
        force today; ``NotFound`` when there is none."""
        if temporary:
            row = self._conn.execute(
                _GET_TEMPORARY, (iin.value, self.today().isoformat())
            ).fetchone()
            if row is None:
                self._require_person(iin)
                raise NotFound(f"person {iin} has no temporary registration in force")
            *fields, until = row
            return _replace_until(_address(tuple(fields)), _optional_date(until))
        row = self._conn.execute(_GET_ADDRESS, (iin.value,)).fetchone()
        if row is None:
            self._require_person(iin)
            raise NotFound(f"person {iin} has no registered address")
        return _address(row)

    def get_family(self, iin: Iin) -> Family:
        self._require_person(iin)
        parents: list[Relative] = []
        children: list[Relative] = []
        spouse: Relative | None = None
        for relative_iin, relation_text in self._conn.execute(_GET_LINKS, (iin.value,)):
            relation = Relation(relation_text)
            relative = Relative(Iin(relative_iin), relation)
            if relation is Relation.CHILD:
                children.append(relative)
            elif relation is Relation.SPOUSE:
                spouse = spouse or relative
            else:
                parents.append(relative)
        return Family(iin, tuple(parents), spouse, tuple(children))

    # -- writes ------------------------------------------------------------------------

    def register_birth(self, birth: BirthRegistration) -> RegisteredBirth:
        """Record a newborn: a new IIN, links to and from the parents, the mother's
        address, a birth act. Refused (and nothing written) unless every check passes."""
        last_name = _name(birth.last_name, "last_name", required=True)
        first_name = _name(birth.first_name, "first_name", required=True)
        patronymic = _name(birth.patronymic, "patronymic", required=False)
        if not isinstance(birth.sex, Sex):
            raise InvalidInput("sex must be male or female")
        today = self.today()
        if birth.birth_date > today:
            raise InvalidInput("birth_date is in the future")
        with self._transaction():
            mother = self._person_row(birth.mother, "mother")
            if mother.sex is not Sex.FEMALE:
                raise NotAllowed(f"mother {birth.mother} is not female")
            if mother.deceased:
                raise NotAllowed(f"mother {birth.mother} is deceased")
            if birth.birth_date <= mother.birth_date:
                raise NotAllowed("birth_date is not after the mother's birth date")
            if birth.father is not None:
                father = self._person_row(birth.father, "father")
                if father.sex is not Sex.MALE:
                    raise NotAllowed(f"father {birth.father} is not male")
                if birth.birth_date <= father.birth_date:
                    raise NotAllowed("birth_date is not after the father's birth date")
            self._refuse_duplicate_birth(birth.mother, birth.birth_date, first_name)
            child_iin = self._next_iin(birth.birth_date, birth.sex is Sex.FEMALE)
            self._conn.execute(
                "INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (child_iin.value, last_name, first_name, patronymic, birth.sex.value,
                 birth.birth_date.isoformat(), CITIZENSHIP_KZ),
            )
            links = [
                (child_iin.value, birth.mother.value, "mother"),
                (birth.mother.value, child_iin.value, "child"),
            ]
            if birth.father is not None:
                links += [
                    (child_iin.value, birth.father.value, "father"),
                    (birth.father.value, child_iin.value, "child"),
                ]
            self._conn.executemany("INSERT INTO family_links VALUES (?, ?, ?)", links)
            address = None
            if mother.address is not None:
                address = _replace_date(mother.address, today)
                self._insert_address(child_iin, address)
            details = {
                "mother": birth.mother.value,
                "father": birth.father.value if birth.father else None,
                "birth_date": birth.birth_date.isoformat(),
            }
            act = self._insert_act(ActKind.BIRTH, child_iin, birth.mother, today, details)
            self._enqueue(
                events.BirthRegistered(
                    child_iin=child_iin.value,
                    mother_iin=birth.mother.value,
                    father_iin=birth.father.value if birth.father else "",
                    birth_date=_date_pb(birth.birth_date),
                    act_id=act.act_id,
                ),
                child_iin,
            )
        child = Person(
            child_iin, last_name, first_name, patronymic, birth.sex, birth.birth_date,
            CITIZENSHIP_KZ, None, address,
        )
        return RegisteredBirth(child, act)

    def register_death(self, iin: Iin, death_date: dt.date) -> CivilAct:
        """Record a death (and only that: addresses and family links stay as they are)."""
        today = self.today()
        if death_date > today:
            raise InvalidInput("death_date is in the future")
        with self._transaction():
            person = self._person_row(iin, "person")
            if person.deceased:
                raise AlreadyRecorded(f"the death of {iin} is already registered")
            if death_date < person.birth_date:
                raise NotAllowed("death_date is before the birth date")
            self._conn.execute(
                "UPDATE persons SET death_date = ? WHERE iin = ?",
                (death_date.isoformat(), iin.value),
            )
            details = {"death_date": death_date.isoformat()}
            act = self._insert_act(ActKind.DEATH, iin, None, today, details)
            self._enqueue(
                events.DeathRegistered(
                    iin=iin.value, death_date=_date_pb(death_date), act_id=act.act_id
                ),
                iin,
            )
            return act

    def change_address(self, iin: Iin, change: AddressChange) -> Address:
        """Register a new current address; the old one stays in the history, ended."""
        fields = {
            "region": _text(change.region, "address.region", required=True),
            "district": _text(change.district, "address.district", required=False),
            "locality": _text(change.locality, "address.locality", required=True),
            "street": _text(change.street, "address.street", required=True),
            "building": _text(change.building, "address.building", required=True),
            "apartment": _text(change.apartment, "address.apartment", required=False),
        }
        today = self.today()
        since = change.registered_on or today
        if since > today:
            raise InvalidInput("address.registered_on is in the future")
        address = Address(
            fields["region"], fields["district"], fields["locality"], fields["street"],
            fields["building"], fields["apartment"], since,
        )
        if change.temporary:
            return self._register_temporary(iin, _replace_until(address, change.until))
        if change.until is not None:
            raise InvalidInput("address.until is only for a temporary registration")
        with self._transaction():
            person = self._person_row(iin, "person")
            if person.deceased:
                raise NotAllowed(f"person {iin} is deceased")
            if since < person.birth_date:
                raise NotAllowed("address.registered_on is before the birth date")
            current = person.address
            if current is not None and since < current.registered_on:
                raise NotAllowed("address.registered_on is before the current address's")
            self._conn.execute(
                "UPDATE addresses SET valid_to = ? WHERE iin = ? AND valid_to IS NULL",
                (since.isoformat(), iin.value),
            )
            self._insert_address(iin, address)
            self._enqueue(events.AddressChanged(iin=iin.value, changed_on=_date_pb(since)), iin)
        return address

    def _register_temporary(self, iin: Iin, address: Address) -> Address:
        """A registration at a place of temporary residence: the permanent address stays;
        an earlier temporary one ends. No event: nobody follows a temporary stay."""
        if address.until is not None and address.until < max(address.registered_on,
                                                              self.today()):
            raise InvalidInput("address.until is before today or before registered_on")
        with self._transaction():
            person = self._person_row(iin, "person")
            if person.deceased:
                raise NotAllowed(f"person {iin} is deceased")
            if address.registered_on < person.birth_date:
                raise NotAllowed("address.registered_on is before the birth date")
            current = self._conn.execute(
                "SELECT registered_on FROM temporary_addresses"
                " WHERE iin = ? AND valid_to IS NULL", (iin.value,),
            ).fetchone()
            if current is not None and address.registered_on < dt.date.fromisoformat(
                current[0]
            ):
                raise NotAllowed(
                    "address.registered_on is before the current temporary registration's"
                )
            self._conn.execute(
                "UPDATE temporary_addresses SET valid_to = ? WHERE iin = ? AND valid_to IS NULL",
                (address.registered_on.isoformat(), iin.value),
            )
            self._conn.execute(
                "INSERT INTO temporary_addresses (iin, region, district, locality, street,"
                " building, apartment, registered_on, until, valid_to)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (iin.value, address.region, address.district, address.locality,
                 address.street, address.building, address.apartment,
                 address.registered_on.isoformat(),
                 address.until.isoformat() if address.until else None),
            )
        return address

    def change_name(self, iin: Iin, change: NameChange) -> ChangedName:
        """Register a new full name with a name_change act (previous and new names)."""
        new = (
            _name(change.last_name, "last_name", required=True),
            _name(change.first_name, "first_name", required=True),
            _name(change.patronymic, "patronymic", required=False),
        )
        if not isinstance(change.reason, NameChangeReason):
            raise InvalidInput("reason must be marriage, divorce or application")
        today = self.today()
        with self._transaction():
            person = self._person_row(iin, "person")
            if person.deceased:
                raise NotAllowed(f"person {iin} is deceased")
            old = (person.last_name, person.first_name, person.patronymic)
            if old == new:
                raise AlreadyRecorded(f"person {iin} already has that name")
            self._conn.execute(
                "UPDATE persons SET last_name = ?, first_name = ?, patronymic = ? WHERE iin = ?",
                (*new, iin.value),
            )
            names = ("last_name", "first_name", "patronymic")
            details = {
                "reason": change.reason.value,
                **{f"previous_{k}": v for k, v in zip(names, old, strict=True)},
                **dict(zip(names, new, strict=True)),
            }
            act = self._insert_act(ActKind.NAME_CHANGE, iin, None, today, details)
        renamed = Person(
            iin, *new, person.sex, person.birth_date, person.citizenship, None, person.address
        )
        return ChangedName(renamed, act)

    # -- helpers -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _enqueue(self, event: Message, subject: Iin) -> None:
        """Store ``event`` in the outbox, inside the running write transaction."""
        enqueue_event(
            self._conn, event.DESCRIPTOR.full_name, event,
            data_subject=subject.value, occurred_at_ms=self._clock.now_ms(),
        )

    def _require_person(self, iin: Iin) -> None:
        row = self._conn.execute("SELECT 1 FROM persons WHERE iin = ?", (iin.value,)).fetchone()
        if row is None:
            raise NotFound(f"no person with IIN {iin}")

    def _person_row(self, iin: Iin, role: str) -> Person:
        row = self._conn.execute(_GET_PERSON, (iin.value,)).fetchone()
        if row is None:
            raise NotFound(f"no {role} with IIN {iin}")
        return _person(row)

    def _refuse_duplicate_birth(self, mother: Iin, birth_date: dt.date, first_name: str) -> None:
        rows = self._conn.execute(
            "SELECT p.first_name FROM family_links AS f"
            " JOIN persons AS p ON p.iin = f.relative_iin"
            " WHERE f.iin = ? AND f.relation = 'child' AND p.birth_date = ?",
            (mother.value, birth_date.isoformat()),
        ).fetchall()
        wanted = first_name.casefold()
        if any(name.casefold() == wanted for (name,) in rows):
            raise AlreadyRecorded(
                f"a birth of {first_name} to mother {mother} on {birth_date} is already registered"
            )

    def _next_iin(self, birth_date: dt.date, female: bool) -> Iin:
        """The child's IIN: the next serial after the highest already issued that day."""
        if not 1800 <= birth_date.year <= 2099:
            raise InvalidInput("birth_date is outside the years an IIN can encode")
        male_digit = (birth_date.year // 100 - 18) * 2 + 1
        highest = 0
        for digit in (male_digit, male_digit + 1):
            prefix = f"{birth_date:%y%m%d}{digit}"
            row = self._conn.execute(
                "SELECT iin FROM persons WHERE iin >= ? AND iin < ? ORDER BY iin DESC LIMIT 1",
                (prefix, prefix + ":"),  # ':' sorts right after '9'
            ).fetchone()
            if row is not None:
                highest = max(highest, int(row[0][7:11]))
        for serial in range(highest + 1, 10_000):
            iin = make_iin(birth_date, female, serial)
            if iin is not None:
                return iin
        raise Exhausted(f"no IIN serial left for {birth_date}")

    def _insert_address(self, iin: Iin, address: Address) -> None:
        self._conn.execute(
            "INSERT INTO addresses (iin, region, district, locality, street, building,"
            " apartment, registered_on, valid_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (iin.value, address.region, address.district, address.locality, address.street,
             address.building, address.apartment, address.registered_on.isoformat()),
        )

    def _insert_act(
        self,
        kind: ActKind,
        iin: Iin,
        related: Iin | None,
        registered_on: dt.date,
        details: Mapping[str, str | None],
    ) -> CivilAct:
        (highest,) = self._conn.execute("SELECT max(act_id) FROM civil_acts").fetchone()
        number = int(highest[len(ACT_PREFIX):]) + 1 if highest else 1
        act_id = f"{ACT_PREFIX}{number:010d}"
        self._conn.execute(
            "INSERT INTO civil_acts VALUES (?, ?, ?, ?, ?, ?)",
            (act_id, kind.value, iin.value, related.value if related else None,
             registered_on.isoformat(), json.dumps(details, sort_keys=True)),
        )
        return CivilAct(act_id, kind, iin, registered_on)


# -- page tokens -------------------------------------------------------------------------


def encode_page_token(last_iin: Iin) -> str:
    """An opaque page token: the URL-safe base64 of the last IIN on the page."""
    return base64.urlsafe_b64encode(last_iin.value.encode("ascii")).decode("ascii")


def decode_page_token(token: str) -> str:
    """The IIN a page token continues after; ``InvalidInput`` for anything else."""
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        return Iin.parse(raw.decode("ascii")).value
    except (binascii.Error, UnicodeError, ZholError):
        raise InvalidInput("page_token is malformed") from None


# -- rows and values ---------------------------------------------------------------------


def _person(row: tuple) -> Person:
    iin, last, first, patronymic, sex, birth, citizenship, death = row[:8]
    address = _address(row[8:]) if row[8] is not None else None
    return Person(
        Iin(iin), last, first, patronymic, _SEX[sex], dt.date.fromisoformat(birth),
        citizenship, dt.date.fromisoformat(death) if death else None, address,
    )


def _address(row: tuple) -> Address:
    region, district, locality, street, building, apartment, registered_on = row
    return Address(
        region, district, locality, street, building, apartment,
        dt.date.fromisoformat(registered_on),
    )


def _date_pb(date: dt.date) -> events.Date:
    return events.Date(year=date.year, month=date.month, day=date.day)


def _optional_date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _replace_until(address: Address, until: dt.date | None) -> Address:
    return Address(
        address.region, address.district, address.locality, address.street,
        address.building, address.apartment, address.registered_on, until,
    )


def _replace_date(address: Address, registered_on: dt.date) -> Address:
    return Address(
        address.region, address.district, address.locality, address.street,
        address.building, address.apartment, registered_on,
    )


def _text(value: str, field: str, *, required: bool, limit: int = MAX_ADDRESS_FIELD_LENGTH) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"{field} is required")
    if len(text) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters")
    if not text.isprintable():
        raise InvalidInput(f"{field} contains control characters")
    return text


def _name(value: str, field: str, *, required: bool) -> str:
    return _text(value, field, required=required, limit=MAX_NAME_LENGTH)
