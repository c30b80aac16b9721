"""The CPU scheduling policy a gateway process runs under (Linux).

A gateway is a throughput server with helper threads (gRPC's completion-queue
poller, the message-log writer) that wake many times per exchange. Under the
default policy each such wake-up may preempt the gateway's own event loop, which
then pays two context switches to get its CPU back. SCHED_BATCH tells the kernel
these threads are CPU-bound, so their wake-ups do not preempt: they run when a
CPU is free or at the next tick. An idle CPU is still taken at once, so a lone
call is not delayed. No privilege is needed. Measured with `zhol bench` (README).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from zhol.core.errors import ZholError

CPU_POLICIES = ("batch", "normal")
DEFAULT_CPU_POLICY = "batch"

log = logging.getLogger("zhol.cpupolicy")


def check_cpu_policy(policy: str) -> str:
    """``policy`` if it is one we know; otherwise NotConfigured."""
    if policy not in CPU_POLICIES:
        raise ZholError(
            "NotConfigured", f"cpu_policy must be one of {', '.join(CPU_POLICIES)}, not {policy!r}"
        )
    return policy


def apply_cpu_policy(
    policy: str,
    thread_ids: Callable[[], Iterable[int]] | None = None,
) -> bool:
    """Put every thread of this process (and so the threads it starts later, which
    inherit it) under ``policy``. Returns whether the policy was changed; where the
    platform has no SCHED_BATCH nothing changes and that is logged, not raised."""
    check_cpu_policy(policy)
    if policy == "normal":
        return False
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None or not hasattr(os, "sched_setscheduler"):
        log.warning("cpu_policy %s is not available on this platform; left as it is", policy)
        return False
    param = os.sched_param(0)
    refused = 0
    for tid in (thread_ids or _thread_ids)():
        try:
            os.sched_setscheduler(tid, batch, param)
        except OSError as exc:  # one refusal (a thread gone meanwhile) spares the others
            refused += 1
            log.warning("cpu_policy %s not applied to thread %s: %s", policy, tid, exc)
    return refused == 0


def _thread_ids() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # the calling thread
