"""'Who used my data': the zhol.bus.v1.Usage metaservice (docs/protocol.md).

An IS calls ``/zhol.bus.v1.Usage/FindUsage`` on its own gateway like any service, with
``zhol-provider`` naming a subsystem the target gateway serves (and, optionally, the
request's ``gateway`` pinning one of that subsystem's gateways). The consumer gateway
seals, logs and forwards it as an ordinary exchange; the target gateway checks its
local ``usage`` right and the declared data subject, logs the request, and answers it
from its own message log instead of invoking an IS. The three stages here wrap the
ordinary ones and hand every other call to them unchanged.

The query side (``find_usage``) reads the log on a read-only connection: one SELECT is
one consistent snapshot under WAL and never blocks the writer. ``GetEvidence`` answers
with the evidence bundle of one exchange (gateway/evidence.py), only if every record of
it here is about the data subject asked for.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from zhol.bus.v1 import usage_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, ServiceId, parse_grpc_path
from zhol.core.iin import Iin
from zhol.gateway.consumer_stages import ResolveProvider
from zhol.gateway.evidence import NotAboutSubject, export_bundle
from zhol.gateway.exchange import ConsumerExchange, ProviderExchange
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.provider_stages import Authorize, InvokeProvider
from zhol.security.evidence_build import EvidenceUnavailable, NotCoveredYet
from zhol.security.evidence_bundle import Selection, encode
from zhol.security.globalconf import GlobalConf

log = logging.getLogger(__name__)

USAGE_SERVICE = "zhol.bus.v1.Usage"
FIND_USAGE = "FindUsage"
FIND_USAGE_PATH = f"/{USAGE_SERVICE}/{FIND_USAGE}"
GET_EVIDENCE = "GetEvidence"
GET_EVIDENCE_PATH = f"/{USAGE_SERVICE}/{GET_EVIDENCE}"
_METHODS = (FIND_USAGE, GET_EVIDENCE)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Room left in a page for the response's other fields and the signed envelope.
_PAGE_MARGIN_BYTES = 1024

# A method whose name starts with one of these verbs reads; any other changes. The
# classification is by name only (approximate: nothing else tells them apart), and
# the four registries' methods all follow it.
READ_VERBS = ("Get", "List", "Find", "Search", "Is", "Check", "Verify", "Lookup", "Read", "Query")
_READ_NAME = re.compile(rf"^(?:{'|'.join(READ_VERBS)})(?:[A-Z0-9_]|$)")


def classify(service: str) -> usage_pb2.UsageAccess:
    """READ or CHANGE by the method's name; EVENT for an event's 'publisher/topic'."""
    parts = service.split("/")
    if len(parts) == 5:
        return usage_pb2.USAGE_ACCESS_EVENT
    if len(parts) != 6:
        return usage_pb2.USAGE_ACCESS_UNSPECIFIED
    if _READ_NAME.match(parts[5]):
        return usage_pb2.USAGE_ACCESS_READ
    return usage_pb2.USAGE_ACCESS_CHANGE


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: entries strictly older (logged_at_ms, seq) come next."""

    logged_at_ms: int
    seq: int

    def token(self) -> str:
        return f"{self.logged_at_ms}.{self.seq}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        at, dot, seq = token.partition(".")
        if not dot or not at.isdigit() or not seq.isdigit() or len(token) > 40:
            raise ZholError("InvalidRequest", "malformed page token")
        return cls(int(at), int(seq))


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """A checked FindUsageRequest."""

    data_subject: str
    limit: int
    after: Cursor | None
    from_ms: int
    to_ms: int
    gateway: GatewayId | None


def parse_query(body: bytes) -> UsageQuery:
    """The request's fields, each checked (InvalidRequest / InvalidIdentifier)."""
    try:
        request = usage_pb2.FindUsageRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not a FindUsageRequest") from None
    if request.limit > MAX_LIMIT:
        raise ZholError("InvalidRequest", f"limit above {MAX_LIMIT}")
    if request.from_unix_ms < 0 or request.to_unix_ms < 0:
        raise ZholError("InvalidRequest", "negative time range")
    if request.to_unix_ms and request.from_unix_ms >= request.to_unix_ms:
        raise ZholError("InvalidRequest", "empty time range")
    return UsageQuery(
        data_subject=Iin.parse(request.data_subject).value,
        limit=request.limit or DEFAULT_LIMIT,
        after=Cursor.parse(request.page_token) if request.page_token else None,
        from_ms=request.from_unix_ms,
        to_ms=request.to_unix_ms,
        gateway=GatewayId.parse(request.gateway) if request.gateway else None,
    )


@dataclass(frozen=True, slots=True)
class EvidenceQuery:
    """A checked GetEvidenceRequest."""

    data_subject: str
    message_id: str
    gateway: GatewayId | None


def parse_evidence_query(body: bytes) -> EvidenceQuery:
    """The request's fields, each checked (InvalidRequest / InvalidIdentifier)."""
    try:
        request = usage_pb2.GetEvidenceRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not a GetEvidenceRequest") from None
    return EvidenceQuery(
        data_subject=Iin.parse(request.data_subject).value,
        message_id=parse_message_id(request.message_id),
        gateway=GatewayId.parse(request.gateway) if request.gateway else None,
    )


def parse_message_id(text: str) -> str:
    """A message id as the bus writes them: a UUID, lowercase (InvalidRequest if not)."""
    try:
        canonical = str(uuid.UUID(text)) if len(text) == 36 else ""
    except ValueError:
        canonical = ""
    if not canonical or canonical != text:  # "" too: an empty id names no exchange
        raise ZholError("InvalidRequest", "message_id is not a UUID")
    return text


def parse_request(method: str, body: bytes) -> UsageQuery | EvidenceQuery:
    """The checked request of a Usage method (UnknownService for any other method)."""
    if method == FIND_USAGE:
        return parse_query(body)
    if method == GET_EVIDENCE:
        return parse_evidence_query(body)
    raise ZholError("UnknownService", f"{USAGE_SERVICE} has no method {method}")


def check_subject(query: UsageQuery | EvidenceQuery, declared: str) -> None:
    """A client may ask only about the data subject it declares (no fishing)."""
    if not declared or declared != query.data_subject:
        raise ZholError("AccessDenied", "a usage query must declare the subject it asks about")


def _entry(row: sqlite3.Row) -> usage_pb2.UsageEntry:
    service: str = row["service"]
    parts = service.split("/")
    client: str = row["client"]
    return usage_pb2.UsageEntry(
        logged_at_unix_ms=row["logged_at_ms"],
        issued_at_unix_ms=row["issued_at_ms"],
        message_id=row["message_id"],
        kind=row["kind"],
        direction=row["direction"],
        client=client,
        client_member=client.rpartition("/")[0],
        user_id=row["user_id"],
        service=service,
        grpc_service=parts[4] if len(parts) >= 5 else "",
        method=parts[5] if len(parts) == 6 else "",
        purpose=row["purpose"],
        peer_gateway=row["peer"],
        access=classify(service),
        status_code=row["status_code"],
    )


def find_usage(path: Path, query: UsageQuery, max_bytes: int) -> usage_pb2.FindUsageResponse:
    """The log's records about the subject, newest first, one page of at most
    ``query.limit`` entries and about ``max_bytes`` (LoggingFailed if unreadable)."""
    where = ["data_subject = ?"]
    params: list[object] = [query.data_subject]
    if query.from_ms:
        where.append("logged_at_ms >= ?")
        params.append(query.from_ms)
    if query.to_ms:
        where.append("logged_at_ms < ?")
        params.append(query.to_ms)
    if query.after is not None:
        # A row value, so that the index serves it as a range (no scan of newer pages).
        where.append("(logged_at_ms, seq) < (?, ?)")
        params += [query.after.logged_at_ms, query.after.seq]
    sql = (
        "SELECT seq, message_id, kind, direction, client, service, user_id, purpose,"
        " issued_at_ms, logged_at_ms, peer, status_code FROM messages"
        f" WHERE {' AND '.join(where)} ORDER BY logged_at_ms DESC, seq DESC LIMIT ?"
    )
    params.append(query.limit + 1)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise ZholError("LoggingFailed", f"cannot read the message log: {exc}") from None
    answer = usage_pb2.FindUsageResponse()
    budget = max_bytes - _PAGE_MARGIN_BYTES
    last: Cursor | None = None
    for row in rows[: query.limit]:
        entry = _entry(row)
        budget -= entry.ByteSize() + 8  # its tag and length prefix, generously
        if answer.entries and budget < 0:
            break
        answer.entries.append(entry)
        last = Cursor(row["logged_at_ms"], row["seq"])
    if last is not None and len(answer.entries) < len(rows):
        answer.next_page_token = last.token()
    return answer


def _is_usage(service: ServiceId | None) -> bool:
    return service is not None and service.grpc_service == USAGE_SERVICE


class UsageOrResolveProvider:
    """A Usage call goes to the gateways of the ``zhol-provider`` subsystem (or the one
    the request pins); everything else is resolved as usual."""

    def __init__(self, ordinary: ResolveProvider) -> None:
        self._ordinary = ordinary

    async def __call__(self, x: ConsumerExchange) -> None:
        grpc_service, method = parse_grpc_path(x.grpc_path)
        if grpc_service != USAGE_SERVICE:
            await self._ordinary(x)
            return
        assert x.trusted is not None
        if method not in _METHODS:
            raise ZholError("UnknownService", f"{USAGE_SERVICE} has no method {method}")
        if x.provider_hint is None:
            raise ZholError("MissingHeader", "a usage query names the target in zhol-provider")
        query = parse_request(method, x.body)
        x.service = ServiceId.of(x.provider_hint, USAGE_SERVICE, method)
        x.targets = tuple(
            t
            for t in x.trusted.conf.gateways_for(x.provider_hint)
            if query.gateway is None or t.id == query.gateway
        )
        if not x.targets:
            raise ZholError("UnknownService", f"no such gateway serves {x.provider_hint}")


class UsageOrAuthorize:
    """A Usage call: served here, the client granted ``usage`` locally, well-formed, and
    about the subject it declares; checked before anything is logged. Everything else
    is authorized as usual."""

    def __init__(self, ordinary: Authorize, gateway_id: GatewayId, local: LocalConfStore) -> None:
        self._ordinary = ordinary
        self._gateway_id = gateway_id
        self._local = local

    async def __call__(self, x: ProviderExchange) -> None:
        if not _is_usage(x.service):
            await self._ordinary(x)
            return
        assert x.service is not None and x.client is not None and x.trusted is not None
        assert x.header is not None
        if x.service.method not in _METHODS or not x.trusted.conf.serves(
            self._gateway_id, x.service.subsystem
        ):
            raise ZholError("UnknownService", f"{x.service} is not served here")
        # The right first: a client without it learns nothing, not even about its request.
        self._local.current().authorize_usage(x.client)
        query = parse_request(x.service.method, x.message.body)
        if query.gateway is not None and query.gateway != self._gateway_id:
            raise ZholError("UnknownService", f"this is not {query.gateway}")
        check_subject(query, x.header.data_subject)


class UsageOrInvokeProvider:
    """A Usage call is answered from this gateway's own log; everything else goes to
    the IS as usual. The answer is sealed and logged by the ordinary stages after."""

    def __init__(
        self,
        ordinary: InvokeProvider,
        gateway_id: GatewayId,
        log: MessageLog,
        checkpoints_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._ordinary = ordinary
        self._gateway_id = gateway_id
        self._log = log
        self._checkpoints_dir = checkpoints_dir
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        if not _is_usage(x.service):
            await self._ordinary(x)
            return
        assert x.trusted is not None and x.service is not None
        max_bytes = x.trusted.conf.tunables.max_message_bytes
        query = parse_request(x.service.method, x.message.body)
        if isinstance(query, EvidenceQuery):
            bundle = await asyncio.to_thread(
                self._evidence, query, x.trusted.conf, x.trusted.signed
            )
            if len(bundle) + _PAGE_MARGIN_BYTES > max_bytes:
                raise ZholError("MessageTooLarge", "the evidence bundle is too large to send")
            evidence = usage_pb2.GetEvidenceResponse(bundle=bundle, gateway=str(self._gateway_id))
            x.response_body = evidence.SerializeToString()
        else:
            answer = await asyncio.to_thread(find_usage, self._log.path, query, max_bytes)
            answer.gateway = str(self._gateway_id)
            x.response_body = answer.SerializeToString()
        x.status_code = 0
        x.status_message = ""

    def _evidence(self, query: EvidenceQuery, conf: GlobalConf, signed_conf: bytes) -> bytes:
        """The exchange's bundle from this gateway's log (in a worker thread)."""
        if self._checkpoints_dir is None or self._clock is None or not signed_conf:
            raise ZholError("EvidenceNotReady", "this gateway keeps no checkpoints to prove with")
        try:
            bundle = export_bundle(
                self._log.path, self._checkpoints_dir, signed_conf, conf, str(self._gateway_id),
                Selection(message_id=query.message_id), self._clock.now_ms(),
                only_about=query.data_subject,
            )  # fmt: skip
        except NotAboutSubject:
            raise ZholError("EvidenceNotFound") from None
        except NotCoveredYet:
            raise ZholError("EvidenceNotReady") from None
        except EvidenceUnavailable as exc:
            # Paths and seqs stay here: the caller learns only that it failed.
            log.warning("evidence for a GetEvidence query unreadable: %s", exc)
            raise ZholError("LoggingFailed", "cannot read this gateway's evidence") from None
        return encode(bundle)
