"""The registry witnesses a running gateway's log: its checkpoints get cosignatures
(.cosig files) that verify with the witness key of the verified global configuration;
a rewritten history (a fork for a cosigned size, a truncation), signed with the
gateway's real log key, is refused with its code, recorded, and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.integration.bus_federation import get_person, start_federation
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.cli.main import main
from zhol.core.errors import ZholError
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.credentials import LOG_KEY
from zhol.gateway.witnessing import cosig_path, cosigned_sizes
from zhol.registry.client import add_checkpoint
from zhol.registry.store import Store
from zhol.security import merkle
from zhol.security.keystore import read_private_key
from zhol.security.signednote import (
    Checkpoint,
    NoteSigner,
    format_checkpoint,
    gateway_origin,
    parse_checkpoint,
    parse_note,
    sign_note,
    verify_cosignature,
)


async def test_the_registry_cosigns_checkpoints_and_refuses_a_rewritten_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path, persons=20)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(CONSUMER_GATEWAY, "checkpoint_interval_s = 0.5\n")
        store = CheckpointStore(data / "checkpoints")
        for _ in range(3):
            await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(cosigned_sizes(store)), timeout=30, what="a cosigned checkpoint")
        for _ in range(2):
            await get_person(fed.is_address(), some_iin(fed))
        first = cosigned_sizes(store)[0]
        await until(
            lambda: any(s > first for s in cosigned_sizes(store)),
            timeout=30,
            what="a second cosigned checkpoint",
        )
        conf = fed.consumer.conf.current().conf
        witness = conf.witness_verifier()
        assert witness is not None

        # Every cosignature verifies with the published witness key over its checkpoint.
        origin = gateway_origin(CONSUMER_GATEWAY)
        for size in cosigned_sizes(store):
            text, _ = parse_note(store.note_path(size).read_bytes())
            assert parse_checkpoint(text).size == size
            verify_cosignature(text, cosig_path(store, size).read_text("utf-8"), witness)

        # The operator rewrites history and signs it with the gateway's own log key.
        key = read_private_key(data / "keys" / LOG_KEY)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        signer = NoteSigner(origin, key)
        registry_db = Store(fed.layout.registry / "registry.db")
        latest = registry_db.witness_latest(origin)
        assert latest is not None and latest.size >= first
        address = fed.ports.address(fed.ports.registry)

        forged_root = merkle.leaf_hash(b"another history")
        fork = sign_note(format_checkpoint(Checkpoint(origin, latest.size, forged_root)), [signer])
        with pytest.raises(ZholError) as info:
            await add_checkpoint(address, fork, latest.size, ())
        assert info.value.code.name == "InconsistentCheckpoint"

        shorter = sign_note(format_checkpoint(Checkpoint(origin, 1, forged_root)), [signer])
        with pytest.raises(ZholError) as info:
            await add_checkpoint(address, shorter, latest.size, ())
        assert info.value.code.name == "InconsistentCheckpoint"

        assert registry_db.witness_latest(origin) == latest  # nothing changed
        refusals = registry_db.witness_refusals(origin)
        assert [(r.size, r.code) for r in refusals] == [
            (latest.size, "InconsistentCheckpoint"),
            (1, "InconsistentCheckpoint"),
        ]

        # The operator lists them with the registry's command, from its data directory.
        capsys.readouterr()
        registry_dir = str(fed.layout.registry)
        args = ["registry", "witness-refusals", "--dir", registry_dir, "--origin", origin]
        assert main([*args, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["refusals"]
        assert [(r["origin"], r["size"], r["code"]) for r in listed] == [
            (origin, latest.size, "InconsistentCheckpoint"),
            (origin, 1, "InconsistentCheckpoint"),
        ]
        assert all(r["reason"] and r["refused_at"].endswith("+00:00") for r in listed)
        assert main(args) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and f"{origin}  size 1  InconsistentCheckpoint" in lines[1]
        assert main([*args[:-1], "zhol/KZ/GOV/OTHER/gw9", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"refusals": []}
    finally:
        await fed.stop()
