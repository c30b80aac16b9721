"""Access requests on the command line (docs/operators.md, 'Access requests').

The consumer's side, ``zhol gateway request-access`` and ``access-requests --sent``,
acts as the client subsystem's IS: it calls zhol.bus.v1.Access on the running gateway's
IS port, exactly as an IS would, so the gateway checks, signs, logs and forwards it
like any exchange (and under mutual TLS it needs a pinned IS certificate, as any IS
does). The provider's side, ``access-requests``, ``approve`` and ``reject``, works on
the gateway's data directory: the requests it keeps and its local directory of rights,
which the running gateway reloads within a second.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from zhol.bus.v1 import access_pb2
from zhol.cli.gateway import _is_address
from zhol.cli.health import add_tls_arguments, tls_files
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_OK, exit_code_for, report
from zhol.core.grpcerr import error_from_rpc
from zhol.core.ids import SubsystemId, parse_topic
from zhol.core.metadata import CLIENT_KEY, PROVIDER_KEY, PURPOSE_KEY, USER_ID_KEY
from zhol.gateway.access import (
    LIST_ACCESS_REQUESTS_PATH,
    MAX_LISTED,
    REQUEST_ACCESS_PATH,
    check_reason,
)
from zhol.gateway.accessstore import (
    APPROVED,
    FILE_NAME,
    REJECTED,
    STATUSES,
    AccessRequestStore,
    StoredRequest,
)
from zhol.gateway.ispins import IS_SERVER_CERT
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.settings import SETTINGS_FILE, load_gateway_settings
from zhol.gateway.usage import parse_message_id

DEFAULT_TIMEOUT_S = 10.0
REQUEST_PURPOSE = "access request"
STATUS_PURPOSE = "access request status"


def add_gateway_parsers(sub: Any) -> None:
    """``zhol gateway request-access``, ``access-requests``, ``approve`` and ``reject``."""
    p = sub.add_parser(
        "request-access",
        help="ask a provider's gateway, over the bus, for a right to a service or an event "
        "topic; its operator approves or rejects it",
    )
    _dir_option(p, "the consumer gateway's data directory (the gateway must be running)")
    p.add_argument(
        "--client",
        required=True,
        metavar="SUBSYSTEM",
        help="the subsystem asking, served by this gateway, e.g. KZ/GOV/MLSPP/pension",
    )
    p.add_argument(
        "--provider",
        required=True,
        metavar="SUBSYSTEM",
        help="the subsystem that offers the service or publishes the topic, "
        "e.g. KZ/GOV/MJ/population",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--service",
        metavar="pkg.Service[/Method]",
        help="a gRPC service the provider offers, or one method of it, "
        "e.g. zhol.population.v1.PopulationRegistry/GetPerson",
    )
    target.add_argument(
        "--topic",
        metavar="[PUBLISHER/]TOPIC",
        help="an event topic the provider publishes, "
        "e.g. KZ/GOV/MJ/population/zhol.population.v1.BirthRegistered",
    )
    p.add_argument(
        "--reason",
        required=True,
        metavar="TEXT",
        help="why the right is needed, for the provider's operator (1 to 1000 characters)",
    )
    p.add_argument(
        "--gateway",
        default="",
        metavar="GATEWAY",
        help="send it to this one of the provider's gateways, e.g. KZ/GOV/MJ/gw1 "
        "(default: the first that answers; the request is kept there)",
    )
    _call_options(p)
    p.add_argument("--json", action="store_true", help="the request as stored, one JSON object")
    p.set_defaults(func=_request_access)

    p = sub.add_parser(
        "access-requests",
        help="access requests kept here for the operator's decision, or (--sent) those this "
        "gateway's clients sent, with their providers' decisions",
    )
    _dir_option(p, "the gateway's data directory")
    p.add_argument(
        "--status",
        choices=[s.lower() for s in STATUSES],
        help="only requests with this status (default: all)",
    )
    p.add_argument(
        "--sent",
        action="store_true",
        help="the requests this gateway's clients sent: asks each provider's gateway over "
        "the bus for their status (the gateway must be running)",
    )
    p.add_argument(
        "--client",
        metavar="SUBSYSTEM",
        help="with --sent: only this client's requests (default: every client of this gateway)",
    )
    _call_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=_list_requests)

    p = sub.add_parser(
        "approve",
        help="approve a pending access request: grants exactly the right it asks for "
        "(as `zhol gateway allow` or `zhol events subscribe` would)",
    )
    _dir_option(p, "the provider gateway's data directory, where the request is kept")
    p.add_argument("id", metavar="ID", help="the request's id (access-requests lists them)")
    p.add_argument(
        "--reason",
        default="",
        metavar="TEXT",
        help="a note the requester sees with the decision (optional; up to 1000 characters)",
    )
    p.set_defaults(func=_approve)

    p = sub.add_parser("reject", help="reject a pending access request; nothing is granted")
    _dir_option(p, "the provider gateway's data directory, where the request is kept")
    p.add_argument("id", metavar="ID", help="the request's id (access-requests lists them)")
    p.add_argument(
        "--reason",
        required=True,
        metavar="TEXT",
        help="why, for the requester: it sees it with the decision (1 to 1000 characters)",
    )
    p.set_defaults(func=_reject)


def _dir_option(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--dir", type=Path, required=True, metavar="DIR", help=text)


def _call_options(p: argparse.ArgumentParser) -> None:
    """How the command reaches the running gateway's IS port, as the client's IS."""
    p.add_argument(
        "--user-id",
        default="operator",
        metavar="ID",
        help="the acting user the request declares (zhol-user-id; logged at both gateways)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="how long to wait for the provider's gateway to answer",
    )
    # is_tls = tls trusts keys/is-server.pem by default; mtls needs a pinned IS cert.
    add_tls_arguments(p)


# -- the consumer's side: calls through the running gateway ---------------------------


def _store(data_dir: Path) -> AccessRequestStore:
    if not (data_dir / SETTINGS_FILE).exists():
        raise ZholError("NotConfigured", f"no gateway in {data_dir}")
    return AccessRequestStore(data_dir / FILE_NAME)


def _call(
    args: argparse.Namespace,
    path: str,
    request: Message,
    answer_type: type[Message],
    client: str,
    provider: str,
    purpose: str,
) -> Any:
    """One call to the gateway in ``args.dir`` on its IS port, as ``client``'s IS."""
    if not (args.dir / SETTINGS_FILE).exists():
        raise ZholError("NotConfigured", f"no gateway in {args.dir}")
    settings = load_gateway_settings(args.dir)
    address = _is_address(settings)
    default_ca = None if settings.is_tls == "plaintext" else args.dir / "keys" / IS_SERVER_CERT
    tls = tls_files(args, default_ca)
    if settings.is_tls == "mtls" and (tls is None or tls.cert is None):
        raise ZholError(
            "InvalidRequest", "is_tls = mtls: give --tls-cert and --tls-key of a pinned IS"
        )
    metadata = (
        (CLIENT_KEY, client),
        (USER_ID_KEY, args.user_id),
        (PURPOSE_KEY, purpose),
        (PROVIDER_KEY, provider),
    )
    if tls is None:
        channel = grpc.insecure_channel(address)
    else:
        from zhol.cli.health import _credentials

        options = [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
        channel = grpc.secure_channel(address, _credentials(tls), options=options)
    with channel:
        method: Any = channel.unary_unary(path)
        try:
            body = method(request.SerializeToString(), metadata=metadata, timeout=args.timeout)
        except grpc.RpcError as exc:
            err = error_from_rpc(exc)
            if err is not None:
                raise err from None
            code = exc.code().name if hasattr(exc, "code") else "?"
            raise ZholError(
                "NetworkError", f"the gateway at {address} did not answer ({code})"
            ) from None
    try:
        return answer_type.FromString(body)
    except DecodeError:
        raise ZholError("InvalidMessage", "the answer is not what Access answers") from None


def _target(args: argparse.Namespace, provider: SubsystemId) -> tuple[str, str, str]:
    """(grpc service, method, topic) from --service or --topic (InvalidRequest)."""
    if args.service is not None:
        grpc_service, _, method = args.service.partition("/")
        if "/" in method:
            raise ZholError(
                "InvalidRequest", "--service is pkg.Service[/Method]; the provider is --provider"
            )
        return grpc_service, method, ""
    publisher, _, topic = args.topic.rpartition("/")
    if publisher and SubsystemId.parse(publisher) != provider:
        raise ZholError("InvalidRequest", f"--topic names {publisher}, not --provider {provider}")
    return "", "", parse_topic(topic)


def _request_access(args: argparse.Namespace) -> int:
    try:
        client = SubsystemId.parse(args.client)
        provider = SubsystemId.parse(args.provider)
        grpc_service, method, topic = _target(args, provider)
        request = access_pb2.RequestAccessRequest(
            grpc_service=grpc_service,
            method=method,
            topic=topic,
            reason=check_reason(args.reason),  # refused here already; the gateways check too
            gateway=args.gateway,
        )
        answer = _call(
            args, REQUEST_ACCESS_PATH, request, access_pb2.RequestAccessResponse,
            str(client), str(provider), REQUEST_PURPOSE,
        )  # fmt: skip
    except ZholError as err:
        return report(err)
    stored = answer.request
    if args.json:
        print(json.dumps(_pb_fields(stored)))
        return EXIT_OK
    target = stored.topic or stored.grpc_service + (f"/{stored.method}" if stored.method else "")
    print(
        f"access request {stored.request_id} sent to {stored.gateway}: "
        f"{stored.client} -> {stored.provider}/{target}: pending"
    )
    print(
        f"the provider's operator decides it; see the decision with "
        f"`zhol gateway access-requests --dir {args.dir} --sent`"
    )
    return EXIT_OK


def _refresh_sent(args: argparse.Namespace, store: AccessRequestStore) -> list[ZholError]:
    """Ask each provider's gateway for the status of our clients' requests; the running
    gateway keeps what they answer (gateway/access.py, RememberSentAccess)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for request, _ in store.sent(args.client):
        key = (request.client, request.provider, request.gateway)
        groups.setdefault(key, []).append(request.request_id)
    failures = []
    for (client, provider, gateway), ids in sorted(groups.items()):
        query = access_pb2.ListAccessRequestsRequest(request_ids=ids[:MAX_LISTED], gateway=gateway)
        try:
            _call(
                args, LIST_ACCESS_REQUESTS_PATH, query, access_pb2.ListAccessRequestsResponse,
                client, provider, STATUS_PURPOSE,
            )  # fmt: skip
        except ZholError as err:
            print(
                f"could not ask {gateway} about {client}'s requests to {provider}: "
                f"{err.full_code}: {err.detail} (showing the last known status)",
                file=sys.stderr,
            )
            failures.append(err)
    return failures


def _list_requests(args: argparse.Namespace) -> int:
    status = args.status.upper() if args.status else None
    failures: list[ZholError] = []
    try:
        if args.client is not None:
            if not args.sent:
                raise ZholError("InvalidRequest", "--client goes with --sent")
            args.client = str(SubsystemId.parse(args.client))
        with contextlib.closing(_store(args.dir)) as store:
            if args.sent:
                failures = _refresh_sent(args, store)
                listed = [
                    (r, checked) for r, checked in store.sent(args.client) if r.status == status
                ] if status else store.sent(args.client)  # fmt: skip
            else:
                listed = [(r, 0) for r in store.received(status)]
    except ZholError as err:
        return report(err)
    for request, checked_at in listed:
        if args.json:
            fields: dict[str, object] = _stored_fields(request)
            if args.sent:
                fields["checked_at_unix_ms"] = checked_at
            print(json.dumps(fields))
        else:
            print(_text(request))
    return exit_code_for(failures[0]) if failures else EXIT_OK


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _text(r: StoredRequest) -> str:
    line = (
        f"{r.request_id}  {r.status.lower():<8} {_when(r.requested_at_ms)}  "
        f"{r.client} -> {r.target}  by {r.user_id}  reason: {r.reason!r}"
    )
    if r.decided_at_ms:
        note = f": {r.decision_reason!r}" if r.decision_reason else ""
        line += f"  [{r.status.lower()} {_when(r.decided_at_ms)}{note}]"
    return line


def _stored_fields(r: StoredRequest) -> dict[str, object]:
    return {
        "request_id": r.request_id,
        "status": r.status.lower(),
        "client": r.client,
        "provider": r.provider,
        "grpc_service": r.grpc_service,
        "method": r.method,
        "topic": r.topic,
        "target": r.target,
        "reason": r.reason,
        "user_id": r.user_id,
        "requested_at_unix_ms": r.requested_at_ms,
        "decided_at_unix_ms": r.decided_at_ms,
        "decision_reason": r.decision_reason,
        "gateway": r.gateway,
    }


def _pb_fields(pb: access_pb2.AccessRequest) -> dict[str, object]:
    from zhol.gateway.access import from_pb

    return _stored_fields(from_pb(pb))


# -- the provider's side: decisions on the data directory -----------------------------


def _decide(
    args: argparse.Namespace,
    status: str,
    reason: str,
    grant: Callable[[LocalConfStore, StoredRequest, int], None] | None,
) -> int:
    try:
        request_id = parse_message_id(args.id.strip())
        if reason:
            check_reason(reason, "decision reason")
        now = SystemClock().now_ms()
        with (
            contextlib.closing(_store(args.dir)) as store,
            contextlib.closing(LocalConfStore(args.dir / "local.db")) as local,
        ):
            decided = store.decide(
                request_id,
                status,
                reason,
                now,
                None if grant is None else (lambda r: grant(local, r, now)),
            )
    except ZholError as err:
        return report(err)
    print(f"{decided.status.lower()}: {decided.request_id} {decided.client} -> {decided.target}")
    if status == APPROVED:
        print("granted; the running gateway applies it within a second")
    return EXIT_OK


def _grant(local: LocalConfStore, request: StoredRequest, now_ms: int) -> None:
    """Exactly the right asked for: what `zhol gateway allow` (a service or a method) or
    `zhol events subscribe` (a topic) writes."""
    client = SubsystemId.parse(request.client)
    if request.topic:
        local.allow_topic(client, request.target, now_ms)
    else:
        local.allow(client, request.target, now_ms)


def _approve(args: argparse.Namespace) -> int:
    return _decide(args, APPROVED, args.reason, _grant)


def _reject(args: argparse.Namespace) -> int:
    try:
        check_reason(args.reason, "decision reason")
    except ZholError as err:
        return report(err)
    return _decide(args, REJECTED, args.reason, None)
