"""The gateway's CPU policy: known names only, applied to the threads it is given."""

from __future__ import annotations

import os
import threading

import pytest

from zhol.core.cpupolicy import CPU_POLICIES, apply_cpu_policy, check_cpu_policy
from zhol.core.errors import ZholError

linux_only = pytest.mark.skipif(
    not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only"
)


def test_known_policies_pass_and_others_are_not_configured() -> None:
    for policy in CPU_POLICIES:
        assert check_cpu_policy(policy) == policy
    for bad in ("", "BATCH", "turbo"):
        with pytest.raises(ZholError) as caught:
            check_cpu_policy(bad)
        assert caught.value.code.name == "NotConfigured"


def test_an_unknown_policy_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before anything is asked of the kernel: no thread is listed, none changed."""
    listed: list[str] = []
    changed: list[tuple[int, int]] = []

    def thread_ids() -> list[int]:
        listed.append("listed")
        return [threading.get_native_id()]

    def sched_setscheduler(tid: int, policy: int, param: object) -> None:
        changed.append((tid, policy))

    # Recorded instead of applied, so this runs (and would catch a change) on any platform.
    monkeypatch.setattr(os, "SCHED_BATCH", 3, raising=False)
    monkeypatch.setattr(os, "sched_setscheduler", sched_setscheduler, raising=False)
    for policy in ("turbo", "BATCH", ""):
        with pytest.raises(ZholError) as caught:
            apply_cpu_policy(policy, thread_ids=thread_ids)
        assert caught.value.code.name == "NotConfigured"
    assert listed == [] and changed == []
    # The recorder does see a known policy at work (the check above is not vacuous).
    assert apply_cpu_policy("batch", thread_ids=thread_ids) is True
    assert listed == ["listed"] and changed == [(threading.get_native_id(), 3)]


class ParkedThread:
    """A thread that waits until released, so its scheduling policy can be read."""

    def __init__(self) -> None:
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._release.wait, daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        tid = self._thread.native_id
        assert tid is not None
        # Whatever this process runs under, the parked thread starts from the default.
        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        return tid

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join()


@linux_only
def test_batch_puts_the_given_threads_under_sched_batch() -> None:
    before = os.sched_getscheduler(0)
    with ParkedThread() as tid:
        assert apply_cpu_policy("batch", thread_ids=lambda: [tid]) is True
        assert os.sched_getscheduler(tid) == os.SCHED_BATCH
    # Only the threads named were changed, not this one.
    assert os.sched_getscheduler(0) == before


@linux_only
def test_normal_leaves_threads_as_they_are() -> None:
    with ParkedThread() as tid:
        assert apply_cpu_policy("normal", thread_ids=lambda: [tid]) is False
        assert os.sched_getscheduler(tid) == os.SCHED_OTHER


@linux_only
def test_a_thread_that_cannot_be_changed_is_reported_not_raised() -> None:
    # A thread id that does not exist: the kernel refuses, the gateway still starts.
    assert apply_cpu_policy("batch", thread_ids=lambda: [2**22 + 12345]) is False


@linux_only
def test_a_refused_thread_does_not_spare_the_others() -> None:
    with ParkedThread() as tid:
        assert apply_cpu_policy("batch", thread_ids=lambda: [2**22 + 12345, tid]) is False
        assert os.sched_getscheduler(tid) == os.SCHED_BATCH
