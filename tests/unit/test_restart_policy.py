"""The demo's restart policy: when a component that exited is started again, and when not."""

from __future__ import annotations

import signal
from dataclasses import replace

from zhol.cli.processes import (
    GiveUp,
    Restart,
    RestartPolicy,
    RestartState,
    describe_exit,
    on_exit,
)

POLICY = RestartPolicy(
    first_delay_s=0.5, max_delay_s=15.0, stable_after_s=60.0, burst=5, interval_s=60.0
)


def crash_loop(policy: RestartPolicy, exits: int, run_s: float) -> list[Restart | GiveUp]:
    """A component that dies ``run_s`` after each start, restarted when told."""
    state = RestartState(started_at=0.0)
    now = 0.0
    decisions: list[Restart | GiveUp] = []
    for _ in range(exits):
        now += run_s
        state, decision = on_exit(policy, state, now)
        decisions.append(decision)
        if isinstance(decision, GiveUp):
            break
        now += decision.delay_s
        state = replace(state, started_at=now)
    return decisions


def test_delay_doubles_from_half_a_second_up_to_the_cap() -> None:
    delays = [POLICY.delay_s(n) for n in range(1, 9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_a_component_that_dies_at_once_is_restarted_with_backoff_then_given_up() -> None:
    decisions = crash_loop(POLICY, exits=10, run_s=0.1)
    restarts = [d for d in decisions if isinstance(d, Restart)]
    assert [d.delay_s for d in restarts] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert [d.number for d in restarts] == [1, 2, 3, 4, 5]
    assert decisions[-1] == GiveUp(exits=6, interval_s=60.0)


def test_a_component_that_runs_a_while_before_each_crash_is_never_given_up() -> None:
    decisions = crash_loop(POLICY, exits=50, run_s=61.0)
    assert all(isinstance(d, Restart) for d in decisions)
    # Each run was stable, so each restart starts the backoff afresh.
    assert {d.delay_s for d in decisions if isinstance(d, Restart)} == {0.5}
    assert decisions[-1] == Restart(0.5, 50)


def test_exits_older_than_the_interval_no_longer_count() -> None:
    # Five quick exits, then a long run: the sixth exit is outside the window of the first.
    state = RestartState(started_at=0.0)
    for at in (1.0, 2.0, 3.0, 4.0, 5.0):
        state, decision = on_exit(POLICY, state, at)
        assert isinstance(decision, Restart)
        state = replace(state, started_at=at)
    state, decision = on_exit(POLICY, state, 61.5)
    assert decision == Restart(15.0, 6)  # ran 56.5 s: not stable, but 1.0 s fell out
    assert state.exits == (2.0, 3.0, 4.0, 5.0, 61.5)


def test_backoff_resets_after_a_stable_run() -> None:
    state = RestartState(started_at=0.0)
    for at in (1.0, 2.0, 3.0):
        state, decision = on_exit(POLICY, state, at)
        state = replace(state, started_at=at)
    assert decision == Restart(2.0, 3)
    state, decision = on_exit(POLICY, state, 3.0 + 60.0)
    assert decision == Restart(0.5, 4)


def test_exit_is_described_by_code_or_signal() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-200) == "killed by signal 200"
