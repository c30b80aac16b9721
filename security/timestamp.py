"""RFC 3161 timestamps: requests, the authority's answers, and verifying a token.

Pure functions over DER bytes; the time, the serial number and the nonce are
parameters (no clock, no randomness, no I/O here). ASN.1 through asn1crypto.

- ``build_request``: a TimeStampReq (message imprint, nonce, certReq).
- ``respond``: what the authority answers a request: a TimeStampResp granting a
  token, or a rejection with its PKIFailureInfo. The token is a CMS SignedData
  (RFC 5652) over a TSTInfo, signed with the authority's key over the signed
  attributes contentType, messageDigest, signingTime (optional) and the
  signing-certificate-v2 attribute (ESSCertIDv2, RFC 5816) that binds the
  signature to the authority's certificate. The certificate is included when the
  request asks for it (certReq). ``openssl ts -verify`` accepts these tokens.
- ``verify_response`` / ``verify_token``: everything an auditor checks: the
  imprint is the digest of the expected data, the nonce, the signature, the
  ESSCertID binding, the signer certificate issued by a trusted CA, valid at the
  token's time and with critical extended key usage id-kp-timeStamping alone.
  Tokens of any authority are accepted (ECDSA or RSA PKCS#1 v1.5, SHA-2), not only
  ours. Every failure is a ``TimestampError`` with a stable ``reason``.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from asn1crypto.core import Void
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = [
    "CONTENT_TYPE",
    "REPLY_CONTENT_TYPE",
    "ZHOL_TSA_POLICY",
    "PkiFailure",
    "TimestampError",
    "TimestampFailure",
    "TimestampReply",
    "TimestampResponse",
    "TsaSigner",
    "VerifiedTimestamp",
    "build_request",
    "check_authority_certificate",
    "parse_response",
    "rejection",
    "respond",
    "verify_response",
    "verify_token",
]

# The RFC 3161 HTTP transport's media types (section 3.4).
CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"

# The policy our authority issues tokens under. OID minted under the UUID arc
# (ITU-T X.667, 2.25; UUID 3d4f5a1e-8b6c-4e0f-9a2d-7c1b5e9f0a34), no registration needed.
ZHOL_TSA_POLICY = "2.25.81514318813779290637867700385011927604"

# Why a token or an answer is not accepted. Stable: callers and tests match on them.
TimestampFailure = Literal[
    "malformed",  # not DER of the expected structures, or a structural rule broken
    "rejected",  # the authority answered with a status other than granted
    "unsupported_algorithm",  # a digest or signature algorithm this verifier refuses
    "imprint_mismatch",  # the token is for other data
    "nonce_mismatch",  # not the answer to our request
    "policy_mismatch",  # issued under another policy than required
    "content_mismatch",  # signed attributes do not match the TSTInfo (type, digest)
    "bad_signature",  # the signature over the signed attributes does not verify
    "signer_missing",  # the signer's certificate is neither in the token nor given
    "certificate_binding",  # no ESSCertID(v2) attribute, or it names another certificate
    "untrusted_signer",  # not issued by a trusted CA, or not valid at the token's time
    "wrong_key_usage",  # not a timestamping certificate (critical EKU timeStamping only)
]
FAILURES: tuple[str, ...] = get_args(TimestampFailure)

# PKIFailureInfo names (asn1crypto's spelling of RFC 3161's bits).
PkiFailure = Literal[
    "bad_alg",
    "bad_request",
    "bad_data_format",
    "time_not_available",
    "unaccepted_policy",
    "unaccepted_extensions",
    "add_info_not_available",
    "system_failure",
]

_DIGESTS: dict[str, tuple[int, type[hashes.HashAlgorithm]]] = {
    "sha256": (32, hashes.SHA256),
    "sha384": (48, hashes.SHA384),
    "sha512": (64, hashes.SHA512),
}
# Nonces are at most 160 bits in practice (RFC 3161 suggests 64); anything longer than
# this is not a nonce but an attempt to make us echo arbitrary data.
_MAX_NONCE_BITS = 512
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class _TimeStampResp(tsp.TimeStampResp):  # type: ignore[misc]
    # RFC 3161: timeStampToken is OPTIONAL (absent in a rejection); asn1crypto 1.5.1
    # declares it required, so neither a rejection could be written nor read.
    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class TimestampError(Exception):
    """A token or answer that is not accepted; ``reason`` is one of ``TimestampFailure``."""

    def __init__(self, reason: TimestampFailure, detail: str = "") -> None:
        if reason not in FAILURES:
            raise KeyError(f"unknown timestamp failure {reason!r}")
        self.reason: TimestampFailure = reason
        self.detail = detail or reason
        super().__init__(f"{reason}: {self.detail}")


@dataclass(frozen=True)
class TsaSigner:
    """The authority's signing key (ECDSA P-256), its certificate and its policy."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    policy: str = ZHOL_TSA_POLICY


@dataclass(frozen=True, slots=True)
class TimestampReply:
    """What ``respond`` produced: the DER answer and, for the log, what it says."""

    der: bytes
    granted: bool
    failure: PkiFailure | None = None
    serial_number: int | None = None


@dataclass(frozen=True, slots=True)
class TimestampResponse:
    """A parsed TimeStampResp: status name, failure bits, status text, token DER."""

    status: str
    failures: tuple[str, ...]
    text: str
    token: bytes | None


@dataclass(frozen=True, slots=True)
class VerifiedTimestamp:
    """What a verified token vouches for."""

    gen_time: datetime.datetime
    serial_number: int
    policy: str
    nonce: int | None
    accuracy: datetime.timedelta | None
    hash_algorithm: str
    tsa_cert_der: bytes


# -- requests --------------------------------------------------------------------------------


def build_request(
    data: bytes,
    *,
    nonce: int | None,
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """A DER TimeStampReq for ``data`` with a SHA-256 message imprint."""
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(data).digest(),
        },
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        if nonce < 0 or nonce.bit_length() > _MAX_NONCE_BITS:
            raise ValueError("nonce must be a non-negative integer of at most 512 bits")
        fields["nonce"] = nonce
    return bytes(tsp.TimeStampReq(fields).dump())


# -- the authority ---------------------------------------------------------------------------


def rejection(failure: PkiFailure, text: str) -> TimestampReply:
    """A TimeStampResp with status rejection, ``failure`` set and a short reason text."""
    resp = _TimeStampResp(
        {
            "status": {
                "status": "rejection",
                "status_string": [text],
                "fail_info": tsp.PKIFailureInfo({failure}),
            }
        }
    )
    return TimestampReply(bytes(resp.dump()), granted=False, failure=failure)


class _Refuse(Exception):
    def __init__(self, failure: PkiFailure, text: str) -> None:
        super().__init__(text)
        self.failure: PkiFailure = failure
        self.text = text


@dataclass(frozen=True, slots=True)
class _Request:
    hash_algorithm: str
    digest: bytes
    nonce: int | None
    cert_req: bool


def _parse_request(der: bytes, policy: str) -> _Request:
    try:
        req = tsp.TimeStampReq.load(der, strict=True)
        req.native  # parse everything now: asn1crypto is lazy  # noqa: B018
        version = req["version"].native
        imprint = req["message_imprint"]
        algorithm = str(imprint["hash_algorithm"]["algorithm"].native)
        parameters = imprint["hash_algorithm"]["parameters"].native
        digest = bytes(imprint["hashed_message"].native)
        req_policy = req["req_policy"].native
        nonce = req["nonce"].native
        cert_req = bool(req["cert_req"].native)
        has_extensions = req["extensions"].native is not None
    except _ASN1_ERRORS:
        raise _Refuse("bad_data_format", "not a DER TimeStampReq") from None
    if version != "v1":
        raise _Refuse("bad_data_format", "unsupported TimeStampReq version")
    if algorithm not in _DIGESTS or parameters is not None:
        raise _Refuse("bad_alg", "message imprint must use SHA-256, SHA-384 or SHA-512")
    if len(digest) != _DIGESTS[algorithm][0]:
        raise _Refuse("bad_data_format", "message imprint length does not match its algorithm")
    if req_policy is not None and req_policy != policy:
        raise _Refuse("unaccepted_policy", "this authority issues tokens under one policy only")
    if has_extensions:
        raise _Refuse("unaccepted_extensions", "no request extensions are supported")
    if nonce is not None and (nonce < 0 or int(nonce).bit_length() > _MAX_NONCE_BITS):
        raise _Refuse("bad_data_format", "nonce must be non-negative and at most 512 bits")
    return _Request(algorithm, digest, None if nonce is None else int(nonce), cert_req)


def respond(
    request_der: bytes,
    signer: TsaSigner,
    *,
    gen_time: datetime.datetime,
    serial_number: int,
    accuracy: datetime.timedelta | None = None,
    signing_time: bool = True,
) -> TimestampReply:
    """The authority's answer to ``request_der``: a granted token or a rejection.

    Never raises for a bad request: every refusal is an RFC 3161 rejection with its
    PKIFailureInfo. ``gen_time`` (UTC; whole seconds are kept) is the time vouched
    for; ``serial_number`` must be unique per authority (the caller keeps them so).
    """
    try:
        request = _parse_request(request_der, signer.policy)
    except _Refuse as refused:
        return rejection(refused.failure, refused.text)
    gen_time = _utc(gen_time).replace(microsecond=0)
    tst: dict[str, Any] = {
        "version": "v1",
        "policy": signer.policy,
        "message_imprint": {
            "hash_algorithm": {"algorithm": request.hash_algorithm},
            "hashed_message": request.digest,
        },
        "serial_number": serial_number,
        "gen_time": gen_time,
    }
    if accuracy is not None:
        tst["accuracy"] = _accuracy(accuracy)
    if request.nonce is not None:
        tst["nonce"] = request.nonce
    tst_der = bytes(tsp.TSTInfo(tst).dump())
    token = _sign(tst_der, signer, gen_time if signing_time else None, request.cert_req)
    resp = _TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
    return TimestampReply(bytes(resp.dump()), granted=True, serial_number=serial_number)


def _accuracy(accuracy: datetime.timedelta) -> dict[str, int]:
    micros = int(accuracy / datetime.timedelta(microseconds=1))
    if micros <= 0:
        raise ValueError("accuracy must be positive")
    seconds, rest = divmod(micros, 1_000_000)
    millis, micros = divmod(rest, 1000)
    # Zero fields are left out (RFC 3161: millis and micros range 1..999).
    fields = {"seconds": seconds, "millis": millis, "micros": micros}
    return {name: value for name, value in fields.items() if value}


def _sign(
    tst_der: bytes,
    signer: TsaSigner,
    signing_time: datetime.datetime | None,
    include_cert: bool,
) -> cms.ContentInfo:
    cert_der = signer.cert.public_bytes(serialization.Encoding.DER)
    cert = asn1_x509.Certificate.load(cert_der)
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    # hashAlgorithm SHA-256 is the default, so DER leaves it out.
                    "cert_hash": hashlib.sha256(cert_der).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName("directory_name", cert.issuer)],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )
    attributes: list[dict[str, Any]] = [
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
        {"type": "signing_certificate_v2", "values": [ess]},
    ]
    if signing_time is not None:
        # RFC 5652: UTCTime up to 2049, GeneralizedTime from 2050.
        kind = "utc_time" if signing_time.year < 2050 else "generalized_time"
        attributes.append({"type": "signing_time", "values": [cms.Time({kind: signing_time})]})
    # A SET OF: asn1crypto sorts the encodings (DER), as verifiers re-encode them so.
    signed_attrs = cms.CMSAttributes(attributes)
    signature = signer.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                "issuer_and_serial_number",
                {"issuer": cert.issuer, "serial_number": cert.serial_number},
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    signed_data: dict[str, Any] = {
        # v3: the encapsulated content is not id-data (RFC 5652 section 5.1).
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {
            "content_type": "tst_info",
            "content": cms.ParsableOctetString(tst_der),
        },
        "signer_infos": [signer_info],
    }
    if include_cert:
        signed_data["certificates"] = [cert]
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


# -- verification ----------------------------------------------------------------------------


def parse_response(der: bytes) -> TimestampResponse:
    """A TimeStampResp's status, failure bits, text and token; ``malformed`` if not one."""
    try:
        resp = _TimeStampResp.load(der, strict=True)
        status = resp["status"]
        name = str(status["status"].native)
        fail_info = status["fail_info"].native
        failures = tuple(sorted(str(f) for f in fail_info)) if fail_info else ()
        texts = status["status_string"].native or []
        token_value = resp["time_stamp_token"]
        # Absent is Void; not .native, which decodes the whole token and then makes dump()
        # re-encode it (some 60 ms a reply: the gateway's event loop paid it per checkpoint).
        token = None if isinstance(token_value, Void) else bytes(token_value.dump())
    except _ASN1_ERRORS:
        raise TimestampError("malformed", "not a DER TimeStampResp") from None
    return TimestampResponse(name, failures, "; ".join(str(t) for t in texts), token)


def verify_response(
    der: bytes,
    data: bytes,
    trusted_cas: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
    policy: str | None = None,
    tsa_certs: Sequence[x509.Certificate] = (),
) -> VerifiedTimestamp:
    """``verify_token`` on a TimeStampResp's token; ``rejected`` unless it was granted."""
    response = parse_response(der)
    if response.status not in ("granted", "granted_with_mods"):
        detail = f"status {response.status} {','.join(response.failures)} {response.text}"
        raise TimestampError("rejected", detail.strip())
    if response.token is None:
        raise TimestampError("malformed", "granted without a token")
    return verify_token(
        response.token, data, trusted_cas, nonce=nonce, policy=policy, tsa_certs=tsa_certs
    )


def verify_token(
    token_der: bytes,
    data: bytes,
    trusted_cas: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
    policy: str | None = None,
    tsa_certs: Sequence[x509.Certificate] = (),
) -> VerifiedTimestamp:
    """Verify a timestamp token (a CMS ContentInfo) over ``data``; return what it vouches.

    ``nonce``: when given, the token must echo it. ``policy``: when given, the
    token's policy must be it. ``tsa_certs``: where to find the signer certificate
    when the token does not carry it. The signer certificate must be issued
    directly by one of ``trusted_cas`` and both valid at the token's genTime.
    """
    parsed = _parse_token(token_der)
    imprint_alg = parsed.imprint_algorithm
    if imprint_alg not in _DIGESTS:
        raise TimestampError("unsupported_algorithm", f"message imprint uses {imprint_alg}")
    if hashlib.new(imprint_alg, data).digest() != parsed.imprint:
        raise TimestampError("imprint_mismatch", "the token is for other data")
    if nonce is not None and parsed.nonce != nonce:
        raise TimestampError("nonce_mismatch", "the token does not echo the request's nonce")
    if policy is not None and parsed.policy != policy:
        raise TimestampError("policy_mismatch", f"token policy {parsed.policy}")
    try:
        signer_cert = _find_signer(parsed, tsa_certs)
        _check_signed_attributes(parsed, signer_cert)
        _check_signature(parsed, signer_cert)
        _check_signer_certificate(signer_cert, trusted_cas, parsed.gen_time)
    except _ASN1_ERRORS:
        # asn1crypto decodes lazily: a broken inner part (a certificate in the token,
        # an empty ESSCertID list) shows only when read. Fail closed, with a reason.
        raise TimestampError("malformed", "a part of the token does not parse") from None
    return VerifiedTimestamp(
        gen_time=parsed.gen_time,
        serial_number=parsed.serial_number,
        policy=parsed.policy,
        nonce=parsed.nonce,
        accuracy=parsed.accuracy,
        hash_algorithm=imprint_alg,
        tsa_cert_der=signer_cert.public_bytes(serialization.Encoding.DER),
    )


@dataclass(frozen=True)
class _Token:
    tst: Any  # tsp.TSTInfo
    tst_der: bytes
    signer_info: Any  # cms.SignerInfo
    certificates: tuple[bytes, ...]
    imprint_algorithm: str
    imprint: bytes
    nonce: int | None
    policy: str
    serial_number: int
    gen_time: datetime.datetime
    accuracy: datetime.timedelta | None


def _parse_token(token_der: bytes) -> _Token:
    try:
        info = cms.ContentInfo.load(token_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise TimestampError("malformed", "the token is not a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info" or encap["content"].native is None:
            raise TimestampError("malformed", "the SignedData does not hold a TSTInfo")
        tst_der = bytes(encap["content"].contents)
        tst = tsp.TSTInfo.load(tst_der, strict=True)
        tst.native  # parse everything now: asn1crypto is lazy  # noqa: B018
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise TimestampError("malformed", "a token has exactly one signer")
        signer_info = signer_infos[0]
        signer_info.native  # noqa: B018
        certificates = tuple(
            bytes(choice.chosen.dump())
            for choice in (signed["certificates"] or [])
            if choice.name == "certificate"
        )
        if tst["version"].native != "v1":
            raise TimestampError("malformed", "unsupported TSTInfo version")
        gen_time = tst["gen_time"].native
        if not isinstance(gen_time, datetime.datetime):
            raise TimestampError("malformed", "genTime is not a time")
        accuracy = _parse_accuracy(tst["accuracy"].native)
        nonce = tst["nonce"].native
        return _Token(
            tst=tst,
            tst_der=tst_der,
            signer_info=signer_info,
            certificates=certificates,
            imprint_algorithm=str(tst["message_imprint"]["hash_algorithm"]["algorithm"].native),
            imprint=bytes(tst["message_imprint"]["hashed_message"].native),
            nonce=None if nonce is None else int(nonce),
            policy=str(tst["policy"].native),
            serial_number=int(tst["serial_number"].native),
            gen_time=_utc(gen_time),
            accuracy=accuracy,
        )
    except _ASN1_ERRORS:
        raise TimestampError("malformed", "not a DER timestamp token") from None


def _parse_accuracy(value: dict[str, int | None] | None) -> datetime.timedelta | None:
    if value is None:
        return None
    return datetime.timedelta(
        seconds=value.get("seconds") or 0,
        milliseconds=value.get("millis") or 0,
        microseconds=value.get("micros") or 0,
    )


def _find_signer(token: _Token, extra: Sequence[x509.Certificate]) -> x509.Certificate:
    sid = token.signer_info["sid"]
    candidates = [x509.load_der_x509_certificate(der) for der in token.certificates]
    candidates.extend(extra)
    for cert in candidates:
        if _matches_sid(sid, cert):
            return cert
    raise TimestampError("signer_missing", "the signer's certificate is not available")


def _matches_sid(sid: Any, cert: x509.Certificate) -> bool:
    if sid.name == "issuer_and_serial_number":
        asn1 = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        return bool(
            sid.chosen["issuer"] == asn1.issuer
            and sid.chosen["serial_number"].native == asn1.serial_number
        )
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return False
    return bool(ski.digest == sid.chosen.native)


def _single_attribute(attributes: Any, name: str) -> Any | None:
    found = [a for a in attributes if a["type"].native == name]
    if not found:
        return None
    if len(found) != 1 or len(found[0]["values"]) != 1:
        raise TimestampError("malformed", f"attribute {name} must occur once with one value")
    return found[0]["values"][0]


def _signer_digest(token: _Token) -> str:
    algorithm = str(token.signer_info["digest_algorithm"]["algorithm"].native)
    if algorithm not in _DIGESTS:
        raise TimestampError("unsupported_algorithm", f"signer digest {algorithm}")
    return algorithm


def _check_signed_attributes(token: _Token, signer_cert: x509.Certificate) -> None:
    attributes = token.signer_info["signed_attrs"]
    if not attributes:
        raise TimestampError("malformed", "a token's signer must use signed attributes")
    types = [a["type"].dotted for a in attributes]
    if len(types) != len(set(types)):
        raise TimestampError("malformed", "an attribute type occurs twice")
    content_type = _single_attribute(attributes, "content_type")
    if content_type is None or content_type.native != "tst_info":
        raise TimestampError("content_mismatch", "contentType attribute is not id-ct-TSTInfo")
    digest = _single_attribute(attributes, "message_digest")
    algorithm = _signer_digest(token)
    if digest is None or digest.native != hashlib.new(algorithm, token.tst_der).digest():
        raise TimestampError("content_mismatch", "messageDigest is not the TSTInfo's digest")
    cert_der = signer_cert.public_bytes(serialization.Encoding.DER)
    v2 = _single_attribute(attributes, "signing_certificate_v2")
    v1 = _single_attribute(attributes, "signing_certificate")
    if v2 is not None:
        first = v2["certs"][0]
        hash_alg = str(first["hash_algorithm"]["algorithm"].native)
        if hash_alg not in _DIGESTS:
            raise TimestampError("unsupported_algorithm", f"ESSCertIDv2 uses {hash_alg}")
        expected = hashlib.new(hash_alg, cert_der).digest()
    elif v1 is not None:
        # ESSCertID (RFC 2634) is SHA-1 by definition; other authorities still send it.
        first = v1["certs"][0]
        expected = hashlib.sha1(cert_der, usedforsecurity=False).digest()
    else:
        raise TimestampError("certificate_binding", "no signing-certificate attribute")
    if first["cert_hash"].native != expected:
        raise TimestampError("certificate_binding", "ESSCertID names another certificate")
    issuer_serial = first["issuer_serial"]
    if issuer_serial.native is not None:
        asn1 = asn1_x509.Certificate.load(cert_der)
        names = [n.chosen for n in issuer_serial["issuer"] if n.name == "directory_name"]
        if (
            issuer_serial["serial_number"].native != asn1.serial_number
            or len(names) != 1
            or names[0] != asn1.issuer
        ):
            raise TimestampError("certificate_binding", "ESSCertID issuerSerial mismatch")


def _check_signature(token: _Token, signer_cert: x509.Certificate) -> None:
    signer_info = token.signer_info
    hash_cls = _DIGESTS[_signer_digest(token)][1]
    signature = bytes(signer_info["signature"].native)
    # The signature covers the attributes' DER as a SET OF, not as the [0] field.
    signed = b"\x31" + bytes(signer_info["signed_attrs"].dump())[1:]
    try:
        scheme = str(signer_info["signature_algorithm"].signature_algo)
    except ValueError:
        raise TimestampError("unsupported_algorithm", "unknown signature algorithm") from None
    public_key = signer_cert.public_key()
    try:
        if scheme == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, signed, ec.ECDSA(hash_cls()))
        elif scheme == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signed, padding.PKCS1v15(), hash_cls())
        else:
            raise TimestampError("unsupported_algorithm", f"signature scheme {scheme}")
    except InvalidSignature:
        raise TimestampError("bad_signature", "the token's signature does not verify") from None


def check_authority_certificate(
    cert: x509.Certificate,
    trusted_cas: Sequence[x509.Certificate],
    at: datetime.datetime,
) -> None:
    """What a token's signer certificate must be, checked before approving an authority:
    issued by one of ``trusted_cas``, valid at ``at``, critical EKU timeStamping only."""
    _check_signer_certificate(cert, trusted_cas, _utc(at))


def _check_signer_certificate(
    cert: x509.Certificate,
    trusted_cas: Sequence[x509.Certificate],
    at: datetime.datetime,
) -> None:
    issuer = next((ca for ca in trusted_cas if _issued_by(cert, ca)), None)
    if issuer is None:
        raise TimestampError("untrusted_signer", "not issued by a trusted CA")
    for c in (cert, issuer):
        if not c.not_valid_before_utc <= at <= c.not_valid_after_utc:
            raise TimestampError("untrusted_signer", "a certificate was not valid at genTime")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise TimestampError(
            "wrong_key_usage", "no extended key usage or basic constraints"
        ) from None
    except ValueError:
        raise TimestampError(
            "malformed", "the signer certificate's extensions do not parse"
        ) from None
    if basic.ca:
        raise TimestampError("wrong_key_usage", "a CA certificate cannot sign timestamps")
    # RFC 3161 section 2.3: exactly one EKU, id-kp-timeStamping, marked critical.
    if not eku.critical or list(eku.value) != [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampError("wrong_key_usage", "EKU must be critical timeStamping only")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise TimestampError("wrong_key_usage", "key usage does not allow signatures")


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value
