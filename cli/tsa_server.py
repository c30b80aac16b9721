"""The timestamping authority's HTTP side: RFC 3161 over HTTP with aiohttp.

``POST /`` with ``Content-Type: application/timestamp-query`` and a DER TimeStampReq;
the answer is always a TimeStampResp (``application/timestamp-reply``, HTTP 200):
a token, or an RFC 3161 rejection for a wrong content type, a body too large or a
malformed request. The tokens are made by zhol.security.timestamp.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import signal
from pathlib import Path

from aiohttp import web

from zhol.adapters.runtime.server import remove_port_file, write_port_file
from zhol.cli.tsa import load_signer
from zhol.core.exitcodes import EXIT_OK
from zhol.core.jsonlog import error_fields
from zhol.security.timestamp import (
    CONTENT_TYPE,
    REPLY_CONTENT_TYPE,
    TimestampReply,
    TsaSigner,
    rejection,
    respond,
)

log = logging.getLogger("zhol.tsa")

# A TimeStampReq is about 100 bytes (SHA-512, a nonce and a policy stay under 200);
# anything larger is refused before it is read.
MAX_REQUEST_BYTES = 4096
# genTime keeps whole seconds, so the true time is within one second of it.
ACCURACY = dt.timedelta(seconds=1)
# Made once, so that answering a bug cannot itself fail.
_SYSTEM_FAILURE = rejection("system_failure", "internal error")


def new_serial() -> int:
    """A 127-bit random serial: unique without state to keep (RFC 3161 allows 160 bits)."""
    return secrets.randbits(127) or 1


def build_app(signer: TsaSigner) -> web.Application:
    """The aiohttp application: POST / answers one timestamp request."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)

    async def timestamp(request: web.Request) -> web.Response:
        reply = await _answer(request, signer)
        fields = {"event": "tsa.granted" if reply.granted else "tsa.refused"}
        if reply.granted:
            fields["serial"] = f"{reply.serial_number:x}"
        else:
            fields["failure"] = str(reply.failure)
        log.info(fields["event"], extra={**fields, "remote": request.remote})
        return web.Response(body=reply.der, content_type=REPLY_CONTENT_TYPE)

    app.router.add_post("/", timestamp)
    return app


async def _answer(request: web.Request, signer: TsaSigner) -> TimestampReply:
    # Every bad request gets an RFC 3161 rejection a client can parse, never a 500.
    if request.content_type != CONTENT_TYPE:
        return rejection("bad_request", f"Content-Type must be {CONTENT_TYPE}")
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return rejection("bad_data_format", "request too large")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return rejection("bad_data_format", "request too large")
    try:
        return respond(
            body,
            signer,
            gen_time=dt.datetime.now(dt.UTC),
            serial_number=new_serial(),
            accuracy=ACCURACY,
        )
    except Exception as exc:  # a bug must still answer in the protocol, and be logged
        log.error("tsa.failed", extra={"event": "tsa.failed", **error_fields(exc)})
        return _SYSTEM_FAILURE


async def serve(data_dir: Path, listen: str, port_file: Path | None) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    signer = load_signer(data_dir)
    host, _, port_text = listen.rpartition(":")
    runner = web.AppRunner(build_app(signer), access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host or "127.0.0.1", int(port_text), reuse_port=False)
        await site.start()
        port = int(runner.addresses[0][1])
        if port_file is not None:
            write_port_file(port_file, port)
        log.info(
            "tsa.started",
            extra={
                "event": "tsa.started",
                "address": f"{host}:{port}",
                "subject": signer.cert.subject.rfc4514_string(),
                "policy": signer.policy,
                "pid": os.getpid(),
            },
        )
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        if port_file is not None:
            remove_port_file(port_file)
        log.info("tsa.stopped", extra={"event": "tsa.stopped"})
    return EXIT_OK
