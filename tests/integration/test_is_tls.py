"""The IS-facing side over TLS and mutual TLS with pinned certificates, on real servers.

Two layers refuse an IS under ``is_tls = "mtls"``, and the tests assert which:

- the TLS handshake, which trusts the pinned certificates as roots: a client with
  no certificate, or with a self-signed one that is not pinned, never reaches the
  gateway's code; the call fails UNAVAILABLE with no zhol-error trailer;
- the pipeline's AuthenticateIsClient stage, which admits only the exact SHA-256
  of a pinned certificate: a certificate issued under a pinned CA certificate
  passes the handshake but gets Client.UnknownClient, as does a pinned
  certificate whose pin does not allow the zhol-client it names.
"""

from __future__ import annotations

import datetime
import json
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.bus_federation import (
    GET_PERSON,
    Federation,
    bus_metadata,
    error_code,
    get_person,
    start_federation,
)
from tests.integration.test_bus import log_count, some_iin
from tests.integration.test_reflection import list_over_stream
from zhol.bus.v1 import discovery_pb2
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.gateway.discovery import LIST_MEMBERS_PATH
from zhol.gateway.ispins import cert_pem_sha256
from zhol.population.v1 import population_pb2
from zhol.security.ca import (
    CertificateAuthority,
    create_csr,
    create_root_ca,
    create_self_signed_tls_cert,
    issue_certificate,
)
from zhol.security.keys import generate_private_key, private_key_to_pem

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOW = datetime.datetime.now(datetime.UTC)
OTHER_CLIENT = "KZ/GOV/MLSPP/benefits"


@dataclass(frozen=True)
class IsIdentity:
    """An IS's TLS key and certificate (PEM), and where the certificate file is."""

    key_pem: bytes
    cert_pem: bytes
    path: Path


def self_signed(directory: Path, name: str) -> IsIdentity:
    key = generate_private_key()
    cert = create_self_signed_tls_cert(key, [], NOW, common_name=name)
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return IsIdentity(private_key_to_pem(key), path.read_bytes(), path)


def issued_by_ca(directory: Path) -> tuple[IsIdentity, IsIdentity]:
    """A CA certificate and a TLS client certificate it issued (a chain, not a pin)."""
    ca_key, leaf_key = generate_private_key(), generate_private_key()
    ca_cert = create_root_ca(ca_key, "agency IS CA", NOW)
    csr = create_csr(leaf_key, "KZ/GOV/MLSPP/gw9")
    leaf = issue_certificate(
        CertificateAuthority(ca_key, ca_cert), csr, "auth", "KZ/GOV/MLSPP/gw9", NOW
    )
    ca_path, leaf_path = directory / "ca.pem", directory / "leaf.pem"
    ca_path.write_bytes(ca_cert.public_bytes(Encoding.PEM))
    leaf_path.write_bytes(leaf.public_bytes(Encoding.PEM))
    ca = IsIdentity(private_key_to_pem(ca_key), ca_path.read_bytes(), ca_path)
    return ca, IsIdentity(private_key_to_pem(leaf_key), leaf_path.read_bytes(), leaf_path)


def gateway_dir(fed: Federation) -> Path:
    return fed.layout.gateway(CONSUMER_GATEWAY)


def cli(*argv: str) -> int:
    return zhol(["gateway", *argv])


async def restart_consumer(fed: Federation, is_tls: str) -> None:
    """Set is_tls in the consumer gateway's gateway.toml and restart it on the same port."""
    settings = gateway_dir(fed) / "gateway.toml"
    lines = [ln for ln in settings.read_text().splitlines() if not ln.startswith("is_tls")]
    settings.write_text("\n".join([*lines, f'is_tls = "{is_tls}"', ""]))
    await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    await fed.start_gateway(CONSUMER_GATEWAY)


async def tls_get_person(
    fed: Federation,
    identity: IsIdentity | None,
    client: str = CLIENT,
) -> population_pb2.Person:
    """GetPerson over TLS, verifying the gateway by its pinned is-server.pem."""
    server_pem = (gateway_dir(fed) / "keys" / "is-server.pem").read_bytes()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=server_pem,
        private_key=identity.key_pem if identity else None,
        certificate_chain=identity.cert_pem if identity else None,
    )
    iin = some_iin(fed)
    async with grpc.aio.secure_channel(fed.is_address(), credentials) as channel:
        body = await channel.unary_unary(GET_PERSON)(
            population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
            metadata=bus_metadata(client=client, data_subject=iin),
            timeout=5,
        )
    return population_pb2.Person.FromString(body)


async def refused(fed: Federation, coro) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    """The call fails and nothing is logged on either gateway."""
    before = [log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await coro
    assert [log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)] == before
    return caught.value


@dataclass
class MtlsFederation:
    fed: Federation
    pension_only: IsIdentity  # pinned, may act as CLIENT only
    unrestricted: IsIdentity  # pinned, may act as any subsystem the gateway serves
    other_only: IsIdentity  # pinned, may act as OTHER_CLIENT only
    stranger: IsIdentity  # self-signed, not pinned
    leaf_of_pinned_ca: IsIdentity  # chains to a pinned CA certificate, not itself pinned


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mtls(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MtlsFederation]:
    fed = await start_federation(tmp_path_factory.mktemp("federation"), persons=20)
    try:
        certs = tmp_path_factory.mktemp("is-certs")
        directory = str(gateway_dir(fed))
        assert cli("is-cert", "--dir", directory, "--host", "is.mlspp.example") == 0
        ca, leaf = issued_by_ca(certs)
        setup = MtlsFederation(
            fed,
            pension_only=self_signed(certs, "pension"),
            unrestricted=self_signed(certs, "unrestricted"),
            other_only=self_signed(certs, "other"),
            stranger=self_signed(certs, "stranger"),
            leaf_of_pinned_ca=leaf,
        )
        for identity, clients in (
            (setup.pension_only, [CLIENT]),
            (setup.unrestricted, None),
            (setup.other_only, [OTHER_CLIENT]),
            (ca, None),
        ):
            extra = ["--clients", ",".join(clients)] if clients else []
            assert cli("pin-is", "--dir", directory, "--cert", str(identity.path), *extra) == 0
        await restart_consumer(fed, "mtls")
        yield setup
    finally:
        await fed.stop()


async def test_is_cert_is_owner_only_and_idempotent(mtls: MtlsFederation) -> None:
    keys = gateway_dir(mtls.fed) / "keys"
    key_mode = stat.S_IMODE((keys / "is-server.key").stat().st_mode)
    assert key_mode == 0o600
    before = (keys / "is-server.pem").read_bytes(), (keys / "is-server.key").read_bytes()
    assert cli("is-cert", "--dir", str(keys.parent)) == 0
    assert ((keys / "is-server.pem").read_bytes(), (keys / "is-server.key").read_bytes()) == before


async def test_pinned_certificate_is_admitted(mtls: MtlsFederation) -> None:
    person = await tls_get_person(mtls.fed, mtls.pension_only)
    assert person.iin == some_iin(mtls.fed)
    person = await tls_get_person(mtls.fed, mtls.unrestricted)
    assert person.iin == some_iin(mtls.fed)


async def test_pin_restricted_to_another_subsystem_is_unknown_client(
    mtls: MtlsFederation,
) -> None:
    error = await refused(mtls.fed, tls_get_person(mtls.fed, mtls.other_only))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_code(error) == "Client.UnknownClient"


async def test_certificate_chaining_to_a_pin_is_not_itself_pinned(mtls: MtlsFederation) -> None:
    # The handshake accepts it (its issuer is a pinned root); the exact pin does not.
    error = await refused(mtls.fed, tls_get_person(mtls.fed, mtls.leaf_of_pinned_ca))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_code(error) == "Client.UnknownClient"


async def tls_list_members(fed: Federation, identity: IsIdentity, client: str = CLIENT) -> bytes:
    """Discovery over mutual TLS: answered by the gateway itself, with the same pins."""
    server_pem = (gateway_dir(fed) / "keys" / "is-server.pem").read_bytes()
    credentials = grpc.ssl_channel_credentials(server_pem, identity.key_pem, identity.cert_pem)
    async with grpc.aio.secure_channel(fed.is_address(), credentials) as channel:
        answer: bytes = await channel.unary_unary(LIST_MEMBERS_PATH)(
            b"", metadata=(("zhol-client", client),), timeout=5
        )
    return answer


async def test_discovery_is_for_pinned_clients_only(mtls: MtlsFederation) -> None:
    answer = discovery_pb2.ListMembersResponse.FromString(
        await tls_list_members(mtls.fed, mtls.pension_only)
    )
    assert answer.gateway == CONSUMER_GATEWAY and answer.members
    for identity in (mtls.leaf_of_pinned_ca, mtls.other_only):
        error = await refused(mtls.fed, tls_list_members(mtls.fed, identity))
        assert error_code(error) == "Client.UnknownClient"


async def test_reflection_is_for_pinned_clients_only(mtls: MtlsFederation) -> None:
    path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    server_pem = (gateway_dir(mtls.fed) / "keys" / "is-server.pem").read_bytes()
    for identity, expected in (
        (mtls.pension_only, None),
        (mtls.leaf_of_pinned_ca, "Client.UnknownClient"),
        (mtls.other_only, "Client.UnknownClient"),
    ):
        credentials = grpc.ssl_channel_credentials(
            server_pem, identity.key_pem, identity.cert_pem
        )
        async with grpc.aio.secure_channel(mtls.fed.is_address(), credentials) as channel:
            if expected is None:
                assert "zhol.bus.v1.Discovery" in await list_over_stream(channel, path)
                continue
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await list_over_stream(channel, path)
            assert error_code(caught.value) == expected


@pytest.mark.parametrize("who", ["stranger", "no certificate"])
async def test_unpinned_or_missing_certificate_fails_the_handshake(
    mtls: MtlsFederation, who: str
) -> None:
    # The TLS layer refuses before any gateway code runs: no zhol-error trailer.
    identity = mtls.stranger if who == "stranger" else None
    error = await refused(mtls.fed, tls_get_person(mtls.fed, identity))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_code(error) is None


async def test_plaintext_call_to_an_mtls_port_fails(mtls: MtlsFederation) -> None:
    error = await refused(mtls.fed, get_person(mtls.fed.is_address(), some_iin(mtls.fed)))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_code(error) is None


async def test_pinned_is_lists_pins_with_their_restrictions(
    mtls: MtlsFederation, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("pinned-is", "--dir", str(gateway_dir(mtls.fed)), "--json") == 0
    pins = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_subject = {p["subject"]: p["clients"] for p in pins}
    assert by_subject == {
        "CN=pension": [CLIENT],
        "CN=unrestricted": None,
        "CN=other": [OTHER_CLIENT],
        "CN=agency IS CA": None,
    }


async def test_tls_mode_and_unpin_applied_at_restart(tmp_path: Path) -> None:
    fed = await start_federation(tmp_path / "federation", persons=20)
    try:
        directory = str(gateway_dir(fed))
        identity = self_signed(tmp_path, "pension")
        assert cli("is-cert", "--dir", directory) == 0
        # tls: the IS verifies the gateway; it presents no certificate of its own.
        await restart_consumer(fed, "tls")
        assert (await tls_get_person(fed, None)).iin == some_iin(fed)

        assert cli("pin-is", "--dir", directory, "--cert", str(identity.path)) == 0
        await restart_consumer(fed, "mtls")
        assert (await tls_get_person(fed, identity)).iin == some_iin(fed)

        digest = cert_pem_sha256(identity.cert_pem).hex()
        assert cli("unpin-is", "--dir", directory, "--sha256", digest) == 0
        await restart_consumer(fed, "mtls")
        error = await refused(fed, tls_get_person(fed, identity))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error_code(error) is None
    finally:
        await fed.stop()
