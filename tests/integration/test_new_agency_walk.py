"""docs/new-agency.md, followed against a running `zhol demo` as a new agency developer
would follow it.

The demo runs as real processes; every ```sh command of the guide is run in order, as
written, in a folder of its own (the repository's protos/ and examples/ linked in, as
in a clone), and each file the guide writes is written in its place in that order,
from the guide's own code block. The test substitutes only what the guide leaves to
the reader: free ports for the guide's fixed ones, and the id a `request-access`
printed for `REQUEST_ID`. So the guide and this test cannot drift: a changed command
runs changed, a new one runs too, and the checks below must each meet its command, in
this order.

Not run: `zhol registry approve` (the demo's registry approves registrations itself,
so nothing is pending), and `npm install` (no
network in the tests): the scaffold's Node.js programs use examples/node's packages,
the same versions (tests/unit/test_new_agency.py), installed by `make node-example`;
without node or them the walk is skipped. Where grpcurl is not installed, its three
commands are done by grpcio-reflection's client, also not ours (grpcurl_stand_in).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.integration.demo_process import ROOT, start_demo, wait_ready
from tests.new_agency_guide import Command, File, guide, steps
from tests.reflection_client import ask_reflection
from zhol.cli.ports import free_port
from zhol.core.metadata import CLIENT_KEY, PURPOSE_KEY, USER_ID_KEY
from zhol.gateway.localconf import LocalConfStore

pytestmark = pytest.mark.integration

# The guide's fixed ports (its gateway's IS and peer ports, its provider, its two
# receivers), each replaced by a free one.
GUIDE_PORTS = ("5600", "5601", "7600", "7601", "7602")
# Commands the walk leaves out, each with why; every one must still be in the guide.
SKIPPED = {
    "zhol registry approve ": "the demo's registry approves registrations itself",
}
# The files of the new agency the guide writes and runs: the provider of its service
# and its event receiver. (To follow a guide in another language, change these names.)
PROVIDER = "provider.js"
RECEIVER = "receiver.js"
NODE_MODULES = ROOT / "examples" / "node" / "node_modules"
# How long a command of the guide may take, and an effect it waits for.
COMMAND_TIMEOUT_S = 60.0
EFFECT_TIMEOUT_S = 20.0
# The "done when": a new registration is callable within 5 seconds.
SPREAD_S = 5.0


@dataclass
class Walk:
    """The reader's terminals: one folder, the shell variables set so far, the servers
    started "in a terminal of its own" (and their output), what the walk noticed."""

    root: Path
    env: dict[str, str]
    ports: dict[str, int]
    request_id: str = ""
    servers: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    took: dict[str, float] = field(default_factory=dict)

    def local(self, text: str) -> str:
        """The guide with this walk's ports for its fixed ones."""
        for guide_port, port in self.ports.items():
            text = text.replace(f"127.0.0.1:{guide_port}", f"127.0.0.1:{port}")
        return text

    def port(self, guide_port: str) -> int:
        return self.ports[guide_port]

    def run(self, line: str) -> str:
        """Run one command line in bash as the reader would; its stdout and stderr."""
        done = subprocess.run(
            ["bash", "-c", line], cwd=self.root, env=self.env, capture_output=True,
            text=True, timeout=COMMAND_TIMEOUT_S, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{output}"
        return output

    def server_output(self, fragment: str) -> str:
        """What the server started by a command holding ``fragment`` printed so far."""
        fragment = self.local(fragment)
        (log,) = [log for command, (_, log) in self.servers.items() if fragment in command]
        return log.read_text()

    def stop(self) -> None:
        for proc, _ in self.servers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.servers.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def write_file(walk: Walk, file: File) -> None:
    """One of the new agency's files (contract, provider, client, publisher, receiver),
    as the guide's own code block gives it, where it says; the guide made its folder."""
    target = walk.root / file.path
    assert target.parent.is_dir(), f"the guide writes {file.path} before making its folder"
    target.write_text(file.content)


def start_server(walk: Walk, line: str) -> None:
    """A command the guide runs "in a terminal of its own": a server, kept running.
    `(cd DIR && CMD)` runs CMD in DIR; exec makes the pid the server's own."""
    cwd, command = walk.root, line
    if subshell := re.fullmatch(r"\(cd (\S+) && (.+)\)", line):
        cwd, command = walk.root / subshell.group(1), subshell.group(2)
    log = walk.root / f"server-{len(walk.servers)}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=cwd, env=walk.env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    walk.servers[line] = (proc, log)


# -- what the walk checks, each after the command it names ----------------------------


@dataclass(frozen=True)
class Check:
    """After the next command matching ``pattern``: ``check(walk, line, output)``.
    With ``until``, the command is run again until the check passes (an effect the
    guide says comes within a second, such as a grant reaching the running gateway)."""

    pattern: str
    check: Callable[[Walk, str, str], None]
    until: bool = False


def shows(*fragments: str) -> Callable[[Walk, str, str], None]:
    def check(walk: Walk, line: str, output: str) -> None:
        for fragment in fragments:
            fragment = fragment.replace("REQUEST_ID", walk.request_id)
            assert fragment in output, f"{line!r}: no {fragment!r} in:\n{output}"

    return check


def listening(*guide_ports: str) -> Callable[[Walk, str, str], None]:
    def check(walk: Walk, line: str, output: str) -> None:
        for guide_port in guide_ports:
            _wait_for_port(walk, line, walk.port(guide_port))

    return check


def _wait_for_port(walk: Walk, line: str, port: int) -> None:
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while True:
        proc, log = walk.servers[line]
        assert proc.poll() is None, f"{line!r} exited:\n{log.read_text()}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"{line!r}: nothing on {port}:\n{log.read_text()}"
        time.sleep(0.1)


def routed_within_seconds(walk: Walk, line: str, output: str) -> None:
    """The issue's "done when": within 5 s of its registration's approval (when
    add-subsystem returns), pension's own gateway routes calls to the new service, which
    it refuses with UnknownService while its configuration does not list it yet."""
    assert "GetRecord" in output, output
    registered = time.monotonic()
    known = ("Server.ClientProxy.UnknownService", "Server.ClientProxy.UnknownSubsystem")
    last = ""
    with grpc.insecure_channel(walk.env["PENSION_IS"]) as channel:
        call = channel.unary_unary("/zhol.taxes.v1.TaxRegistry/GetRecord")
        while True:
            try:
                call(b"\n\x0c" + walk.env["IIN"].encode(), timeout=5, metadata=(
                    (CLIENT_KEY, "KZ/GOV/MLSPP/pension"), (USER_ID_KEY, "EE:officer-17"),
                    (PURPOSE_KEY, "is it there yet"),
                ))  # fmt: skip
                break  # not expected before the committee's gateway serves and grants
            except grpc.RpcError as exc:
                last = dict(exc.trailing_metadata() or ()).get("zhol-error", "")
                if last and last not in known:
                    break  # the consumer's gateway sent it on: it knows the service
            assert time.monotonic() - registered < SPREAD_S, f"still {last} after {SPREAD_S} s"
            time.sleep(0.05)
    walk.notes.append(
        f"registration routed by pension's gateway {time.monotonic() - registered:.2f} s "
        f"after add-subsystem returned (then {last or 'answered'})"
    )


def pension_reached_the_provider(walk: Walk, line: str, output: str) -> None:
    message_id = re.search(r"message id: (\S+)", output)
    assert message_id, output
    expected = (
        f"call KZ/GOV/MLSPP/pension EE:officer-17 pension: check tax debts {message_id[1]}"
        " subject=bound"
    )
    _wait_for_output(walk, PROVIDER, expected)


def prints(server: str, expected: str) -> Callable[[Walk, str, str], None]:
    def check(walk: Walk, line: str, output: str) -> None:
        _wait_for_output(walk, server, expected)

    return check


def _wait_for_output(walk: Walk, server: str, expected: str) -> None:
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while expected not in walk.server_output(server):
        assert time.monotonic() < deadline, (
            f"{server} did not print {expected!r}:\n{walk.server_output(server)}"
        )
        time.sleep(0.1)


def receiver_port(guide_port: str) -> str:
    return f"{RECEIVER} --listen 127.0.0.1:{guide_port}"


def only_granted(walk: Walk, line: str, output: str) -> None:
    """Reflection shows the committee population's registry, which it may call now,
    and no service it may not (pension's)."""
    listed = output.split()
    assert "zhol.population.v1.PopulationRegistry" in listed, output
    assert "zhol.pension.v1.PensionRegistry" not in listed, output


REFUSAL = "receiver said UNIMPLEMENTED: no handler for zhol.population.v1.AddressChanged"

CHECKS = (
    Check("^zhol gateway init ", shows("gateway KZ/GOV/SRC/gw1 registered")),
    Check("^zhol registry requests ", shows("no registration requests")),
    Check("^zhol new-agency taxes ", shows("wrote 12 files for KZ/GOV/SRC/taxes (node)")),
    Check(PROVIDER, listening("7600")),
    Check("^zhol gateway add-subsystem ", routed_within_seconds),
    Check("^zhol gateway serve ", listening("5600", "5601")),
    Check("^zhol gateway status ", shows("serves   KZ/GOV/SRC/taxes")),
    Check("^zhol catalogue --dir src-gw1$", shows("zhol.taxes.v1.TaxRegistry: GetRecord")),
    Check("--methods KZ/GOV/MJ/population",
          shows("GetPerson(zhol.population.v1.GetPersonRequest)")),
    Check("--allowed KZ/GOV/MJ/population", shows("  nothing")),
    Check("access-requests --dir demo-data/gateways/mj-gw1 --status pending",
          shows("REQUEST_ID  pending")),
    Check("^zhol gateway approve --dir demo-data/gateways/mj-gw1",
          shows("approved: REQUEST_ID")),
    Check("access-requests --dir src-gw1 --sent", shows("REQUEST_ID  approved")),
    Check("--allowed KZ/GOV/MJ/population",
          shows("zhol.population.v1.PopulationRegistry: GetPerson"), until=True),
    Check("node client.js --gateway", shows("message id: ", '"last_name": ')),
    Check("get_person.py --client KZ/GOV/SRC/taxes", shows("message id: ", "last_name: ")),
    Check("^grpcurl .* list$", only_granted),
    Check("^grpcurl .* describe ", shows("rpc GetPerson")),
    Check("^grpcurl .*/GetPerson$", shows('"iin": ')),
    Check("access-requests --dir src-gw1 --status pending", shows("REQUEST_ID  pending")),
    Check("^zhol gateway approve --dir src-gw1 REQUEST_ID", shows("approved: REQUEST_ID")),
    Check("^grpcurl .*PENSION.* list$", shows("zhol.taxes.v1.TaxRegistry")),
    Check("^grpcurl .*PENSION.* describe ", shows("rpc GetRecord")),
    Check("^grpcurl .*/GetRecord$", shows('"status": "active"')),
    Check("get_record.js --client KZ/GOV/MLSPP/pension", pension_reached_the_provider),
    Check(receiver_port("7602"), listening("7602")),
    Check("^zhol events sink .*mlspp-gw1", shows("go to 127.0.0.1:")),
    Check("^zhol gateway approve --dir src-gw1 REQUEST_ID", shows("approved: REQUEST_ID")),
    Check("publish.js", shows("queued for KZ/GOV/MLSPP/pension"), until=True),
    Check("^zhol events status --gateway src-gw1",
          prints(receiver_port("7602"), "event KZ/GOV/SRC/taxes zhol.taxes.v1.RecordUpdated ")),
    Check(receiver_port("7601"), listening("7601")),
    Check("^zhol gateway approve --dir demo-data/gateways/mj-gw1",
          shows("approved: REQUEST_ID")),
    Check("^zhol scenario birth ", prints(receiver_port("7601"),
          "event KZ/GOV/MJ/population zhol.population.v1.BirthRegistered ")),
    Check("^zhol gateway approve --dir demo-data/gateways/mj-gw1",
          shows("approved: REQUEST_ID")),
    Check("^zhol scenario address ", shows("address: PASS")),
    Check("^zhol events status --gateway demo-data/gateways/mj-gw1",
          shows(REFUSAL, "dead "), until=True),
)  # fmt: skip


def grpcurl_stand_in(walk: Walk, line: str) -> str:
    """What the guide's grpcurl commands do (list; describe a method; call one with -d
    and -H), done with grpcio-reflection's client over the same gateway's reflection,
    with no local .proto: the request is built from the reflected descriptors alone."""
    expanded = walk.run(f"printf '%s\\0' {line.removeprefix('grpcurl ')}")
    args = expanded.split("\0")[:-1]
    headers: list[tuple[str, str]] = []
    data = None
    rest: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "-H":
            key, _, value = args.pop(0).partition(":")
            headers.append((key.strip(), value.strip()))
        elif arg == "-d":
            data = args.pop(0)
        elif arg != "-plaintext":
            rest.append(arg)
    address, *verb = rest

    def build(database: ProtoReflectionDescriptorDatabase) -> Any:
        pool = descriptor_pool.DescriptorPool(database)
        if verb == ["list"]:
            return "\n".join(sorted(database.get_services()))
        if verb[0] == "describe":
            method = pool.FindMethodByName(verb[1])
            return (
                f"{verb[1]} is a method:\nrpc {method.name} ( .{method.input_type.full_name} )"
                f" returns ( .{method.output_type.full_name} );"
            )
        service_name, _, method_name = verb[0].rpartition("/")
        method = pool.FindServiceByName(service_name).methods_by_name[method_name]
        request = json_format.Parse(data or "{}", GetMessageClass(method.input_type)())
        return request, GetMessageClass(method.output_type)

    built = ask_reflection(address, tuple(headers), build)
    if isinstance(built, str):
        return built
    request, response_class = built
    with grpc.insecure_channel(address) as channel:
        answer = channel.unary_unary(f"/{verb[0]}")(
            request.SerializeToString(), metadata=headers, timeout=COMMAND_TIMEOUT_S
        )
    response = response_class.FromString(answer)
    return json_format.MessageToJson(response, preserving_proto_field_name=True)


def follow(walk: Walk, command: Command, check: Check | None) -> None:
    """One command of the guide, as the reader runs it, then its check."""
    line = command.line.replace("REQUEST_ID", walk.request_id or "REQUEST_ID")
    if assignment := re.fullmatch(r"([A-Z][A-Z_]*)=(.+)", line):
        name = assignment[1]
        walk.env[name] = walk.run(f'{line}; printf %s "${name}"')
        return
    if "request-access" in line:
        line += " --json"  # the same request; its id for the REQUEST_ID the guide leaves open
    if command.background:
        start_server(walk, line)
        output = ""
    elif line.startswith("grpcurl ") and shutil.which("grpcurl") is None:
        output = grpcurl_stand_in(walk, line)
        walk.notes.append(f"grpcurl not installed: grpcio-reflection did {line[:50]}")
    else:
        output = walk.run(line)
    if "request-access" in line:
        walk.request_id = json.loads(output.strip().splitlines()[-1])["request_id"]
    if check is not None:
        if check.until:
            _until_checked(walk, line, output, check)
        else:
            check.check(walk, line, output)
    if re.match(r"zhol (gateway approve|events sink) ", line):
        # The running gateway reloads its local.db within LocalConfStore.RELOAD_CHECK_S
        # ("applies it within a second"): the reader's next command comes later anyway.
        time.sleep(2 * LocalConfStore.RELOAD_CHECK_S)


def _until_checked(walk: Walk, line: str, output: str, check: Check) -> None:
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while True:
        try:
            check.check(walk, line, output)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)
        output = walk.run(line)


def skip_reason(walk: Walk, line: str) -> str | None:
    for prefix, reason in SKIPPED.items():
        if line.startswith(prefix):
            return reason
    return None


def test_a_new_agency_follows_the_guide(tmp_path: Path) -> None:
    if shutil.which("node") is None or not NODE_MODULES.is_dir():
        pytest.skip("the guide's programs are Node.js: needs node and make node-example")
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("protos", "examples"):
        (root / name).symlink_to(ROOT / name)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    walk = Walk(root, env, {p: free_port() for p in GUIDE_PORTS})
    demo = start_demo(root / "demo-data", persons=300)
    started = time.monotonic()
    try:
        wait_ready(demo, timeout=120)
        walk.notes.append(f"the demo was ready in {time.monotonic() - started:.0f} s")
        pending = list(CHECKS)
        for step in steps(walk.local(guide())):
            if isinstance(step, File):
                write_file(walk, step)
                continue
            command, line = step, step.line
            matches = bool(pending) and re.search(walk.local(pending[0].pattern), line)
            if (reason := skip_reason(walk, line)) is not None:
                walk.skipped.append(f"{line[:60]}: {reason}")
                if matches:
                    pending.pop(0)  # its check goes with it
                continue
            if line == "(cd taxes && npm install)":
                # No network here: the same packages, installed by make node-example.
                (root / "taxes" / "node_modules").symlink_to(NODE_MODULES)
                continue
            check = pending.pop(0) if matches else None
            begun = time.monotonic()
            follow(walk, command, check)
            walk.took[line] = walk.took.get(line, 0.0) + time.monotonic() - begun
        assert not pending, (
            f"no command of the guide matches {pending[0].pattern!r} in its place "
            f"(after the one of the check before); unchecked: {[c.pattern for c in pending]}"
        )
        for prefix in SKIPPED:
            assert any(s.startswith(prefix) for s in walk.skipped), f"{prefix!r}: not in the guide"
    finally:
        walk.stop()
        demo.stop()
    walk.notes.append(f"the walk took {time.monotonic() - started:.0f} s with the demo")
    slowest = sorted(walk.took.items(), key=lambda item: -item[1])[:8]
    walk.notes += [f"{seconds:5.1f} s  {line[:70]}" for line, seconds in slowest]
    print("\n".join(["", *walk.notes, *(f"skipped {s}" for s in walk.skipped)]))
