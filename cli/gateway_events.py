"""`zhol events ...`: subscriptions, event sinks, the outbox's backlog and dead letters."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zhol.cli.gateway import add_is_tls_options, endpoint_fields, endpoint_text, read_is_tls_options
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_OK, report
from zhol.core.ids import SubsystemId
from zhol.gateway.event_stages import parse_topic
from zhol.gateway.eventstore import read_status, requeue_dead
from zhol.gateway.localconf import LocalConfStore, SinkRoute, parse_topic_target


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    events = subparsers.add_parser("events", help="publish/subscribe: rights, sinks, outbox")
    sub = events.add_subparsers(dest="events_command", required=True)

    def command(
        name: str, func: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text)
        p.add_argument("--gateway", type=Path, required=True, help="the gateway's data dir")
        p.set_defaults(func=func)
        return p

    for name, func, text in (
        ("subscribe", _subscribe, "let a subsystem receive a topic published here"),
        ("unsubscribe", _unsubscribe, "withdraw that right"),
    ):
        p = command(name, func, text)
        p.add_argument("--subscriber", required=True, help="e.g. KZ/GOV/MLSPP/pension")
        p.add_argument(
            "--topic", required=True, help="KZ/GOV/MJ/population/zhol.population.v1.BirthRegistered"
        )
    p = command("subscriptions", _subscriptions, "list who receives what from here")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p = command("sink", _sink, "where a subscribing subsystem's IS receives its events")
    p.add_argument("--subsystem", required=True, help="the subscribing subsystem served here")
    p.add_argument("--address", help="host:port of its zhol.bus.v1.EventSink")
    p.add_argument(
        "--publisher",
        help="only events of this publishing subsystem (default: any publisher)",
    )
    p.add_argument(
        "--topic",
        help="only events of this topic, e.g. zhol.population.v1.BirthRegistered "
        "or PUBLISHER/TOPIC (default: any topic)",
    )
    p.add_argument(
        "--remove",
        action="store_true",
        help="drop the receiver set for --publisher/--topic (its events go to the next match)",
    )
    add_is_tls_options(p)
    p = command("sinks", _sinks, "list event sinks and how they are reached")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p = command("status", _status, "backlog, retries and dead letters of the outbox")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p = command("retry", _retry, "re-queue dead letters (all, or one)")
    p.add_argument("--delivery", help="one delivery id (default: every dead letter)")


def _local(args: argparse.Namespace) -> LocalConfStore:
    if not (args.gateway / "gateway.toml").exists():
        raise ZholError("NotConfigured", f"no gateway in {args.gateway}")
    return LocalConfStore(args.gateway / "local.db")


def _subscribe(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            granted = local.allow_topic(
                SubsystemId.parse(args.subscriber), args.topic, SystemClock().now_ms()
            )
    except ZholError as err:
        return report(err)
    print(f"subscribed: {granted}")
    return EXIT_OK


def _unsubscribe(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            removed = local.deny_topic(SubsystemId.parse(args.subscriber), args.topic)
    except ZholError as err:
        return report(err)
    print(f"unsubscribed: removed {removed} subscription(s)")
    return EXIT_OK


def _subscriptions(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            subscriptions = local.subscriptions()
    except ZholError as err:
        return report(err)
    for s in subscriptions:
        if args.json:
            print(json.dumps({"publisher": str(s.publisher), "topic": s.topic,
                              "subscriber": str(s.subscriber)}))  # fmt: skip
        else:
            print(s)
    return EXIT_OK


def sink_route(subsystem: str, publisher: str | None, topic: str | None) -> SinkRoute:
    """The events a receiver takes, from `zhol events sink` options: --topic may name
    its publisher too (PUBLISHER/TOPIC), which must then agree with --publisher."""
    who = SubsystemId.parse(publisher) if publisher else None
    name = ""
    if topic:
        if "/" in topic:
            named = parse_topic_target(SubsystemId.parse(subsystem), topic)
            if who is not None and who != named.publisher:
                raise ZholError("InvalidRequest", "--topic and --publisher name two publishers")
            who, name = named.publisher, named.topic
        else:
            name = parse_topic(topic)
    return SinkRoute(SubsystemId.parse(subsystem), who, name)


def _sink(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            route = sink_route(args.subsystem, args.publisher, args.topic)
            if args.remove:
                if route.publisher is None and not route.topic:
                    raise ZholError("InvalidRequest", "--remove needs --publisher or --topic")
                removed = local.remove_event_route(route)
                print(f"removed {removed} receiver(s) for {route}")
                return EXIT_OK
            if not args.address:
                raise ZholError("InvalidRequest", "--address is required (or --remove)")
            mode, pem = read_is_tls_options(args, args.gateway)
            endpoint = local.set_event_route(route, args.address, mode, pem)
    except ZholError as err:
        return report(err)
    print(f"events for {route} go to {endpoint_text(endpoint)}")
    return EXIT_OK


def _sinks(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            sinks = local.event_sinks()
            routes = local.event_routes()
    except ZholError as err:
        return report(err)
    listed = [(SinkRoute(subsystem), endpoint) for subsystem, endpoint in sinks.items()]
    everything = sorted([*listed, *routes], key=lambda r: (str(r[0].subsystem), r[0].key))
    for route, endpoint in everything:
        if args.json:
            publisher, topic = route.key
            print(json.dumps({"subsystem": str(route.subsystem), "publisher": publisher,
                              "topic": topic, **endpoint_fields(endpoint)}))  # fmt: skip
        else:
            print(f"{route} -> {endpoint_text(endpoint)}")
    return EXIT_OK


def _events_db(args: argparse.Namespace, *, write: bool) -> sqlite3.Connection | None:
    path = args.gateway / "events.db"
    if not path.exists():
        print(f"no event outbox at {path} (has the gateway run?)", file=sys.stderr)
        return None
    uri = f"{path.resolve().as_uri()}?mode={'rw' if write else 'ro'}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5)
    return db


def _status(args: argparse.Namespace) -> int:
    db = _events_db(args, write=False)
    if db is None:
        return EXIT_CANNOT_CHECK
    with contextlib.closing(db):
        status = read_status(db, SystemClock().now_ms())
    if args.json:
        print(json.dumps({
            "pending": status.pending, "retrying": status.retrying,
            "delivered": status.delivered, "dead": status.dead,
            "oldest_pending_ms": status.oldest_pending_ms,
            "subscribers": list(status.subscribers),
            "dead_letters": list(status.dead_letters),
        }))  # fmt: skip
        return EXIT_OK
    age = "-" if status.oldest_pending_ms is None else f"{status.oldest_pending_ms / 1000:.1f}s"
    print(
        f"pending {status.pending} (retrying {status.retrying}, oldest {age}), "
        f"delivered {status.delivered}, dead letters {status.dead}"
    )
    for s in status.subscribers:
        print(f"  {s['subscriber']}: pending {s['pending']} (retrying {s['retrying']}), "
              f"delivered {s['delivered']}, dead {s['dead']}")  # fmt: skip
        if s["last_error"]:
            print(f"    last error after {s['attempts']} attempt(s) at "
                  f"{_utc(s['last_attempt_at_ms'])}: {_failure_text(s)}")  # fmt: skip
        if s["next_retry_at_ms"] is not None:
            print(f"    next retry {_utc(s['next_retry_at_ms'])}")
    for d in status.dead_letters:
        print(f"  dead {d['delivery_id']} {d['topic']} -> {d['subscriber']} "
              f"after {d['attempts']} attempts: {_failure_text(d)} "
              f"(queued {_utc(d['queued_at_ms'])})")  # fmt: skip
    return EXIT_OK


def _utc(ms: int | None) -> str:
    return "-" if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def _failure_text(f: dict[str, Any]) -> str:
    """'Server.ServerProxy.ReceiverRefused: receiver said FAILED_PRECONDITION: ...'."""
    if f["receiver_status"]:
        return f"{f['last_error']}: receiver said {f['receiver_status']}: {f['last_message']}"
    return f"{f['last_error']}: {f['last_message']}" if f["last_message"] else f["last_error"]


def _retry(args: argparse.Namespace) -> int:
    db = _events_db(args, write=True)
    if db is None:
        return EXIT_CANNOT_CHECK
    with contextlib.closing(db):
        count = requeue_dead(db, SystemClock().now_ms(), args.delivery)
    print(f"re-queued {count} dead letter(s); the running gateway picks them up within a second")
    return EXIT_OK
