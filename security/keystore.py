"""Keys and certificates on disk: the only file I/O in ``security`` (the rest is pure).

Private keys are readable by the owner only, from the first byte written: the
file is created 0o600 (never created wider and narrowed later), written to a
temporary name and renamed into place, so a crash leaves either the old key or
the new one, never half a key. Reading refuses a key that group or others can
access, as ssh does, because such a key must be presumed leaked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from zhol.security.keys import PrivateKey, load_private_key_pem, private_key_to_pem

__all__ = [
    "read_certificate",
    "read_private_key",
    "read_private_key_for_tls",
    "write_certificate",
    "write_private_key",
    "write_public_file",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
PUBLIC_FILE_MODE = 0o644


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    """Store a key as PKCS#8 PEM (encrypted if a passphrase is given), owner-only, atomically."""
    path = Path(path)
    _ensure_parent(path, PRIVATE_DIR_MODE)
    _write_atomic(path, private_key_to_pem(key, passphrase), PRIVATE_FILE_MODE)


def read_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Load a key, refusing (PermissionError) a file that group or others may access."""
    return load_private_key_pem(_read_owner_only(Path(path)), passphrase)


_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def read_private_key_for_tls(path: Path, passphrase: bytes | None = None) -> bytes:
    """A key as unencrypted PEM, to hand to a TLS stack in memory (never written so).

    An encrypted file needs the passphrase (ValueError without it or with a wrong
    one); an unencrypted one, written before its keys were encrypted, loads as is.
    """
    data = _read_owner_only(Path(path))
    encrypted = data.lstrip().startswith(_ENCRYPTED_PEM)
    key = load_private_key_pem(data, passphrase if encrypted else None)
    return private_key_to_pem(key)


def _read_owner_only(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"private key {path} has mode {mode:04o}; it must be accessible by its owner "
                f"only (chmod 600 {path})"
            )
        with os.fdopen(fd, "rb") as handle:
            fd = -1  # now owned by the file object
            return handle.read()
    finally:
        if fd >= 0:
            os.close(fd)


def write_public_file(path: Path, data: bytes) -> None:
    """Write a public file (certificate, anchor, checkpoint) world-readable, atomically."""
    path = Path(path)
    _ensure_parent(path, None)
    _write_atomic(path, data, PUBLIC_FILE_MODE)


def write_certificate(path: Path, cert: x509.Certificate) -> None:
    """Write a certificate as PEM (convenience over write_public_file)."""
    write_public_file(path, cert.public_bytes(serialization.Encoding.PEM))


def read_certificate(path: Path) -> x509.Certificate:
    """Load one PEM certificate (the first one if the file holds several)."""
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def _ensure_parent(path: Path, mode: int | None) -> None:
    parent = path.parent
    if parent.exists():
        return
    parent.mkdir(parents=True, exist_ok=True)
    if mode is not None:
        # mkdir's mode is filtered by the umask; set it explicitly.
        os.chmod(parent, mode)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, mode)
    try:
        try:
            # The umask may have narrowed the creation mode; a public file must still be
            # 0o644 and a private one exactly 0o600.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
