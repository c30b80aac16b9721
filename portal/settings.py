"""The portal's settings (``zhol portal serve`` flags; docs/portal.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zhol.portal.feed import RETENTION_DAYS
from zhol.portal.usage import UsageTarget

PORTAL_SUBSYSTEM = "KZ/GOV/MDDIAI/portal"


@dataclass(frozen=True)
class PortalSettings:
    """``demo`` turns on the demo-only parts: the SMS outbox page (/dev/outbox) and the
    choice of cookies without the Secure flag (for http://127.0.0.1). Production mode
    (demo False) has neither, whatever else is set."""

    gateway: str  # host:port of the portal's own gateway (IS side)
    client: str = PORTAL_SUBSYSTEM
    demo: bool = False
    secure_cookies: bool = True
    session_idle_s: int = 15 * 60
    code_ttl_s: int = 5 * 60
    code_attempts: int = 5  # wrong codes before the code is void
    max_form_bytes: int = 4096
    max_sessions: int = 10_000
    # Sign-in requests and code checks per window, per IIN and per client address.
    signin_per_iin: int = 5
    signin_per_address: int = 30
    code_checks_per_iin: int = 10
    rate_window_s: int = 15 * 60
    bus_timeout_s: float = 5.0
    # The gateways "who used my data" asks (zhol.portal.usage); empty: every gateway of
    # the federation, as the portal's gateway lists them (zhol.portal.directory), read
    # again every usage_refresh_s.
    usage_targets: tuple[UsageTarget, ...] = ()
    usage_refresh_s: float = 60.0
    # The life-events feed's inbox (zhol.portal.feed); None: no feed page.
    feed_db: Path | None = None
    feed_retention_days: int = RETENTION_DAYS

    def __post_init__(self) -> None:
        if not self.gateway.strip():
            raise ValueError("gateway is required")
        if not self.secure_cookies and not self.demo:
            raise ValueError("cookies without the Secure flag are allowed only in demo mode")
        if self.session_idle_s <= 0 or self.code_ttl_s <= 0 or self.code_attempts <= 0:
            raise ValueError("session and code lifetimes and attempts must be positive")
