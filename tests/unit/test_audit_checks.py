"""The audit's pure checks on records sealed here: the signer is the member the signed
header names, and each signer certificate is valid at the time a timestamp vouches for."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki import issue_der, new_ca
from zhol.bus.v1 import bus_pb2
from zhol.cli.audit_checks import check_rows, evidence_times, validate_signers
from zhol.gateway.messagelog import signed_values
from zhol.security.ca import CertificateAuthority
from zhol.security.evidence_build import Row
from zhol.security.keys import generate_private_key
from zhol.security.sealing import REQUEST_TYPE, RESPONSE_TYPE, Signer, seal
from zhol.security.validation import CertificateValidator

NOW = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
CONSUMER = "KZ/GOV/MLSPP"
PROVIDER = "KZ/GOV/MJ"


def _member_pb(text: str) -> bus_pb2.MemberId:
    instance, member_class, code = text.split("/")
    return bus_pb2.MemberId(instance=instance, member_class=member_class, member_code=code)


def _header(kind: int) -> bytes:
    return bus_pb2.MessageHeader(
        message_id="7d3f1a52-5a8e-4c34-9a9e-0d8f1c2b3a41",
        protocol_version=1,
        kind=kind,
        client=bus_pb2.SubsystemId(member=_member_pb(CONSUMER), subsystem_code="pension"),
        service=bus_pb2.ServiceId(
            subsystem=bus_pb2.SubsystemId(member=_member_pb(PROVIDER), subsystem_code="population"),
            grpc_service="zhol.population.v1.PopulationRegistry",
            method="GetPerson",
        ),
        issued_at_unix_ms=NOW_MS,
    ).SerializeToString()


def _signer(ca: CertificateAuthority, member: str, days: int = 365) -> Signer:
    key = generate_private_key()
    return Signer(key, issue_der(ca, key, "sign", member, NOW, validity_days=days))


def _row(signer: Signer, kind: int, seq: int = 1, logged_ms: int = NOW_MS) -> Row:
    payload_type = REQUEST_TYPE if kind == bus_pb2.MESSAGE_KIND_REQUEST else RESPONSE_TYPE
    header = _header(kind)
    sealed, digest = seal(signer, payload_type, header, b"body")
    signed = signed_values(header)
    assert signed is not None
    columns = {k: v for k, v in signed.items() if k != "signer"}
    columns.update(
        seq=seq, direction="out", logged_at_ms=logged_ms, peer="", signed_digest=digest.hex()
    )
    return Row(columns, header, b"body", sealed.signature, sealed.signer_cert_sha256)


def _reasons(ca: CertificateAuthority, signer: Signer, row: Row, at_ms: int) -> list[str]:
    validator = CertificateValidator([ca.cert.public_bytes(Encoding.DER)], [])
    signers = validate_signers(
        {row.signer_cert_sha256: signer.cert_der}, {row.signer_cert_sha256: (at_ms, at_ms)},
        validator,
    )  # fmt: skip
    return [f.reason for f in check_rows([row], signers).failures]


def test_a_request_must_be_signed_by_its_clients_member() -> None:
    ca = new_ca("Test CA", NOW)
    consumer, provider = _signer(ca, CONSUMER), _signer(ca, PROVIDER)
    request = bus_pb2.MESSAGE_KIND_REQUEST
    assert _reasons(ca, consumer, _row(consumer, request), NOW_MS) == []
    # A valid signature by a genuine certificate, of the wrong member.
    assert _reasons(ca, provider, _row(provider, request), NOW_MS) == ["signer-mismatch"]


def test_a_response_must_be_signed_by_the_providers_member() -> None:
    ca = new_ca("Test CA", NOW)
    consumer, provider = _signer(ca, CONSUMER), _signer(ca, PROVIDER)
    response = bus_pb2.MESSAGE_KIND_RESPONSE
    assert _reasons(ca, provider, _row(provider, response), NOW_MS) == []
    assert _reasons(ca, consumer, _row(consumer, response), NOW_MS) == ["signer-mismatch"]


def test_each_record_takes_the_time_of_the_first_timestamped_checkpoint_covering_it() -> None:
    ca = new_ca("Test CA", NOW)
    signer = _signer(ca, CONSUMER)
    rows = [_row(signer, bus_pb2.MESSAGE_KIND_REQUEST, seq, NOW_MS + seq) for seq in range(1, 6)]
    times = evidence_times(rows, {3: NOW_MS + 1000, 4: NOW_MS + 2000})
    # seq 1-3 -> checkpoint 3's token, seq 4 -> checkpoint 4's, seq 5 -> its logged time.
    assert times.by_cert == {signer.cert_sha256: (NOW_MS + 5, NOW_MS + 2000)}
    assert (times.timestamped, times.logged) == (4, 1)  # seq 5 is in no checkpoint yet


def test_a_certificate_expired_at_the_timestamped_time_is_refused() -> None:
    ca = new_ca("Test CA", NOW)
    signer = _signer(ca, CONSUMER, days=1)
    row = _row(signer, bus_pb2.MESSAGE_KIND_REQUEST)
    # Logged while the certificate was valid, but the only timestamp that vouches for
    # the record's existence came after it expired.
    two_days_ms = 2 * 86_400_000
    times = evidence_times([row], {1: NOW_MS + two_days_ms})
    validator = CertificateValidator([ca.cert.public_bytes(Encoding.DER)], [])
    signers = validate_signers({row.signer_cert_sha256: signer.cert_der}, times.by_cert, validator)
    assert [f.reason for f in check_rows([row], signers).failures] == ["certificate-invalid"]
    # Without that timestamp the logged time decides, and the certificate was valid then.
    times = evidence_times([row], {})
    signers = validate_signers({row.signer_cert_sha256: signer.cert_der}, times.by_cert, validator)
    assert check_rows([row], signers).failures == ()
