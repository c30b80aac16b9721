"""`zhol gateway refresh`: make the running gateway fetch the global configuration now.

The gateway takes new versions as the registry pushes them (gateway/confwatch.py) and
polls as a fallback; this is for an operator who does not want to wait for either.
The request goes through the data directory (gateway/refreshfile.py), as `zhol
gateway status` reads it. Exit 0: the gateway fetched and holds the version printed;
1: no gateway runs on the directory (NotRunning; nothing was fetched); 3: no gateway
there, or the fetch failed (the registry unreachable: the version it still holds is
printed), or the gateway did not answer in time.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError, parse_full_code
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, exit_code_for
from zhol.gateway.confsource import conf_standing, standing_text
from zhol.gateway.healthfile import read_health
from zhol.gateway.refreshfile import RefreshAnswer, answer_path, request_path
from zhol.gateway.settings import load_gateway_settings
from zhol.gateway.status import NOT_RUNNING
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.keystore import read_certificate

POLL_S = 0.05


def add_parser(sub: Any) -> None:
    refresh = sub.add_parser(
        "refresh",
        help="make the running gateway fetch the global configuration now; prints the "
        "version it then holds",
    )
    refresh.add_argument("--dir", type=Path, required=True, help="the gateway's data directory")
    refresh.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="wait this long for the gateway's answer (default 15)",
    )
    refresh.add_argument("--json", action="store_true", help="one JSON object")
    refresh.set_defaults(func=_refresh)


def _cached_conf(data_dir: Path) -> GlobalConf | None:
    """The configuration the gateway's cache holds, if it verifies against the anchor."""
    try:
        settings = load_gateway_settings(data_dir)
        anchor_der = read_certificate(settings.anchor_path).public_bytes(Encoding.DER)
        return verify_global_conf(settings.conf_cache_path.read_bytes(), anchor_der)
    except (OSError, ValueError, ZholError):
        return None


def _ask(data_dir: Path, timeout_s: float) -> RefreshAnswer | None:
    """Leave a request for the running gateway and wait for its answer (None: none came)."""
    token = secrets.token_hex(16)
    request, answer = request_path(data_dir, token), answer_path(data_dir, token)
    request.write_text("")
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                doc = json.loads(answer.read_text())
            except FileNotFoundError:
                time.sleep(POLL_S)
                continue
            return RefreshAnswer.from_json(doc)
        return None
    finally:
        request.unlink(missing_ok=True)
        answer.unlink(missing_ok=True)


def _emit(doc: dict[str, Any], text: str, as_json: bool) -> None:
    print(json.dumps(doc) if as_json else text)


def _refresh(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir
    if not (data_dir / "gateway.toml").exists():
        print(f"no gateway in {data_dir}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    now_ms = SystemClock().now_ms()
    if not read_health(data_dir).running:
        cached = _cached_conf(data_dir)
        held = conf_standing(cached, now_ms) if cached else "no configuration"
        _emit(
            {"running": False, "version": cached.version if cached else None},
            f"{NOT_RUNNING}: no gateway runs on {data_dir}; its cache holds {held} "
            "(a gateway fetches the newest when it starts)",
            args.json,
        )
        return EXIT_FAILED
    try:
        answer = _ask(data_dir, args.timeout)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot ask the gateway in {data_dir}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if answer is None:
        err = ZholError(
            "Timeout", f"the gateway on {data_dir} did not answer in {args.timeout:g} s"
        )
        print(f"{err.full_code}: {err.detail}", file=sys.stderr)
        return exit_code_for(err)
    doc: dict[str, Any] = {"running": True, **answer.to_json()}
    if answer.version is not None and answer.generated_at_ms is not None:
        held = standing_text(answer.version, answer.generated_at_ms, SystemClock().now_ms())
    else:
        held = "no configuration"
    news = "newer, fetched now" if answer.accepted else "already the newest"
    watch = "watch open" if answer.watching else "watch down: polling"
    if answer.error is None:
        _emit(doc, f"gateway holds {held} ({news}; {watch})", args.json)
        return EXIT_OK
    _emit(doc, f"gateway holds {held} ({watch})", args.json)
    print(f"{answer.error}: {answer.detail}", file=sys.stderr)
    try:
        return exit_code_for(ZholError(parse_full_code(answer.error)[1].name))
    except (KeyError, ValueError):
        return EXIT_FAILED
