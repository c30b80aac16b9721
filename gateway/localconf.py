"""The gateway's local configuration: exposed services and access rights (local.db).

Separate from the signed global configuration: the provider gateway alone
decides which clients may call which of its services (deny by default). The
operator edits it with ``zhol gateway allow|deny|rights``; a running gateway
notices commits through SQLite's data_version and reloads.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.errors import ZholError
from zhol.core.ids import ServiceId, SubsystemId
from zhol.gateway.ispins import IS_TLS_MODES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    subsystem TEXT NOT NULL,
    grpc_service TEXT NOT NULL,
    is_address TEXT NOT NULL,
    methods TEXT NOT NULL DEFAULT '',
    tls_mode TEXT NOT NULL DEFAULT 'plaintext',
    server_cert TEXT NOT NULL DEFAULT '',  -- pinned IS certificate or CA (PEM)
    PRIMARY KEY (subsystem, grpc_service)
);
CREATE TABLE IF NOT EXISTS access_rights (
    client TEXT NOT NULL,
    provider TEXT NOT NULL,
    grpc_service TEXT NOT NULL,
    method TEXT NOT NULL DEFAULT '',   -- '' grants the whole gRPC service
    granted_at_ms INTEGER NOT NULL,
    PRIMARY KEY (client, provider, grpc_service, method)
);
-- Subscriptions are access rights too: the publisher's gateway grants them.
CREATE TABLE IF NOT EXISTS subscriptions (
    publisher TEXT NOT NULL,
    topic TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    granted_at_ms INTEGER NOT NULL,
    PRIMARY KEY (publisher, topic, subscriber)
);
-- Where a subscribing subsystem's IS receives events (zhol.bus.v1.EventSink).
CREATE TABLE IF NOT EXISTS event_sinks (
    subsystem TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    tls_mode TEXT NOT NULL DEFAULT 'plaintext',
    server_cert TEXT NOT NULL DEFAULT ''
);
-- A receiver for one publisher's events, one topic's, or one topic of one publisher
-- ('' = any), ahead of the subsystem's default in event_sinks (LocalConf.event_sink).
CREATE TABLE IF NOT EXISTS event_routes (
    subsystem TEXT NOT NULL,
    publisher TEXT NOT NULL,
    topic TEXT NOT NULL,
    address TEXT NOT NULL,
    tls_mode TEXT NOT NULL DEFAULT 'plaintext',
    server_cert TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (subsystem, publisher, topic)
);
-- Who may ask this gateway "who used my data" (zhol.bus.v1.Usage): its whole log.
CREATE TABLE IF NOT EXISTS usage_rights (
    client TEXT PRIMARY KEY,
    granted_at_ms INTEGER NOT NULL
);
"""

# Columns added after the first release: (table, column, definition). A database
# created before them gains them with their defaults, every row kept.
_ADDED_COLUMNS = (
    ("services", "tls_mode", "TEXT NOT NULL DEFAULT 'plaintext'"),
    ("services", "server_cert", "TEXT NOT NULL DEFAULT ''"),
    ("event_sinks", "tls_mode", "TEXT NOT NULL DEFAULT 'plaintext'"),
    ("event_sinks", "server_cert", "TEXT NOT NULL DEFAULT ''"),
)


@dataclass(frozen=True, slots=True)
class IsEndpoint:
    """Where and how the gateway reaches an IS (a provider service or an event sink).

    ``tls``: the IS must present a certificate that chains to ``server_cert_pem`` (a
    pinned self-signed certificate, or a CA); ``mtls``: the gateway also presents its
    IS-facing certificate, so the IS can pin the gateway.
    """

    address: str
    tls_mode: str = "plaintext"
    server_cert_pem: bytes = b""

    def __str__(self) -> str:
        return self.address if self.tls_mode == "plaintext" else f"{self.address} ({self.tls_mode})"


def check_is_tls(tls_mode: str, server_cert_pem: bytes) -> bytes:
    """Fail closed at configuration time: a TLS mode needs a readable pinned certificate.

    Returns the certificate(s) re-encoded as PEM ('' for plaintext, which pins nothing).
    """
    if tls_mode not in IS_TLS_MODES:
        raise ZholError("InvalidRequest", f"TLS mode must be one of {', '.join(IS_TLS_MODES)}")
    if tls_mode == "plaintext":
        if server_cert_pem:
            raise ZholError("InvalidRequest", "a server certificate needs TLS mode tls or mtls")
        return b""
    if not server_cert_pem:
        raise ZholError("InvalidRequest", f"TLS mode {tls_mode} needs the IS server certificate")
    try:
        certs = x509.load_pem_x509_certificates(server_cert_pem)
    except ValueError as exc:
        raise ZholError("InvalidRequest", f"not a PEM certificate: {exc}") from None
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


@dataclass(frozen=True, slots=True)
class ExposedService:
    subsystem: SubsystemId
    grpc_service: str
    is_address: str
    methods: tuple[str, ...]
    tls_mode: str = "plaintext"
    server_cert_pem: bytes = b""

    @property
    def endpoint(self) -> IsEndpoint:
        return IsEndpoint(self.is_address, self.tls_mode, self.server_cert_pem)


@dataclass(frozen=True, slots=True)
class AccessRight:
    client: SubsystemId
    provider: SubsystemId
    grpc_service: str
    method: str  # "" = every method of the service

    def __str__(self) -> str:
        target = f"{self.provider}/{self.grpc_service}" + (f"/{self.method}" if self.method else "")
        return f"{self.client} -> {target}"


@dataclass(frozen=True, slots=True)
class SinkRoute:
    """Which events of a subscribing subsystem a receiver takes: a publisher's, a
    topic's, both, or (neither set) the subsystem's default receiver."""

    subsystem: SubsystemId
    publisher: SubsystemId | None = None
    topic: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return ("" if self.publisher is None else str(self.publisher), self.topic)

    def __str__(self) -> str:
        if self.publisher is None and not self.topic:
            return str(self.subsystem)
        return f"{self.subsystem} [{self.publisher or '*'}/{self.topic or '*'}]"


@dataclass(frozen=True)
class LocalConf:
    services: dict[tuple[SubsystemId, str], ExposedService]
    rights: frozenset[tuple[SubsystemId, SubsystemId, str, str]]
    subscriptions: dict[tuple[SubsystemId, str], tuple[SubsystemId, ...]] = field(
        default_factory=dict
    )
    event_sinks: dict[SubsystemId, IsEndpoint] = field(default_factory=dict)
    usage_clients: frozenset[SubsystemId] = frozenset()
    # (subsystem, publisher or '', topic or '') -> a receiver ahead of the default.
    event_routes: dict[tuple[SubsystemId, str, str], IsEndpoint] = field(default_factory=dict)

    def authorize_usage(self, client: SubsystemId) -> None:
        """Deny by default: only a client granted ``usage`` may read this gateway's log."""
        if client not in self.usage_clients:
            raise ZholError("AccessDenied", f"{client} may not ask this gateway for usage")

    def subscribers(self, publisher: SubsystemId, topic: str) -> tuple[SubsystemId, ...]:
        """Who this gateway lets receive the publisher's topic (nobody by default)."""
        return self.subscriptions.get((publisher, topic), ())

    def event_sink(
        self, subsystem: SubsystemId, publisher: SubsystemId | None = None, topic: str = ""
    ) -> IsEndpoint:
        """The receiver of a subsystem's events, most specific first: the one set for
        this publisher and topic, for this topic (any publisher), for this publisher
        (any topic), then the subsystem's default."""
        if publisher is not None or topic:
            who = "" if publisher is None else str(publisher)
            for key in ((who, topic), ("", topic), (who, "")):
                if key != ("", ""):
                    endpoint = self.event_routes.get((subsystem, *key))
                    if endpoint is not None:
                        return endpoint
        endpoint = self.event_sinks.get(subsystem)
        if endpoint is None:
            raise ZholError("UnknownService", f"{subsystem} has no event sink here")
        return endpoint

    def exposed(self, service: ServiceId) -> ExposedService:
        found = self.services.get((service.subsystem, service.grpc_service))
        if found is None:
            raise ZholError("UnknownService", f"{service.grpc_service} is not served here")
        return found

    def authorize(self, client: SubsystemId, service: ServiceId) -> None:
        """Deny by default: a right for the method or for the whole service is needed."""
        key = (client, service.subsystem, service.grpc_service)
        if (*key, service.method) in self.rights or (*key, "") in self.rights:
            return
        raise ZholError("AccessDenied", f"{client} may not call {service}")


@dataclass(frozen=True, slots=True)
class Subscription:
    publisher: SubsystemId
    topic: str
    subscriber: SubsystemId

    def __str__(self) -> str:
        return f"{self.subscriber} <- {self.publisher}/{self.topic}"


def parse_topic_target(subscriber: SubsystemId, text: str) -> Subscription:
    """'KZ/GOV/MJ/population/zhol.population.v1.BirthRegistered' -> a subscription."""
    parts = text.split("/")
    if len(parts) != 5:
        raise ZholError("InvalidIdentifier", f"malformed topic {text[:80]!r}")
    publisher = SubsystemId.parse("/".join(parts[:4]))
    ServiceId.of(publisher, parts[4], "Any")  # same grammar as a service name
    return Subscription(publisher, parts[4], subscriber)


def parse_service_target(text: str) -> tuple[SubsystemId, str, str]:
    """'KZ/GOV/MJ/population/pkg.Service[/Method]' -> (provider, grpc service, method or '')."""
    parts = text.split("/")
    if len(parts) == 5:
        service = ServiceId.of(SubsystemId.parse("/".join(parts[:4])), parts[4], "Any")
        return service.subsystem, service.grpc_service, ""
    service = ServiceId.parse(text)
    return service.subsystem, service.grpc_service, service.method


def _checked_pin(tls_mode: str | None, server_cert_pem: bytes) -> str | None:
    """The pin to store (None with no mode: keep the stored one)."""
    if tls_mode is None:
        if server_cert_pem:
            raise ZholError("InvalidRequest", "a server certificate needs a TLS mode")
        return None
    return check_is_tls(tls_mode, server_cert_pem).decode()


def check_is_address(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ZholError("InvalidRequest", f"IS address must be HOST:PORT, got {address[:80]!r}")


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Migrate in one write transaction: two processes opening an old file never both add."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, column, definition in _ADDED_COLUMNS:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class LocalConfStore:
    """Read and edit local.db; ``current()`` is cheap and reloads only after a commit."""

    # How often a running gateway looks for the operator's changes (PRAGMA data_version).
    RELOAD_CHECK_S = 0.5

    def __init__(self, path: Path) -> None:
        self._path = path
        self._checked_at = 0.0
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        _add_missing_columns(self._db)
        self._version = -1
        self._cached: LocalConf | None = None

    def close(self) -> None:
        self._db.close()

    def current(self) -> LocalConf:
        """The local configuration; another process's commit shows within RELOAD_CHECK_S."""
        now = time.monotonic()
        if self._cached is not None and now - self._checked_at < self.RELOAD_CHECK_S:
            return self._cached
        self._checked_at = now
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if self._cached is None or version != self._version:
            self._cached = self._load()
            self._version = version
        return self._cached

    def _load(self) -> LocalConf:
        services = {}
        for subsystem, grpc_service, address, methods, mode, cert in self._db.execute(
            "SELECT subsystem, grpc_service, is_address, methods, tls_mode, server_cert "
            "FROM services"
        ):
            sub = SubsystemId.parse(subsystem)
            names = tuple(m for m in methods.split(",") if m)
            services[(sub, grpc_service)] = ExposedService(
                sub, grpc_service, address, names, mode, cert.encode()
            )
        rights = frozenset(
            (SubsystemId.parse(c), SubsystemId.parse(p), s, m)
            for c, p, s, m in self._db.execute(
                "SELECT client, provider, grpc_service, method FROM access_rights"
            )
        )
        subscriptions: dict[tuple[SubsystemId, str], tuple[SubsystemId, ...]] = {}
        for publisher, topic, subscriber in self._db.execute(
            "SELECT publisher, topic, subscriber FROM subscriptions ORDER BY subscriber"
        ):
            key = (SubsystemId.parse(publisher), topic)
            subscriptions[key] = (*subscriptions.get(key, ()), SubsystemId.parse(subscriber))
        sinks = {
            SubsystemId.parse(sub): IsEndpoint(address, mode, cert.encode())
            for sub, address, mode, cert in self._db.execute(
                "SELECT subsystem, address, tls_mode, server_cert FROM event_sinks"
            )
        }
        usage = frozenset(
            SubsystemId.parse(c) for (c,) in self._db.execute("SELECT client FROM usage_rights")
        )
        routes = {
            (SubsystemId.parse(sub), publisher, topic): IsEndpoint(address, mode, cert.encode())
            for sub, publisher, topic, address, mode, cert in self._db.execute(
                "SELECT subsystem, publisher, topic, address, tls_mode, server_cert "
                "FROM event_routes"
            )
        }
        return LocalConf(services, rights, subscriptions, sinks, usage, routes)

    def expose(
        self, subsystem: SubsystemId, grpc_service: str, is_address: str, methods: Iterable[str]
    ) -> None:
        """Add or update a service; its TLS mode (set_service_tls) is kept."""
        ServiceId.of(subsystem, grpc_service, "Any")  # validates the service name
        self._db.execute(
            "INSERT INTO services (subsystem, grpc_service, is_address, methods) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(subsystem, grpc_service) "
            "DO UPDATE SET is_address = excluded.is_address, methods = excluded.methods",
            (str(subsystem), grpc_service, is_address, ",".join(methods)),
        )
        self._cached = None

    def set_service_tls(
        self,
        subsystem: SubsystemId,
        grpc_service: str,
        tls_mode: str | None,
        server_cert_pem: bytes = b"",
        *,
        is_address: str | None = None,
    ) -> ExposedService:
        """How the gateway reaches an exposed service's IS (and, if given, where).

        ``tls_mode`` None keeps the mode and pin: moving an IS never drops its TLS.
        """
        pem = _checked_pin(tls_mode, server_cert_pem)
        if is_address is not None:
            check_is_address(is_address)
        cursor = self._db.execute(
            "UPDATE services SET tls_mode = coalesce(?, tls_mode), "
            "server_cert = coalesce(?, server_cert), is_address = coalesce(?, is_address) "
            "WHERE subsystem = ? AND grpc_service = ?",
            (tls_mode, pem, is_address, str(subsystem), grpc_service),
        )
        self._cached = None
        if cursor.rowcount == 0:
            raise ZholError("UnknownService", f"{subsystem}/{grpc_service} is not exposed here")
        return self.current().services[(subsystem, grpc_service)]

    def allow(self, client: SubsystemId, target: str, now_ms: int) -> AccessRight:
        provider, grpc_service, method = parse_service_target(target)
        self._db.execute(
            "INSERT OR IGNORE INTO access_rights VALUES (?, ?, ?, ?, ?)",
            (str(client), str(provider), grpc_service, method, now_ms),
        )
        self._cached = None
        return AccessRight(client, provider, grpc_service, method)

    def deny(self, client: SubsystemId, target: str) -> int:
        """Remove a right; returns how many rows were removed (0 if there was none)."""
        provider, grpc_service, method = parse_service_target(target)
        cursor = self._db.execute(
            "DELETE FROM access_rights WHERE client = ? AND provider = ? AND grpc_service = ? "
            "AND method = ?",
            (str(client), str(provider), grpc_service, method),
        )
        self._cached = None
        return cursor.rowcount

    def allow_usage(self, client: SubsystemId, now_ms: int) -> None:
        """Let ``client`` call zhol.bus.v1.Usage on this gateway (docs/operators.md)."""
        self._db.execute("INSERT OR IGNORE INTO usage_rights VALUES (?, ?)", (str(client), now_ms))
        self._cached = None

    def deny_usage(self, client: SubsystemId) -> int:
        cursor = self._db.execute("DELETE FROM usage_rights WHERE client = ?", (str(client),))
        self._cached = None
        return cursor.rowcount

    def usage_rights(self) -> list[SubsystemId]:
        return sorted(self.current().usage_clients, key=str)

    def allow_topic(self, subscriber: SubsystemId, target: str, now_ms: int) -> Subscription:
        """Let a subsystem receive 'KZ/GOV/MJ/population/zhol.population.v1.BirthRegistered'."""
        subscription = parse_topic_target(subscriber, target)
        self._db.execute(
            "INSERT OR IGNORE INTO subscriptions VALUES (?, ?, ?, ?)",
            (str(subscription.publisher), subscription.topic, str(subscriber), now_ms),
        )
        self._cached = None
        return subscription

    def deny_topic(self, subscriber: SubsystemId, target: str) -> int:
        subscription = parse_topic_target(subscriber, target)
        cursor = self._db.execute(
            "DELETE FROM subscriptions WHERE publisher = ? AND topic = ? AND subscriber = ?",
            (str(subscription.publisher), subscription.topic, str(subscriber)),
        )
        self._cached = None
        return cursor.rowcount

    def subscriptions(self) -> list[Subscription]:
        return sorted(
            (
                Subscription(publisher, topic, subscriber)
                for (publisher, topic), subscribers in self.current().subscriptions.items()
                for subscriber in subscribers
            ),
            key=str,
        )

    def set_event_sink(
        self,
        subsystem: SubsystemId,
        address: str,
        tls_mode: str | None = None,
        server_cert_pem: bytes = b"",
    ) -> IsEndpoint:
        """Where (and how) a subscriber's IS receives events; ``tls_mode`` None keeps
        an existing sink's mode and pin (plaintext for a new one)."""
        pem = _checked_pin(tls_mode, server_cert_pem)
        check_is_address(address)
        self._db.execute(
            "INSERT INTO event_sinks VALUES (?, ?, coalesce(?, 'plaintext'), coalesce(?, '')) "
            "ON CONFLICT(subsystem) DO UPDATE SET address = excluded.address, "
            "tls_mode = coalesce(?, tls_mode), server_cert = coalesce(?, server_cert)",
            (str(subsystem), address, tls_mode, pem, tls_mode, pem),
        )
        self._cached = None
        return self.current().event_sink(subsystem)

    def set_event_route(
        self,
        route: SinkRoute,
        address: str,
        tls_mode: str | None = None,
        server_cert_pem: bytes = b"",
    ) -> IsEndpoint:
        """A receiver for some of a subsystem's events (a publisher's, a topic's); the
        default receiver (no publisher, no topic) is set_event_sink's. ``tls_mode`` None
        keeps an existing route's mode and pin (plaintext for a new one)."""
        if route.publisher is None and not route.topic:
            return self.set_event_sink(route.subsystem, address, tls_mode, server_cert_pem)
        if route.topic:
            ServiceId.of(route.subsystem, route.topic, "Any")  # the grammar of a topic
        pem = _checked_pin(tls_mode, server_cert_pem)
        check_is_address(address)
        publisher, topic = route.key
        self._db.execute(
            "INSERT INTO event_routes VALUES (?, ?, ?, ?, coalesce(?, 'plaintext'), "
            "coalesce(?, '')) ON CONFLICT(subsystem, publisher, topic) DO UPDATE SET "
            "address = excluded.address, tls_mode = coalesce(?, tls_mode), "
            "server_cert = coalesce(?, server_cert)",
            (str(route.subsystem), publisher, topic, address, tls_mode, pem, tls_mode, pem),
        )
        self._cached = None
        return self.current().event_routes[(route.subsystem, publisher, topic)]

    def remove_event_route(self, route: SinkRoute) -> int:
        """Drop a receiver set for a publisher or topic (its events go to the next one)."""
        publisher, topic = route.key
        cursor = self._db.execute(
            "DELETE FROM event_routes WHERE subsystem = ? AND publisher = ? AND topic = ?",
            (str(route.subsystem), publisher, topic),
        )
        self._cached = None
        return cursor.rowcount

    def event_sinks(self) -> dict[SubsystemId, IsEndpoint]:
        return dict(sorted(self.current().event_sinks.items(), key=lambda kv: str(kv[0])))

    def event_routes(self) -> list[tuple[SinkRoute, IsEndpoint]]:
        """Every receiver set for a publisher or topic, by subsystem."""
        routes = [
            (SinkRoute(sub, SubsystemId.parse(publisher) if publisher else None, topic), endpoint)
            for (sub, publisher, topic), endpoint in self.current().event_routes.items()
        ]
        return sorted(routes, key=lambda r: (str(r[0].subsystem), r[0].key))

    def rights(self) -> list[AccessRight]:
        return sorted((AccessRight(c, p, s, m) for c, p, s, m in self.current().rights), key=str)

    def services(self) -> list[ExposedService]:
        return list(self.current().services.values())
