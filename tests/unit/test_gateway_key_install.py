"""Installing renewed keys: all or nothing, resumable after a crash, the old set kept."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki import new_ca
from zhol.core.errors import ZholError
from zhol.gateway import credentials as files
from zhol.security.ca import CertificateAuthority, create_csr, issue_certificate
from zhol.security.keys import generate_private_key
from zhol.security.keystore import (
    read_certificate,
    read_private_key,
    write_private_key,
    write_public_file,
)

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
GATEWAY = "KZ/GOV/MJ/gw1"
NAMES = ("auth.key", "auth.pem", "sign.key", "sign.pem")


def make_keys(directory: Path, ca: CertificateAuthority) -> None:
    """A genuine key set: each key with the certificate the CA issued for it."""
    for role, identity in (("auth", GATEWAY), ("sign", "KZ/GOV/MJ")):
        key = generate_private_key()
        write_private_key(directory / f"{role}.key", key)
        cert = issue_certificate(ca, create_csr(key, identity), role, identity, NOW)  # type: ignore[arg-type]
        write_public_file(directory / f"{role}.pem", cert.public_bytes(Encoding.PEM))


@pytest.fixture
def ca() -> CertificateAuthority:
    return new_ca("test CA", NOW)


@pytest.fixture
def keys(tmp_path: Path, ca: CertificateAuthority) -> Path:
    keys = tmp_path / "keys"
    make_keys(keys, ca)
    write_public_file(keys / "ca.pem", ca.cert.public_bytes(Encoding.PEM))
    make_keys(keys / files.RENEWAL_DIR, ca)
    return keys


def contents(directory: Path) -> dict[str, bytes]:
    return {n: (directory / n).read_bytes() for n in NAMES if (directory / n).exists()}


def test_install_makes_the_new_set_current_and_keeps_the_old_one(keys: Path) -> None:
    old, new = contents(keys), contents(keys / files.RENEWAL_DIR)
    files.install_renewal(keys, ("auth", "sign"))
    assert contents(keys) == new
    assert contents(keys / files.PREVIOUS_DIR) == old
    for directory in (keys, keys / files.PREVIOUS_DIR):
        for name in ("auth.key", "sign.key"):
            assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys / files.PREVIOUS_DIR).st_mode) == 0o700
    assert not (keys / files.RENEWAL_DIR).exists()
    files.load_credentials(keys, None)


def test_an_install_interrupted_after_its_journal_is_finished_later(keys: Path) -> None:
    new = contents(keys / files.RENEWAL_DIR)
    pending = keys / files.RENEWAL_DIR
    # As a crash leaves it: journal written, one file already moved.
    (pending / files.INSTALL_JOURNAL).write_text(json.dumps(list(NAMES)))
    os.replace(pending / "auth.key", keys / "auth.key")
    with pytest.raises(ZholError):  # auth.key is new, auth.pem still old...
        files.check_key_matches(
            read_private_key(keys / "auth.key"),
            read_certificate(keys / "auth.pem"),
            "auth",
        )
    files.load_credentials(keys, None)  # ...and loading finishes the install first
    assert contents(keys) == new and not pending.exists()
    assert files.finish_install(keys) is False  # nothing left to do


def test_only_a_renewal_of_some_roles_is_installed(keys: Path) -> None:
    old, new = contents(keys), contents(keys / files.RENEWAL_DIR)
    files.install_renewal(keys, ("auth",))
    assert contents(keys) == {
        "auth.key": new["auth.key"], "auth.pem": new["auth.pem"],
        "sign.key": old["sign.key"], "sign.pem": old["sign.pem"],
    }  # fmt: skip


def test_missing_files_refuse_the_install_and_change_nothing(keys: Path) -> None:
    old = contents(keys)
    (keys / files.RENEWAL_DIR / "sign.pem").unlink()
    with pytest.raises(ZholError) as caught:
        files.install_renewal(keys, ("auth", "sign"))
    assert caught.value.code.name == "NotConfigured"
    assert contents(keys) == old and not (keys / files.PREVIOUS_DIR).exists()
    files.discard_renewal(keys)
    assert not (keys / files.RENEWAL_DIR).exists() and contents(keys) == old


def test_a_key_with_another_keys_certificate_is_refused(keys: Path) -> None:
    os.replace(keys / files.RENEWAL_DIR / "sign.pem", keys / "sign.pem")
    with pytest.raises(ZholError) as caught:
        files.load_credentials(keys, None)
    assert caught.value.code.name == "NotConfigured"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda keys: (keys / "sign.key").unlink(),  # never initialised, or half removed
        lambda keys: (keys / "auth.key").chmod(0o644),  # a key others may read
        lambda keys: (keys / "auth.pem").unlink(),
        lambda keys: (keys / "ca.pem").unlink(),
        lambda keys: (keys / "sign.pem").write_bytes(b"not a certificate"),
    ],
    ids=["key-missing", "key-open-to-others", "cert-missing", "ca-missing", "cert-garbled"],
)
def test_a_key_set_that_cannot_be_read_is_not_configured(
    keys: Path, spoil: Callable[[Path], object]
) -> None:
    spoil(keys)
    before = {p: p.read_bytes() for p in keys.rglob("*") if p.is_file()}
    with pytest.raises(ZholError) as caught:
        files.load_credentials(keys, None)
    assert caught.value.code.name == "NotConfigured"
    assert {p: p.read_bytes() for p in keys.rglob("*") if p.is_file()} == before
