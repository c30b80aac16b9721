"""What a client may call, for server reflection: asked of each provider's gateway.

Access rights live at the provider's gateway alone, so before reflection answers
(gateway/reflection.py) this stage asks ``Discovery/AllowedMethods`` of every provider
that publishes a service with descriptors, on the calling client's behalf: an ordinary
exchange through the consumer pipeline (the IS's pin, sealed, logged at both gateways),
declaring the acting user ``reflection`` and the purpose ``server reflection``.

The providers are asked in parallel; each answer is kept ``TTL_S`` per (client,
provider), so ``grpcurl list`` and a ``describe``'s several requests do not each cost
an exchange per provider (a grant or a deny shows within that time). A provider's
gateway that does not answer within ``WAIT_S``, or answers with an error, counts as
granting nothing (fail closed), is logged for the operator, and is asked again after
``FAILED_TTL_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError

from zhol.bus.v1 import discovery_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.ids import SubsystemId
from zhol.core.metadata import CLIENT_KEY, PROVIDER_KEY, PURPOSE_KEY, USER_ID_KEY
from zhol.gateway.discovery import ALLOWED_METHODS_PATH, DiscoveryExchange
from zhol.gateway.exchange import ConsumerExchange
from zhol.gateway.reflection import REFLECTION_PATHS, parse_reflection_request

log = logging.getLogger("zhol.gateway.reflection")

RunExchange = Callable[[ConsumerExchange], Awaitable[None]]
Grants = frozenset[tuple[str, str]]  # (gRPC service, method)
_Key = tuple[SubsystemId, SubsystemId]  # (client, provider)

REFLECTION_USER = "reflection"
REFLECTION_PURPOSE = "server reflection"


class AskAllowedMethods:
    """For a reflection request, fills ``x.allowed`` from the providers' gateways'
    answers; any other discovery call passes untouched."""

    TTL_S = 30.0  # an answer is reused this long per (client, provider)
    FAILED_TTL_S = 5.0  # a provider that failed is asked again after this
    WAIT_S = 3.0  # how long a provider's gateway has to answer
    _MAX_CACHED = 4096

    def __init__(self, run: RunExchange, clock: Clock) -> None:
        self._run = run
        self._clock = clock
        # (client, provider) -> when it was answered (monotonic), whether it failed, grants
        self._cache: dict[_Key, tuple[float, bool, Grants]] = {}
        self._pending: dict[_Key, asyncio.Task[Grants]] = {}

    async def __call__(self, x: DiscoveryExchange) -> None:
        if x.grpc_path not in REFLECTION_PATHS:
            return
        parse_reflection_request(x.body)  # nobody is asked about a malformed request
        assert x.trusted is not None and x.client is not None
        conf = x.trusted.conf
        providers = sorted({provider for provider, _ in conf.descriptor_sets}, key=str)
        answers = await asyncio.gather(
            *(self._granted(x.client, provider, x.peer_cert_pem) for provider in providers)
        )
        allowed: dict[tuple[SubsystemId, str], frozenset[str]] = {}
        for provider, grants in zip(providers, answers, strict=True):
            for service, method in grants:
                key = (provider, service)
                # A provider answers for its own services only, and only those with
                # descriptors can be shown.
                if key in conf.descriptor_sets:
                    allowed[key] = allowed.get(key, frozenset()) | {method}
        x.allowed = allowed

    async def _granted(self, client: SubsystemId, provider: SubsystemId, cert: bytes) -> Grants:
        key = (client, provider)
        cached = self._cache.get(key)
        if cached is not None:
            answered_at, failed, grants = cached
            if time.monotonic() - answered_at < (self.FAILED_TTL_S if failed else self.TTL_S):
                return grants
        task = self._pending.get(key)
        if task is None:
            # One question at a time per (client, provider): concurrent streams share it.
            task = asyncio.ensure_future(self._ask(client, provider, cert))
            self._pending[key] = task
            task.add_done_callback(lambda _done: self._pending.pop(key, None))
        return await asyncio.shield(task)

    async def _ask(self, client: SubsystemId, provider: SubsystemId, cert: bytes) -> Grants:
        metadata = {
            CLIENT_KEY: str(client),
            USER_ID_KEY: REFLECTION_USER,
            PURPOSE_KEY: REFLECTION_PURPOSE,
            PROVIDER_KEY: str(provider),
        }
        deadline_ms = self._clock.now_ms() + int(self.WAIT_S * 1000)
        body = discovery_pb2.AllowedMethodsRequest().SerializeToString()
        x = ConsumerExchange(ALLOWED_METHODS_PATH, body, metadata, deadline_ms)
        x.peer_cert_pem = cert
        grants: Grants = frozenset()
        failed = True
        try:
            # The deadline bounds the call to the provider; this, everything before it.
            async with asyncio.timeout(self.WAIT_S + 1):
                await self._run(x)
            grants = _read(x, client, provider)
            failed = False
        except ZholError as err:
            log.warning(
                "reflection shows nothing of %s to %s: AllowedMethods failed "
                "code=%s error_id=%s message_id=%s",
                provider,
                client,
                err.full_code,
                err.error_id,
                x.message_id or "-",
            )
        except TimeoutError:
            log.warning(
                "reflection shows nothing of %s to %s: AllowedMethods not answered within "
                "%.1f s message_id=%s",
                provider,
                client,
                self.WAIT_S,
                x.message_id or "-",
            )
        if len(self._cache) >= self._MAX_CACHED:
            self._cache.clear()
        self._cache[(client, provider)] = (time.monotonic(), failed, grants)
        return grants


def _read(x: ConsumerExchange, client: SubsystemId, provider: SubsystemId) -> Grants:
    """The grants in a verified AllowedMethods answer about this client at this provider."""
    assert x.response is not None and x.response_header is not None
    if x.response_header.status_code != 0:
        raise ZholError("ServiceFailed", "AllowedMethods answered with an error status")
    try:
        answer = discovery_pb2.AllowedMethodsResponse.FromString(x.response.body)
    except DecodeError:
        raise ZholError("ServiceFailed", "not an AllowedMethodsResponse") from None
    if answer.client != str(client) or answer.provider != str(provider):
        raise ZholError("ResponseMismatch", "AllowedMethods answered about someone else")
    return frozenset((s.grpc_service, m) for s in answer.services for m in s.methods)
