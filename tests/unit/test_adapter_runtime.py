"""adapters.runtime.server: what every adapter shares (no sockets).

Serving on real ports is covered by each adapter's integration tests
(tests/integration/test_*_service.py and test_*_cli.py); here: settings checks, the
port file, the stop order and rollback, the inbox's notification and the signal loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from zhol.adapters.bus.inbox import INBOX_SCHEMA, Apply
from zhol.adapters.runtime import server as runtime
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import FixedClock

SUBSYSTEM = "KZ/GOV/TEST/agency"
PREFIX = "ZHOL_TESTAGENCY_"


@dataclass(frozen=True, slots=True)
class AgencySettings(runtime.AdapterSettings):
    subsystem: str = SUBSYSTEM
    bus_timeout: float = 5.0

    def check(self) -> None:
        if self.bus_timeout <= 0:
            raise ValueError("bus_timeout must be positive")


load_agency_settings = runtime.settings_loader(AgencySettings, PREFIX)


# -- settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["127.0.0.1:0", "localhost:7001", "[::1]:80", "a:1"])
def test_good_addresses_pass(value: str) -> None:
    runtime.check_address(value, "listen")


@pytest.mark.parametrize("value", ["", "7001", ":7001", "host:", "host:port", "host:-1"])
def test_bad_addresses_name_the_field(value: str) -> None:
    with pytest.raises(ValueError, match="^gateway_address must be HOST:PORT"):
        runtime.check_address(value, "gateway_address")


def test_settings_defaults_and_host(tmp_path: Path) -> None:
    settings = AgencySettings(db_path=tmp_path / "a.db", listen="10.0.0.5:7000")
    assert settings.subsystem == SUBSYSTEM, "the agency's default replaces the base's"
    assert settings.host == "10.0.0.5"
    assert settings.gateway_address == "" and settings.port_file is None
    assert settings.max_message_bytes == runtime.DEFAULT_MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    "bad",
    [
        {"listen": "nowhere"},
        {"gateway_address": "nowhere"},
        {"subsystem": "  "},
        {"grace_seconds": -0.1},
        {"max_message_bytes": 0},
        {"bus_timeout": 0},  # the agency's own check runs too
        {"tls_key": Path("is.key")},  # tls_cert and tls_key go together
        {"tls_cert": Path("is.pem")},
        {"tls_client_ca": Path("gateway.pem")},  # mutual TLS needs a server certificate
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        AgencySettings(db_path=tmp_path / "a.db", **bad)  # type: ignore[arg-type]


def test_tls_mode_follows_the_files_given(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    assert AgencySettings(db_path=db).tls_mode == "plaintext"
    tls = AgencySettings(db_path=db, tls_cert=Path("is.pem"), tls_key=Path("is.key"))
    assert tls.tls_mode == "tls"
    assert AgencySettings(
        db_path=db, tls_cert=Path("is.pem"), tls_key=Path("is.key"), tls_client_ca=Path("g.pem")
    ).tls_mode == "mtls"


async def test_an_unreadable_tls_file_fails_the_start_and_closes_what_it_opened(
    tmp_path: Path,
) -> None:
    db = tmp_path / "agency.db"
    db.touch()
    settings = AgencySettings(
        db_path=db, port_file=tmp_path / "agency.port",
        tls_cert=tmp_path / "missing.pem", tls_key=tmp_path / "missing.key",
    )  # fmt: skip
    log: list[str] = []
    with pytest.raises(FileNotFoundError, match="missing"):
        await runtime.start_adapter(
            settings, name="agency", clock=FixedClock(1), bus=None,
            open_servicer=lambda _notify: Recorder("servicer", log),
            add_servicer=lambda _servicer, _server: None,
        )  # fmt: skip
    assert log == ["servicer.close"]
    assert not settings.port_file.exists()  # type: ignore[union-attr]


def test_settings_loader_reads_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "agency.toml"
    config.write_text('db_path = "a.db"\nlisten = "127.0.0.1:7000"\nbus_timeout = 2.0\n')
    environ = {PREFIX + "LISTEN": "127.0.0.1:7001", PREFIX + "GRACE_SECONDS": "0.5",
               "ZHOL_OTHER_LISTEN": "127.0.0.1:9"}
    settings = load_agency_settings(
        config, environ=environ, overrides={"listen": None, "port_file": tmp_path / "p"}
    )
    assert settings == AgencySettings(
        db_path=Path("a.db"), listen="127.0.0.1:7001", grace_seconds=0.5, bus_timeout=2.0,
        port_file=tmp_path / "p",
    )
    assert PREFIX in (load_agency_settings.__doc__ or "")
    with pytest.raises(ValueError):
        load_agency_settings(config, environ={}, overrides={"no_such_setting": 1})
    with pytest.raises(ValueError):
        load_agency_settings(config, environ={PREFIX + "BUS_TIMEOUT": "-1"})


def test_require_database_names_the_agency(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no agency database at"):
        runtime.require_database(tmp_path / "missing.db", "agency")
    (tmp_path / "here.db").touch()
    runtime.require_database(tmp_path / "here.db", "agency")
    with pytest.raises(FileNotFoundError):
        runtime.require_database(tmp_path, "agency")  # a directory is no database


async def test_bus_client_only_with_a_gateway(tmp_path: Path) -> None:
    off = AgencySettings(db_path=tmp_path / "a.db")
    assert runtime.bus_client(off) is None
    on = AgencySettings(db_path=tmp_path / "a.db", gateway_address="127.0.0.1:7001")
    client = runtime.bus_client(on, "EE:officer")
    assert client is not None
    assert client.identity.gateway_address == "127.0.0.1:7001"
    assert client.identity.client == SUBSYSTEM and client.identity.user_id == "EE:officer"
    await client.close()


# -- server pieces -----------------------------------------------------------------------

def test_server_options_limit_both_directions_and_never_share_the_port() -> None:
    options = dict(runtime.server_options(1234))
    assert options == {"grpc.max_receive_message_length": 1234,
                       "grpc.max_send_message_length": 1234, "grpc.so_reuseport": 0}


def test_port_file_is_written_whole_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "run" / "deep" / "agency.port"
    runtime.write_port_file(path, 40123)
    assert path.read_text(encoding="ascii") == "40123\n"
    runtime.write_port_file(path, 40124)  # a stale file is replaced
    assert path.read_text(encoding="ascii") == "40124\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["agency.port"], "no temp left"
    runtime.remove_port_file(path)
    assert not path.exists()
    runtime.remove_port_file(path)  # already gone: fine


def test_notifier_wakes_the_publisher_once_there_is_one() -> None:
    publisher = Recorder("publisher")
    notifier = runtime.Notifier()
    notifier.notify()  # no publisher yet (bus off, or not yet created): nothing
    notifier.publisher = publisher  # type: ignore[assignment]
    notifier.notify()
    notifier.notify()
    assert publisher.log == ["publisher.notify", "publisher.notify"]


# -- stop order and rollback -------------------------------------------------------------

@dataclass
class Recorder:
    """Stands in for a server, publisher, bus client, inbox or servicer: records calls
    into a shared log, and fails the ones named in ``fail``."""

    name: str
    log: list[str] = field(default_factory=list)
    fail: frozenset[str] = frozenset()

    def _record(self, what: str) -> None:
        self.log.append(f"{self.name}.{what}")
        if what in self.fail:
            raise RuntimeError(f"{self.name}.{what} failed")

    async def stop(self, grace: float | None = None) -> None:
        self._record("stop" if grace is None else f"stop({grace})")

    def close(self) -> None:
        self._record("close")

    async def aclose(self) -> None:
        self._record("close")

    def notify(self) -> None:
        self._record("notify")


def parts(log: list[str], fail: dict[str, str] | None = None) -> dict[str, Recorder]:
    fail = fail or {}
    return {name: Recorder(name, log, frozenset({fail[name]}) if name in fail else frozenset())
            for name in ("server", "publisher", "sink", "servicer")}


class Bus(Recorder):
    async def close(self) -> None:  # type: ignore[override]  # BusClient.close is async
        await self.aclose()


async def test_shut_down_stops_in_order_and_removes_the_port_file(tmp_path: Path) -> None:
    log: list[str] = []
    p = parts(log)
    port_file = tmp_path / "agency.port"
    runtime.write_port_file(port_file, 1)
    await runtime.shut_down(p["server"], 2.5, p["publisher"], Bus("bus", log), p["sink"],  # type: ignore[arg-type]
                            p["servicer"], port_file)
    assert log == ["server.stop(2.5)", "publisher.stop", "bus.close", "sink.close",
                   "servicer.close"]
    assert not port_file.exists()


@pytest.mark.parametrize("failing", ["server", "publisher", "bus", "sink"])
async def test_a_failed_step_does_not_skip_the_others(tmp_path: Path, failing: str) -> None:
    log: list[str] = []
    p = parts(log, {failing: "stop(1.0)" if failing == "server" else
                    "stop" if failing == "publisher" else "close"})
    bus = Bus("bus", log, frozenset({"close"}) if failing == "bus" else frozenset())
    port_file = tmp_path / "agency.port"
    runtime.write_port_file(port_file, 1)
    with pytest.raises(RuntimeError, match=f"^{failing}"):
        await runtime.shut_down(p["server"], 1.0, p["publisher"], bus, p["sink"],  # type: ignore[arg-type]
                                p["servicer"], port_file)
    assert log == ["server.stop(1.0)", "publisher.stop", "bus.close", "sink.close",
                   "servicer.close"]
    assert not port_file.exists()


async def test_shut_down_skips_what_was_never_opened() -> None:
    log: list[str] = []
    await runtime.shut_down(None, None, None, None, None, Recorder("servicer", log))
    assert log == ["servicer.close"]


async def test_a_failed_start_closes_what_it_opened_and_writes_no_port_file(
    tmp_path: Path,
) -> None:
    db = tmp_path / "agency.db"
    db.touch()
    settings = AgencySettings(db_path=db, port_file=tmp_path / "agency.port")
    log: list[str] = []
    servicer = Recorder("servicer", log)
    servers: list[grpc.aio.Server] = []

    def broken_registration(_servicer: Recorder, server: grpc.aio.Server) -> None:
        servers.append(server)
        raise RuntimeError("registration failed")

    with pytest.raises(RuntimeError, match="registration failed"):
        await runtime.start_adapter(
            settings, name="agency", clock=FixedClock(1), bus=Bus("bus", log),  # type: ignore[arg-type]
            open_servicer=lambda _notify: servicer,
            add_servicer=broken_registration,
            open_sink=lambda _notify: Recorder("sink", log),  # type: ignore[arg-type,return-value]
        )
    assert len(servers) == 1, "it failed after creating the grpc server"
    assert log == ["bus.close", "sink.close", "servicer.close"]
    assert not settings.port_file.exists()  # type: ignore[union-attr]


async def test_a_failed_inbox_closes_the_servicer_and_the_bus(tmp_path: Path) -> None:
    log: list[str] = []

    def no_inbox(_notify: runtime.Notify) -> runtime.NotifyingEventSink:
        raise FileNotFoundError("no inbox")

    with pytest.raises(FileNotFoundError):
        await runtime.start_adapter(
            AgencySettings(db_path=tmp_path / "agency.db"), name="agency",
            clock=FixedClock(1), bus=Bus("bus", log),  # type: ignore[arg-type]
            open_servicer=lambda _notify: Recorder("servicer", log),
            add_servicer=lambda _servicer, _server: None,
            open_sink=no_inbox,
        )
    assert log == ["bus.close", "servicer.close"]


# -- the inbox's notification ------------------------------------------------------------

TOPIC = "zhol.test.v1.Happened"


def delivery(message_id: str) -> bus_pb2.EventDelivery:
    return bus_pb2.EventDelivery(
        event_id=f"e-{message_id}", message_id=message_id, topic=TOPIC,
        publisher="KZ/GOV/TEST/other", subscriber=SUBSYSTEM, payload=b"x",
        occurred_at_unix_ms=1_000, attempt=1,
    )


async def test_the_inbox_notifies_only_when_an_event_took_effect(tmp_path: Path) -> None:
    db = tmp_path / "agency.db"
    conn = sqlite3.connect(db)
    conn.execute(INBOX_SCHEMA)
    conn.execute("CREATE TABLE seen (message_id TEXT NOT NULL)")
    conn.close()

    async def on_happened(event: bus_pb2.EventDelivery) -> Apply:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO seen VALUES (?)", (event.message_id,))
        return apply

    applied: list[int] = []
    sink = runtime.NotifyingEventSink(db, {TOPIC: on_happened}, FixedClock(5_000),
                                      lambda: applied.append(1))
    try:
        assert await sink.handle(delivery("m-1")) is True
        assert applied == [1]
        assert await sink.handle(delivery("m-1")) is False  # a redelivery: no decision
        assert applied == [1]
        assert await sink.handle(delivery("m-2")) is True
        assert applied == [1, 1]
    finally:
        sink.close()


# -- the signal loop ---------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serves_until_a_signal_then_stops_and_restores_the_handlers(
    signum: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    log: list[str] = []
    running = Recorder("running", log)

    async def start() -> Recorder:
        log.append("started")
        return running

    def banner(started: Recorder) -> str:
        assert started is running
        # Runs before the handlers are installed; the signal is sent once the loop waits.
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signum)
        return "agency (KZ/GOV/TEST/agency) listening on 127.0.0.1:1"

    assert await runtime.serve_until_signalled(start, banner) == 0
    assert log == ["started", "running.stop"]
    assert capsys.readouterr().out == "agency (KZ/GOV/TEST/agency) listening on 127.0.0.1:1\n"
    assert not asyncio.get_running_loop().remove_signal_handler(signum), "handler left behind"


async def test_a_failed_start_prints_nothing_and_installs_no_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def start() -> Recorder:
        raise OSError("cannot listen on 127.0.0.1:1")

    with pytest.raises(OSError):
        await runtime.serve_until_signalled(start, lambda _r: "never")
    assert capsys.readouterr().out == ""
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
