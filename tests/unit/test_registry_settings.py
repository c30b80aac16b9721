"""Registry settings and provisioning of its data directory."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from zhol.core.errors import ZholError
from zhol.registry.provision import init_registry, is_initialised, load_keys, require_initialised
from zhol.registry.settings import load_registry_settings, read_key_passphrase
from zhol.security.globalconf import MAX_CLOCK_SKEW_S, MAX_MESSAGE_BYTES
from zhol.security.keystore import read_certificate
from zhol.security.validation import CertificateValidator

NOW = dt.datetime(2026, 9, 21, 12, 0, tzinfo=dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_the_layout_with_private_modes(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    paths = init_registry(data_dir, "KZ", True, NOW)
    assert is_initialised(data_dir)
    assert _mode(data_dir) == 0o700
    assert _mode(paths.ca_key) == 0o600
    assert _mode(paths.conf_key) == 0o600
    assert paths.db.exists() and paths.ca_cert.exists() and paths.anchor.exists()
    settings = load_registry_settings(data_dir, environ={})
    assert settings.instance == "KZ" and settings.auto_approve is True
    assert settings.settings_path == paths.settings

    # The anchor is a configuration certificate for the instance, issued by the CA.
    keys = load_keys(paths)
    anchor = read_certificate(paths.anchor)
    anchor.verify_directly_issued_by(read_certificate(paths.ca_cert))
    validator = CertificateValidator([keys.ca_cert_der])
    instance, _ = validator.verify_config_cert(anchor.public_bytes(serialization.Encoding.DER), NOW)
    assert instance == "KZ"


def test_init_is_idempotent(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    paths = init_registry(data_dir, "KZ", False, NOW)
    before = {
        p: p.read_bytes() for p in (paths.ca_key, paths.ca_cert, paths.anchor, paths.settings)
    }
    assert init_registry(data_dir, "EE", True, NOW) == paths
    assert {p: p.read_bytes() for p in before} == before


def test_init_with_bad_input_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    with pytest.raises(ValueError):
        init_registry(data_dir, "K Z", False, NOW)
    assert not data_dir.exists()
    with pytest.raises(ZholError) as info:
        require_initialised(data_dir)
    assert info.value.full_code == "Server.Registry.NotConfigured"


def test_keys_encrypted_with_a_passphrase_from_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    paths = init_registry(data_dir, "KZ", False, NOW, b"s3cret", passphrase_env="REG_PASS")
    assert b"ENCRYPTED" in paths.ca_key.read_bytes()
    assert b"s3cret" not in paths.settings.read_bytes()
    settings = load_registry_settings(data_dir, environ={})
    assert settings.key_passphrase_env == "REG_PASS"
    assert read_key_passphrase(settings, {"REG_PASS": "s3cret"}) == b"s3cret"
    assert read_key_passphrase(settings, {}) is None
    load_keys(paths, b"s3cret")
    with pytest.raises(ValueError):
        load_keys(paths, b"wrong")
    with pytest.raises(ValueError):
        load_keys(paths, None)


def test_environment_overrides_the_toml(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    init_registry(data_dir, "KZ", False, NOW)
    settings = load_registry_settings(
        data_dir,
        environ={"ZHOL_REGISTRY_AUTO_APPROVE": "yes", "ZHOL_REGISTRY_REFRESH_INTERVAL_S": "5"},
        overrides={"port_file": tmp_path / "port"},
    )
    assert settings.auto_approve is True
    assert settings.refresh_interval_s == 5
    assert settings.port_file == tmp_path / "port"
    assert settings.data_dir == data_dir


@pytest.mark.parametrize(
    "overrides",
    [
        {"validity_s": 30, "refresh_interval_s": 60},
        {"listen": "nowhere"},
        {"instance": ""},
        {"key_passphrase_env": "NOT A NAME"},
        {"no_such_setting": 1},
        {"clock_skew_s": MAX_CLOCK_SKEW_S + 1},
        {"max_message_bytes": MAX_MESSAGE_BYTES + 1},
    ],
)
def test_invalid_settings_are_refused(tmp_path: Path, overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        load_registry_settings(tmp_path, overrides=overrides, environ={})


def test_the_largest_skew_and_message_size_are_accepted(tmp_path: Path) -> None:
    settings = load_registry_settings(
        tmp_path,
        overrides={"clock_skew_s": MAX_CLOCK_SKEW_S, "max_message_bytes": MAX_MESSAGE_BYTES},
        environ={},
    )
    assert (settings.clock_skew_s, settings.max_message_bytes) == (
        MAX_CLOCK_SKEW_S,
        MAX_MESSAGE_BYTES,
    )
