"""What an operator must act on, from a gateway's facts: pure, time passed in.

`zhol gateway status` gathers the facts from the gateway's files (cli/gateway_status.py,
gateway/healthfile.py); this module only judges them, so every rule is tested without
files or sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhol.gateway.health import (
    CONFIGURATION_EXPIRED,
    LOG_CLOSED,
    LOG_WRITE_FAILED,
    NO_CONFIGURATION,
    TIMESTAMPING_OVERDUE,
    ConfHeld,
)

DAY_MS = 86_400_000
# X-Road warns about certificates well before they expire; so do we.
CERT_WARNING_DAYS = 30
# Errors use codes of the catalogue (core/errors.py); warnings are not errors and
# have their own stable codes, listed here.
EXPIRES_SOON = "CertificateExpiresSoon"
# Whether the gateway runs, and what it says of itself, are no exchange errors either.
NOT_RUNNING = "NotRunning"  # a warning: the files may be fine, but nothing serves them
HEALTH_UNKNOWN = "HealthUnknown"  # an error: it runs, but cannot say that it serves
# A warning: exchanges work, but the registry publishes no log key for this gateway
# (registered before log keys), so nobody can verify or witness its checkpoints.
LOG_KEY_MISSING = "LogKeyMissing"

# Each reason the running gateway gives for NOT_SERVING (gateway/health.py), as the
# error code its exchanges fail with.
REASON_CODES = {
    NO_CONFIGURATION: "NotConfigured",
    CONFIGURATION_EXPIRED: "OutdatedGlobalConf",
    LOG_CLOSED: "LoggingFailed",
    LOG_WRITE_FAILED: "LoggingFailed",
    TIMESTAMPING_OVERDUE: "TimestampingFailed",
}


@dataclass(frozen=True, slots=True)
class CertFacts:
    role: str  # "auth" (TLS between gateways) or "sign" (message signatures)
    subject: str
    sha256: bytes
    not_before_ms: int
    not_after_ms: int


@dataclass(frozen=True, slots=True)
class ConfFacts:
    """The cached global configuration as the gateway would use it.

    ``state``: "valid", "expired", "missing" (never fetched) or "invalid" (does not
    verify against the anchor). The other fields are set for valid and expired copies.
    """

    state: str
    version: int = 0
    generated_at_ms: int = 0
    expires_at_ms: int = 0
    # The auth-certificate hash the configuration registers for this gateway (b"": none).
    registered_auth_sha256: bytes = b""
    revoked_cert_sha256: frozenset[bytes] = frozenset()
    # False when the configuration registers this gateway without a log key.
    has_log_key: bool = True


@dataclass(frozen=True, slots=True)
class HealthFacts:
    """What the running gateway says of itself (gateway/healthfile.py).

    ``status`` "SERVING" or "NOT_SERVING" with ``reasons``; None when it does not run,
    or runs without a readable health file. ``held``: the configuration it holds and
    whether its watch on the registry is open (None: not published)."""

    running: bool
    status: str | None = None
    reasons: tuple[str, ...] = ()
    held: ConfHeld | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # "error": the gateway cannot exchange; "warning": act soon
    code: str
    text: str


def assess(
    certs: tuple[CertFacts, ...],
    conf: ConfFacts,
    now_ms: int,
    health: HealthFacts | None = None,
) -> tuple[Finding, ...]:
    """Every problem, most urgent first; an empty tuple means nothing to do.

    ``health``, when given, adds every reason the running gateway refuses exchanges
    for (one finding per error code the files do not already show), or that it does
    not run."""
    findings: list[Finding] = []
    if conf.state == "missing":
        findings.append(Finding("error", "NotConfigured", "no global configuration yet"))
    elif conf.state == "invalid":
        findings.append(
            Finding("error", "InvalidGlobalConf", "the cached configuration does not verify")
        )
    elif conf.state == "expired" or now_ms >= conf.expires_at_ms:
        findings.append(
            Finding("error", "OutdatedGlobalConf", f"global configuration v{conf.version} expired")
        )
    for cert in certs:
        findings.extend(_assess_cert(cert, conf, now_ms))
    if conf.state in ("valid", "expired") and conf.registered_auth_sha256 and not conf.has_log_key:
        text = (
            "the registry publishes no log key for this gateway: nobody can verify or "
            "witness its checkpoints; `zhol gateway renew --log-key` adds one"
        )
        findings.append(Finding("warning", LOG_KEY_MISSING, text))
    if health is not None:
        findings.extend(_assess_health(health, {f.code for f in findings}))
    return tuple(sorted(findings, key=lambda f: f.severity != "error"))


def _assess_health(health: HealthFacts, shown: set[str]) -> list[Finding]:
    if not health.running:
        return [Finding("warning", NOT_RUNNING, "the gateway is not running")]
    if health.status is None:
        text = "the gateway runs but its health cannot be read (zhol gateway health asks it)"
        return [Finding("error", HEALTH_UNKNOWN, text)]
    if health.status == "SERVING":
        return []
    out: list[Finding] = []
    for reason in health.reasons or ("unknown",):
        code = REASON_CODES.get(reason, HEALTH_UNKNOWN)
        if code not in shown:
            shown.add(code)
            out.append(Finding("error", code, f"the gateway is NOT_SERVING: {reason}"))
    return out


def _assess_cert(cert: CertFacts, conf: ConfFacts, now_ms: int) -> list[Finding]:
    out: list[Finding] = []
    if now_ms >= cert.not_after_ms:
        out.append(Finding("error", "InvalidCertificate", f"the {cert.role} certificate expired"))
    elif now_ms < cert.not_before_ms:
        text = f"the {cert.role} certificate is not valid yet"
        out.append(Finding("error", "InvalidCertificate", text))
    elif cert.not_after_ms - now_ms < CERT_WARNING_DAYS * DAY_MS:
        days = (cert.not_after_ms - now_ms) // DAY_MS
        text = f"the {cert.role} certificate expires in {days} days"
        out.append(Finding("warning", EXPIRES_SOON, text))
    if conf.state in ("valid", "expired"):
        if cert.sha256 in conf.revoked_cert_sha256:
            out.append(
                Finding("error", "RevokedCertificate", f"the {cert.role} certificate was revoked")
            )
        if cert.role == "auth" and cert.sha256 != conf.registered_auth_sha256:
            text = (
                "this gateway is not in the global configuration"
                if not conf.registered_auth_sha256
                else "the configuration registers another auth certificate for this gateway"
            )
            out.append(Finding("error", "UntrustedPeer", text))
    return out
