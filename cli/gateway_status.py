"""`zhol gateway status`: one look at a gateway from its files, as an operator needs it.

Reads the gateway's data directory only (the gateway may be running or not):
identity and addresses, whether the gateway runs and the health it publishes (with
every reason it refuses exchanges, gateway/healthfile.py), the cached global
configuration checked against the anchor, the certificates and their expiry, exposed
services and rights, the message log and the event outbox. gateway/status.py judges
what needs action. Exit 0: nothing stops exchanges (warnings allowed, a stopped
gateway is one); 1: something does; 3: no gateway here or its files are unreadable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK
from zhol.core.ids import GatewayId
from zhol.gateway.eventstore import read_status
from zhol.gateway.healthfile import read_health
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import format_ms, log_summary
from zhol.gateway.settings import GatewaySettings, load_gateway_settings
from zhol.gateway.status import DAY_MS, CertFacts, ConfFacts, Finding, HealthFacts, assess
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.keystore import read_certificate
from zhol.security.validation import cert_sha256

CERT_FILES = (("auth", "auth.pem"), ("sign", "sign.pem"))


def add_parser(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="identity, configuration, certificates, log and outbox; exit 1 if exchanges "
        "would fail",
    )
    status.add_argument("--dir", type=Path, required=True, help="the gateway's data folder")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(func=_status)


def _read_conf(
    settings: GatewaySettings, gateway_id: GatewayId
) -> tuple[ConfFacts, GlobalConf | None]:
    path = settings.conf_cache_path
    if not path.exists():
        return ConfFacts("missing"), None
    anchor_der = read_certificate(settings.anchor_path).public_bytes(Encoding.DER)
    try:
        conf = verify_global_conf(path.read_bytes(), anchor_der)
    except ZholError:
        return ConfFacts("invalid"), None
    entry = conf.gateways.get(gateway_id)
    state = "valid" if SystemClock().now_ms() < conf.expires_at_ms else "expired"
    return ConfFacts(
        state,
        conf.version,
        conf.generated_at_ms,
        conf.expires_at_ms,
        entry.auth_cert_sha256 if entry else b"",
        conf.revoked_cert_sha256,
        has_log_key=entry is None or bool(entry.log_public_key),
    ), conf


def _read_certs(keys_dir: Path) -> tuple[CertFacts, ...]:
    certs = []
    for role, name in CERT_FILES:
        cert = read_certificate(keys_dir / name)
        certs.append(
            CertFacts(
                role,
                cert.subject.rfc4514_string(),
                cert_sha256(cert.public_bytes(Encoding.DER)),
                int(cert.not_valid_before_utc.timestamp() * 1000),
                int(cert.not_valid_after_utc.timestamp() * 1000),
            )
        )
    return tuple(certs)


def gather(data_dir: Path, now_ms: int) -> dict[str, Any]:
    """The status document; raises OSError/ZholError/sqlite3.Error when files are unreadable."""
    settings = load_gateway_settings(data_dir)
    gateway_id = GatewayId.parse(settings.gateway_id)
    conf_facts, conf = _read_conf(settings, gateway_id)
    certs = _read_certs(settings.keys_dir)
    health = read_health(data_dir)
    findings = assess(certs, conf_facts, now_ms, health)
    doc: dict[str, Any] = {
        "gateway": str(gateway_id),
        "member": str(gateway_id.member),
        "registry_address": settings.registry_address,
        "is_listen": settings.is_listen,
        "peer_listen": settings.peer_listen,
        "health": {
            "running": health.running,
            "status": health.status,
            "reasons": list(health.reasons),
        },
        "global_conf": {"state": conf_facts.state},
        "conf_watch": _watch_view(health, now_ms),
        "serves": [],
        "certificates": [
            {
                "role": c.role,
                "subject": c.subject,
                "sha256": c.sha256.hex(),
                "not_after": format_ms(c.not_after_ms),
                "days_left": (c.not_after_ms - now_ms) // DAY_MS,
            }
            for c in certs
        ],
    }
    if conf is not None:
        doc["global_conf"].update(
            version=conf.version,
            generated_at=format_ms(conf.generated_at_ms),
            expires_at=format_ms(conf.expires_at_ms),
            seconds_left=max(0, (conf.expires_at_ms - now_ms) // 1000),
            log_key_registered=conf_facts.has_log_key,
        )
        doc["serves"] = sorted(
            str(s) for s, gateways in conf.subsystem_gateways.items() if gateway_id in gateways
        )
    with contextlib.closing(LocalConfStore(settings.local_db_path)) as local:
        doc["exposed_services"] = len(local.services())
        doc["access_rights"] = len(local.rights())
    try:
        records, last = log_summary(settings.message_log_path)
        doc["message_log"] = {
            "records": records,
            "last_logged_at": format_ms(last) if last is not None else None,
        }
    except FileNotFoundError:
        doc["message_log"] = {"records": 0, "last_logged_at": None}
    events = data_dir / "events.db"
    if events.exists():
        uri = f"{events.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            outbox = read_status(db, now_ms, dead_limit=0)
        doc["events"] = {
            "pending": outbox.pending, "retrying": outbox.retrying, "dead": outbox.dead,
        }  # fmt: skip
    doc["findings"] = [_finding(f) for f in findings]
    doc["ok"] = not any(f.severity == "error" for f in findings)
    return doc


def _watch_view(health: HealthFacts, now_ms: int) -> dict[str, Any] | None:
    """The running gateway's watch on the registry and the configuration it holds in
    memory, as it published them (what `zhol gateway refresh` reports); None when it
    does not run or has not said."""
    held = health.held
    if not health.running or held is None:
        return None
    generated = held.generated_at_ms
    return {
        "open": held.watching,  # None: the gateway keeps no watch
        "version": held.version,
        "generated_at": format_ms(generated) if generated is not None else None,
        "age_s": max(0, (now_ms - generated) // 1000) if generated is not None else None,
    }


def _watch_text(doc: dict[str, Any]) -> str:
    watch = doc["conf_watch"]
    if watch is None:
        return "-" if not doc["health"]["running"] else "unknown"
    state = {True: "open", False: "down: polling the registry", None: "none"}[watch["open"]]
    if watch["version"] is None:
        return f"{state}; the gateway holds no configuration"
    return (
        f"{state}; the gateway holds configuration version {watch['version']} "
        f"from {watch['generated_at']}, {watch['age_s']} s old"
    )


def _finding(f: Finding) -> dict[str, str]:
    return {"severity": f.severity, "code": f.code, "text": f.text}


def _status(args: argparse.Namespace) -> int:
    if not (args.dir / "gateway.toml").exists():
        print(f"no gateway in {args.dir}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    try:
        doc = gather(args.dir, SystemClock().now_ms())
    except (OSError, ZholError, sqlite3.Error, ValueError) as exc:
        print(f"cannot read the gateway in {args.dir}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if args.json:
        print(json.dumps(doc))
    else:
        _print_text(doc)
    return EXIT_OK if doc["ok"] else EXIT_FAILED


def _print_text(doc: dict[str, Any]) -> None:
    conf = doc["global_conf"]
    print(f"gateway {doc['gateway']} (member {doc['member']})")
    print(f"  listens  IS {doc['is_listen']}, peers {doc['peer_listen']}")
    print(f"  registry {doc['registry_address']}")
    health = doc["health"]
    if not health["running"]:
        print("  health   not running")
    else:
        reasons = ", ".join(health["reasons"])
        print(f"  health   {health['status'] or 'unknown'}" + (f" ({reasons})" if reasons else ""))
    if "version" in conf:
        print(
            f"  global configuration v{conf['version']} {conf['state']}, "
            f"generated {conf['generated_at']}, expires {conf['expires_at']}"
        )
    else:
        print(f"  global configuration {conf['state']}")
    print(f"  watch    {_watch_text(doc)}")
    print(f"  serves   {', '.join(doc['serves']) or '-'}")
    for c in doc["certificates"]:
        print(f"  {c['role']:<4} certificate {c['subject']}, until {c['not_after']} "
              f"({c['days_left']} days), sha256 {c['sha256'][:16]}...")  # fmt: skip
    print(f"  exposed services {doc['exposed_services']}, access rights {doc['access_rights']}")
    log = doc["message_log"]
    print(f"  message log {log['records']} records, last {log['last_logged_at'] or '-'}")
    if "events" in doc:
        e = doc["events"]
        print(f"  event outbox {e['pending']} pending ({e['retrying']} retrying), "
              f"{e['dead']} dead letters")  # fmt: skip
    for f in doc["findings"]:
        print(f"{f['severity'].upper()} {f['code']}: {f['text']}")
    print("OK" if doc["ok"] else "NOT OK: exchanges through this gateway fail")
