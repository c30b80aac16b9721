"""A gateway run as its own process (`zhol gateway serve`) applies its gRPC runtime
settings by restarting itself once, keeping its pid, runs every thread under its
CPU policy, and serves the bus; a CPU policy it does not know stops it at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from tests.integration.bus_federation import get_person, start_federation
from tests.integration.test_bus import some_iin
from zhol.cli.demo import PROVIDER_GATEWAY
from zhol.core.errors import ZholError
from zhol.core.exitcodes import exit_code_for
from zhol.core.grpcruntime import ENV_KEY, GATEWAY_GRPC_EXPERIMENTS

pytestmark = pytest.mark.integration


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def thread_policies(pid: int) -> list[int]:
    return [os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
async def test_a_gateway_process_restarts_itself_with_its_grpc_experiments(
    tmp_path: Path,
) -> None:
    fed = await start_federation(tmp_path, persons=20)
    process = None
    try:
        await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
        env = {k: v for k, v in os.environ.items() if k != ENV_KEY}
        data_dir = fed.layout.gateway(PROVIDER_GATEWAY)
        process = subprocess.Popen(
            [sys.executable, "-m", "zhol.cli.main", "gateway", "serve", "--dir", str(data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        iin = some_iin(fed)
        for _ in range(100):  # up to about 20 s on a busy machine
            try:
                person = await get_person(fed.is_address(), iin)
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("the gateway process did not serve")
        assert person.iin == iin
        assert process.poll() is None  # the same process (pid) serves, restarted in place
        assert environ_of(process.pid).get(ENV_KEY) == GATEWAY_GRPC_EXPERIMENTS
        # Every thread, those started after the policy was set too (gRPC's poller,
        # the message-log writer), runs under SCHED_BATCH.
        policies = thread_policies(process.pid)
        assert len(policies) > 1 and set(policies) == {os.SCHED_BATCH}
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await fed.stop()


async def test_a_gateway_with_an_unknown_cpu_policy_does_not_start(tmp_path: Path) -> None:
    # A gateway that could serve (keys, registry, all there), but for its CPU policy.
    fed = await start_federation(tmp_path, persons=20)
    try:
        await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
        env = {**os.environ, "ZHOL_GATEWAY_CPU_POLICY": "turbo"}
        data_dir = fed.layout.gateway(PROVIDER_GATEWAY)
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "zhol.cli.main", "gateway", "serve", "--dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        await fed.stop()
    assert done.returncode == exit_code_for(ZholError("NotConfigured"))
    assert ZholError("NotConfigured").full_code in done.stderr
