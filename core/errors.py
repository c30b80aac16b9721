"""The one error catalogue (the README's error table summarises it).

A code is a stable name plus a category; the hop that detected the error is kept
separately and joined only at the edge: ``Server.ServerProxy.AccessDenied``.
Codes are only ever added, never renamed or removed.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Literal

import grpc


class Hop(enum.Enum):
    CLIENT = "Client"
    CLIENT_PROXY = "Server.ClientProxy"
    SERVER_PROXY = "Server.ServerProxy"
    REGISTRY = "Server.Registry"


class Category(enum.Enum):
    BAD_REQUEST = grpc.StatusCode.INVALID_ARGUMENT
    NOT_FOUND = grpc.StatusCode.NOT_FOUND
    ACCESS_DENIED = grpc.StatusCode.PERMISSION_DENIED
    VERIFICATION = grpc.StatusCode.UNAUTHENTICATED
    CONFIGURATION = grpc.StatusCode.FAILED_PRECONDITION
    TIMEOUT = grpc.StatusCode.DEADLINE_EXCEEDED
    TRANSPORT = grpc.StatusCode.UNAVAILABLE
    LIMIT = grpc.StatusCode.RESOURCE_EXHAUSTED
    CONFLICT = grpc.StatusCode.ALREADY_EXISTS
    BUG = grpc.StatusCode.INTERNAL


# Every catalogued code name, so that mypy refuses a misspelt one at the call site
# (ZholError still checks at run time). Add a name here and in CATALOGUE together: a
# unit test keeps the two the same.
ErrorName = Literal[
    "InvalidIdentifier",
    "MissingHeader",
    "InvalidRequest",
    "MessageTooLarge",
    "UnknownClient",
    "UnknownMember",
    "UnknownSubsystem",
    "UnknownService",
    "AmbiguousService",
    "UnknownTopic",
    "OutdatedGlobalConf",
    "InvalidGlobalConf",
    "NotConfigured",
    "InvalidSignature",
    "MissingSignature",
    "InvalidCertificate",
    "RevokedCertificate",
    "UntrustedPeer",
    "SignerMismatch",
    "InvalidMessage",
    "ReplayedMessage",
    "ClockSkew",
    "ResponseMismatch",
    "AccessDenied",
    "NetworkError",
    "ServiceFailed",
    "Timeout",
    "LoggingFailed",
    "RegistrationRejected",
    "RegistrationPending",
    "UnknownRegistration",
    "AlreadyRegistered",
    "InvalidCsr",
    "InconsistentCheckpoint",
    "CheckpointOldSizeMismatch",
    "InternalError",
    "TimestampingFailed",
    "DataSubjectMismatch",
    "EvidenceNotFound",
    "EvidenceNotReady",
    "ReceiverRefused",
    "InvalidDescriptorSet",
    "ContractMismatch",
    "ContractTooLarge",
    "DuplicateService",
    "UnknownAccessRequest",
    "AccessRequestDecided",
    "DuplicateAccessRequest",
    "TooManyAccessRequests",
    "OutputExists",
]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    name: ErrorName
    category: Category
    default_hop: Hop
    summary: str

    @property
    def status(self) -> grpc.StatusCode:
        return self.category.value


_C, _CP, _SP, _R = Hop.CLIENT, Hop.CLIENT_PROXY, Hop.SERVER_PROXY, Hop.REGISTRY

CATALOGUE: tuple[ErrorCode, ...] = (
    # The client's own request was wrong.
    ErrorCode("InvalidIdentifier", Category.BAD_REQUEST, _C, "malformed identifier or IIN"),
    ErrorCode("MissingHeader", Category.BAD_REQUEST, _C, "a required zhol-* key is absent"),
    ErrorCode("InvalidRequest", Category.BAD_REQUEST, _C, "the request is malformed"),
    ErrorCode("MessageTooLarge", Category.LIMIT, _C, "message exceeds the maximum size"),
    ErrorCode("UnknownClient", Category.ACCESS_DENIED, _C, "the IS may not act as that client"),
    # Lookups in the global configuration.
    ErrorCode("UnknownMember", Category.NOT_FOUND, _CP, "no such member"),
    ErrorCode("UnknownSubsystem", Category.NOT_FOUND, _CP, "no such subsystem"),
    ErrorCode("UnknownService", Category.NOT_FOUND, _CP, "no provider offers that service"),
    ErrorCode("AmbiguousService", Category.BAD_REQUEST, _C, "several providers; set zhol-provider"),
    ErrorCode("UnknownTopic", Category.NOT_FOUND, _CP, "the publisher has no such event topic"),
    # Configuration and trust.
    ErrorCode("OutdatedGlobalConf", Category.CONFIGURATION, _CP, "global configuration expired"),
    ErrorCode("InvalidGlobalConf", Category.VERIFICATION, _CP, "global configuration not trusted"),
    ErrorCode("NotConfigured", Category.CONFIGURATION, _CP, "the gateway is not registered"),
    # Verification.
    ErrorCode("InvalidSignature", Category.VERIFICATION, _SP, "signature does not verify"),
    ErrorCode("MissingSignature", Category.VERIFICATION, _SP, "message carries no signature"),
    ErrorCode("InvalidCertificate", Category.VERIFICATION, _SP, "signer certificate not trusted"),
    ErrorCode("RevokedCertificate", Category.VERIFICATION, _SP, "certificate was revoked"),
    ErrorCode("UntrustedPeer", Category.VERIFICATION, _SP, "TLS peer is not a registered gateway"),
    ErrorCode("SignerMismatch", Category.VERIFICATION, _SP, "signer is not the claimed member"),
    ErrorCode("InvalidMessage", Category.VERIFICATION, _SP, "header malformed or inconsistent"),
    ErrorCode("ReplayedMessage", Category.VERIFICATION, _SP, "message id already seen"),
    ErrorCode("ClockSkew", Category.VERIFICATION, _SP, "issued-at outside the allowed skew"),
    ErrorCode("ResponseMismatch", Category.VERIFICATION, _CP, "response not bound to the request"),
    # Authorization.
    ErrorCode("AccessDenied", Category.ACCESS_DENIED, _SP, "no access right for this client"),
    # Transport and the provider.
    ErrorCode("NetworkError", Category.TRANSPORT, _CP, "no provider gateway reachable"),
    ErrorCode("ServiceFailed", Category.TRANSPORT, _SP, "the provider IS is unreachable"),
    ErrorCode("Timeout", Category.TIMEOUT, _CP, "the deadline passed"),
    # Evidence.
    ErrorCode("LoggingFailed", Category.BUG, _CP, "message log write failed; nothing answered"),
    # Registry.
    ErrorCode("RegistrationRejected", Category.ACCESS_DENIED, _R, "registration rejected"),
    ErrorCode("RegistrationPending", Category.CONFIGURATION, _R, "registration awaits approval"),
    ErrorCode("UnknownRegistration", Category.NOT_FOUND, _R, "no such registration request"),
    ErrorCode("AlreadyRegistered", Category.CONFLICT, _R, "already registered"),
    ErrorCode("InvalidCsr", Category.BAD_REQUEST, _R, "CSR malformed or unproven"),
    # The registry's witness.
    ErrorCode("InconsistentCheckpoint", Category.VERIFICATION, _R, "checkpoint rewrites the log"),
    ErrorCode("CheckpointOldSizeMismatch", Category.CONFLICT, _R, "not the witness's last size"),
    # Anything unexpected: no detail leaks.
    ErrorCode("InternalError", Category.BUG, _CP, "internal error"),
    # Like an expired configuration: the gateway's own state, not the request, is wrong.
    ErrorCode(
        "TimestampingFailed",
        Category.CONFIGURATION,
        _CP,
        "no checkpoint timestamped within the limit; exchanges refused",
    ),
    # The declared zhol-data-subject is not whom the request's marked fields name
    # (options.proto): refused before the provider IS sees it.
    ErrorCode(
        "DataSubjectMismatch",
        Category.BAD_REQUEST,
        _SP,
        "declared data subject does not match the request",
    ),
    # Usage/GetEvidence: no record of that exchange here, or one not about the data
    # subject asked for; the same answer for both, so nothing says another's exists.
    ErrorCode(
        "EvidenceNotFound",
        Category.NOT_FOUND,
        _SP,
        "no evidence of that exchange about this data subject here",
    ),
    # Usage/GetEvidence: a record is in no timestamped, cosigned checkpoint yet; it will
    # be after the gateway's next checkpoint (seconds to minutes): retry then.
    ErrorCode(
        "EvidenceNotReady",
        Category.TRANSPORT,
        _SP,
        "not yet in a timestamped, cosigned checkpoint; retry later",
    ),
    # An event's receiving IS answered with a gRPC error of its own, reported in the
    # subscriber gateway's signed acknowledgement: the bus worked, the receiver said no
    # (unlike ServiceFailed, where the receiver could not be reached at all).
    ErrorCode(
        "ReceiverRefused",
        Category.CONFIGURATION,
        _SP,
        "the subscribing IS refused the event",
    ),
    # A service's contract (core/contracts.py), checked by the CLI before it sends and
    # by the registry before it records anything.
    ErrorCode(
        "InvalidDescriptorSet",
        Category.BAD_REQUEST,
        _C,
        "the contract is not a FileDescriptorSet whose files build",
    ),
    ErrorCode(
        "ContractMismatch",
        Category.BAD_REQUEST,
        _C,
        "the contract does not declare the service or a listed method",
    ),
    ErrorCode("ContractTooLarge", Category.LIMIT, _C, "the contract exceeds the registry's limit"),
    # The same service listed twice in one registration, or declared with other request or
    # response types than the contract another provider of it already published.
    ErrorCode(
        "DuplicateService",
        Category.CONFLICT,
        _C,
        "service listed twice, or its methods clash with another provider's contract",
    ),
    # Access requests (zhol.bus.v1.Access, `zhol gateway approve|reject`).
    ErrorCode("UnknownAccessRequest", Category.NOT_FOUND, _SP, "no such access request here"),
    ErrorCode(
        "AccessRequestDecided", Category.CONFLICT, _SP, "the access request is already decided"
    ),
    ErrorCode(
        "DuplicateAccessRequest",
        Category.CONFLICT,
        _SP,
        "the same right is already requested and pending",
    ),
    ErrorCode(
        "TooManyAccessRequests",
        Category.LIMIT,
        _SP,
        "the client has too many pending access requests here",
    ),
    # `zhol new-agency`: it writes only into a new or empty folder, never over files.
    ErrorCode("OutputExists", Category.CONFLICT, _C, "the output folder exists and is not empty"),
)

CODES: dict[str, ErrorCode] = {code.name: code for code in CATALOGUE}


class ZholError(Exception):
    """A catalogued failure. ``hop`` defaults to where the code is normally detected."""

    def __init__(
        self,
        code: ErrorName,
        detail: str = "",
        *,
        hop: Hop | None = None,
        error_id: str | None = None,
        remote: bool = False,
    ) -> None:
        if code not in CODES:
            raise KeyError(f"uncatalogued error code {code!r}")
        self.code = CODES[code]
        self.hop = hop or self.code.default_hop
        self.detail = detail or self.code.summary
        self.error_id = error_id or str(uuid.uuid4())
        # Reported by another hop and passed through unchanged (never re-attributed).
        self.remote = remote
        super().__init__(f"{self.full_code}: {self.detail}")

    @property
    def full_code(self) -> str:
        return f"{self.hop.value}.{self.code.name}"

    @property
    def status(self) -> grpc.StatusCode:
        return self.code.status

    def at(self, hop: Hop) -> ZholError:
        """The same error attributed to another hop (keeps the error id)."""
        return ZholError(self.code.name, self.detail, hop=hop, error_id=self.error_id)


def parse_full_code(full_code: str) -> tuple[Hop, ErrorCode]:
    """Split 'Server.ServerProxy.AccessDenied' into its hop and catalogued code."""
    prefix, _, name = full_code.rpartition(".")
    return Hop(prefix), CODES[name]
