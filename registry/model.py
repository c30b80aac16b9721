"""The registry's domain values: frozen dataclasses, typed identifiers, no protobuf."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from zhol.core.ids import GatewayId, MemberId, SubsystemId


class RegistrationKind(enum.Enum):
    GATEWAY = "GATEWAY"  # a gateway with its authentication and signing CSRs
    SUBSYSTEM = "SUBSYSTEM"  # a subsystem served by an existing gateway, with its services
    RENEWAL = "RENEWAL"  # new auth and/or signing certificates for a registered gateway


class RegistrationState(enum.Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class Member:
    id: MemberId
    name: str


@dataclass(frozen=True, slots=True)
class Gateway:
    id: GatewayId
    address: str
    auth_cert_der: bytes = field(repr=False)
    auth_cert_sha256: bytes
    sign_cert_der: bytes = field(repr=False)
    sign_cert_sha256: bytes
    registered_at_ms: int
    revoked_at_ms: int | None = None
    # Raw Ed25519 public key of its log key. b"" only for a gateway an older database
    # holds from before log keys (registration now requires one; `members` flags these).
    log_public_key: bytes = b""

    @property
    def member(self) -> MemberId:
        return self.id.member

    @property
    def revoked(self) -> bool:
        return self.revoked_at_ms is not None


@dataclass(frozen=True, slots=True)
class Subsystem:
    id: SubsystemId
    # Gateways serving it, in failover order.
    gateways: tuple[GatewayId, ...]


@dataclass(frozen=True, slots=True)
class Service:
    """One gRPC service offered by a subsystem, with the methods it exposes."""

    provider: SubsystemId
    grpc_service: str
    methods: tuple[str, ...]
    descriptor_set: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True, order=True)
class Topic:
    """An event topic a subsystem publishes: the fully qualified event message name."""

    publisher: SubsystemId
    topic: str  # zhol.population.v1.BirthRegistered


@dataclass(frozen=True, slots=True)
class Registration:
    id: str  # UUID
    kind: RegistrationKind
    state: RegistrationState
    gateway: GatewayId
    subsystem: SubsystemId | None
    request: bytes = field(repr=False)  # the RegistrationRequest as received
    created_at_ms: int
    reason: str = ""
    auth_cert_der: bytes = field(default=b"", repr=False)
    sign_cert_der: bytes = field(default=b"", repr=False)
    decided_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RevokedCert:
    sha256: bytes
    gateway: GatewayId
    revoked_at_ms: int


@dataclass(frozen=True, slots=True)
class PreviousCert:
    """A certificate a renewal replaced.

    An ``auth`` one is still accepted by peers until it expires (``not_after_ms``) or
    the operator ends the overlap (``overlap_ended_at_ms``); a ``sign`` one is not
    revoked (what it signed stays verifiable) but is no longer the gateway's current.
    Both are revoked with their gateway.
    """

    sha256: bytes
    gateway: GatewayId
    role: str  # "auth" or "sign"
    not_after_ms: int
    replaced_at_ms: int
    overlap_ended_at_ms: int | None = None

    def accepted_for_auth(self, now_ms: int) -> bool:
        """Whether peers still accept it as the gateway's TLS certificate at now_ms."""
        ended = self.overlap_ended_at_ms is not None
        return self.role == "auth" and not ended and now_ms < self.not_after_ms


@dataclass(frozen=True, slots=True)
class PreviousLogKey:
    """A log key a renewal (or a re-registration) replaced: published so that the
    checkpoints it signed stay verifiable."""

    gateway: GatewayId
    public_key: bytes
    replaced_at_ms: int


@dataclass(frozen=True, slots=True)
class ConfVersion:
    """One published global configuration."""

    version: int
    generated_at_ms: int
    expires_at_ms: int
    change_counter: int  # the store's change counter the configuration was built from
    signed: bytes = field(repr=False)  # SignedGlobalConfiguration bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a global configuration is built from, read in one transaction."""

    change_counter: int
    members: tuple[Member, ...]
    gateways: tuple[Gateway, ...]
    subsystems: tuple[Subsystem, ...]
    services: tuple[Service, ...]
    revoked_cert_sha256: tuple[bytes, ...]
    topics: tuple[Topic, ...] = ()
    previous_certs: tuple[PreviousCert, ...] = ()
    previous_log_keys: tuple[PreviousLogKey, ...] = ()


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """The last checkpoint the registry's witness cosigned for one log origin."""

    origin: str
    size: int
    root_hash: bytes
    note: bytes = field(repr=False)  # the signed note as the gateway sent it
    cosigned_at_ms: int


@dataclass(frozen=True, slots=True)
class WitnessRefusal:
    """A checkpoint the witness refused: origin, size (None if unreadable), catalogued
    code and a short reason (no personal data: a checkpoint holds none)."""

    origin: str
    size: int | None
    code: str
    reason: str
    refused_at_ms: int
