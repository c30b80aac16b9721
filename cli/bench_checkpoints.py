"""What one timestamping pass and one witnessing pass cost as a gateway's checkpoint
folder grows (docs/performance.md, "Checkpoint passes").

``python -m zhol.cli.bench_checkpoints [--counts 1000 100000] [--passes 20] [--json]``

For each count it fills a temporary ``checkpoints/`` folder with that many checkpoints,
each ``<size>.note``, ``<size>.proof``, ``<size>.tsr`` and ``<size>.cosig`` as a gateway
writes them (small placeholder contents: no pass reads a file it has nothing to do
for), then times the gateway's own passes, ``Timestamper.run_once`` and
``Witnessing.witness_pending``, with nothing left to do: the first pass after a start
and the median of the following ones. No sockets, no authority, no witness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from zhol.core.clock import SystemClock
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.confsource import ConfSource
from zhol.gateway.timestamping import Timestamper, TimestampingPolicy
from zhol.gateway.witnessing import Witnessing
from zhol.security.signednote import cosigner_verifier

SUFFIXES = (".note", ".proof", ".tsr", ".cosig")


def fill(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    for i in range(1, count + 1):
        stem = f"{i * 1000:020d}"  # a checkpoint every 1000 records
        for suffix in SUFFIXES:
            (directory / (stem + suffix)).write_bytes(b"x")


async def _no_conf() -> bytes:
    raise OSError("the bench fetches no configuration")


async def _no_submit(note: bytes, old: int, proof: tuple[bytes, ...]) -> str:
    raise AssertionError("nothing should be left to cosign")


async def timed(one_pass: Callable[[], Awaitable[int]], passes: int) -> tuple[float, float]:
    """The first pass's seconds, and the median of the ``passes`` after it."""
    start = time.perf_counter()
    await one_pass()
    first = time.perf_counter() - start
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        await one_pass()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


async def measure(count: int, passes: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="zhol-bench-checkpoints-") as tmp:
        root = Path(tmp)
        store = CheckpointStore(root / "checkpoints")
        fill(store.directory, count)
        clock = SystemClock()
        conf = ConfSource(b"", root / "globalconf.bin", clock, lambda: _no_conf())
        timestamper = Timestamper(
            store=store, conf=conf, policy=TimestampingPolicy(), now_ms=clock.now_ms
        )
        verifier = cosigner_verifier("witness", ed25519.Ed25519PrivateKey.generate().public_key())
        witnessing = Witnessing(
            store=store,
            log_path=root / "messagelog.db",
            submit=_no_submit,
            witness=lambda: verifier,
        )
        ts_first, ts_pass = await timed(timestamper.run_once, passes)
        wit_first, wit_pass = await timed(witnessing.witness_pending, passes)
    return {
        "checkpoints": count,
        "files": count * len(SUFFIXES),
        "timestamp_first_pass_ms": round(ts_first * 1000, 3),
        "timestamp_pass_ms": round(ts_pass * 1000, 3),
        "witness_first_pass_ms": round(wit_first * 1000, 3),
        "witness_pass_ms": round(wit_pass * 1000, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zhol.cli.bench_checkpoints")
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--passes", type=int, default=20, help="passes timed after the first")
    parser.add_argument("--json", action="store_true", help="one JSON object per count")
    args = parser.parse_args(argv)
    for count in args.counts:
        row = asyncio.run(measure(count, args.passes))
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"{row['checkpoints']:>9} checkpoints ({row['files']} files): "
                f"timestamp pass {row['timestamp_pass_ms']} ms "
                f"(first {row['timestamp_first_pass_ms']} ms), "
                f"witness pass {row['witness_pass_ms']} ms "
                f"(first {row['witness_first_pass_ms']} ms)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
