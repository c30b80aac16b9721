"""A running gateway signs checkpoints of its log with the log key the registry published."""

from __future__ import annotations

from pathlib import Path

from tests.integration.bus_federation import get_person, start_federation
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.core.ids import GatewayId
from zhol.gateway.checkpoints import CheckpointStore, parse_proof_text
from zhol.gateway.messagelog import tree_head
from zhol.security import merkle
from zhol.security.signednote import ed25519_verifier, gateway_origin, open_note, parse_checkpoint


async def test_a_gateway_checkpoints_its_log_as_it_runs_and_when_it_stops(tmp_path: Path) -> None:
    fed = await start_federation(tmp_path, persons=20)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(CONSUMER_GATEWAY, "checkpoint_interval_s = 0.5\n")
        store = CheckpointStore(data / "checkpoints")
        for _ in range(3):
            await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(store.sizes()), timeout=15, what="a periodic checkpoint")
        for _ in range(2):
            await get_person(fed.is_address(), some_iin(fed))
        entry = fed.consumer.conf.current().conf.gateways[GatewayId.parse(CONSUMER_GATEWAY)]
        await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    finally:
        await fed.stop()

    # The key the registry published for this gateway opens every checkpoint.
    origin = gateway_origin(CONSUMER_GATEWAY)
    verifier = ed25519_verifier(origin, entry.log_public_key)
    head = tree_head(data / "messagelog.db")
    sizes = store.sizes()
    assert sizes[-1] == head.size  # the last one, signed at the stop, covers every record
    roots = {}
    for size in sizes:
        note = open_note(store.note_path(size).read_bytes(), [verifier])
        checkpoint = parse_checkpoint(note.text)
        assert (checkpoint.origin, checkpoint.size) == (origin, size)
        roots[size] = checkpoint.root_hash
    assert roots[head.size] == head.root_hash
    for old, new in zip(sizes, sizes[1:], strict=False):
        old_size, proof = parse_proof_text(store.proof_path(new).read_text())
        merkle.verify_consistency(old_size, new, proof, roots[old], roots[new])
