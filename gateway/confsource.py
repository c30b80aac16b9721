"""The gateway's copy of the global configuration: polled, verified, cached, fail-closed.

A configuration is used only after it verifies against the anchor; the last
good copy is kept on disk so a restart needs no registry; once it expires every
exchange fails with OutdatedGlobalConf until a fresh one arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.validation import CertificateValidator

log = logging.getLogger("zhol.gateway.conf")

Fetch = Callable[[], Awaitable[bytes]]

# While the last fetch failed, or no unexpired configuration is held, poll this often:
# a registry back from an outage is seen within seconds (the target: serving again
# within 5 s). The jitter spreads a federation's gateways so they do not all call a
# returning registry at the same instant; one call per gateway every ~2 s is no load.
RETRY_S = 2.0
RETRY_JITTER = 0.25
EXPIRY_CHECK_S = 1.0


def poll_interval_s(
    default_s: float, conf_refresh_s: float | None, urgent: bool, jitter: float
) -> float:
    """Seconds to the next poll: the configuration's refresh interval or the default,
    whichever is shorter; when ``urgent``, at most RETRY_S spread by ``jitter`` (-1 to 1)."""
    interval = default_s if conf_refresh_s is None else min(default_s, conf_refresh_s)
    if urgent:
        return min(interval, RETRY_S * (1 + RETRY_JITTER * jitter))
    return interval


# Refusals that come from a lookup in the global configuration (or may, for a party
# registered moments ago): their details say which configuration the gateway held.
CONF_LOOKUP_CODES = frozenset(
    {
        "UnknownClient",
        "UnknownMember",
        "UnknownSubsystem",
        "UnknownService",
        "AmbiguousService",
        "UnknownTopic",
        "UntrustedPeer",
    }
)


def standing_text(version: int, generated_at_ms: int, now_ms: int) -> str:
    """'configuration version 42 from 2026-12-05T03:30:00Z, 12 s old'."""
    generated = dt.datetime.fromtimestamp(generated_at_ms / 1000, tz=dt.UTC)
    age_s = max(0, (now_ms - generated_at_ms) // 1000)
    return (
        f"configuration version {version} from "
        f"{generated.strftime('%Y-%m-%dT%H:%M:%SZ')}, {age_s} s old"
    )


def conf_standing(conf: GlobalConf, now_ms: int) -> str:
    return standing_text(conf.version, conf.generated_at_ms, now_ms)


@dataclass(frozen=True)
class TrustedConf:
    """A verified configuration and the certificate validator built from its trust list."""

    conf: GlobalConf
    validator: CertificateValidator
    signed: bytes = b""  # the exact signed bytes it was verified from (evidence bundles)


class ConfSource:
    def __init__(self, anchor_der: bytes, cache_path: Path, clock: Clock, fetch: Fetch) -> None:
        self._anchor_der = anchor_der
        self._cache_path = cache_path
        self._clock = clock
        self._fetch = fetch
        self._trusted: TrustedConf | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_error: ZholError | None = None

    def load_cached(self) -> None:
        """Use the on-disk copy if it still verifies (expired copies load but fail closed)."""
        if not self._cache_path.exists():
            return
        try:
            self._accept(self._cache_path.read_bytes(), persist=False)
        except ZholError as err:
            log.warning("cached global configuration rejected: %s", err.full_code)

    @property
    def loaded(self) -> TrustedConf | None:
        """The verified configuration held, even if expired (health reporting); None if none."""
        return self._trusted

    def current(self) -> TrustedConf:
        """The configuration in force, or raise NotConfigured / OutdatedGlobalConf."""
        trusted = self._trusted
        if trusted is None:
            raise ZholError("NotConfigured", "no verified global configuration yet")
        trusted.conf.check_fresh(self._clock.now_ms())
        return trusted

    async def refresh(self) -> bool:
        """Fetch once; returns True if a newer configuration was accepted."""
        try:
            signed = await self._fetch()
            accepted = self._accept(signed, persist=True)
        except ZholError as err:
            self.last_error = err
            log.warning("global configuration refresh failed: %s", err.full_code)
            return False
        except Exception as exc:  # network errors of any kind: keep the last good copy
            self.last_error = ZholError("NetworkError", type(exc).__name__)
            log.warning("global configuration refresh failed: %s", type(exc).__name__)
            return False
        self.last_error = None  # the registry answered with a valid copy, new or not
        return accepted

    def offer(self, signed: bytes) -> bool:
        """A configuration the registry pushed (gateway/confwatch.py): taken exactly as a
        fetched one, verified against the anchor and never older than the one held.
        Returns True if it was accepted; a refused one makes the poll retry soon."""
        try:
            accepted = self._accept(signed, persist=True)
        except ZholError as err:
            self.last_error = err
            log.warning("pushed global configuration refused: %s", err.full_code)
            return False
        self.last_error = None
        return accepted

    def standing(self) -> str | None:
        """Which configuration this gateway holds and how old it is, for error details
        and operators; None when it holds none."""
        trusted = self._trusted
        return None if trusted is None else conf_standing(trusted.conf, self._clock.now_ms())

    def explain(self, err: ZholError) -> ZholError:
        """A refusal that comes from looking something up in the configuration, found
        here, with the configuration's standing added to its detail (same code and id):
        the reader sees at once whether the gateway could know about a new registration."""
        standing = self.standing()
        if standing is None or err.remote or err.code.name not in CONF_LOOKUP_CODES:
            return err
        return ZholError(
            err.code.name, f"{err.detail} ({standing})", hop=err.hop, error_id=err.error_id
        )

    def _accept(self, signed: bytes, *, persist: bool) -> bool:
        conf = verify_global_conf(signed, self._anchor_der)
        current = self._trusted
        if current is not None and conf.version <= current.conf.version:
            return False  # never roll back to an older configuration
        validator = CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
        self._trusted = TrustedConf(conf, validator, signed)
        self.last_error = None
        if persist:
            tmp = self._cache_path.with_suffix(".tmp")
            tmp.write_bytes(signed)
            os.replace(tmp, self._cache_path)
        log.info("global configuration v%d accepted", conf.version)
        return True

    def start(self, default_interval_s: float) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(default_interval_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _urgent(self) -> bool:
        """Whether to poll at the retry pace: the last fetch failed, or nothing fresh is held."""
        trusted = self._trusted
        expired = trusted is None or self._clock.now_ms() >= trusted.conf.expires_at_ms
        return self.last_error is not None or expired

    async def _poll(self, default_interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.refresh()
            trusted = self._trusted
            refresh_s = None if trusted is None else float(trusted.conf.tunables.refresh_interval_s)
            urgent = self._urgent()
            jitter = random.uniform(-1.0, 1.0)
            deadline = loop.time() + poll_interval_s(default_interval_s, refresh_s, urgent, jitter)
            # Checked every second: a configuration that expires during a long wait is
            # fetched again at once, not at the end of the wait.
            while (left := deadline - loop.time()) > 0:
                await asyncio.sleep(min(left, EXPIRY_CHECK_S))
                if not urgent and self._urgent():
                    break


def now_datetime(clock: Clock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock.now_ms() / 1000, tz=dt.UTC)
