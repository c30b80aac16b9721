"""How the gateway reaches its ISs: local.db's TLS columns, their migration, the
configuration-time refusals and the `zhol gateway service(s)` / `zhol events sink(s)`
commands (no sockets)."""

from __future__ import annotations

import datetime
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.cli.main import main as zhol
from zhol.core.errors import ZholError
from zhol.core.ids import SubsystemId
from zhol.gateway.ispins import cert_pem_sha256
from zhol.gateway.localconf import IsEndpoint, LocalConfStore, check_is_tls
from zhol.gateway.transport import IsChannels
from zhol.security.ca import create_self_signed_tls_cert
from zhol.security.keys import generate_private_key

POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
PENSION = SubsystemId.parse("KZ/GOV/MLSPP/pension")
SERVICE = "zhol.population.v1.PopulationRegistry"
TARGET = f"{POPULATION}/{SERVICE}"

# local.db as created before the TLS columns existed.
OLD_SCHEMA = """
CREATE TABLE services (subsystem TEXT NOT NULL, grpc_service TEXT NOT NULL,
    is_address TEXT NOT NULL, methods TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (subsystem, grpc_service));
CREATE TABLE access_rights (client TEXT NOT NULL, provider TEXT NOT NULL,
    grpc_service TEXT NOT NULL, method TEXT NOT NULL DEFAULT '',
    granted_at_ms INTEGER NOT NULL, PRIMARY KEY (client, provider, grpc_service, method));
CREATE TABLE event_sinks (subsystem TEXT PRIMARY KEY, address TEXT NOT NULL);
"""


def certificate_pem() -> bytes:
    key = generate_private_key()
    now = datetime.datetime.now(datetime.UTC)
    return create_self_signed_tls_cert(key, [], now).public_bytes(Encoding.PEM)


@pytest.fixture
def gateway_dir(tmp_path: Path) -> Path:
    """A gateway data directory with one exposed service (what `_open_local` needs)."""
    directory = tmp_path / "gw"
    directory.mkdir()
    (directory / "gateway.toml").write_text('gateway_id = "KZ/GOV/MJ/gw1"\n')
    (directory / "keys").mkdir()
    store = LocalConfStore(directory / "local.db")
    store.expose(POPULATION, SERVICE, "127.0.0.1:5000", ("GetPerson",))
    store.close()
    return directory


@pytest.fixture
def cert_file(tmp_path: Path) -> Path:
    path = tmp_path / "is.pem"
    path.write_bytes(certificate_pem())
    return path


def test_an_old_database_gains_the_columns_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "local.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO services VALUES (?, ?, '127.0.0.1:5000', 'GetPerson')",
                   (str(POPULATION), SERVICE))  # fmt: skip
        db.execute("INSERT INTO access_rights VALUES (?, ?, ?, '', 1)",
                   (str(PENSION), str(POPULATION), SERVICE))  # fmt: skip
        db.execute("INSERT INTO event_sinks VALUES (?, '127.0.0.1:6000')", (str(PENSION),))
    db.close()
    for _ in range(2):  # a second open finds the columns there and changes nothing
        store = LocalConfStore(path)
        conf = store.current()
        exposed = conf.services[(POPULATION, SERVICE)]
        assert exposed.endpoint == IsEndpoint("127.0.0.1:5000", "plaintext", b"")
        assert exposed.methods == ("GetPerson",)
        assert conf.event_sink(PENSION) == IsEndpoint("127.0.0.1:6000")
        assert (PENSION, POPULATION, SERVICE, "") in conf.rights
        store.close()
    pem = certificate_pem()
    store = LocalConfStore(path)
    store.set_service_tls(POPULATION, SERVICE, "tls", pem)
    assert store.services()[0].endpoint.tls_mode == "tls"
    store.close()


def test_expose_again_keeps_the_tls_mode(tmp_path: Path) -> None:
    store = LocalConfStore(tmp_path / "local.db")
    store.expose(POPULATION, SERVICE, "127.0.0.1:5000", ())
    pem = certificate_pem()
    store.set_service_tls(POPULATION, SERVICE, "mtls", pem)
    store.expose(POPULATION, SERVICE, "127.0.0.1:5001", ("GetPerson",))
    (service,) = store.services()
    assert service.endpoint == IsEndpoint("127.0.0.1:5001", "mtls", pem)
    store.close()


@pytest.mark.parametrize(
    ("mode", "pem"),
    [
        ("tls", b""),  # fail closed: no pin, no TLS "verified against nothing"
        ("mtls", b""),
        ("tls", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
        ("tls", b"garbage"),
        ("https", b""),
        ("plaintext", b"PEM"),  # a pin that would silently be ignored
    ],
)
def test_bad_tls_settings_are_refused(mode: str, pem: bytes) -> None:
    with pytest.raises(ZholError) as caught:
        check_is_tls(mode, pem)
    assert caught.value.code.name == "InvalidRequest"


def test_unknown_service_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    store = LocalConfStore(tmp_path / "local.db")
    with pytest.raises(ZholError) as caught:
        store.set_service_tls(POPULATION, SERVICE, "tls", certificate_pem())
    assert caught.value.code.name == "UnknownService"
    assert store.services() == []
    store.close()


async def test_mtls_without_a_gateway_certificate_is_not_configured() -> None:
    channels = IsChannels()
    with pytest.raises(ZholError) as caught:
        await channels.invoke(
            IsEndpoint("127.0.0.1:9", "mtls", certificate_pem()), "/a.B/C", b"", (), 1.0
        )
    assert caught.value.code.name == "NotConfigured"
    await channels.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = zhol(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_service_command_sets_and_lists_the_mode(
    gateway_dir: Path, cert_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(capsys, "gateway", "service", "--dir", str(gateway_dir), "--service", TARGET,
                     "--tls-mode", "tls", "--server-cert", str(cert_file))  # fmt: skip
    assert code == 0
    code, out, _ = run(capsys, "gateway", "services", "--dir", str(gateway_dir), "--json")
    assert code == 0
    (row,) = [json.loads(line) for line in out.splitlines()]
    digest = cert_pem_sha256(cert_file.read_bytes()).hex()
    assert row == {
        "subsystem": str(POPULATION), "grpc_service": SERVICE, "methods": ["GetPerson"],
        "address": "127.0.0.1:5000", "tls_mode": "tls", "server_cert_sha256": [digest],
    }  # fmt: skip
    code, out, _ = run(capsys, "gateway", "services", "--dir", str(gateway_dir))
    assert out == f"{TARGET} [GetPerson] -> 127.0.0.1:5000 tls=tls server_cert_sha256={digest}\n"


def test_moving_an_is_keeps_its_tls(
    gateway_dir: Path, cert_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = cert_file.read_bytes()
    base = ["gateway", "service", "--dir", str(gateway_dir), "--service", TARGET]
    assert run(capsys, *base, "--tls-mode", "tls", "--server-cert", str(cert_file))[0] == 0
    assert run(capsys, *base, "--address", "127.0.0.1:5001")[0] == 0
    sink = ["events", "sink", "--gateway", str(gateway_dir), "--subsystem", str(PENSION)]
    assert run(capsys, *sink, "--address", "127.0.0.1:6000", "--tls-mode", "tls",
               "--server-cert", str(cert_file))[0] == 0  # fmt: skip
    assert run(capsys, *sink, "--address", "127.0.0.1:6001")[0] == 0
    store = LocalConfStore(gateway_dir / "local.db")
    assert store.services()[0].endpoint == IsEndpoint("127.0.0.1:5001", "tls", pem)
    assert store.current().event_sink(PENSION) == IsEndpoint("127.0.0.1:6001", "tls", pem)
    store.close()


@pytest.mark.parametrize(
    ("flags", "code_name"),
    [
        (["--server-cert", "CERT"], "Client.InvalidRequest"),  # a pin needs a mode
        (["--tls-mode", "tls"], "Client.InvalidRequest"),  # no pin
        (["--tls-mode", "tls", "--server-cert", "/nonexistent.pem"], "Client.InvalidRequest"),
        (["--tls-mode", "tls", "--server-cert", "SELF"], "Client.InvalidRequest"),  # not PEM
        (["--tls-mode", "mtls", "--server-cert", "CERT"], "Server.ClientProxy.NotConfigured"),
        (["--tls-mode", "tls", "--server-cert", "CERT", "--address", "nowhere"],
         "Client.InvalidRequest"),
    ],
)
def test_refused_service_settings_change_nothing(
    gateway_dir: Path, cert_file: Path, capsys: pytest.CaptureFixture[str],
    flags: list[str], code_name: str,
) -> None:  # fmt: skip
    bad_pem = gateway_dir / "gateway.toml"
    argv = [{"CERT": str(cert_file), "SELF": str(bad_pem)}.get(f, f) for f in flags]
    code, _, err = run(capsys, "gateway", "service", "--dir", str(gateway_dir),
                       "--service", TARGET, *argv)  # fmt: skip
    assert code != 0
    assert err.startswith(f"{code_name}:")
    store = LocalConfStore(gateway_dir / "local.db")
    assert store.services()[0].endpoint == IsEndpoint("127.0.0.1:5000")
    store.close()


def test_service_command_refuses_an_unexposed_service(
    gateway_dir: Path, cert_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "gateway", "service", "--dir", str(gateway_dir), "--service",
                       f"{PENSION}/zhol.pension.v1.Pension", "--tls-mode", "tls",
                       "--server-cert", str(cert_file))  # fmt: skip
    assert code != 0 and err.startswith("Server.ClientProxy.UnknownService:")


def test_sink_command_sets_and_lists_the_mode_and_refuses_a_missing_pin(
    gateway_dir: Path, cert_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["events", "sink", "--gateway", str(gateway_dir), "--subsystem", str(PENSION),
            "--address", "127.0.0.1:6000"]  # fmt: skip
    assert run(capsys, *base)[0] == 0
    code, _, err = run(capsys, *base, "--tls-mode", "tls")
    assert code != 0 and err.startswith("Client.InvalidRequest:")
    code, out, _ = run(capsys, "events", "sinks", "--gateway", str(gateway_dir), "--json")
    assert [json.loads(line)["tls_mode"] for line in out.splitlines()] == ["plaintext"]
    assert run(capsys, *base, "--tls-mode", "tls", "--server-cert", str(cert_file))[0] == 0
    code, out, _ = run(capsys, "events", "sinks", "--gateway", str(gateway_dir))
    digest = cert_pem_sha256(cert_file.read_bytes()).hex()
    assert out == f"{PENSION} -> 127.0.0.1:6000 tls=tls server_cert_sha256={digest}\n"
