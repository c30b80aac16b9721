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

from zhol.cli.gateway import add_is_tls_options, endpoint_fields, endpoint_text, read_is_tls_options
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_OK, report
from zhol.core.ids import SubsystemId
from zhol.gateway.eventstore import read_status, requeue_dead
from zhol.gateway.localconf import LocalConfStore


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
    p.add_argument("--json", action="store_true")
    p = command("sink", _sink, "where a subscribing subsystem's IS receives its events")
    p.add_argument("--subsystem", required=True)
    p.add_argument("--address", required=True, help="host:port of its zhol.bus.v1.EventSink")
    add_is_tls_options(p)
    p = command("sinks", _sinks, "list event sinks and how they are reached")
    p.add_argument("--json", action="store_true")
    p = command("status", _status, "backlog, retries and dead letters of the outbox")
    p.add_argument("--json", action="store_true")
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


def _sink(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            mode, pem = read_is_tls_options(args, args.gateway)
            subsystem = SubsystemId.parse(args.subsystem)
            endpoint = local.set_event_sink(subsystem, args.address, mode, pem)
    except ZholError as err:
        return report(err)
    print(f"events for {args.subsystem} go to {endpoint_text(endpoint)}")
    return EXIT_OK


def _sinks(args: argparse.Namespace) -> int:
    try:
        with contextlib.closing(_local(args)) as local:
            sinks = local.event_sinks()
    except ZholError as err:
        return report(err)
    for subsystem, endpoint in sinks.items():
        if args.json:
            print(json.dumps({"subsystem": str(subsystem), **endpoint_fields(endpoint)}))
        else:
            print(f"{subsystem} -> {endpoint_text(endpoint)}")
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
            "dead_letters": list(status.dead_letters),
        }))  # fmt: skip
        return EXIT_OK
    age = "-" if status.oldest_pending_ms is None else f"{status.oldest_pending_ms / 1000:.1f}s"
    print(
        f"pending {status.pending} (retrying {status.retrying}, oldest {age}), "
        f"delivered {status.delivered}, dead letters {status.dead}"
    )
    for d in status.dead_letters:
        queued = dt.datetime.fromtimestamp(d["queued_at_ms"] / 1000, dt.UTC).isoformat()
        print(f"  dead {d['delivery_id']} {d['topic']} -> {d['subscriber']} "
              f"after {d['attempts']} attempts: {d['last_error']} (queued {queued})")  # fmt: skip
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    db = _events_db(args, write=True)
    if db is None:
        return EXIT_CANNOT_CHECK
    with contextlib.closing(db):
        count = requeue_dead(db, SystemClock().now_ms(), args.delivery)
    print(f"re-queued {count} dead letter(s); the running gateway picks them up within a second")
    return EXIT_OK
