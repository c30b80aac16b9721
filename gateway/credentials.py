"""The gateway's own keys and certificates, as laid out in DATA_DIR/keys/.

A renewal (``zhol gateway renew``) prepares new keys and certificates in
keys/renewal/ and installs them with a small journal, so a crash at any point
leaves either the old set or, once the next command or start finishes the
install, the new one; never a key with another key's certificate:

1. the files being replaced are hard-linked into keys/previous/ (kept for the
   operator; one generation back),
2. keys/renewal/INSTALL lists the files to move,
3. each file is renamed from keys/renewal/ over its current one,
4. keys/renewal/ is removed.

``load_credentials`` finishes an install a crash interrupted after step 2.

keys/log.key is the gateway's log key (Ed25519; signs its checkpoints). Every
renewal replaces it like the others (keys/renewal/log.key, installed with them);
the public half of each replaced one is kept as keys/log.<n>.pub (n = 1, 2, ...,
oldest first), so checkpoints signed before stay verifiable from the data
directory alone; the registry publishes them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from zhol.core.errors import ZholError
from zhol.security.keys import PrivateKey, private_key_to_pem
from zhol.security.keystore import read_certificate, read_private_key, write_public_file
from zhol.security.sealing import Signer

AUTH_KEY = "auth.key"
AUTH_CERT = "auth.pem"
SIGN_KEY = "sign.key"
SIGN_CERT = "sign.pem"
CA_CERT = "ca.pem"
LOG_KEY = "log.key"  # Ed25519, signs checkpoints; registered with the registry
RENEWAL_DIR = "renewal"  # new keys (and, once approved, certificates) of a renewal
PREVIOUS_DIR = "previous"  # what the last renewal replaced, kept for the operator
INSTALL_JOURNAL = "INSTALL"
# The key and certificate files of each renewable role.
ROLE_FILES = {"auth": (AUTH_KEY, AUTH_CERT), "sign": (SIGN_KEY, SIGN_CERT)}


@dataclass(frozen=True)
class GatewayCredentials:
    signer: Signer
    auth_key_pem: bytes  # unencrypted, held in memory only for the TLS stack
    auth_cert_pem: bytes
    ca_pem: bytes


def load_credentials(keys_dir: Path, passphrase: bytes | None) -> GatewayCredentials:
    finish_install(keys_dir)
    try:
        sign_key = read_private_key(keys_dir / SIGN_KEY, passphrase)
        auth_key = read_private_key(keys_dir / AUTH_KEY, passphrase)
    except ValueError as exc:
        hint = "" if passphrase else " (encrypted keys need key_passphrase_env in gateway.toml)"
        raise ZholError("NotConfigured", f"keys in {keys_dir}: {exc}{hint}") from None
    except OSError as exc:  # missing, unreadable, or open to group or others
        raise ZholError("NotConfigured", f"keys in {keys_dir}: {exc}{_INIT_HINT}") from None
    try:
        sign_cert = read_certificate(keys_dir / SIGN_CERT)
        auth_cert = read_certificate(keys_dir / AUTH_CERT)
        auth_cert_pem = (keys_dir / AUTH_CERT).read_bytes()
        ca_pem = (keys_dir / CA_CERT).read_bytes()
    except (OSError, ValueError) as exc:
        raise ZholError("NotConfigured", f"certificates in {keys_dir}: {exc}{_INIT_HINT}") from None
    check_key_matches(sign_key, sign_cert, "sign")
    check_key_matches(auth_key, auth_cert, "auth")
    return GatewayCredentials(
        signer=Signer(sign_key, sign_cert.public_bytes(Encoding.DER)),
        auth_key_pem=private_key_to_pem(auth_key),
        auth_cert_pem=auth_cert_pem,
        ca_pem=ca_pem,
    )


_INIT_HINT = " (a gateway's keys are made by `zhol gateway init`)"


def check_key_matches(key: PrivateKey, cert: x509.Certificate, role: str) -> None:
    """NotConfigured unless cert certifies key (a half-installed or mixed-up key set)."""
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ZholError("NotConfigured", f"the {role} key does not match its certificate")


def install_renewal(keys_dir: Path, roles: Iterable[str], *, log_key: bool = False) -> None:
    """Make the prepared keys and certificates of ``roles`` (in keys/renewal/) current,
    and with ``log_key`` the prepared log key.

    Their key and certificate files must all be there. The replaced files are kept
    in keys/previous/ (hard links: never copied through a wider mode).
    """
    pending = keys_dir / RENEWAL_DIR
    names = [name for role in roles for name in ROLE_FILES[role]]
    names += [LOG_KEY] if log_key else []
    missing = [name for name in names if not (pending / name).exists()]
    if missing:
        raise ZholError("NotConfigured", f"{pending}: {', '.join(missing)} missing")
    previous = keys_dir / PREVIOUS_DIR
    previous.mkdir(mode=0o700, exist_ok=True)
    os.chmod(previous, 0o700)  # mkdir's mode is filtered by the umask
    for name in names:
        if not (keys_dir / name).exists():
            continue  # a log key added to a gateway that had none: nothing replaced
        tmp = previous / f".{name}.{secrets.token_hex(8)}.tmp"
        os.link(keys_dir / name, tmp)
        os.replace(tmp, previous / name)
    _fsync_dir(previous)
    journal = pending / INSTALL_JOURNAL
    tmp = pending / f".{INSTALL_JOURNAL}.tmp"
    tmp.write_text(json.dumps(names))
    os.replace(tmp, journal)
    _fsync_dir(pending)
    finish_install(keys_dir)


def finish_install(keys_dir: Path) -> bool:
    """Complete an install whose journal is written; True if there was one. Idempotent."""
    pending = keys_dir / RENEWAL_DIR
    journal = pending / INSTALL_JOURNAL
    try:
        names = json.loads(journal.read_text())
    except FileNotFoundError:
        return False
    for name in names:
        # Already moved by an earlier, interrupted run (or a concurrent one): skip it.
        with contextlib.suppress(FileNotFoundError):
            os.replace(pending / name, keys_dir / name)
    _fsync_dir(keys_dir)
    shutil.rmtree(pending, ignore_errors=True)
    return True


def discard_renewal(keys_dir: Path) -> None:
    """Forget prepared keys of a renewal that will not be installed (rejected)."""
    if not (keys_dir / RENEWAL_DIR / INSTALL_JOURNAL).exists():
        shutil.rmtree(keys_dir / RENEWAL_DIR, ignore_errors=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def keep_log_public_key(keys_dir: Path, public_pem: bytes) -> Path:
    """Keep a replaced log key's public half as keys/log.<n>.pub (once: a rerun finds it)."""
    n = 1
    while (path := keys_dir / f"log.{n}.pub").exists():
        if path.read_bytes() == public_pem:
            return path
        n += 1
    write_public_file(path, public_pem)
    return path

