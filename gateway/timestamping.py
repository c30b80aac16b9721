"""RFC 3161 timestamps of the gateway's checkpoints, off the message path.

For every checkpoint ``DATA_DIR/checkpoints/<size>.note`` without a token, the task
asks an approved timestamping authority of the global configuration (each in the
registry's order until one answers) for a token over the SHA-256 of the note file's
exact bytes, with a nonce and certReq, verifies the answer against the authority's
certificate and CA from the configuration, and writes the authority's whole answer,
the DER TimeStampResp, as ``<size>.tsr`` (durably). That is the form
``openssl ts -verify -in <size>.tsr -data <size>.note -CAfile ca.pem -untrusted tsa.pem``
reads (``-in`` takes a response; ``-token_in`` would be needed for a bare token).

If no authority answers, traffic continues and the task catches up later. Once a
checkpoint has waited ``limit_s`` for its token (``timestamping_overdue``), the gateway
fails closed: ``check`` raises TimestampingFailed for every exchange and health turns
NOT_SERVING, until a timestamp succeeds again. A configuration that approves no
authority asks for no timestamps, and nothing is ever overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from zhol.core.errors import ZholError
from zhol.gateway.checkpoints import CheckpointStore, PendingCheckpoints, write_durably
from zhol.gateway.confsource import ConfSource
from zhol.security.globalconf import GlobalConf, TimestampAuthority
from zhol.security.timestamp import (
    CONTENT_TYPE,
    TimestampError,
    build_request,
    verify_response,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("zhol.gateway.timestamping")

TOKEN_SUFFIX = ".tsr"
# An RFC 3161 answer is a few kilobytes (a token with the authority's certificate).
MAX_REPLY_BYTES = 64 * 1024

# POST a DER request to a URL within a timeout; the DER answer (an exception otherwise).
PostFn = Callable[[str, bytes, float], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class TimestampingPolicy:
    """``limit_s``: how long a checkpoint may wait for its token before the gateway
    refuses exchanges; ``interval_s``: how often untimestamped checkpoints are looked
    for (and failed requests retried); ``timeout_s``: one request to one authority."""

    limit_s: float = 14_400.0
    interval_s: float = 5.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.limit_s <= 0 or self.interval_s <= 0 or self.timeout_s <= 0:
            raise ValueError("timestamp limit, interval and timeout must be positive")


def timestamping_overdue(
    *, now_ms: int, limit_ms: int, last_success_ms: int | None, oldest_pending_ms: int | None
) -> bool:
    """Whether the gateway must refuse exchanges: a checkpoint is still untimestamped, and
    ``limit_ms`` passed both since the last successful timestamp and since the oldest
    untimestamped checkpoint was written (an idle gateway whose last token is old is not
    overdue the moment it writes a new checkpoint)."""
    if oldest_pending_ms is None:
        return False
    since = max(oldest_pending_ms, last_success_ms or oldest_pending_ms)
    return now_ms - since >= limit_ms


def token_path(store: CheckpointStore, size: int) -> Path:
    """``<size>.tsr`` beside ``<size>.note``."""
    return store.note_path(size).with_suffix(TOKEN_SUFFIX)


def trusted_cas_for(authority: TimestampAuthority, conf: GlobalConf) -> list[x509.Certificate]:
    """The CA the authority's tokens must chain to: its own, or the federation's."""
    ders = (authority.ca_cert_der,) if authority.ca_cert_der else conf.ca_certs_der
    return [x509.load_der_x509_certificate(d) for d in ders]


def verify_reply(
    reply: bytes, note: bytes, nonce: int, authority: TimestampAuthority, conf: GlobalConf
) -> None:
    """Accept ``reply`` only as a token over ``note``, answering our nonce, signed with the
    approved certificate (TimestampError otherwise)."""
    cert = x509.load_der_x509_certificate(authority.cert_der)
    verified = verify_response(
        reply, note, trusted_cas_for(authority, conf), nonce=nonce, tsa_certs=[cert]
    )
    if verified.tsa_cert_der != authority.cert_der:
        raise TimestampError("untrusted_signer", "signed by a certificate not approved")


class Timestamper:
    """Timestamps checkpoints as they appear; ``check`` is the pipeline's fail-closed gate."""

    def __init__(
        self,
        *,
        store: CheckpointStore,
        conf: ConfSource,
        policy: TimestampingPolicy,
        now_ms: Callable[[], int],
        post: PostFn | None = None,
    ) -> None:
        self._store = store
        self._conf = conf
        self._policy = policy
        self._now_ms = now_ms
        self._post = post
        self._session: aiohttp.ClientSession | None = None
        # A token deleted by hand below the newest is asked for again (fill_gaps).
        self._waiting = PendingCheckpoints(store, TOKEN_SUFFIX, fill_gaps=True)
        self.last_success_ms: int | None = None
        self.oldest_pending_ms: int | None = None
        self._task: asyncio.Task[None] | None = None

    def overdue(self) -> bool:
        return timestamping_overdue(
            now_ms=self._now_ms(),
            limit_ms=int(self._policy.limit_s * 1000),
            last_success_ms=self.last_success_ms,
            oldest_pending_ms=self.oldest_pending_ms,
        )

    def check(self) -> None:
        """Refuse an exchange while timestamping is overdue (every pipeline asks)."""
        if self.overdue():
            raise ZholError(
                "TimestampingFailed",
                f"no checkpoint timestamped for {self._policy.limit_s:g} s",
            )

    def _pending(self) -> list[int]:
        """Checkpoint sizes without a token, oldest first (no directory scan but the
        first: PendingCheckpoints)."""
        first = self.last_success_ms is None
        pending = self._waiting.pending()
        if first and self._waiting.last_done:
            # Across a restart: the newest token's time is the last success.
            token = token_path(self._store, self._waiting.last_done)
            with contextlib.suppress(OSError):
                self.last_success_ms = token.stat().st_mtime_ns // 1_000_000
        return pending

    async def run_once(self) -> int:
        """One pass: timestamp every pending checkpoint; returns how many got a token."""
        trusted = self._conf.loaded
        authorities = trusted.conf.timestamp_authorities if trusted is not None else ()
        pending = await asyncio.to_thread(self._pending)
        if not authorities or not pending:
            self.oldest_pending_ms = None
            return 0
        assert trusted is not None
        self.oldest_pending_ms = await asyncio.to_thread(self._oldest_written_ms)
        done = 0
        for size in pending:
            got = await self._timestamp(size, authorities, trusted.conf)
            if got is None:
                continue  # its note was archived meanwhile
            if not got:
                break  # every authority failed: try again next pass, in order
            done += 1
        self.oldest_pending_ms = await asyncio.to_thread(self._oldest_written_ms)
        return done

    def _oldest_written_ms(self) -> int | None:
        """When the oldest checkpoint still without a token was written (None: none)."""
        for size in self._waiting.pending():
            try:
                return self._store.note_path(size).stat().st_mtime_ns // 1_000_000
            except FileNotFoundError:  # archived untimestamped after the documented wait
                self._waiting.forget(size)
        return None

    async def _timestamp(
        self, size: int, authorities: Sequence[TimestampAuthority], conf: GlobalConf
    ) -> bool | None:
        try:
            note = await asyncio.to_thread(self._store.note_path(size).read_bytes)
        except FileNotFoundError:  # archived untimestamped after the documented wait
            self._waiting.forget(size)
            return None
        for authority in authorities:
            nonce = secrets.randbits(64)
            try:
                reply = await self._send(
                    authority.url, build_request(note, nonce=nonce, cert_req=True)
                )
                # Off the event loop: parsing and checking a token is milliseconds of CPU.
                await asyncio.to_thread(verify_reply, reply, note, nonce, authority, conf)
            except TimestampError as err:
                log.warning(
                    "timestamp of checkpoint %d refused by %s: %s",
                    size,
                    authority.url,
                    err.reason,
                )
                continue
            except Exception as exc:  # unreachable, timed out, not HTTP: the next one
                log.warning("timestamp authority %s failed: %s", authority.url, type(exc).__name__)
                continue
            await asyncio.to_thread(write_durably, token_path(self._store, size), reply)
            self._waiting.done(size)
            self.last_success_ms = self._now_ms()
            log.info("checkpoint %d timestamped by %s", size, authority.url)
            return True
        return False

    async def _send(self, url: str, request: bytes) -> bytes:
        if self._post is not None:
            return await self._post(url, request, self._policy.timeout_s)
        import aiohttp  # only gateways that timestamp pay for it

        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout_s)
        async with self._session.post(
            url, data=request, headers={"Content-Type": CONTENT_TYPE}, timeout=timeout
        ) as resp:
            resp.raise_for_status()
            body = await resp.content.read(MAX_REPLY_BYTES + 1)
            if len(body) > MAX_REPLY_BYTES:
                raise ValueError("timestamp reply too large")
            return body

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # keep going: the next pass tries again
                log.exception("timestamping pass failed")
            await asyncio.sleep(self._policy.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
