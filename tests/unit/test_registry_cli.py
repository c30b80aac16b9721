"""`zhol registry ...` commands, run in-process (no sockets)."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.registry_signing import drop_log_key, log_key_fields
from zhol.cli.main import EXIT_READER_GONE
from zhol.core.clock import SystemClock
from zhol.core.ids import GatewayId
from zhol.registry import cli
from zhol.registry.provision import load_keys, require_initialised
from zhol.registry.registration import Registrar
from zhol.registry.service import ConfPublisher
from zhol.registry.settings import load_registry_settings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import create_csr
from zhol.security.globalconf import MAX_CLOCK_SKEW_S, gateway_to_pb
from zhol.security.keys import generate_private_key

GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
GW2 = GatewayId.parse("KZ/GOV/MJ/gw2")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["registry", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def submit(data_dir: Path, gateway: GatewayId = GW1) -> str:
    paths = require_initialised(data_dir)
    keys = load_keys(paths)
    request = registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway),
        gateway_address="127.0.0.1:7001",
        member_name="Ministry of Justice",
        auth_csr_pem=create_csr(generate_private_key(), str(gateway)),
        sign_csr_pem=create_csr(generate_private_key(), str(gateway.member)),
        **log_key_fields(gateway),
    )
    registrar = Registrar(Store.open(paths.db), keys.ca, "KZ")
    return registrar.submit(request, SystemClock().now_ms()).id


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "registry"
    code, out, _ = run(capsys, "init", "--dir", str(directory), "--json")
    assert code == 0
    assert json.loads(out)["created"] is True
    return directory


def test_add_parser_sets_a_func_for_every_command(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    d = str(tmp_path)
    for argv in (
        ["init", "--dir", d],
        ["serve", "--dir", d, "--listen", "127.0.0.1:0", "--port-file", "p"],
        ["requests", "--dir", d, "--json"],
        ["approve", "--dir", d, "id"],
        ["reject", "--dir", d, "id", "--reason", "why"],
        ["revoke", "--dir", d, "--gateway", str(GW1)],
        ["members", "--dir", d, "--json"],
        ["conf", "--dir", d, "--json"],
        ["witness-refusals", "--dir", d, "--origin", "zhol/KZ/GOV/MJ/gw1", "--json"],
    ):
        args = parser.parse_args(["registry", *argv])
        assert callable(args.func)


def test_init_twice_is_a_no_op(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = (data_dir / "anchor.pem").read_bytes()
    code, out, _ = run(capsys, "init", "--dir", str(data_dir), "--json")
    assert code == 0 and json.loads(out)["created"] is False
    assert (data_dir / "anchor.pem").read_bytes() == anchor


def test_approve_and_list(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request_id = submit(data_dir)
    code, out, _ = run(capsys, "requests", "--dir", str(data_dir), "--json")
    assert code == 0
    (view,) = json.loads(out)["registrations"]
    assert (view["id"], view["state"], view["gateway"]) == (request_id, "PENDING", str(GW1))

    code, _, _ = run(capsys, "approve", "--dir", str(data_dir), request_id)
    assert code == 0
    code, _, err = run(capsys, "approve", "--dir", str(data_dir), request_id)
    assert code == 1 and err.startswith("Server.Registry.AlreadyRegistered")

    code, out, _ = run(capsys, "members", "--dir", str(data_dir), "--json")
    assert code == 0
    (member,) = json.loads(out)["members"]
    assert member["id"] == "KZ/GOV/MJ"
    assert [g["id"] for g in member["gateways"]] == [str(GW1)]


def test_gateways_from_before_log_keys_are_flagged(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "approve", "--dir", str(data_dir), submit(data_dir, GW1))
    run(capsys, "approve", "--dir", str(data_dir), submit(data_dir, GW2))
    store = Store.open(require_initialised(data_dir).db)
    drop_log_key(store, GW2)  # as a database from before log keys holds it
    code, out, _ = run(capsys, "members", "--dir", str(data_dir), "--json")
    (member,) = json.loads(out)["members"]
    keys = {g["id"]: g["log_public_key"] for g in member["gateways"]}
    assert code == 0 and keys[str(GW2)] is None and len(keys[str(GW1)]) == 64
    code, out, _ = run(capsys, "members", "--dir", str(data_dir))
    flagged = [line for line in out.splitlines() if cli.NO_LOG_KEY in line]
    assert code == 0 and len(flagged) == 1 and str(GW2) in flagged[0]
    warning = out.splitlines()[-1]
    assert warning.startswith("WARNING 1 active gateway(s) without a log key")
    assert str(GW2) in warning and str(GW1) not in warning

    paths = require_initialised(data_dir)
    settings = load_registry_settings(data_dir, environ={})
    ConfPublisher(store, load_keys(paths), settings).current(SystemClock().now_ms())
    code, out, _ = run(capsys, "conf", "--dir", str(data_dir), "--json")
    keys = {g["id"]: g["log_public_key"] for g in json.loads(out)["gateways"]}
    assert keys[str(GW2)] is None and keys[str(GW1)]
    code, out, _ = run(capsys, "conf", "--dir", str(data_dir))
    assert [str(GW2) in line for line in out.splitlines() if cli.NO_LOG_KEY in line] == [True]
    # Revoked, it is no longer flagged: it is out of the federation.
    run(capsys, "revoke", "--dir", str(data_dir), "--gateway", str(GW2))
    code, out, _ = run(capsys, "members", "--dir", str(data_dir))
    assert cli.NO_LOG_KEY not in out and "WARNING" not in out


def test_a_pending_request_from_before_log_keys_is_flagged_and_not_approved(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = submit(data_dir)
    store = Store.open(require_initialised(data_dir).db)
    (reg,) = store.list_registrations()
    legacy = registry_pb2.RegistrationRequest.FromString(reg.request)
    legacy.ClearField("log_public_key")
    legacy.ClearField("log_key_proof")
    with closing(sqlite3.connect(store.path)) as conn:  # as an older client's request
        conn.execute(
            "UPDATE registrations SET request = ? WHERE id = ?",
            (legacy.SerializeToString(), request_id),
        )
        conn.commit()
    code, out, _ = run(capsys, "requests", "--dir", str(data_dir), "--json")
    (view,) = json.loads(out)["registrations"]
    assert view["log_key"] is False
    code, out, _ = run(capsys, "requests", "--dir", str(data_dir))
    assert cli.NO_LOG_KEY in out
    code, _, err = run(capsys, "approve", "--dir", str(data_dir), request_id)
    assert code == 1 and err.startswith("Server.Registry.InvalidRequest")
    assert store.get_gateway(GW1) is None
    assert store.get_registration(request_id).state.value == "PENDING"


def test_reject(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request_id = submit(data_dir)
    code, _, _ = run(capsys, "reject", "--dir", str(data_dir), request_id, "--reason", "no")
    assert code == 0
    code, out, _ = run(capsys, "requests", "--dir", str(data_dir), "--json", "--state", "rejected")
    (view,) = json.loads(out)["registrations"]
    assert (view["state"], view["reason"]) == ("REJECTED", "no")
    code, _, err = run(capsys, "reject", "--dir", str(data_dir), request_id, "--reason", " ")
    assert code == 2 and err.startswith("Server.Registry.InvalidRequest")


def test_revoke_and_conf(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "conf", "--dir", str(data_dir), "--json")
    assert code == 0 and json.loads(out)["version"] is None

    run(capsys, "approve", "--dir", str(data_dir), submit(data_dir))
    paths = require_initialised(data_dir)
    publisher = ConfPublisher(
        Store.open(paths.db), load_keys(paths), load_registry_settings(data_dir, environ={})
    )
    publisher.current(SystemClock().now_ms())
    code, out, _ = run(capsys, "conf", "--dir", str(data_dir), "--json")
    conf = json.loads(out)
    assert code == 0
    assert (conf["version"], conf["pending_changes"], conf["expired"]) == (1, False, False)
    assert [g["id"] for g in conf["gateways"]] == [str(GW1)]

    code, _, _ = run(capsys, "revoke", "--dir", str(data_dir), "--gateway", str(GW1))
    assert code == 0
    code, out, _ = run(capsys, "conf", "--dir", str(data_dir), "--json")
    assert json.loads(out)["pending_changes"] is True
    publisher.current(SystemClock().now_ms())
    code, out, _ = run(capsys, "conf", "--dir", str(data_dir), "--json")
    conf = json.loads(out)
    assert conf["version"] == 2 and conf["gateways"] == []
    assert len(conf["revoked_cert_sha256"]) == 2

    code, out, _ = run(capsys, "conf", "--dir", str(data_dir))
    assert code == 0 and "v2" in out


@pytest.mark.parametrize(
    ("argv", "exit_code", "full_code"),
    [
        (["revoke", "--gateway", "KZ/NOPE/MJ/gw1"], 2, "Client.InvalidIdentifier"),
        (["revoke", "--gateway", "KZ/GOV/MJ/gw9"], 1, "Server.Registry.NotConfigured"),
        (["approve", "no-such-id"], 1, "Server.Registry.UnknownRegistration"),
    ],
)
def test_failures_print_their_code(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    exit_code: int,
    full_code: str,
) -> None:
    code, _, err = run(capsys, argv[0], "--dir", str(data_dir), *argv[1:])
    assert code == exit_code
    assert err.split(":")[0] == full_code


def test_uninitialised_directory_could_not_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("requests", "members", "conf"):
        code, _, err = run(capsys, command, "--dir", str(tmp_path / "none"))
        assert code == 3
        assert err.split(":")[0] == "Server.Registry.NotConfigured"
    assert not (tmp_path / "none").exists()


def test_wrong_passphrase_could_not_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "registry")
    monkeypatch.setenv("ZHOL_TEST_REGISTRY_PASS", "right")
    code, _, _ = run(
        capsys, "init", "--dir", directory, "--passphrase-env", "ZHOL_TEST_REGISTRY_PASS"
    )
    assert code == 0
    monkeypatch.setenv("ZHOL_TEST_REGISTRY_PASS", "wrong")
    code, _, err = run(capsys, "approve", "--dir", directory, "some-id")
    assert code == 3 and err.split(":")[0] == "Server.Registry.NotConfigured"
    monkeypatch.delenv("ZHOL_TEST_REGISTRY_PASS")
    code, _, err = run(
        capsys, "init", "--dir", str(tmp_path / "other"), "--passphrase-env", "UNSET_VAR_X"
    )
    assert code == 2


def test_serve_refuses_a_clock_skew_above_the_bound(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Above it a gateway would have to remember message ids for too long (replay window).
    monkeypatch.setenv("ZHOL_REGISTRY_CLOCK_SKEW_S", str(MAX_CLOCK_SKEW_S + 1))
    code, _, err = run(capsys, "serve", "--dir", str(data_dir))
    assert code == 2 and err.startswith("Server.Registry.InvalidRequest")


def test_witness_refusals_lists_none_then_cannot_read_a_broken_store(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real refusal is listed in tests/integration/test_witness.py.
    assert run(capsys, "witness-refusals", "--dir", str(data_dir), "--json")[:2] == (
        0,
        '{\n  "refusals": []\n}\n',
    )
    assert run(capsys, "witness-refusals", "--dir", str(data_dir))[:2] == (
        0,
        "no refused checkpoints\n",
    )
    code, out, err = run(capsys, "witness-refusals", "--dir", str(tmp_path / "nothing"))
    assert (code, out) == (3, "") and err.startswith("Server.Registry.")
    db = require_initialised(data_dir).db
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"not a database" * 500)
    code, out, err = run(capsys, "witness-refusals", "--dir", str(data_dir), "--json")
    assert (code, out) == (3, "") and "Traceback" not in err


def test_a_listing_into_a_closed_pipe_stops_quietly(data_dir: Path) -> None:
    # `zhol registry requests | head`: the reader is gone before zhol writes; the
    # broken pipe is not the registry's InternalError.
    submit(data_dir)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "zhol.cli.main", "registry", "requests", "--dir", str(data_dir)],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (EXIT_READER_GONE, b"")
