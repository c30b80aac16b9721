"""Timestamps of checkpoints, the pure parts: the overdue rule, health and status, the
registry's approved authorities in the global configuration, and accepting a reply."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki import new_ca
from zhol.core.errors import ZholError
from zhol.gateway.health import NOT_SERVING, TIMESTAMPING_OVERDUE, HealthInputs, decide
from zhol.gateway.status import ConfFacts, HealthFacts, assess
from zhol.gateway.timestamping import timestamping_overdue, verify_reply
from zhol.registry.globalconf import build_signed_global_conf
from zhol.registry.model import Snapshot
from zhol.registry.settings import RegistrySettings, load_timestamp_authorities
from zhol.security.ca import (
    CertificateAuthority,
    create_csr,
    issue_certificate,
    issue_tsa_certificate,
)
from zhol.security.globalconf import GlobalConf, TimestampAuthority, Tunables, verify_global_conf
from zhol.security.keys import generate_private_key
from zhol.security.timestamp import TimestampError, TsaSigner, build_request, respond

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LIMIT_MS = 4 * 3600 * 1000
NOTE = b"zhol.kz/KZ/GOV/MJ/gw1\n12\nq6o0cS1GnDXTCrQ6PjlTTwUd0j8=\n\n- sig\n"


@pytest.mark.parametrize(
    ("now", "last_success", "oldest_pending", "overdue"),
    [
        (10 * LIMIT_MS, None, None, False),  # nothing waits for a token
        (10 * LIMIT_MS, 0, None, False),  # ...however old the last token
        (LIMIT_MS - 1, None, 0, False),  # a checkpoint waits, within the limit
        (LIMIT_MS, None, 0, True),  # ...and at the limit
        (LIMIT_MS + 5, 5, 0, True),  # no success since the limit
        (LIMIT_MS + 4, 5, 0, False),  # a success within the limit
        # An idle gateway's last token is old: its new checkpoint gets the whole limit.
        (LIMIT_MS + 100, 0, 200, False),
        (LIMIT_MS + 200, 0, 200, True),
    ],
)
def test_timestamping_is_overdue_once_a_checkpoint_waited_the_limit(
    now: int, last_success: int | None, oldest_pending: int | None, overdue: bool
) -> None:
    assert (
        timestamping_overdue(
            now_ms=now,
            limit_ms=LIMIT_MS,
            last_success_ms=last_success,
            oldest_pending_ms=oldest_pending,
        )
        is overdue
    )


def test_overdue_timestamping_turns_health_not_serving_and_status_names_the_code() -> None:
    health = decide(HealthInputs(NOW_MS, NOW_MS + 1000, True, None, timestamping_overdue=True))
    assert health.status == NOT_SERVING
    assert health.reasons == (TIMESTAMPING_OVERDUE,)
    assert decide(HealthInputs(NOW_MS, NOW_MS + 1000, True, None)).serving
    facts = HealthFacts(True, "NOT_SERVING", health.reasons)
    findings = assess((), ConfFacts("valid", 1, NOW_MS, NOW_MS + 1000), NOW_MS, facts)
    assert [f.code for f in findings] == ["TimestampingFailed"]


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return new_ca("Zhol KZ Root CA", NOW - dt.timedelta(days=1))


def tsa_signer(ca: CertificateAuthority, name: str = "KZ-tsa") -> TsaSigner:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = issue_tsa_certificate(ca, create_csr(key, name), name, NOW - dt.timedelta(1))
    return TsaSigner(key, cert)


def pem(*certs: object) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)  # type: ignore[attr-defined]


def test_the_registry_approves_timestamping_certificates_only(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    (tmp_path / "tsa.pem").write_bytes(pem(tsa_signer(ca).cert))
    other = new_ca("Other TSA CA", NOW - dt.timedelta(days=1))
    (tmp_path / "other.pem").write_bytes(pem(tsa_signer(other, "XX-tsa").cert, other.cert))
    key = generate_private_key()
    member = "KZ/GOV/MJ"
    sign_cert = issue_certificate(ca, create_csr(key, member), "sign", member, NOW)
    (tmp_path / "sign.pem").write_bytes(pem(sign_cert))

    def load(*entries: str) -> tuple[TimestampAuthority, ...]:
        settings = RegistrySettings(tmp_path, timestamp_authorities=entries)
        return load_timestamp_authorities(settings, ca.cert, NOW)

    first, second = load("http://127.0.0.1:1/ tsa.pem", "https://tsa.example/ other.pem")
    assert (first.url, first.ca_cert_der) == ("http://127.0.0.1:1/", b"")
    assert second.ca_cert_der == other.cert.public_bytes(Encoding.DER)
    with pytest.raises(ZholError) as refused:
        load("http://127.0.0.1:1/ sign.pem")
    assert refused.value.full_code == "Server.Registry.InvalidCertificate"
    with pytest.raises(ZholError) as missing:
        load("http://127.0.0.1:1/ absent.pem")
    assert missing.value.full_code == "Server.Registry.NotConfigured"
    with pytest.raises(ValueError):
        RegistrySettings(tmp_path, timestamp_authorities=("tsa.pem",))


def published(ca: CertificateAuthority, authorities: tuple[TimestampAuthority, ...]) -> GlobalConf:
    key = generate_private_key()
    anchor = issue_tsa_certificate(ca, create_csr(key, "KZ-conf"), "KZ-conf", NOW)
    anchor_der = anchor.public_bytes(Encoding.DER)
    signed = build_signed_global_conf(
        Snapshot(0, (), (), (), (), ()),
        instance="KZ",
        version=1,
        now_ms=NOW_MS,
        tunables=Tunables(60, 600, 60, 4 << 20),
        ca_certs_der=(ca.cert.public_bytes(Encoding.DER),),
        signing_key=key,
        anchor_der=anchor_der,
        timestamp_authorities=authorities,
    )
    return verify_global_conf(signed, anchor_der, NOW_MS)


def test_a_reply_is_accepted_only_from_the_approved_certificate_for_our_request(
    ca: CertificateAuthority,
) -> None:
    signer, impostor = tsa_signer(ca), tsa_signer(ca, "KZ-tsa2")
    approved = TimestampAuthority("http://tsa/", signer.cert.public_bytes(Encoding.DER))
    conf = published(ca, (approved,))
    assert conf.timestamp_authorities == (approved,)
    assert conf.tsa_certs_der == (approved.cert_der,)  # the older field lists it too

    def reply(by: TsaSigner, nonce: int = 7, data: bytes = NOTE) -> bytes:
        request = build_request(data, nonce=nonce)
        return respond(request, by, gen_time=NOW, serial_number=1).der

    verify_reply(reply(signer), NOTE, 7, approved, conf)
    for bad, reason in [
        (reply(impostor), "untrusted_signer"),  # same CA, but not the approved authority
        (reply(signer, nonce=8), "nonce_mismatch"),
        (reply(signer, data=NOTE + b"x"), "imprint_mismatch"),
    ]:
        with pytest.raises(TimestampError) as refused:
            verify_reply(bad, NOTE, 7, approved, conf)
        assert refused.value.reason == reason
