"""IS-facing TLS: the self-signed certificate, pin files, the pin stage and CLI (no sockets)."""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.cli.main import main as zhol
from zhol.core.errors import ZholError
from zhol.core.ids import SubsystemId
from zhol.gateway.consumer_stages import AuthenticateIsClient
from zhol.gateway.exchange import ConsumerExchange
from zhol.gateway.ispins import (
    cert_pem_sha256,
    load_is_pins,
    pin_is_client,
    pinned_is_clients,
    unpin_is_client,
)
from zhol.security.ca import create_self_signed_tls_cert
from zhol.security.keys import generate_private_key

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
PENSION = SubsystemId.parse("KZ/GOV/MLSPP/pension")


def cert_pem(name: str = "is", hosts: tuple[str, ...] = ()) -> bytes:
    cert = create_self_signed_tls_cert(generate_private_key(), hosts, NOW, common_name=name)
    return cert.public_bytes(Encoding.PEM)


def test_self_signed_cert_names_localhost_and_the_given_hosts() -> None:
    key = generate_private_key()
    cert = create_self_signed_tls_cert(key, ["IS.example.kz", "10.0.0.5", "localhost"], NOW, 30)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "is.example.kz"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.5"),
    ]
    assert cert.issuer == cert.subject
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=30)
    cert.verify_directly_issued_by(cert)


def test_self_signed_cert_refuses_a_malformed_host() -> None:
    with pytest.raises(ZholError) as caught:
        create_self_signed_tls_cert(generate_private_key(), ["bad host"], NOW)
    assert caught.value.code.name == "InvalidRequest"


def test_pin_writes_restriction_and_unpin_removes_both(tmp_path: Path) -> None:
    pem = cert_pem()
    pin = pin_is_client(tmp_path, pem, [PENSION])
    assert pin.sha256 == cert_pem_sha256(pem)
    assert (tmp_path / "is-clients" / f"{pin.sha256_hex}.pem").exists()
    rules = json.loads((tmp_path / "is-clients" / f"{pin.sha256_hex}.json").read_text())
    assert rules == {"clients": [str(PENSION)]}
    assert load_is_pins(tmp_path)[pin.sha256].clients == frozenset({PENSION})
    # Pinning again without a restriction lifts it.
    assert pin_is_client(tmp_path, pem).clients is None
    assert not (tmp_path / "is-clients" / f"{pin.sha256_hex}.json").exists()
    unpin_is_client(tmp_path, pin.sha256_hex.upper())
    assert pinned_is_clients(tmp_path) == []


def test_unpin_of_an_unknown_hash_and_bad_input_are_refused(tmp_path: Path) -> None:
    for call in (
        lambda: unpin_is_client(tmp_path, "00" * 32),
        lambda: unpin_is_client(tmp_path, "xyz"),
        lambda: pin_is_client(tmp_path, cert_pem() + cert_pem()),
        lambda: pin_is_client(tmp_path, b"not a certificate"),
        lambda: pin_is_client(tmp_path, cert_pem(), []),
    ):
        with pytest.raises(ZholError) as caught:
            call()
        assert caught.value.code.name == "InvalidRequest"


def test_unreadable_restriction_stops_the_gateway_loading_pins(tmp_path: Path) -> None:
    pin = pin_is_client(tmp_path, cert_pem(), [PENSION])
    (tmp_path / "is-clients" / f"{pin.sha256_hex}.json").write_text('{"clients": "all"}')
    with pytest.raises(ZholError) as caught:
        load_is_pins(tmp_path)
    assert caught.value.code.name == "NotConfigured"


async def test_stage_checks_nothing_without_mutual_tls() -> None:
    for mode in ("plaintext", "tls"):
        x = ConsumerExchange("/pkg.Svc/Get", b"", {}, None)
        await AuthenticateIsClient(mode, {})(x)
        assert x.pinned_clients is None
    with pytest.raises(ValueError):
        AuthenticateIsClient("none", {})


async def test_stage_admits_only_pinned_certificates_under_mutual_tls(tmp_path: Path) -> None:
    pinned, other = cert_pem("pinned"), cert_pem("other")
    pin_is_client(tmp_path, pinned, [PENSION])
    stage = AuthenticateIsClient("mtls", load_is_pins(tmp_path))
    for presented in (b"", other, b"-----BEGIN CERTIFICATE-----\ngarbage\n"):
        x = ConsumerExchange("/pkg.Svc/Get", b"", {}, None, peer_cert_pem=presented)
        with pytest.raises(ZholError) as caught:
            await stage(x)
        assert caught.value.full_code == "Client.UnknownClient"
    x = ConsumerExchange("/pkg.Svc/Get", b"", {}, None, peer_cert_pem=pinned)
    await stage(x)
    assert x.pinned_clients == frozenset({PENSION})


def gateway_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = zhol(["gateway", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_pins_lists_and_unpins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gateway.toml").write_text('gateway_id = "KZ/GOV/MLSPP/gw1"\n')
    cert_file = tmp_path / "is.pem"
    cert_file.write_bytes(cert_pem("pension-is"))
    digest = cert_pem_sha256(cert_file.read_bytes()).hex()
    d = str(tmp_path)

    code, out, _ = gateway_cli(
        capsys, "pin-is", "--dir", d, "--cert", str(cert_file), "--clients", f"{PENSION}, "
    )
    assert code == 0 and digest in out
    code, out, _ = gateway_cli(capsys, "pinned-is", "--dir", d, "--json")
    assert code == 0
    assert [json.loads(line)["clients"] for line in out.splitlines()] == [[str(PENSION)]]
    assert gateway_cli(capsys, "unpin-is", "--dir", d, "--sha256", digest)[0] == 0
    assert gateway_cli(capsys, "pinned-is", "--dir", d)[1] == ""


def test_cli_errors_carry_full_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert_file = tmp_path / "is.pem"
    cert_file.write_bytes(cert_pem())
    code, _, err = gateway_cli(capsys, "is-cert", "--dir", str(tmp_path))
    assert (code, err.split(":")[0]) == (3, "Server.ClientProxy.NotConfigured")
    (tmp_path / "gateway.toml").write_text('gateway_id = "KZ/GOV/MLSPP/gw1"\n')
    d = str(tmp_path)
    code, _, err = gateway_cli(
        capsys, "pin-is", "--dir", d, "--cert", str(cert_file), "--clients", "pension"
    )
    assert (code, err.split(":")[0]) == (2, "Client.InvalidIdentifier")
    code, _, err = gateway_cli(capsys, "unpin-is", "--dir", d, "--sha256", "ab" * 32)
    assert (code, err.split(":")[0]) == (2, "Client.InvalidRequest")
    code, _, err = gateway_cli(capsys, "pin-is", "--dir", d, "--cert", str(tmp_path / "none"))
    assert (code, err.split(":")[0]) == (2, "Client.InvalidRequest")
    assert not (tmp_path / "keys" / "is-clients").exists()
