"""gateway/status.py: what an operator must act on, judged from facts and a time."""

from __future__ import annotations

from zhol.core.errors import ZholError
from zhol.gateway.health import CONFIGURATION_EXPIRED, LOG_WRITE_FAILED
from zhol.gateway.status import (
    DAY_MS,
    EXPIRES_SOON,
    HEALTH_UNKNOWN,
    LOG_KEY_MISSING,
    NOT_RUNNING,
    REASON_CODES,
    CertFacts,
    ConfFacts,
    HealthFacts,
    assess,
)

NOW = 1_800_000_000_000
AUTH_HASH, SIGN_HASH = b"a" * 32, b"s" * 32


def cert(role: str = "auth", days_left: int = 300, sha256: bytes = AUTH_HASH) -> CertFacts:
    return CertFacts(role, f"CN={role}", sha256, NOW - 10 * DAY_MS, NOW + days_left * DAY_MS)


def conf(state: str = "valid", **changes: object) -> ConfFacts:
    fields: dict[str, object] = dict(
        version=4, generated_at_ms=NOW - 60_000, expires_at_ms=NOW + 540_000,
        registered_auth_sha256=AUTH_HASH, revoked_cert_sha256=frozenset(),
    )  # fmt: skip
    fields.update(changes)
    if state in ("missing", "invalid"):
        return ConfFacts(state)
    return ConfFacts(state, **fields)  # type: ignore[arg-type]


def codes(certs: tuple[CertFacts, ...], facts: ConfFacts) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in assess(certs, facts, NOW)]


HEALTHY = (cert(), cert("sign", sha256=SIGN_HASH))


def test_a_healthy_gateway_has_nothing_to_do() -> None:
    assert codes(HEALTHY, conf()) == []


def test_configuration_missing_invalid_or_expired_stops_exchanges() -> None:
    assert codes(HEALTHY, conf("missing")) == [("error", "NotConfigured")]
    assert codes(HEALTHY, conf("invalid")) == [("error", "InvalidGlobalConf")]
    assert codes(HEALTHY, conf("expired", expires_at_ms=NOW - 1)) == [
        ("error", "OutdatedGlobalConf")
    ]
    # A copy read as valid a moment ago that expires by `now` counts as expired.
    assert codes(HEALTHY, conf(expires_at_ms=NOW)) == [("error", "OutdatedGlobalConf")]


def test_certificates_expired_not_yet_valid_or_expiring_soon() -> None:
    expired = (cert(days_left=-1), HEALTHY[1])
    assert codes(expired, conf()) == [("error", "InvalidCertificate")]
    future = CertFacts("sign", "CN=sign", SIGN_HASH, NOW + DAY_MS, NOW + 400 * DAY_MS)
    assert codes((HEALTHY[0], future), conf()) == [("error", "InvalidCertificate")]
    soon = (HEALTHY[0], cert("sign", days_left=12, sha256=SIGN_HASH))
    (finding,) = assess(soon, conf(), NOW)
    assert (finding.severity, finding.code) == ("warning", EXPIRES_SOON)
    assert "12 days" in finding.text


def test_revoked_or_unregistered_certificates() -> None:
    revoked = conf(revoked_cert_sha256=frozenset({SIGN_HASH}))
    assert codes(HEALTHY, revoked) == [("error", "RevokedCertificate")]
    assert codes(HEALTHY, conf(registered_auth_sha256=b"x" * 32)) == [("error", "UntrustedPeer")]
    assert codes(HEALTHY, conf(registered_auth_sha256=b"")) == [("error", "UntrustedPeer")]


def test_errors_come_first_and_use_catalogue_codes() -> None:
    certs = (cert(days_left=5), cert("sign", days_left=-3, sha256=SIGN_HASH))
    findings = assess(certs, conf("expired", expires_at_ms=NOW - 5), NOW)
    assert [f.severity for f in findings] == ["error", "error", "warning"]
    for f in findings:
        if f.severity == "error":
            assert ZholError(f.code).code.name == f.code  # an unknown code would raise


def health_codes(health: HealthFacts, facts: ConfFacts | None = None) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in assess(HEALTHY, facts or conf(), NOW, health)]


def test_every_reason_the_running_gateway_refuses_exchanges_is_an_error() -> None:
    assert health_codes(HealthFacts(True, "SERVING")) == []
    for reason, code in REASON_CODES.items():
        assert health_codes(HealthFacts(True, "NOT_SERVING", (reason,))) == [("error", code)]
    both = HealthFacts(True, "NOT_SERVING", (CONFIGURATION_EXPIRED, LOG_WRITE_FAILED))
    assert health_codes(both) == [("error", "OutdatedGlobalConf"), ("error", "LoggingFailed")]
    # The files show the expiry already: said once.
    expired = conf("expired", expires_at_ms=NOW - 1)
    assert health_codes(both, expired) == [
        ("error", "OutdatedGlobalConf"), ("error", "LoggingFailed"),
    ]  # fmt: skip


def test_a_stopped_gateway_is_a_warning_and_unknown_health_an_error() -> None:
    assert health_codes(HealthFacts(False)) == [("warning", NOT_RUNNING)]
    assert health_codes(HealthFacts(True)) == [("error", HEALTH_UNKNOWN)]


def test_a_gateway_registered_without_a_log_key_is_warned() -> None:
    # Exchanges work (a warning, exit 0), but nobody can verify its checkpoints.
    assert codes(HEALTHY, conf(has_log_key=False)) == [("warning", LOG_KEY_MISSING)]
    assert codes(HEALTHY, conf(has_log_key=True)) == []
    # Not in the configuration at all: that is the error, not the log key.
    unlisted = conf(registered_auth_sha256=b"", has_log_key=False)
    assert codes(HEALTHY, unlisted) == [("error", "UntrustedPeer")]
