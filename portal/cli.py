"""`zhol portal serve`: the citizen portal as its own process (docs/portal.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from zhol.core.jsonlog import configure_json_logging
from zhol.portal.app import create_app
from zhol.portal.feed import FEED_STORE, start_sink
from zhol.portal.settings import PORTAL_SUBSYSTEM, PortalSettings
from zhol.portal.usage import parse_target

log = logging.getLogger("zhol.portal")


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    portal = subparsers.add_parser("portal", help="the citizen portal (web application)")
    sub = portal.add_subparsers(dest="portal_command", required=True)
    serve = sub.add_parser("serve", help="serve the portal over HTTP")
    serve.add_argument("--listen", default="127.0.0.1:8080", help="host:port to listen on")
    serve.add_argument("--gateway", required=True, help="host:port of the portal's gateway")
    serve.add_argument("--client", default=PORTAL_SUBSYSTEM, help="the portal's subsystem")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: one-time codes go to the SMS outbox page /dev/outbox",
    )
    serve.add_argument(
        "--insecure-cookies",
        action="store_true",
        help="demo mode only: cookies without the Secure flag, for http://127.0.0.1",
    )
    serve.add_argument(
        "--usage-target",
        action="append",
        metavar="GATEWAY=SUBSYSTEM",
        help="ask only these gateways on 'who used my data', each with a subsystem it "
        "serves, e.g. KZ/GOV/MJ/gw1=KZ/GOV/MJ/population (repeat); default: every gateway "
        "of the federation, as the portal's gateway lists them (Discovery, read again "
        "every minute)",
    )
    serve.add_argument(
        "--feed-db",
        type=Path,
        help="the life-events feed's inbox (SQLite); with --events-listen",
    )
    serve.add_argument(
        "--events-listen",
        help="host:port where the portal's gateway delivers decision events (EventSink)",
    )
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    configure_json_logging()
    host, _, port = args.listen.rpartition(":")
    try:
        settings = PortalSettings(
            gateway=args.gateway,
            client=args.client,
            demo=args.demo,
            secure_cookies=not args.insecure_cookies,
            usage_targets=tuple(parse_target(t) for t in args.usage_target or ()),
            feed_db=args.feed_db,
        )
    except ValueError as exc:
        log.error("portal settings refused: %s", exc)
        return 2
    if (args.feed_db is None) != (args.events_listen is None):
        log.error("--feed-db and --events-listen go together")
        return 2
    if not settings.demo:
        # No identity provider is built yet: only the demo's SMS outbox delivers codes.
        log.error("no identity provider is configured; run with --demo (docs/portal.md)")
        return 2
    asyncio.run(_serve(settings, host or "127.0.0.1", int(port), args.events_listen))
    return 0


async def _serve(
    settings: PortalSettings, host: str, port: int, events_listen: str | None
) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)  # no paths (IINs) logged
    await runner.setup()
    sink = None
    if events_listen is not None:  # the feed's EventSink, for the portal's gateway
        sink, _ = await start_sink(app[FEED_STORE], events_listen)
        log.info("portal event sink listening", extra={"listen": events_listen})
    await web.TCPSite(runner, host, port).start()
    log.info("portal listening", extra={"listen": f"{host}:{port}", "demo": settings.demo})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if sink is not None:
        await sink.stop(5)
    await runner.cleanup()
