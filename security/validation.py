"""Certificate validation against the federation's trust list.

What is checked where: docs/protocol.md, 'The signed message', 'Gateway to gateway' and
'Global configuration'.

Chain building and the RFC 5280 / CA-B-Forum checks are delegated to
``cryptography.x509.verification``; this module adds what is ours: which
profile a certificate must have (its extended key usage and its ``urn:zhol:``
SAN URI), revocation by certificate hash (revocations arrive with the global
configuration), and the identity the certificate vouches for.

Chain building is the expensive part and every message carries a certificate,
so successful results are cached by the certificate's SHA-256. A cache hit still
re-checks revocation and the validity window of the whole chain at the given
``now``, so a cached answer never outlives expiry or a revocation.

Restriction: the verifier's policy accepts ECDSA (and RSA) certificate
signatures only, so trust roots must have ECDSA keys. Leaf keys may be ECDSA or
Ed25519. A root with an Ed25519 key is refused when the validator is built.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId
from zhol.security.ca import (
    AUTH_EKUS,
    CONFIG_EKU,
    CONFIG_URI_PREFIX,
    GATEWAY_URI_PREFIX,
    MEMBER_URI_PREFIX,
    SIGN_EKU,
)
from zhol.security.keys import PublicKey, require_supported_public_key
from zhol.security.sealing import cert_sha256

__all__ = ["CacheStats", "CertificateValidator", "cert_sha256"]

DEFAULT_CACHE_SIZE = 4096


class _PolicyViolation(Exception):
    """Raised from extension callbacks; the verifier reports it as VerificationError."""


@dataclass(frozen=True, slots=True)
class _Profile:
    name: str
    uri_prefix: str
    required_ekus: frozenset[ObjectIdentifier]
    # Any one of these key usages suffices (a signing certificate from an external
    # CA may assert only nonRepudiation/contentCommitment).
    key_usages: tuple[str, ...]

    def check_eku(self, _policy: Any, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage) -> None:
        present = set(ext)
        missing = self.required_ekus - present
        if missing:
            raise _PolicyViolation(f"{self.name} profile: extended key usage missing")

    def check_key_usage(self, _policy: Any, _cert: x509.Certificate, ext: x509.KeyUsage) -> None:
        if ext.key_cert_sign or ext.crl_sign:
            raise _PolicyViolation("an end-entity certificate may not sign certificates")
        if not any(getattr(ext, usage) for usage in self.key_usages):
            raise _PolicyViolation(f"{self.name} profile: key usage missing")

    def check_san(
        self, _policy: Any, _cert: x509.Certificate, ext: x509.SubjectAlternativeName
    ) -> None:
        if len(self.uris(ext)) != 1:
            raise _PolicyViolation(f"{self.name} profile: no single {self.uri_prefix}")

    def uris(self, san: x509.SubjectAlternativeName) -> list[str]:
        return [
            uri
            for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
            if uri.startswith(self.uri_prefix)
        ]

    def ee_policy(self) -> ExtensionPolicy:
        """webpki end-entity defaults, with EKU, key usage and SAN checks of this profile."""
        return (
            ExtensionPolicy.webpki_defaults_ee()
            .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, self.check_eku)
            .require_present(x509.KeyUsage, Criticality.AGNOSTIC, self.check_key_usage)
            .require_present(x509.SubjectAlternativeName, Criticality.NON_CRITICAL, self.check_san)
        )


_SIGN = _Profile(
    "sign", MEMBER_URI_PREFIX, frozenset({SIGN_EKU}), ("digital_signature", "content_commitment")
)
_AUTH = _Profile("auth", GATEWAY_URI_PREFIX, frozenset(AUTH_EKUS), ("digital_signature",))
_CONFIG = _Profile(
    "config",
    CONFIG_URI_PREFIX,
    frozenset({CONFIG_EKU}),
    ("digital_signature", "content_commitment"),
)


@dataclass(frozen=True, slots=True)
class _Verified:
    """A chain-building result: valid for any ``now`` inside [not_before, not_after]."""

    identity: str
    public_key: PublicKey
    not_before: datetime.datetime
    not_after: datetime.datetime
    issuer_sha256: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    size: int


def _utc(now: datetime.datetime) -> datetime.datetime:
    """Naive datetimes are taken as UTC, as cryptography does."""
    return now.replace(tzinfo=datetime.UTC) if now.tzinfo is None else now


def _invalid(detail: str) -> ZholError:
    return ZholError("InvalidCertificate", detail)


class CertificateValidator:
    """Validates member signing and gateway authentication certificates against trust roots.

    Build one per global configuration (roots and revocations come from it).
    Safe to share between the event loop and worker threads. Raises ValueError
    if a root does not parse or has an Ed25519 key (see the module docstring).
    """

    def __init__(
        self,
        roots_der: Sequence[bytes],
        revoked_sha256: Collection[bytes] = (),
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        roots = [x509.load_der_x509_certificate(der) for der in roots_der]
        for root in roots:
            if isinstance(root.public_key(), ed25519.Ed25519PublicKey):
                raise ValueError(
                    f"trust root {root.subject.rfc4514_string()} has an Ed25519 key; the "
                    "verifier accepts ECDSA or RSA certificate signatures only"
                )
        self._store = Store(roots) if roots else None
        self._revoked = frozenset(revoked_sha256)
        self._cache_size = max(0, cache_size)
        self._cache: OrderedDict[tuple[str, bytes], _Verified] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._policies = {p.name: p.ee_policy() for p in (_SIGN, _AUTH, _CONFIG)}
        self._ca_policy = ExtensionPolicy.webpki_defaults_ca()

    def verify_signing_cert(
        self, cert_der: bytes, now: datetime.datetime
    ) -> tuple[MemberId, PublicKey]:
        """The member a signing certificate vouches for, and its key; or raise.

        Raises ZholError RevokedCertificate, or InvalidCertificate for anything else
        (unparseable, untrusted, expired, not a signing certificate).
        """
        verified = self._verify(_SIGN, cert_der, now)
        return MemberId.parse(verified.identity), verified.public_key

    def verify_auth_cert(self, cert_der: bytes, now: datetime.datetime) -> GatewayId:
        """The gateway a TLS authentication certificate vouches for; or raise as above."""
        return GatewayId.parse(self._verify(_AUTH, cert_der, now).identity)

    def verify_config_cert(self, cert_der: bytes, now: datetime.datetime) -> tuple[str, PublicKey]:
        """The instance a configuration-signing certificate serves, and its key; or raise."""
        verified = self._verify(_CONFIG, cert_der, now)
        return verified.identity, verified.public_key

    @property
    def cache_stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._cache))

    def _verify(self, profile: _Profile, cert_der: bytes, now: datetime.datetime) -> _Verified:
        now = _utc(now)
        digest = cert_sha256(cert_der)
        if digest in self._revoked:
            raise ZholError("RevokedCertificate")
        key = (profile.name, digest)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
            else:
                self._misses += 1
        if cached is None:
            cached = self._build(profile, cert_der, now)
            self._remember(key, cached)
        if any(issuer in self._revoked for issuer in cached.issuer_sha256):
            raise ZholError("RevokedCertificate", "an issuing certificate was revoked")
        if not cached.not_before <= now <= cached.not_after:
            raise _invalid("certificate chain not valid at this time")
        return cached

    def _remember(self, key: tuple[str, bytes], verified: _Verified) -> None:
        if self._cache_size == 0:
            return
        with self._lock:
            self._cache[key] = verified
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _build(self, profile: _Profile, cert_der: bytes, now: datetime.datetime) -> _Verified:
        """Chain building and policy checks (the expensive, uncached path)."""
        try:
            leaf = x509.load_der_x509_certificate(cert_der)
        except ValueError:
            raise _invalid("certificate does not parse") from None
        if self._store is None:
            raise _invalid("no trust roots configured")
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._policies[profile.name])
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(leaf, []).chain
        except (VerificationError, x509.UnsupportedGeneralNameType, ValueError) as exc:
            raise _invalid(f"not a trusted {profile.name} certificate: {exc}") from None
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            (uri,) = profile.uris(san)
            identity = uri[len(profile.uri_prefix) :]
            if profile is _SIGN:
                MemberId.parse(identity)
            elif profile is _AUTH:
                GatewayId.parse(identity)
            public_key = require_supported_public_key(leaf.public_key())
        except (ValueError, ZholError) as exc:
            raise _invalid(f"unusable {profile.name} certificate: {exc}") from None
        return _Verified(
            identity=identity,
            public_key=public_key,
            not_before=max(cert.not_valid_before_utc for cert in chain),
            not_after=min(cert.not_valid_after_utc for cert in chain),
            issuer_sha256=tuple(cert_sha256(cert.public_bytes(Encoding.DER)) for cert in chain[1:]),
        )
