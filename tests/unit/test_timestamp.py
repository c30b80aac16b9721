"""security/timestamp.py: RFC 3161 requests, the authority's answers, token verification."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki import new_ca
from zhol.core.errors import ZholError
from zhol.security.ca import (
    CertificateAuthority,
    create_csr,
    issue_certificate,
    issue_tsa_certificate,
)
from zhol.security.keys import generate_private_key
from zhol.security.timestamp import (
    ZHOL_TSA_POLICY,
    TimestampError,
    TsaSigner,
    build_request,
    parse_response,
    respond,
    verify_response,
    verify_token,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
DATA = b"KZ/GOV/MJ/gw1\n42\nroot-hash\n"
NONCE = 0x1234_5678_9ABC_DEF0


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return new_ca("Zhol KZ Root CA", NOW - dt.timedelta(days=1))


@pytest.fixture(scope="module")
def signer(ca: CertificateAuthority) -> TsaSigner:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = issue_tsa_certificate(ca, create_csr(key, "KZ-tsa"), "KZ-tsa", NOW - dt.timedelta(1))
    return TsaSigner(key, cert)


def grant(signer: TsaSigner, request: bytes | None = None, **kwargs: object) -> bytes:
    request = request if request is not None else build_request(DATA, nonce=NONCE)
    reply = respond(request, signer, gen_time=NOW, serial_number=77, **kwargs)  # type: ignore[arg-type]
    assert reply.granted, parse_response(reply.der)
    return reply.der


def token_of(response: bytes) -> bytes:
    token = parse_response(response).token
    assert token is not None
    return token


def reason(exc: pytest.ExceptionInfo[TimestampError]) -> str:
    return exc.value.reason


# -- round trip ------------------------------------------------------------------------------


def test_a_granted_token_verifies_and_says_what_it_vouches(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    response = grant(signer, accuracy=dt.timedelta(seconds=1, milliseconds=5))
    verified = verify_response(response, DATA, [ca.cert], nonce=NONCE, policy=ZHOL_TSA_POLICY)
    assert verified.gen_time == NOW.replace(microsecond=0)
    assert verified.serial_number == 77
    assert verified.nonce == NONCE
    assert verified.policy == ZHOL_TSA_POLICY
    assert verified.accuracy == dt.timedelta(seconds=1, milliseconds=5)
    assert verified.hash_algorithm == "sha256"
    assert verified.tsa_cert_der == signer.cert.public_bytes(Encoding.DER)


def test_the_certificate_is_included_only_when_asked(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    response = grant(signer, build_request(DATA, nonce=None, cert_req=False), signing_time=False)
    token = token_of(response)
    with pytest.raises(TimestampError) as exc:
        verify_token(token, DATA, [ca.cert])
    assert reason(exc) == "signer_missing"
    verified = verify_token(token, DATA, [ca.cert], tsa_certs=[signer.cert])
    assert verified.nonce is None
    assert verified.accuracy is None


def test_the_token_binds_its_signer_with_ess_cert_id_v2(signer: TsaSigner) -> None:
    info = cms.ContentInfo.load(token_of(grant(signer)))
    attrs = info["content"]["signer_infos"][0]["signed_attrs"]
    names = {a["type"].native for a in attrs}
    assert names == {"content_type", "message_digest", "signing_certificate_v2", "signing_time"}
    ess = next(a for a in attrs if a["type"].native == "signing_certificate_v2")
    cert_hash = ess["values"][0]["certs"][0]["cert_hash"].native
    assert cert_hash == hashlib.sha256(signer.cert.public_bytes(Encoding.DER)).digest()


# -- refusals --------------------------------------------------------------------------------


def _request(**fields: object) -> bytes:
    base: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(DATA).digest(),
        },
    }
    base.update(fields)
    return bytes(tsp.TimeStampReq(base).dump())


SHA1_IMPRINT = {"hash_algorithm": {"algorithm": "sha1"}, "hashed_message": b"\x00" * 20}
SHORT_IMPRINT = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 20}
EXTENSION = [{"extn_id": "1.2.3.4", "extn_value": b"\x05\x00"}]


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (b"", "bad_data_format"),
        (b"\x30\x03\x02\x01\x01", "bad_data_format"),
        (build_request(DATA, nonce=1) + b"\x00", "bad_data_format"),
        (_request(version="v2"), "bad_data_format"),
        (_request(message_imprint=SHA1_IMPRINT), "bad_alg"),
        (_request(message_imprint=SHORT_IMPRINT), "bad_data_format"),
        (_request(req_policy="1.2.3.4"), "unaccepted_policy"),
        (_request(extensions=EXTENSION), "unaccepted_extensions"),
        (_request(nonce=-5), "bad_data_format"),
        (_request(nonce=1 << 600), "bad_data_format"),
    ],
    ids=[
        "empty",
        "truncated",
        "trailing-bytes",
        "version",
        "sha1",
        "imprint-length",
        "policy",
        "extensions",
        "negative-nonce",
        "huge-nonce",
    ],
)
def test_a_bad_request_gets_an_rfc3161_rejection(
    ca: CertificateAuthority, signer: TsaSigner, request_der: bytes, failure: str
) -> None:
    reply = respond(request_der, signer, gen_time=NOW, serial_number=1)
    assert not reply.granted
    assert reply.failure == failure
    parsed = parse_response(reply.der)
    assert (parsed.status, parsed.failures, parsed.token) == ("rejection", (failure,), None)
    with pytest.raises(TimestampError) as exc:
        verify_response(reply.der, DATA, [ca.cert])
    assert reason(exc) == "rejected"


def test_our_own_policy_may_be_requested(ca: CertificateAuthority, signer: TsaSigner) -> None:
    response = grant(signer, build_request(DATA, nonce=3, policy=ZHOL_TSA_POLICY))
    assert verify_response(response, DATA, [ca.cert], nonce=3).policy == ZHOL_TSA_POLICY


# -- verification failures -------------------------------------------------------------------


def test_a_token_for_other_data_is_refused(ca: CertificateAuthority, signer: TsaSigner) -> None:
    with pytest.raises(TimestampError) as exc:
        verify_response(grant(signer), DATA + b"x", [ca.cert])
    assert reason(exc) == "imprint_mismatch"


def test_a_token_with_another_nonce_is_refused(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    with pytest.raises(TimestampError) as exc:
        verify_response(grant(signer), DATA, [ca.cert], nonce=NONCE + 1)
    assert reason(exc) == "nonce_mismatch"


def test_a_token_under_another_policy_is_refused(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    with pytest.raises(TimestampError) as exc:
        verify_response(grant(signer), DATA, [ca.cert], policy="1.2.3.4")
    assert reason(exc) == "policy_mismatch"


def test_a_token_from_an_unapproved_ca_is_refused(signer: TsaSigner) -> None:
    other = new_ca("Some Other CA", NOW - dt.timedelta(days=1))
    with pytest.raises(TimestampError) as exc:
        verify_response(grant(signer), DATA, [other.cert])
    assert reason(exc) == "untrusted_signer"


def test_a_token_dated_outside_the_certificate_is_refused(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    late = signer.cert.not_valid_after_utc + dt.timedelta(days=1)
    reply = respond(build_request(DATA, nonce=None), signer, gen_time=late, serial_number=2)
    with pytest.raises(TimestampError) as exc:
        verify_response(reply.der, DATA, [ca.cert])
    assert reason(exc) == "untrusted_signer"


def test_a_token_signed_under_a_non_timestamping_certificate_is_refused(
    ca: CertificateAuthority,
) -> None:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    member = "KZ/GOV/MJ"
    cert = issue_certificate(ca, create_csr(key, member), "sign", member, NOW - dt.timedelta(1))
    with pytest.raises(TimestampError) as exc:
        verify_response(grant(TsaSigner(key, cert)), DATA, [ca.cert])
    assert reason(exc) == "wrong_key_usage"


TS_ONLY = [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
TS_AND_TLS = [*TS_ONLY, x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]


@pytest.mark.parametrize(
    ("usages", "critical"), [(TS_ONLY, False), (TS_AND_TLS, True)], ids=["non-critical", "extra"]
)
def test_an_eku_other_than_critical_timestamping_only_is_refused(
    ca: CertificateAuthority, usages: list[x509.ObjectIdentifier], critical: bool
) -> None:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "lax-tsa")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=critical)
        .sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    with pytest.raises(TimestampError) as exc:
        verify_response(grant(TsaSigner(key, cert)), DATA, [ca.cert])
    assert reason(exc) == "wrong_key_usage"


def _token_parts(token: bytes) -> tuple[cms.ContentInfo, cms.SignerInfo]:
    info = cms.ContentInfo.load(token)
    return info, info["content"]["signer_infos"][0]


def test_a_flipped_signature_bit_is_refused(ca: CertificateAuthority, signer: TsaSigner) -> None:
    info, signer_info = _token_parts(token_of(grant(signer)))
    signature = bytearray(signer_info["signature"].native)
    signature[-1] ^= 0x01
    signer_info["signature"] = bytes(signature)
    with pytest.raises(TimestampError) as exc:
        verify_token(info.dump(force=True), DATA, [ca.cert])
    assert reason(exc) == "bad_signature"


def test_a_changed_signed_attribute_is_refused(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    info, signer_info = _token_parts(token_of(grant(signer)))
    attrs = signer_info["signed_attrs"]
    for attr in attrs:
        if attr["type"].native == "signing_time":
            attr["values"] = [cms.Time({"utc_time": NOW + dt.timedelta(days=3)})]
    with pytest.raises(TimestampError) as exc:
        verify_token(info.dump(force=True), DATA, [ca.cert])
    assert reason(exc) == "bad_signature"


def test_a_changed_tstinfo_is_refused(ca: CertificateAuthority, signer: TsaSigner) -> None:
    info, _ = _token_parts(token_of(grant(signer)))
    encap = info["content"]["encap_content_info"]
    tst = tsp.TSTInfo.load(encap["content"].contents)
    tst["gen_time"] = NOW - dt.timedelta(days=365)
    encap["content"] = cms.ParsableOctetString(tst.dump(force=True))
    with pytest.raises(TimestampError) as exc:
        verify_token(info.dump(force=True), DATA, [ca.cert])
    assert reason(exc) == "content_mismatch"


def _resign(
    signer: TsaSigner, token: bytes, change: str
) -> bytes:  # an authority's key used to sign attributes naming another certificate
    info, signer_info = _token_parts(token)
    attrs = signer_info["signed_attrs"]
    for attr in attrs:
        if attr["type"].native == "signing_certificate_v2":
            ess = attr["values"][0]["certs"][0]
            if change == "hash":
                ess["cert_hash"] = b"\x00" * 32
            elif change == "serial":
                ess["issuer_serial"]["serial_number"] = 12345
            elif change == "empty":
                attr["values"][0]["certs"] = []
    new_attrs = cms.CMSAttributes(list(attrs))
    signature = signer.key.sign(new_attrs.dump(force=True), ec.ECDSA(hashes.SHA256()))
    signer_info["signed_attrs"] = new_attrs
    signer_info["signature"] = signature
    return bytes(info.dump(force=True))


@pytest.mark.parametrize("change", ["hash", "serial"])
def test_an_ess_cert_id_naming_another_certificate_is_refused(
    ca: CertificateAuthority, signer: TsaSigner, change: str
) -> None:
    token = _resign(signer, token_of(grant(signer)), change)
    with pytest.raises(TimestampError) as exc:
        verify_token(token, DATA, [ca.cert])
    assert reason(exc) == "certificate_binding"


def test_an_empty_ess_cert_id_list_is_malformed(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    token = _resign(signer, token_of(grant(signer)), "empty")
    with pytest.raises(TimestampError) as exc:
        verify_token(token, DATA, [ca.cert])
    assert reason(exc) == "malformed"


def test_a_resigned_token_that_keeps_the_binding_still_verifies(
    ca: CertificateAuthority, signer: TsaSigner
) -> None:
    # The control for the test above: re-signing itself is not what gets refused.
    token = _resign(signer, token_of(grant(signer)), "none")
    assert verify_token(token, DATA, [ca.cert]).serial_number == 77


@pytest.mark.parametrize("der", [b"", b"\x30\x00", b"garbage", b"\x30\x82\xff\xff"])
def test_malformed_answers_and_tokens_are_refused(ca: CertificateAuthority, der: bytes) -> None:
    with pytest.raises(TimestampError) as exc:
        parse_response(der)
    assert reason(exc) == "malformed"
    with pytest.raises(TimestampError) as exc:
        verify_token(der, DATA, [ca.cert])
    assert reason(exc) == "malformed"


# -- the TSA certificate profile -------------------------------------------------------------


def test_a_tsa_certificate_has_critical_eku_timestamping_only(signer: TsaSigner) -> None:
    eku = signer.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
    usage = signer.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not signer.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_tsa_certificate_needs_a_proper_name_and_csr(ca: CertificateAuthority) -> None:
    key = generate_private_key()
    with pytest.raises(ZholError) as exc:
        issue_tsa_certificate(ca, create_csr(key, "bad name/"), "bad name/", NOW)
    assert exc.value.code.name == "InvalidIdentifier"
    with pytest.raises(ZholError) as exc:
        issue_tsa_certificate(ca, create_csr(key, "KZ-tsa"), "KZ-other", NOW)
    assert exc.value.code.name == "InvalidCsr"
