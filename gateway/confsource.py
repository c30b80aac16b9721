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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.validation import CertificateValidator

log = logging.getLogger("zhol.gateway.conf")

Fetch = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class TrustedConf:
    """A verified configuration and the certificate validator built from its trust list."""

    conf: GlobalConf
    validator: CertificateValidator


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
            return self._accept(signed, persist=True)
        except ZholError as err:
            self.last_error = err
            log.warning("global configuration refresh failed: %s", err.full_code)
            return False
        except Exception as exc:  # network errors of any kind: keep the last good copy
            self.last_error = ZholError("NetworkError", type(exc).__name__)
            log.warning("global configuration refresh failed: %s", type(exc).__name__)
            return False

    def _accept(self, signed: bytes, *, persist: bool) -> bool:
        conf = verify_global_conf(signed, self._anchor_der)
        current = self._trusted
        if current is not None and conf.version <= current.conf.version:
            return False  # never roll back to an older configuration
        validator = CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
        self._trusted = TrustedConf(conf, validator)
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

    async def _poll(self, default_interval_s: float) -> None:
        while True:
            await self.refresh()
            trusted = self._trusted
            interval = default_interval_s
            if trusted is not None:
                interval = min(interval, float(trusted.conf.tunables.refresh_interval_s))
            if self.last_error is not None:
                interval = min(interval, 2.0)  # retry soon while failing
            await asyncio.sleep(interval)


def now_datetime(clock: Clock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock.now_ms() / 1000, tz=dt.UTC)
