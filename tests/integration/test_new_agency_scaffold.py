"""What `zhol new-agency` writes works against a running federation, as real processes.

For each language: the scaffold's join.sh joins an in-process federation (gateway
init and add-subsystem auto-approved by its registry, events sink, serve); pension's
IS then calls the scaffolded provider through the bus and it sees the zhol-* metadata;
the scaffolded client gets a person from population through its own gateway; and an
event published by the scaffolded publisher reaches the scaffolded receiver (as
pension's receiver for the new member's events). The Node.js variant needs `node` and
examples/node/node_modules (`make node-example`), and is skipped without them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.integration.bus_federation import Federation, bus_metadata, call_raw, start_federation
from tests.integration.test_registry_topics import gateway_command
from tests.sqlite_rows import one
from tests.waiting import until
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.gateway_events import add_parser as add_events_parser
from zhol.cli.main import main as zhol_main
from zhol.cli.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "examples" / "node" / "node_modules"
ZHOL = Path(sys.executable).parent / "zhol"
MEMBER = "KZ/GOV/SRC"
TAXES = f"{MEMBER}/taxes"
SERVICE = "zhol.taxes.v1.TaxesRegistry"
TOPIC = "zhol.taxes.v1.RecordUpdated"
GET_PERSON = "KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson"
# Generous: on a busy two-core machine each `zhol` command of join.sh starts in ~1 s.
JOIN_TIMEOUT_S = 90.0
MESSAGE_ID = re.compile(r"^message id: ([0-9a-f-]{36})$", re.MULTILINE)


@dataclass
class Program:
    """A scaffolded program (or join.sh) running as a process, its output in a file."""

    process: asyncio.subprocess.Process
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def runner(lang: str) -> tuple[list[str], str, dict[str, str]]:
    """The interpreter, the programs' extension and the environment for ``lang``."""
    env = {**os.environ}
    if lang == "python":
        return [sys.executable], "py", env
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not NODE_MODULES.is_dir():
        pytest.skip(f"{NODE_MODULES} is absent (run `make node-example`)")
    env["NODE_PATH"] = str(NODE_MODULES)  # @grpc/grpc-js and @grpc/proto-loader
    return [node], "js", env


async def start(argv: Sequence[str], cwd: Path, output: Path, env: dict[str, str]) -> Program:
    with output.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
        )
    return Program(process, output)


async def run(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    # asyncio subprocess, so this event loop keeps serving the in-process federation.
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@contextlib.asynccontextmanager
async def stopped_at_exit(programs: list[Program]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for program in programs:
            if program.process.returncode is None:
                program.process.terminate()
                try:
                    await asyncio.wait_for(program.process.wait(), timeout=10)
                except TimeoutError:
                    program.process.kill()
                    await program.process.wait()


def events_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zhol")
    add_events_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["events", *argv])
    return int(args.func(args))


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path / "fed", persons=5)
    yield federation
    await federation.stop()


@pytest.mark.parametrize("lang", ["python", "node"])
async def test_the_scaffold_joins_serves_calls_publishes_and_receives(
    fed: Federation, tmp_path: Path, lang: str
) -> None:
    interpreter, ext, env = runner(lang)
    agency = tmp_path / "taxes"
    assert (
        zhol_main(["new-agency", "taxes", "--member", MEMBER, "--lang", lang, "--out", str(agency)])
        == 0
    )
    provider_address = f"127.0.0.1:{free_port()}"
    receiver_address = f"127.0.0.1:{free_port()}"
    gateway_dir = tmp_path / "src-gw1"
    port_file = tmp_path / "is.port"
    programs: list[Program] = []
    async with stopped_at_exit(programs):
        provider = await start(
            [*interpreter, f"provider.{ext}", "--listen", provider_address],
            agency, tmp_path / "provider.out", env,
        )  # fmt: skip
        receiver = await start(
            [*interpreter, f"receiver.{ext}", "--listen", receiver_address],
            agency, tmp_path / "receiver.out", env,
        )  # fmt: skip
        programs += [provider, receiver]
        join_env = {
            **env,
            "REGISTRY": fed.ports.address(fed.ports.registry),
            "ANCHOR": str(fed.layout.anchor),
            "ZHOL": str(ZHOL),
            "GATEWAY_DIR": str(gateway_dir),
            "PEER_ADDRESS": f"127.0.0.1:{free_port()}",
            "IS_LISTEN": "127.0.0.1:0",
            "PROVIDER_ADDRESS": provider_address,
            "RECEIVER_ADDRESS": receiver_address,
            "PORT_FILE": str(port_file),
        }
        join = await start(["bash", "join.sh"], agency, tmp_path / "join.out", join_env)
        programs.append(join)

        def serving() -> bool:
            assert join.process.returncode is None, join.text()
            return port_file.exists()  # written whole (renamed into place)

        await until(serving, timeout=JOIN_TIMEOUT_S, what="join.sh serving the gateway")
        own_gateway = f"127.0.0.1:{json.loads(port_file.read_text())['is_port']}"
        for program, what in ((provider, "provider"), (receiver, "receiver")):
            await until(lambda p=program: "listening on" in p.text(), timeout=30, what=what)

        # The rights the other members' operators would grant: pension may call the new
        # service and receive its topic (granted at the new gateway); the new subsystem
        # may call population's GetPerson (granted at the Ministry of Justice's).
        pension_gw = fed.layout.gateway(CONSUMER_GATEWAY)
        grants = [
            (gateway_dir, CLIENT, f"{TAXES}/{SERVICE}"),
            (fed.layout.gateway(PROVIDER_GATEWAY), TAXES, GET_PERSON),
        ]
        for folder, client, service in grants:
            allow = ("allow", "--dir", str(folder), "--client", client, "--service", service)
            assert await asyncio.to_thread(gateway_command, *allow) == 0
        assert events_command(
            "subscribe", "--gateway", str(gateway_dir), "--subscriber", CLIENT,
            "--topic", f"{TAXES}/{TOPIC}",
        ) == 0  # fmt: skip
        assert events_command(
            "sink", "--gateway", str(pension_gw), "--subsystem", CLIENT,
            "--publisher", TAXES, "--address", receiver_address,
        ) == 0  # fmt: skip

        # Another member's IS (pension) calls the scaffolded provider through its own
        # gateway, once the new registration has reached that gateway.
        (iin,) = one(fed.layout.population_db, "SELECT iin FROM persons LIMIT 1")
        body = b"\x0a\x0c" + iin.encode()  # GetRecordRequest{iin}

        async def called() -> tuple[bytes, dict[str, str]] | None:
            try:
                return await call_raw(
                    fed.is_address(), f"/{SERVICE}/GetRecord", body, bus_metadata()
                )
            except grpc.aio.AioRpcError as exc:
                trailers = dict(exc.trailing_metadata() or ())
                # Until the new configuration arrives; any other refusal is a failure.
                assert trailers.get("zhol-error", "").endswith("UnknownService"), exc
                return None

        answers: list[tuple[bytes, dict[str, str]]] = []

        async def answered() -> bool:
            answer = await called()
            if answer is not None:
                answers.append(answer)
            return bool(answers)

        await until(answered, timeout=30, what="pension's call reaching the new provider")
        record, trailers = answers[0]
        assert iin.encode() in record and b"active" in record
        message_id = trailers["zhol-message-id"]
        # The provider saw the verified caller, user, purpose, the exchange's id and the
        # data subject bound to the marked field (filled in by pension's gateway).
        seen = f"call {CLIENT} EE:tester integration test {message_id} subject=bound"
        await until(lambda: seen in provider.text(), timeout=10, what=provider.text())

        # The scaffolded client: population's GetPerson through its own gateway.
        code, out = await run(
            [*interpreter, f"client.{ext}", "--client", TAXES, "--gateway", own_gateway,
             "--iin", iin],
            agency, env,
        )  # fmt: skip
        assert code == 0, out
        assert MESSAGE_ID.search(out) is not None and iin in out, out

        # The scaffolded publisher: its event reaches the scaffolded receiver.
        code, out = await run(
            [*interpreter, f"publish.{ext}", "--gateway", own_gateway, "--iin", iin],
            agency, env,
        )  # fmt: skip
        assert code == 0, out
        published = re.search(r"^event (\S+) queued for (.*)$", out, re.MULTILINE)
        assert published is not None, out
        assert published.group(2) == CLIENT, out
        delivered = f"event {TAXES} {TOPIC} {published.group(1)} attempt 0"
        await until(lambda: delivered in receiver.text(), timeout=30, what=receiver.text())
        # What the receiver answers its gateway: UNIMPLEMENTED for a topic it does not
        # handle (a dead letter at once), and a delivery seen before (the same
        # message_id, a retry) acknowledged without being handled again.
        async with grpc.aio.insecure_channel(receiver_address) as channel:
            sink = bus_pb2_grpc.EventSinkStub(channel)
            other = bus_pb2.EventDelivery(topic="zhol.other.v1.Happened", message_id="m-0")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await sink.Receive(other, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
            for attempt in (0, 1):
                retry = bus_pb2.EventDelivery(
                    topic=TOPIC, message_id="m-1", event_id="e-1", publisher=TAXES, attempt=attempt
                )
                await sink.Receive(retry, timeout=10)
        assert receiver.text().count(" e-1 attempt ") == 1, receiver.text()
        # Nothing personal in what the programs print.
        assert iin not in provider.text() and iin not in receiver.text()
