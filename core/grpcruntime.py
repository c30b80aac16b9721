"""gRPC core's runtime options, which a process must have before it imports grpc.

gRPC core reads GRPC_EXPERIMENTS once, when grpc is imported: long before a
gateway has parsed its command line and read gateway.toml. So a process whose
settings ask for experiments the environment does not already carry starts itself
again (os.execv: same pid, same arguments) with them in the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

# What gateways run with unless told otherwise (gateway.toml grpc_experiments): gRPC
# core's iomgr TCP endpoints instead of the EventEngine ones. In grpcio 1.85 they cost
# the gateway less CPU per exchange, measured with `zhol bench` (README).
GATEWAY_GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"
ENV_KEY = "GRPC_EXPERIMENTS"

# Client channels that must reconnect soon after their server comes back. gRPC's own
# reconnect backoff grows to 120 s, and channels with the same target and options share
# one subchannel, and its backoff, through the process-wide pool: a fresh channel made
# to retry would wait out the old one's backoff. Here each channel dials on its own and
# waits at most 2 s (plus gRPC's 20 % jitter) between connection attempts.
MAX_RECONNECT_BACKOFF_MS = 2000
RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ("grpc.use_local_subchannel_pool", 1),
)


def experiments_to_apply(experiments: str, environ: Mapping[str, str]) -> str | None:
    """The GRPC_EXPERIMENTS value the process must be restarted with, or None when
    nothing is to change: the environment already sets it (the operator's choice wins),
    or neither asks for any."""
    if ENV_KEY in environ or not experiments:
        return None
    return experiments


def ensure_grpc_experiments(experiments: str) -> None:
    """Restart this process with ``experiments`` in GRPC_EXPERIMENTS if it lacks them.

    Call first thing, before any channel or server and before threads or files that
    matter exist; a second call in the restarted process does nothing."""
    # The one read of os.environ outside the settings modules, on purpose: gRPC core
    # takes GRPC_EXPERIMENTS from the process environment when grpc is first imported,
    # before any settings object exists, so the variable is checked and set here, in the
    # environment itself, and the process restarted with it.
    value = experiments_to_apply(experiments, os.environ)
    if value is None:
        return
    os.environ[ENV_KEY] = value
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
