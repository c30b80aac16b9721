"""Keys, keystore, the CA's profiles and certificate validation (security/)."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.pki import new_ca
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId
from zhol.security.ca import (
    CONFIG_EKU,
    SIGN_EKU,
    CertificateAuthority,
    auth_dns_name,
    create_csr,
    create_root_ca,
    issue_certificate,
)
from zhol.security.keys import generate_private_key, load_private_key_pem, private_key_to_pem
from zhol.security.keystore import (
    read_certificate,
    read_private_key,
    read_private_key_for_tls,
    write_certificate,
    write_private_key,
    write_public_file,
)
from zhol.security.sealing import sign_bytes, verify_bytes
from zhol.security.validation import CertificateValidator, cert_sha256

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def make_ca(common_name: str = "Zhol Test Root", validity_days: int = 3650) -> CertificateAuthority:
    return new_ca(common_name, NOW, validity_days)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca()


@pytest.fixture(scope="module")
def member_key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()  # type: ignore[return-value]


def issue(ca: CertificateAuthority, key, profile: str, identity: str, **kwargs) -> x509.Certificate:
    return issue_certificate(ca, create_csr(key, identity), profile, identity, NOW, **kwargs)


def code_of(excinfo: pytest.ExceptionInfo[ZholError]) -> str:
    return excinfo.value.code.name


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519"])
@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_private_key_pem_round_trip(algorithm: str, passphrase: bytes | None) -> None:
    key = generate_private_key(algorithm)
    pem = private_key_to_pem(key, passphrase)
    assert pem.startswith(
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----" if passphrase else b"-----BEGIN PRIVATE KEY-----"
    )
    loaded = load_private_key_pem(pem, passphrase)
    signature = sign_bytes(loaded, b"data")
    verify_bytes(key.public_key(), b"data", signature)


def test_generate_default_is_p256_and_unknown_algorithm_fails() -> None:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert isinstance(generate_private_key("ed25519"), ed25519.Ed25519PrivateKey)
    with pytest.raises(ValueError):
        generate_private_key("rsa-2048")


def test_wrong_or_missing_passphrase_fails() -> None:
    pem = private_key_to_pem(generate_private_key(), b"right")
    with pytest.raises(ValueError):
        load_private_key_pem(pem, b"wrong")
    with pytest.raises(ValueError):
        load_private_key_pem(pem, None)


def test_keystore_writes_owner_only_and_reads_back(tmp_path: Path) -> None:
    key = generate_private_key()
    path = tmp_path / "keys" / "sign.key"
    write_private_key(path, key, b"pass")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = read_private_key(path, b"pass")
    assert loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Overwriting keeps the mode and leaves no temporary files behind.
    write_private_key(path, generate_private_key())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["sign.key"]


def test_keystore_refuses_key_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "auth.key"
    write_private_key(path, generate_private_key())
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        read_private_key(path)
    os.chmod(path, 0o640)
    with pytest.raises(PermissionError):
        read_private_key(path)


def test_key_for_tls_is_decrypted_in_memory_only(tmp_path: Path) -> None:
    key = generate_private_key()
    encrypted, plain = tmp_path / "is-server.key", tmp_path / "legacy.key"
    write_private_key(encrypted, key, b"pass")
    write_private_key(plain, key)
    pem = read_private_key_for_tls(encrypted, b"pass")
    assert pem == private_key_to_pem(key) and b"ENCRYPTED" not in pem
    assert b"ENCRYPTED PRIVATE KEY" in encrypted.read_bytes()
    # A key written before the gateway had a passphrase still loads.
    assert read_private_key_for_tls(plain, b"pass") == pem
    for wrong in (None, b"wrong"):
        with pytest.raises(ValueError):
            read_private_key_for_tls(encrypted, wrong)
    os.chmod(encrypted, 0o640)
    with pytest.raises(PermissionError):
        read_private_key_for_tls(encrypted, b"pass")


def test_keystore_public_files(tmp_path: Path, ca: CertificateAuthority) -> None:
    path = tmp_path / "certs" / "anchor.pem"
    write_certificate(path, ca.cert)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert read_certificate(path) == ca.cert
    other = tmp_path / "note.txt"
    write_public_file(other, b"hello")
    assert other.read_bytes() == b"hello"
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


# --- CA ---------------------------------------------------------------------------------------


def test_root_ca_shape(ca: CertificateAuthority) -> None:
    root = ca.cert
    assert root.subject == root.issuer
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    root.verify_directly_issued_by(root)


def test_root_ca_ed25519_self_signed() -> None:
    key = generate_private_key("ed25519")
    root = create_root_ca(key, "Ed Root", NOW)
    assert root.signature_hash_algorithm is None
    root.verify_directly_issued_by(root)


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519"])
def test_issue_auth_profile(ca: CertificateAuthority, algorithm: str) -> None:
    key = generate_private_key(algorithm)
    cert = issue(ca, key, "auth", "KZ/GOV/MJ/gw1")
    cert.verify_directly_issued_by(ca.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw1.mj.gov.kz.gateway.zhol"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:zhol:gateway:KZ/GOV/MJ/gw1"
    ]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert ku.value.key_agreement == (algorithm == "ec-p256")
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + 365 * DAY
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "KZ/GOV/MJ/gw1"


def test_issue_sign_and_config_profiles(ca: CertificateAuthority, member_key) -> None:
    sign = issue(ca, member_key, "sign", "KZ/GOV/MJ")
    san = sign.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:zhol:member:KZ/GOV/MJ"]
    ku = sign.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_agreement
    assert list(sign.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [SIGN_EKU]

    config = issue(ca, member_key, "config", "KZ", validity_days=30)
    san = config.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:zhol:config:KZ"]
    assert list(config.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        CONFIG_EKU
    ]
    assert config.not_valid_after_utc == NOW + 30 * DAY
    assert sign.serial_number != config.serial_number


def test_issued_certificate_never_outlives_the_ca(member_key) -> None:
    short_ca = make_ca(validity_days=10)
    cert = issue(short_ca, member_key, "sign", "KZ/GOV/MJ")
    assert cert.not_valid_after_utc == short_ca.cert.not_valid_after_utc


def test_unknown_profile_and_malformed_identity(ca: CertificateAuthority, member_key) -> None:
    with pytest.raises(ValueError):
        issue_certificate(ca, create_csr(member_key, "KZ"), "tls", "KZ", NOW)  # type: ignore[arg-type]
    with pytest.raises(ZholError) as excinfo:
        issue(ca, member_key, "sign", "KZ/XXX/MJ")
    assert code_of(excinfo) == "InvalidIdentifier"


def _replace_spki(csr_pem: bytes, old_key, new_key) -> bytes:
    """Swap the CSR's public key for another one, keeping the original signature."""
    csr_der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    old_spki, new_spki = (
        old_key.public_key().public_bytes(*fmt),
        new_key.public_key().public_bytes(*fmt),
    )
    assert len(old_spki) == len(new_spki) and csr_der.count(old_spki) == 1
    tampered = x509.load_der_x509_csr(csr_der.replace(old_spki, new_spki))
    assert not tampered.is_signature_valid
    return tampered.public_bytes(serialization.Encoding.PEM)


def test_csr_signed_by_another_key_is_invalid(ca: CertificateAuthority) -> None:
    signer, claimed = generate_private_key(), generate_private_key()
    forged = _replace_spki(create_csr(signer, "KZ/GOV/MJ"), signer, claimed)
    with pytest.raises(ZholError) as excinfo:
        issue_certificate(ca, forged, "sign", "KZ/GOV/MJ", NOW)
    assert code_of(excinfo) == "InvalidCsr"


def test_csr_with_tampered_subject_is_invalid(ca: CertificateAuthority, member_key) -> None:
    csr = x509.load_pem_x509_csr(create_csr(member_key, "KZ/GOV/MJ"))
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    tampered_der = csr_der.replace(b"KZ/GOV/MJ", b"KZ/GOV/MK")
    tampered_csr = x509.load_der_x509_csr(tampered_der)
    assert not tampered_csr.is_signature_valid
    tampered = tampered_csr.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ZholError) as excinfo:
        issue_certificate(ca, tampered, "sign", "KZ/GOV/MK", NOW)
    assert code_of(excinfo) == "InvalidCsr"


def test_csr_garbage_and_cn_mismatch(ca: CertificateAuthority, member_key) -> None:
    for garbage in (b"", b"not a csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"):
        with pytest.raises(ZholError) as excinfo:
            issue_certificate(ca, garbage, "sign", "KZ/GOV/MJ", NOW)
        assert code_of(excinfo) == "InvalidCsr"
    with pytest.raises(ZholError) as excinfo:
        issue_certificate(ca, create_csr(member_key, "KZ/GOV/MJ"), "sign", "KZ/GOV/MLSPP", NOW)
    assert code_of(excinfo) == "InvalidCsr"


def test_auth_dns_name() -> None:
    assert auth_dns_name("KZ/GOV/MJ/gw1") == "gw1.mj.gov.kz.gateway.zhol"
    assert auth_dns_name("KZ/COM/Acme_Co/gw.1") == "gw-1.acme-co.com.kz.gateway.zhol"
    with pytest.raises(ZholError) as excinfo:
        auth_dns_name("KZ/GOV/MJ")
    assert code_of(excinfo) == "InvalidIdentifier"


# --- validation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sign_der(ca: CertificateAuthority, member_key) -> bytes:
    return der(issue(ca, member_key, "sign", "KZ/GOV/MJ"))


@pytest.fixture(scope="module")
def auth_der(ca: CertificateAuthority, member_key) -> bytes:
    return der(issue(ca, member_key, "auth", "KZ/GOV/MJ/gw1"))


def validator_for(
    ca: CertificateAuthority, revoked: tuple[bytes, ...] = ()
) -> CertificateValidator:
    return CertificateValidator([der(ca.cert)], revoked)


def test_valid_signing_cert_returns_member_and_key(ca, member_key, sign_der) -> None:
    member, public_key = validator_for(ca).verify_signing_cert(sign_der, NOW)
    assert member == MemberId.parse("KZ/GOV/MJ")
    verify_bytes(public_key, b"x", sign_bytes(member_key, b"x"))


def test_ed25519_leaf_is_accepted(ca: CertificateAuthority) -> None:
    key = generate_private_key("ed25519")
    cert = issue(ca, key, "sign", "KZ/GOV/MOH")
    member, public_key = validator_for(ca).verify_signing_cert(der(cert), NOW)
    assert member == MemberId.parse("KZ/GOV/MOH")
    assert isinstance(public_key, ed25519.Ed25519PublicKey)


def test_valid_auth_cert_returns_gateway(ca, auth_der) -> None:
    assert validator_for(ca).verify_auth_cert(auth_der, NOW) == GatewayId.parse("KZ/GOV/MJ/gw1")


def test_config_cert(ca, member_key) -> None:
    cert = issue(ca, member_key, "config", "KZ")
    instance, _ = validator_for(ca).verify_config_cert(der(cert), NOW)
    assert instance == "KZ"


def test_profiles_are_not_interchangeable(ca, member_key, sign_der, auth_der) -> None:
    validator = validator_for(ca)
    config_der = der(issue(ca, member_key, "config", "KZ"))
    for bad in (auth_der, config_der):
        with pytest.raises(ZholError) as excinfo:
            validator.verify_signing_cert(bad, NOW)
        assert code_of(excinfo) == "InvalidCertificate"
    for bad in (sign_der, config_der):
        with pytest.raises(ZholError) as excinfo:
            validator.verify_auth_cert(bad, NOW)
        assert code_of(excinfo) == "InvalidCertificate"


def test_foreign_ca_is_invalid(ca: CertificateAuthority, member_key) -> None:
    foreign = make_ca("Foreign Root")
    cert = issue(foreign, member_key, "sign", "KZ/GOV/MJ")
    with pytest.raises(ZholError) as excinfo:
        validator_for(ca).verify_signing_cert(der(cert), NOW)
    assert code_of(excinfo) == "InvalidCertificate"


def test_garbage_and_no_roots_are_invalid(ca, sign_der) -> None:
    with pytest.raises(ZholError) as excinfo:
        validator_for(ca).verify_signing_cert(b"\x30\x03junk", NOW)
    assert code_of(excinfo) == "InvalidCertificate"
    with pytest.raises(ZholError) as excinfo:
        CertificateValidator([]).verify_signing_cert(sign_der, NOW)
    assert code_of(excinfo) == "InvalidCertificate"


def test_expiry_applies_even_after_cached_success(ca, sign_der) -> None:
    validator = validator_for(ca)
    validator.verify_signing_cert(sign_der, NOW)
    assert validator.cache_stats.misses == 1 and validator.cache_stats.hits == 0
    member, _ = validator.verify_signing_cert(sign_der, NOW + DAY)
    assert member == MemberId.parse("KZ/GOV/MJ")
    assert validator.cache_stats.hits == 1
    for when in (NOW + 366 * DAY, NOW - DAY):
        with pytest.raises(ZholError) as excinfo:
            validator.verify_signing_cert(sign_der, when)
        assert code_of(excinfo) == "InvalidCertificate"
    assert validator.cache_stats.hits == 3 and validator.cache_stats.misses == 1
    # Without the cache the chain builder reaches the same verdict.
    with pytest.raises(ZholError) as excinfo:
        validator_for(ca).verify_signing_cert(sign_der, NOW + 366 * DAY)
    assert code_of(excinfo) == "InvalidCertificate"


def test_expired_root_invalidates_cached_leaf(member_key) -> None:
    short_ca = make_ca(validity_days=10)
    cert = der(issue(short_ca, member_key, "sign", "KZ/GOV/MJ", validity_days=5))
    validator = validator_for(short_ca)
    validator.verify_signing_cert(cert, NOW)
    validator.verify_signing_cert(cert, NOW + 4 * DAY)
    with pytest.raises(ZholError) as excinfo:
        validator.verify_signing_cert(cert, NOW + 6 * DAY)
    assert code_of(excinfo) == "InvalidCertificate"


def test_revoked_certificate(ca, sign_der, auth_der) -> None:
    validator = validator_for(ca, (cert_sha256(sign_der),))
    with pytest.raises(ZholError) as excinfo:
        validator.verify_signing_cert(sign_der, NOW)
    assert code_of(excinfo) == "RevokedCertificate"
    assert validator.verify_auth_cert(auth_der, NOW) == GatewayId.parse("KZ/GOV/MJ/gw1")


def test_revoked_root(ca, sign_der) -> None:
    validator = validator_for(ca, (cert_sha256(der(ca.cert)),))
    with pytest.raises(ZholError) as excinfo:
        validator.verify_signing_cert(sign_der, NOW)
    assert code_of(excinfo) == "RevokedCertificate"


def test_cache_is_bounded(ca, member_key) -> None:
    validator = CertificateValidator([der(ca.cert)], cache_size=2)
    certs = [der(issue(ca, member_key, "sign", "KZ/GOV/MJ")) for _ in range(3)]
    for cert in certs:
        validator.verify_signing_cert(cert, NOW)
    assert validator.cache_stats.size == 2
    validator.verify_signing_cert(certs[0], NOW)  # evicted: rebuilt
    assert validator.cache_stats.misses == 4 and validator.cache_stats.hits == 0


def test_ed25519_root_is_refused_up_front() -> None:
    key = generate_private_key("ed25519")
    root = create_root_ca(key, "Ed Root", NOW)
    with pytest.raises(ValueError):
        CertificateValidator([der(root)])


def test_cert_sha256() -> None:
    assert cert_sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
