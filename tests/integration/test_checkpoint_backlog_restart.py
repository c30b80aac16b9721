"""A restarted gateway finds the checkpoints its last run left without a timestamp or a
cosignature (the one it signed on the way out among them) and has them done, once:
the passes keep their backlog in memory (gateway/checkpoints.py PendingCheckpoints),
found by one scan of the folder at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.bus_federation import get_person
from tests.integration.test_bus import some_iin
from tests.integration.test_checkpoint_timestamps import (
    check_tokens,
    start_federation_with_tsa,
    untimestamped,
)
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.witnessing import cosig_path

pytestmark = pytest.mark.integration


def uncosigned(store: CheckpointStore) -> list[int]:
    return [s for s in store.sizes() if not cosig_path(store, s).exists()]


def files_of(store: CheckpointStore, suffix: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in store.directory.glob(f"*{suffix}")}


async def test_a_restart_timestamps_and_cosigns_what_the_last_run_left(tmp_path: Path) -> None:
    fed, tsa = await start_federation_with_tsa(tmp_path)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(
            CONSUMER_GATEWAY,
            "checkpoint_interval_s = 0.3\ntimestamp_interval_s = 0.2\n"
            "timestamp_limit_s = 3600\ntimestamp_timeout_s = 2\n",
        )
        store = CheckpointStore(data / "checkpoints")
        await get_person(fed.is_address(), some_iin(fed))
        await until(
            lambda: bool(store.sizes()) and not untimestamped(store) and not uncosigned(store),
            timeout=30,
            what="a timestamped and cosigned checkpoint",
        )

        # The authority is gone: a checkpoint waits for its token when the gateway stops.
        await tsa.stop()
        await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(untimestamped(store)), timeout=20, what="a waiting checkpoint")
        await get_person(fed.is_address(), some_iin(fed))
        await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
        left = untimestamped(store)
        # The checkpoint signed on the way out: the witness client had stopped before it.
        assert store.sizes()[-1] in left
        assert store.sizes()[-1] in uncosigned(store)
        tokens, cosignatures = files_of(store, ".tsr"), files_of(store, ".cosig")

        await tsa.start()
        await fed.start_gateway(CONSUMER_GATEWAY)
        await until(
            lambda: not untimestamped(store) and not uncosigned(store),
            timeout=60,
            what="the checkpoints left by the last run done after the restart",
        )
        check_tokens(store, tsa.paths)
        # Nothing done before the restart was done again.
        after = files_of(store, ".tsr")
        assert {n: after[n] for n in tokens} == tokens
        after = files_of(store, ".cosig")
        assert {n: after[n] for n in cosignatures} == cosignatures
    finally:
        await fed.stop()
        await tsa.stop()
