"""The federation CA: root certificate, CSRs, and the three certificate profiles.

docs/protocol.md, 'Registration': a gateway generates its keys locally and sends
CSRs; the CSR's self-signature is the proof of possession. The registry issues:

- ``auth``: a gateway's TLS certificate (mutual TLS between gateways). Its SAN
  carries a DNS name for hostname checks and the URI ``urn:zhol:gateway:<id>``.
- ``sign``: a member's message-signing certificate, SAN ``urn:zhol:member:<id>``.
- ``config``: the registry's configuration-signing certificate (the anchor),
  SAN ``urn:zhol:config:<instance>``.

``issue_tsa_certificate`` issues the fourth kind, a timestamping authority's
certificate (RFC 3161: critical extended key usage id-kp-timeStamping alone).

The identity lives in the SAN URI (what validators read) and in the subject CN
(what operators read). Each profile has its own extended key usage, so a
certificate of one profile is never accepted as another. Time is a parameter.

Outside the federation CA, ``create_self_signed_tls_cert`` makes the
certificates of the IS-facing side (a gateway's IS listener, an IS client):
self-signed, trusted only by being pinned (docs/operators.md, 'TLS between a gateway
and its ISs').
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId
from zhol.security.keys import PrivateKey, PublicKey, require_supported_public_key

__all__ = [
    "AUTH_EKUS",
    "CONFIG_EKU",
    "CONFIG_URI_PREFIX",
    "GATEWAY_URI_PREFIX",
    "MEMBER_URI_PREFIX",
    "SIGN_EKU",
    "TSA_EKU",
    "CertProfile",
    "CertificateAuthority",
    "auth_dns_name",
    "create_csr",
    "create_root_ca",
    "create_self_signed_tls_cert",
    "issue_certificate",
    "issue_tsa_certificate",
]

CertProfile = Literal["auth", "sign", "config"]
PROFILES: tuple[str, ...] = get_args(CertProfile)

MEMBER_URI_PREFIX = "urn:zhol:member:"
GATEWAY_URI_PREFIX = "urn:zhol:gateway:"
CONFIG_URI_PREFIX = "urn:zhol:config:"
DNS_SUFFIX = "gateway.zhol"

# id-kp-documentSigning (RFC 9336): a member signs message documents, not TLS sessions.
SIGN_EKU = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# The configuration-signing key gets its own purpose so a member signing
# certificate can never pass for the anchor or vice versa. OID minted under the
# UUID arc (ITU-T X.667, 2.25; UUID 92900078-3397-4d41-bbbd-ec606bf8cf38), which
# needs no registration.
CONFIG_EKU = ObjectIdentifier("2.25.194814987655572882468620915516322139960")
AUTH_EKUS = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
# id-kp-timeStamping (RFC 3161 2.3): the only purpose a TSA certificate may carry.
TSA_EKU = ExtendedKeyUsageOID.TIME_STAMPING
TSA_URI_PREFIX = "urn:zhol:tsa:"

CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DNS_BAD = re.compile(r"[^a-z0-9-]")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)(\*\.)?({_LABEL}\.)*{_LABEL}$")


@dataclass(frozen=True)
class CertificateAuthority:
    """The CA's signing key and its (root) certificate."""

    key: PrivateKey
    cert: x509.Certificate


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the message itself; cryptography requires algorithm None. The
    # concrete type, not HashAlgorithm: X.509 signing accepts only the SHA-2/SHA-3 family.
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return hashes.SHA256()


def _utc(now: datetime.datetime) -> datetime.datetime:
    return now.replace(tzinfo=datetime.UTC) if now.tzinfo is None else now


def create_root_ca(
    key: PrivateKey,
    common_name: str,
    now: datetime.datetime,
    validity_days: int = 3650,
) -> x509.Certificate:
    """A self-signed root that may sign end-entity certificates only (pathlen 0)."""
    now = _utc(now)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + datetime.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    return builder.sign(key, _hash_for(key))


def create_csr(key: PrivateKey, common_name: str) -> bytes:
    """A PEM CSR with subject CN=common_name, self-signed as proof of possession."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, _hash_for(key))
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def auth_dns_name(gateway_id: str) -> str:
    """A deterministic DNS name for a gateway, used for TLS hostname checks.

    "KZ/GOV/MJ/gw1" -> "gw1.mj.gov.kz.gateway.zhol": the id's parts reversed,
    lowercased, anything outside [a-z0-9-] mapped to '-', so every label is a
    valid LDH label. Clients pass it as ssl_target_name_override.
    """
    gateway = GatewayId.parse(gateway_id)
    parts = (
        gateway.server_code,
        gateway.member.member_code,
        gateway.member.member_class,
        gateway.member.instance,
    )
    labels = [_dns_label(part) for part in parts]
    return ".".join([*labels, DNS_SUFFIX])


def _dns_label(part: str) -> str:
    label = _DNS_BAD.sub("-", part.lower())[:63].strip("-")
    return label or "x"


def _key_usage(
    *, digital_signature: bool, content_commitment: bool = False, key_agreement: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _load_csr(csr_pem: bytes, identity: str) -> tuple[x509.CertificateSigningRequest, PublicKey]:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except (ValueError, TypeError) as exc:
        raise ZholError("InvalidCsr", f"CSR does not parse: {exc}") from None
    try:
        signature_ok = csr.is_signature_valid
        public_key = require_supported_public_key(csr.public_key())
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
        raise ZholError("InvalidCsr", f"CSR key unusable: {exc}") from None
    if not signature_ok:
        raise ZholError("InvalidCsr", "CSR self-signature invalid: no proof of possession")
    common_names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(common_names) != 1 or common_names[0].value != identity:
        raise ZholError("InvalidCsr", f"CSR subject CN does not match {identity!r}")
    return csr, public_key


def _profile_extensions(
    profile: str, identity: str, public_key: PublicKey
) -> list[tuple[x509.ExtensionType, bool]]:
    """(extension, critical) pairs that distinguish each profile."""
    if profile == "auth":
        gateway = GatewayId.parse(identity)
        is_ec = isinstance(public_key, ec.EllipticCurvePublicKey)
        san = x509.SubjectAlternativeName(
            [
                x509.DNSName(auth_dns_name(str(gateway))),
                x509.UniformResourceIdentifier(GATEWAY_URI_PREFIX + str(gateway)),
            ]
        )
        return [
            (san, False),
            (_key_usage(digital_signature=True, key_agreement=is_ec), True),
            (x509.ExtendedKeyUsage(list(AUTH_EKUS)), False),
        ]
    if profile == "sign":
        member = MemberId.parse(identity)
        san = x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(MEMBER_URI_PREFIX + str(member))]
        )
        return [
            (san, False),
            (_key_usage(digital_signature=True, content_commitment=True), True),
            (x509.ExtendedKeyUsage([SIGN_EKU]), False),
        ]
    if profile == "config":
        if not _INSTANCE.match(identity):
            raise ZholError("InvalidIdentifier", f"malformed instance identifier: {identity!r}")
        san = x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(CONFIG_URI_PREFIX + identity)]
        )
        return [
            (san, False),
            (_key_usage(digital_signature=True, content_commitment=True), True),
            (x509.ExtendedKeyUsage([CONFIG_EKU]), False),
        ]
    raise ValueError(f"unknown certificate profile {profile!r}; expected one of {PROFILES}")


def issue_certificate(
    ca: CertificateAuthority,
    csr_pem: bytes,
    profile: CertProfile,
    identity: str,
    now: datetime.datetime,
    validity_days: int = 365,
) -> x509.Certificate:
    """Issue a certificate of the given profile for a CSR proven by its own signature.

    Raises ZholError("InvalidCsr") if the CSR does not parse, its signature does
    not verify, its key type is unsupported, or its CN is not ``identity``;
    ZholError("InvalidIdentifier") if ``identity`` is malformed for the profile.
    The certificate never outlives the CA certificate.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown certificate profile {profile!r}; expected one of {PROFILES}")
    _, public_key = _load_csr(csr_pem, identity)
    extensions = _profile_extensions(profile, identity, public_key)
    return _issue(ca, public_key, identity, extensions, now, validity_days)


def issue_tsa_certificate(
    ca: CertificateAuthority,
    csr_pem: bytes,
    name: str,
    now: datetime.datetime,
    validity_days: int = 1825,
) -> x509.Certificate:
    """Issue a timestamping authority's certificate (RFC 3161 section 2.3).

    Its extended key usage is id-kp-timeStamping alone and critical, as RFC 3161
    requires (so openssl ts -verify accepts it and nothing else accepts it); key usage
    digitalSignature (with contentCommitment: a token is evidence). ``name`` is the
    subject CN, a short identifier (the instance-code syntax), also in the SAN as
    ``urn:zhol:tsa:<name>``. Errors as ``issue_certificate``.
    """
    if not _INSTANCE.match(name):
        raise ZholError("InvalidIdentifier", f"malformed TSA name: {name!r}")
    _, public_key = _load_csr(csr_pem, name)
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(TSA_URI_PREFIX + name)]),
            False,
        ),
        (_key_usage(digital_signature=True, content_commitment=True), True),
        (x509.ExtendedKeyUsage([TSA_EKU]), True),
    ]
    return _issue(ca, public_key, name, extensions, now, validity_days)


def _issue(
    ca: CertificateAuthority,
    public_key: PublicKey,
    identity: str,
    extensions: list[tuple[x509.ExtensionType, bool]],
    now: datetime.datetime,
    validity_days: int,
) -> x509.Certificate:
    now = _utc(now)
    not_after = min(now + datetime.timedelta(days=validity_days), ca.cert.not_valid_after_utc)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(ca.key, _hash_for(ca.key))


def create_self_signed_tls_cert(
    key: PrivateKey,
    hosts: Sequence[str],
    now: datetime.datetime,
    validity_days: int = 365,
    *,
    common_name: str = "",
) -> x509.Certificate:
    """A self-signed TLS certificate for the IS-facing side, trusted only by pinning.

    The SAN always holds DNS ``localhost`` and IP ``127.0.0.1``, plus every host
    given (an IP address literal becomes an IP SAN, anything else a DNS SAN).
    Usable as a server and as a client certificate (both TLS extended key
    usages). It is its own trust anchor, yet ``ca=False`` keeps it from vouching
    for any other certificate. It carries no key usage extension on purpose:
    RFC 5280 forbids keyCertSign without ``ca=True``, and some TLS stacks
    (OpenSSL 1.1) do not treat a certificate as self-signed when its key usage
    lacks keyCertSign.
    """
    now = _utc(now)
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in ("localhost", "127.0.0.1", *hosts):
        host = host.strip().lower()
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _HOSTNAME.match(host):
                raise ZholError(
                    "InvalidRequest", f"not a host name or IP address: {host!r}"
                ) from None
            names.append(x509.DNSName(host))
    cn = common_name or (hosts[0] if hosts else "localhost")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + datetime.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(AUTH_EKUS)), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(key, _hash_for(key))
