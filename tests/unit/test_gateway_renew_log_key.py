"""`zhol gateway renew --log-key`: what a renewal asks for (the log key alone, or with
certificates), and installing a log key alone leaves every certificate and key as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from zhol.core.errors import ZholError
from zhol.gateway import credentials as files
from zhol.gateway.provision import renewal_target
from zhol.security.keystore import read_private_key, write_private_key


def test_log_key_alone_names_no_certificate() -> None:
    assert renewal_target((), log_key_only=True) == ("renewal:log", ())


def test_log_key_with_certificates_is_an_ordinary_renewal() -> None:
    # Every renewal replaces the log key: --log-key adds nothing to --auth/--sign.
    assert renewal_target(("sign",), log_key_only=True) == ("renewal:sign", ("sign",))
    assert renewal_target(("sign", "auth"), log_key_only=False) == (
        "renewal:auth+sign",
        ("auth", "sign"),
    )


def test_nothing_named_is_refused() -> None:
    with pytest.raises(ZholError) as caught:
        renewal_target((), log_key_only=False)
    assert caught.value.code.name == "InvalidRequest"


def test_a_pending_renewal_is_waited_on_whatever_it_names() -> None:
    assert renewal_target(("auth",), log_key_only=False, pending=["renewal:log"]) == (
        "renewal:log",
        (),
    )
    assert renewal_target((), log_key_only=True, pending=["renewal:auth+sign"]) == (
        "renewal:auth+sign",
        ("auth", "sign"),
    )


def test_installing_a_log_key_alone_touches_nothing_else(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    others = {
        name: f"{name} bytes".encode() for name in ("auth.key", "auth.pem", "sign.key", "sign.pem")
    }
    for name, data in others.items():
        (keys / name).write_bytes(data)
    old, new = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    write_private_key(keys / files.LOG_KEY, old)
    (keys / files.RENEWAL_DIR).mkdir(mode=0o700)
    write_private_key(keys / files.RENEWAL_DIR / files.LOG_KEY, new)

    files.install_renewal(keys, (), log_key=True)

    installed = read_private_key(keys / files.LOG_KEY, None)
    assert isinstance(installed, ed25519.Ed25519PrivateKey)
    assert installed.public_key() == new.public_key()
    assert stat.S_IMODE(os.stat(keys / files.LOG_KEY).st_mode) == 0o600
    kept = read_private_key(keys / files.PREVIOUS_DIR / files.LOG_KEY, None)
    assert isinstance(kept, ed25519.Ed25519PrivateKey) and kept.public_key() == old.public_key()
    assert {name: (keys / name).read_bytes() for name in others} == others
    assert sorted(p.name for p in (keys / files.PREVIOUS_DIR).iterdir()) == [files.LOG_KEY]
    assert not (keys / files.RENEWAL_DIR).exists()
