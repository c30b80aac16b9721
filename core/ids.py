"""Typed identifiers of the federation, parsed once at the edge (docs/protocol.md, 'Names')."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

from zhol.core.errors import ZholError

MEMBER_CLASSES = frozenset({"GOV", "COM", "NGO"})
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GRPC_SERVICE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Identifiers arrive on every message (metadata, signed headers) and are few in a
# federation: valid parses are memoised (values are immutable; failures are not kept).
_PARSE_CACHE = 4096


def _invalid(kind: str, text: str) -> ZholError:
    return ZholError("InvalidIdentifier", f"malformed {kind} identifier: {text[:80]!r}")


def _parts(kind: str, text: str, count: int) -> list[str]:
    parts = text.split("/")
    if len(parts) != count or not all(_CODE.fullmatch(p) for p in parts):
        raise _invalid(kind, text)
    return parts


@dataclass(frozen=True, slots=True, order=True)
class MemberId:
    instance: str
    member_class: str
    member_code: str

    @classmethod
    def parse(cls, text: str) -> MemberId:
        return _parse_member(text)

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member_code}"


@dataclass(frozen=True, slots=True, order=True)
class SubsystemId:
    member: MemberId
    subsystem_code: str

    @classmethod
    def parse(cls, text: str) -> SubsystemId:
        return _parse_subsystem(text)

    def __str__(self) -> str:
        return f"{self.member}/{self.subsystem_code}"


@dataclass(frozen=True, slots=True, order=True)
class GatewayId:
    member: MemberId
    server_code: str

    @classmethod
    def parse(cls, text: str) -> GatewayId:
        return _parse_gateway(text)

    def __str__(self) -> str:
        return f"{self.member}/{self.server_code}"


@dataclass(frozen=True, slots=True, order=True)
class ServiceId:
    """One gRPC method of a subsystem."""

    subsystem: SubsystemId
    grpc_service: str
    method: str

    @classmethod
    def parse(cls, text: str) -> ServiceId:
        parts = text.split("/")
        if len(parts) != 6:
            raise _invalid("service", text)
        subsystem = SubsystemId.parse("/".join(parts[:4]))
        return cls.of(subsystem, parts[4], parts[5])

    @classmethod
    def of(cls, subsystem: SubsystemId, grpc_service: str, method: str) -> ServiceId:
        return _service_of(subsystem, grpc_service, method)

    @property
    def grpc_path(self) -> str:
        """The gRPC method path, /package.Service/Method."""
        return f"/{self.grpc_service}/{self.method}"

    def __str__(self) -> str:
        return f"{self.subsystem}/{self.grpc_service}/{self.method}"


@lru_cache(maxsize=_PARSE_CACHE)
def _parse_member(text: str) -> MemberId:
    instance, member_class, code = _parts("member", text, 3)
    if member_class not in MEMBER_CLASSES:
        raise _invalid("member", text)
    return MemberId(instance, member_class, code)


@lru_cache(maxsize=_PARSE_CACHE)
def _parse_subsystem(text: str) -> SubsystemId:
    parts = _parts("subsystem", text, 4)
    if parts[1] not in MEMBER_CLASSES:
        raise _invalid("subsystem", text)
    return SubsystemId(MemberId(*parts[:3]), parts[3])


@lru_cache(maxsize=_PARSE_CACHE)
def _parse_gateway(text: str) -> GatewayId:
    parts = _parts("gateway", text, 4)
    if parts[1] not in MEMBER_CLASSES:
        raise _invalid("gateway", text)
    return GatewayId(MemberId(*parts[:3]), parts[3])


@lru_cache(maxsize=_PARSE_CACHE)
def _service_of(subsystem: SubsystemId, grpc_service: str, method: str) -> ServiceId:
    if not _GRPC_SERVICE.fullmatch(grpc_service) or not _METHOD.fullmatch(method):
        raise _invalid("service", f"{subsystem}/{grpc_service}/{method}")
    return ServiceId(subsystem, grpc_service, method)


@lru_cache(maxsize=_PARSE_CACHE)
def parse_grpc_path(path: str) -> tuple[str, str]:
    """Split '/pkg.Service/Method' into ('pkg.Service', 'Method') or raise InvalidIdentifier."""
    parts = path.split("/")
    if (
        len(parts) != 3
        or parts[0] != ""
        or not _GRPC_SERVICE.fullmatch(parts[1])
        or not _METHOD.fullmatch(parts[2])
    ):
        raise _invalid("gRPC method", path)
    return parts[1], parts[2]


def parse_topic(text: str) -> str:
    """An event topic: the fully qualified name of an event message, or InvalidIdentifier.

    Same grammar as a gRPC service name: dotted identifiers with at least one dot,
    e.g. ``zhol.population.v1.BirthRegistered``.
    """
    if not _GRPC_SERVICE.fullmatch(text):  # fullmatch: "$" alone lets a final newline through
        raise _invalid("topic", text)
    return text


def new_message_id(now_ms: int, random: bytes) -> str:
    """A UUIDv7 (RFC 9562) message id: the time in ms, then 74 random bits.

    Still a UUID (docs/protocol.md, 'Message ids'), but ordered by time: message-log records of one
    period sit together in its message_id index (fewer pages touched per commit,
    measured), and an auditor can sort ids. ``random`` is at least 10 random bytes.
    """
    if len(random) < 10 or not 0 <= now_ms < 1 << 48:
        raise ValueError("new_message_id needs a 48-bit ms time and 10 random bytes")
    bits = int.from_bytes(random[:10], "big")
    value = (
        (now_ms << 80)
        | (0x7 << 76)  # version 7
        | ((bits >> 68) & 0xFFF) << 64  # rand_a: 12 bits
        | (0b10 << 62)  # RFC 9562 variant
        | (bits & ((1 << 62) - 1))  # rand_b: 62 bits
    )
    return str(uuid.UUID(int=value))
