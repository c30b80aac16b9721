"""Event topics in the registry's catalogue: validated, stored on approval, published."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry_signing import gateway_signer, log_key_fields, sign_csr, subsystem_body
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId, parse_topic
from zhol.registry.cli import main as registry_cli
from zhol.registry.client import signed_subsystem_request
from zhol.registry.globalconf import build_global_conf, build_signed_global_conf
from zhol.registry.model import RegistrationKind, RegistrationState, Topic
from zhol.registry.provision import RegistryKeys, RegistryPaths, init_registry, load_keys
from zhol.registry.registration import MAX_TOPICS, Registrar, parse_registration_request
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import create_csr
from zhol.security.globalconf import (
    GlobalConf,
    Tunables,
    gateway_to_pb,
    subsystem_to_pb,
    verify_global_conf,
)
from zhol.security.keys import generate_private_key

NOW_MS = 1_790_000_000_000
TUNABLES = Tunables(refresh_interval_s=60, validity_s=600, clock_skew_s=60, max_message_bytes=1024)
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
CIVIL = SubsystemId.parse("KZ/GOV/MJ/civil")
PENSION = SubsystemId.parse("KZ/GOV/MLSPP/pension")
BIRTH = "zhol.population.v1.BirthRegistered"
DEATH = "zhol.population.v1.DeathRegistered"
ADDRESS = "zhol.population.v1.AddressChanged"

BAD_TOPICS = (
    "",
    "BirthRegistered",
    "zhol..v1.BirthRegistered",
    ".zhol.population.v1.BirthRegistered",
    "zhol.population.v1.BirthRegistered.",
    "zhol.population.v1.Birth-Registered",
    "1zhol.population.v1.BirthRegistered",
    "zhol/population.v1.BirthRegistered",
    "zhol.population.v1.BirthRegistered ",
    "zhol.population.v1.BirthRegistered\n",
)


@dataclass(frozen=True)
class Env:
    paths: RegistryPaths
    keys: RegistryKeys
    store: Store
    registrar: Registrar
    auto: Registrar

    def sign(self, body: registry_pb2.SubsystemRegistration) -> registry_pb2.RegistrationRequest:
        """Signed by GW1 with its current signing certificate."""
        return signed_subsystem_request(body, gateway_signer(self.store, self.keys.ca, GW1, NOW))

    def subsystem_request(
        self, *topics: registry_pb2.TopicDescription | str, subsystem: SubsystemId = POPULATION
    ) -> registry_pb2.RegistrationRequest:
        return self.sign(body(*topics, subsystem=subsystem))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
    keys = load_keys(paths)
    store = Store.open(paths.db)
    env = Env(
        paths=paths,
        keys=keys,
        store=store,
        registrar=Registrar(store, keys.ca, "KZ", auto_approve=False),
        auto=Registrar(store, keys.ca, "KZ", auto_approve=True),
    )
    gateway = env.auto.submit(gateway_request(), NOW_MS)
    assert gateway.state is RegistrationState.APPROVED
    return env


def gateway_request(**fields: object) -> registry_pb2.RegistrationRequest:
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(GW1),
        gateway_address="127.0.0.1:7001",
        member_name="Ministry of Justice",
        auth_csr_pem=create_csr(generate_private_key(), str(GW1)),
        sign_csr_pem=sign_csr(GW1),
        **{**log_key_fields(GW1), **fields},  # type: ignore[arg-type]
    )


def topic_pb(
    topic: str, publisher: SubsystemId | None = POPULATION
) -> registry_pb2.TopicDescription:
    description = registry_pb2.TopicDescription(topic=topic)
    if publisher is not None:
        description.publisher.CopyFrom(subsystem_to_pb(publisher))
    return description


def body(
    *topics: registry_pb2.TopicDescription | str, subsystem: SubsystemId = POPULATION
) -> registry_pb2.SubsystemRegistration:
    described = [topic_pb(t, subsystem) if isinstance(t, str) else t for t in topics]
    return subsystem_body(subsystem, GW1, NOW_MS, topics=described)


def state(env: Env) -> tuple[dict[str, int], int]:
    return env.store.counts(), env.store.change_counter()


def conf_of(env: Env) -> GlobalConf:
    signed = build_signed_global_conf(
        env.store.snapshot(),
        instance="KZ",
        version=1,
        now_ms=NOW_MS,
        tunables=TUNABLES,
        ca_certs_der=(env.keys.ca_cert_der,),
        signing_key=env.keys.conf_key,
        anchor_der=env.keys.anchor_der,
    )
    return verify_global_conf(signed, env.keys.anchor_der, NOW_MS)


# -- grammar ----------------------------------------------------------------------------------


def test_parse_topic_accepts_fully_qualified_message_names() -> None:
    assert parse_topic(BIRTH) == BIRTH
    assert parse_topic("a.B") == "a.B"
    assert parse_topic("_x.y_1.Z") == "_x.y_1.Z"


@pytest.mark.parametrize("text", BAD_TOPICS)
def test_parse_topic_rejects_malformed_names(text: str) -> None:
    with pytest.raises(ZholError) as caught:
        parse_topic(text)
    assert caught.value.code.name == "InvalidIdentifier"


# -- parsing a registration request -----------------------------------------------------------


def test_subsystem_request_carries_its_topics(env: Env) -> None:
    parsed = parse_registration_request(
        env.subsystem_request(BIRTH, topic_pb(DEATH, publisher=None)), "KZ"
    )
    assert parsed.kind is RegistrationKind.SUBSYSTEM
    # A topic without a publisher is the registered subsystem's.
    assert parsed.topics == (Topic(POPULATION, BIRTH), Topic(POPULATION, DEATH))


def test_a_request_without_topics_has_none(env: Env) -> None:
    assert parse_registration_request(env.subsystem_request(), "KZ").topics == ()
    assert parse_registration_request(gateway_request(), "KZ").topics == ()


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        *((body(bad), "InvalidIdentifier") for bad in BAD_TOPICS),
        (body(topic_pb(BIRTH, publisher=CIVIL)), "InvalidRequest"),
        (body(topic_pb(BIRTH, publisher=PENSION)), "InvalidRequest"),
        (body(BIRTH, DEATH, BIRTH), "InvalidRequest"),
        (
            body(*(f"zhol.population.v1.E{i}" for i in range(MAX_TOPICS + 1))),
            "InvalidRequest",
        ),
        (gateway_request(topics=[topic_pb(BIRTH)]), "InvalidRequest"),
    ],
)
def test_bad_topics_are_refused_and_change_nothing(
    env: Env,
    request_: registry_pb2.RegistrationRequest | registry_pb2.SubsystemRegistration,
    code: str,
) -> None:
    if isinstance(request_, registry_pb2.SubsystemRegistration):
        request_ = env.sign(request_)
    before = state(env)
    for registrar in (env.registrar, env.auto):
        with pytest.raises(ZholError) as caught:
            registrar.submit(request_, NOW_MS + 1)
        assert caught.value.full_code == f"Server.Registry.{code}"
    assert state(env) == before
    assert env.store.snapshot().topics == ()


def test_the_bound_is_inclusive(env: Env) -> None:
    topics = [f"zhol.population.v1.E{i}" for i in range(MAX_TOPICS)]
    assert (
        len(parse_registration_request(env.subsystem_request(*topics), "KZ").topics) == MAX_TOPICS
    )


# -- the store --------------------------------------------------------------------------------


def test_approval_writes_the_topics_and_moves_the_counter(env: Env) -> None:
    counter = env.store.change_counter()
    reg = env.registrar.submit(env.subsystem_request(BIRTH, DEATH), NOW_MS + 1)
    assert reg.state is RegistrationState.PENDING
    assert env.store.counts()["topics"] == 0
    assert env.store.change_counter() == counter  # a request alone changes nothing

    env.registrar.approve(reg.id, NOW_MS + 2)
    assert env.store.snapshot().topics == (Topic(POPULATION, BIRTH), Topic(POPULATION, DEATH))
    assert env.store.change_counter() == counter + 1


def test_a_second_registration_adds_topics_and_keeps_the_first(env: Env) -> None:
    env.auto.submit(env.subsystem_request(BIRTH, DEATH), NOW_MS + 1)
    counter = env.store.change_counter()
    reg = env.auto.submit(env.subsystem_request(DEATH, ADDRESS), NOW_MS + 2)
    assert reg.state is RegistrationState.APPROVED
    assert env.store.snapshot().topics == (
        Topic(POPULATION, ADDRESS),
        Topic(POPULATION, BIRTH),
        Topic(POPULATION, DEATH),
    )
    assert env.store.change_counter() == counter + 1


def test_store_refuses_a_foreign_publisher_and_rolls_back(env: Env) -> None:
    reg = env.registrar.submit(env.subsystem_request(BIRTH), NOW_MS + 1)
    before = state(env)
    with pytest.raises(ZholError) as caught:
        env.store.complete_subsystem_registration(
            reg.id,
            POPULATION,
            GW1,
            (),
            NOW_MS + 2,
            topics=(Topic(POPULATION, BIRTH), Topic(CIVIL, DEATH)),
        )
    assert caught.value.full_code == "Server.Registry.InvalidRequest"
    assert state(env) == before
    assert env.store.get_registration(reg.id).state is RegistrationState.PENDING


def test_rejection_writes_no_topics(env: Env) -> None:
    reg = env.registrar.submit(env.subsystem_request(BIRTH), NOW_MS + 1)
    counter = env.store.change_counter()
    env.registrar.reject(reg.id, "not yet", NOW_MS + 2)
    assert env.store.snapshot().topics == ()
    assert env.store.change_counter() == counter


# -- the global configuration -----------------------------------------------------------------


def test_topics_round_trip_through_the_signed_configuration(env: Env) -> None:
    env.auto.submit(env.subsystem_request(DEATH, BIRTH), NOW_MS + 1)
    env.auto.submit(
        env.subsystem_request("zhol.civil.v1.MarriageRegistered", subsystem=CIVIL), NOW_MS
    )

    raw = build_global_conf(
        env.store.snapshot(),
        instance="KZ",
        version=1,
        now_ms=NOW_MS,
        tunables=TUNABLES,
        ca_certs_der=(env.keys.ca_cert_der,),
    )
    listed = [
        (t.publisher.subsystem_code, t.topic)
        for t in registry_pb2.GlobalConfiguration.FromString(raw).topics
    ]
    assert listed == sorted(listed)
    assert len(listed) == 3

    conf = conf_of(env)
    assert conf.topics == {
        POPULATION: frozenset({BIRTH, DEATH}),
        CIVIL: frozenset({"zhol.civil.v1.MarriageRegistered"}),
    }
    assert conf.publishes(POPULATION, BIRTH)
    assert conf.publishes(CIVIL, "zhol.civil.v1.MarriageRegistered")
    assert not conf.publishes(CIVIL, BIRTH)
    assert not conf.publishes(PENSION, BIRTH)
    assert not conf.publishes(POPULATION, ADDRESS)


def test_a_configuration_without_topics_publishes_nothing(env: Env) -> None:
    conf = conf_of(env)
    assert conf.topics == {}
    assert not conf.publishes(POPULATION, BIRTH)


def test_a_bad_topic_leaves_the_configuration_unchanged(env: Env) -> None:
    env.auto.submit(env.subsystem_request(BIRTH), NOW_MS + 1)
    before = (env.store.snapshot(), env.store.counts())
    with pytest.raises(ZholError) as caught:
        env.auto.submit(env.subsystem_request(DEATH, "not a topic"), NOW_MS + 2)
    assert caught.value.code.name == "InvalidIdentifier"
    assert (env.store.snapshot(), env.store.counts()) == before
    assert conf_of(env).topics == {POPULATION: frozenset({BIRTH})}


# -- the operator's view ----------------------------------------------------------------------


def test_members_json_lists_each_subsystems_topics(env: Env) -> None:
    env.auto.submit(env.subsystem_request(DEATH, BIRTH), NOW_MS + 1)
    env.auto.submit(env.subsystem_request(subsystem=CIVIL), NOW_MS + 2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = registry_cli(["registry", "members", "--dir", str(env.paths.root), "--json"])
    assert code == 0
    (member,) = json.loads(out.getvalue())["members"]
    topics = {s["id"]: s["topics"] for s in member["subsystems"]}
    assert topics == {str(POPULATION): [BIRTH, DEATH], str(CIVIL): []}
