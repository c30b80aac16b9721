"""`zhol faults`: the figures of one fault scenario, from what was observed. Pure.

What the load generator saw (one ``CallRecord`` per call), what each gateway's message
log holds for those calls (``LogView``), how many times each birth's decisions were
made, and how long the faulty component took to be SERVING again, become one
``ScenarioFigures``; ``violations`` says which must-be-0 figures are not 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OK = "OK"
# The records a completed exchange leaves in each gateway's log: (kind, direction).
CONSUMER_RECORDS = (("request", "out"), ("response", "in"))
PROVIDER_RECORDS = (("request", "in"), ("response", "out"))
# A failure the client saw this long after its deadline did not come "within the deadline"
# (grpc's own timer and a busy machine's scheduling both add a little).
DEADLINE_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as the client saw it."""

    code: str  # OK, a zhol-error code, or grpc.<STATUS> when no zhol-error came back
    message_id: str  # the zhol-message-id trailer ("" when none came back)
    started: float  # time.monotonic() when it was sent
    seconds: float  # from sending to the answer
    deadline_s: float  # the deadline the call was sent with


@dataclass(frozen=True, slots=True)
class LogView:
    """One gateway's log records of the scenario's calls: (message_id, kind, direction)."""

    records: frozenset[tuple[str, str, str]]

    @property
    def message_ids(self) -> frozenset[str]:
        return frozenset(m for m, _, _ in self.records)

    def holds_exchange(self, message_id: str, expected: Sequence[tuple[str, str]]) -> bool:
        return all((message_id, kind, direction) in self.records for kind, direction in expected)

    def holds_answer(self, message_id: str, answer: tuple[str, str]) -> bool:
        return (message_id, *answer) in self.records


@dataclass(frozen=True, slots=True)
class ScenarioFigures:
    scenario: str
    not_run: str = ""  # why the scenario could not run here ("" = it ran)
    calls_sent: int = 0
    answered_ok: int = 0
    failed_by_code: Mapping[str, int] = field(default_factory=dict)
    # Must be 0: calls answered OK whose exchange a gateway's log does not hold.
    ok_not_logged_consumer: int = 0
    ok_not_logged_provider: int = 0
    # Exchanges only one of the two gateways logged (any record). The consumer logs a
    # request before it sends it, so a request refused or lost before the provider
    # logged it is the consumer's only; the provider logs nothing before the consumer
    # has, so an exchange only the provider holds must not exist (must be 0).
    logged_consumer_only: int = 0
    logged_provider_only: int = 0
    # Calls the client saw fail whose answer a gateway logged anyway (a late answer).
    failed_answer_logged_consumer: int = 0
    failed_answer_logged_provider: int = 0
    # Failures that came later than their deadline (plus DEADLINE_GRACE_S).
    failed_after_deadline: int = 0
    births: int = 0
    decisions_twice: int = 0  # must be 0
    decisions_missing: int = 0
    serving_again_s: float | None = None  # None: not measured, or not SERVING in time
    # From the fault's end to the first call answered OK (None: none was).
    first_ok_after_s: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def ran(self) -> bool:
        return not self.not_run

    def violations(self) -> tuple[str, ...]:
        """The must-be-0 figures that are not 0, as "scenario: figure=value"."""
        found = []
        for name in (
            "ok_not_logged_consumer",
            "ok_not_logged_provider",
            "logged_provider_only",
            "decisions_twice",
        ):
            value = getattr(self, name)
            if value:
                found.append(f"{self.scenario}: {name}={value}")
        return tuple(found)

    def as_json(self) -> dict[str, Any]:
        if self.not_run:
            return {"scenario": self.scenario, "not_run": self.not_run}
        return {
            "scenario": self.scenario,
            "calls_sent": self.calls_sent,
            "answered_ok": self.answered_ok,
            "failed": sum(self.failed_by_code.values()),
            "failed_by_code": dict(sorted(self.failed_by_code.items())),
            "ok_not_logged": {
                "consumer": self.ok_not_logged_consumer,
                "provider": self.ok_not_logged_provider,
            },
            "logged_one_side_only": {
                "consumer": self.logged_consumer_only,
                "provider": self.logged_provider_only,
            },
            "failed_but_answer_logged": {
                "consumer": self.failed_answer_logged_consumer,
                "provider": self.failed_answer_logged_provider,
            },
            "failed_after_deadline": self.failed_after_deadline,
            "births": self.births,
            "decisions_twice": self.decisions_twice,
            "decisions_missing": self.decisions_missing,
            "serving_again_s": self.serving_again_s,
            "first_ok_after_s": self.first_ok_after_s,
            "notes": list(self.notes),
            "violations": list(self.violations()),
        }


def aggregate(
    scenario: str,
    calls: Iterable[CallRecord],
    consumer: LogView,
    provider: LogView,
    decision_counts: Mapping[tuple[str, str], int],
    births: Sequence[str],
    decisions: Sequence[str],
    serving_again_s: float | None,
    fault_lifted_at: float | None = None,
    notes: Sequence[str] = (),
) -> ScenarioFigures:
    """The scenario's figures. ``decision_counts`` maps (child, decision) to how many
    times it was made, for every child in ``births`` and every kind in ``decisions``;
    ``fault_lifted_at`` (monotonic) is when the fault ended, for ``first_ok_after_s``."""
    calls = list(calls)
    ok = [c for c in calls if c.code == OK]
    failed = [c for c in calls if c.code != OK]
    by_code = Counter(c.code for c in failed)
    # An OK call without a message id cannot be found in any log: not logged, both sides.
    ok_not_consumer = sum(not consumer.holds_exchange(c.message_id, CONSUMER_RECORDS) for c in ok)
    ok_not_provider = sum(not provider.holds_exchange(c.message_id, PROVIDER_RECORDS) for c in ok)
    consumer_ids, provider_ids = consumer.message_ids, provider.message_ids
    failed_ids = [c.message_id for c in failed if c.message_id]
    after = [
        c.started + c.seconds
        for c in ok
        if fault_lifted_at is not None and c.started >= fault_lifted_at
    ]
    counts = [decision_counts.get((child, d), 0) for child in births for d in decisions]
    return ScenarioFigures(
        scenario=scenario,
        calls_sent=len(calls),
        answered_ok=len(ok),
        failed_by_code=dict(by_code),
        ok_not_logged_consumer=ok_not_consumer,
        ok_not_logged_provider=ok_not_provider,
        logged_consumer_only=len(consumer_ids - provider_ids),
        logged_provider_only=len(provider_ids - consumer_ids),
        failed_answer_logged_consumer=sum(
            consumer.holds_answer(m, CONSUMER_RECORDS[1]) for m in failed_ids
        ),
        failed_answer_logged_provider=sum(
            provider.holds_answer(m, PROVIDER_RECORDS[1]) for m in failed_ids
        ),
        failed_after_deadline=sum(c.seconds > c.deadline_s + DEADLINE_GRACE_S for c in failed),
        births=len(births),
        decisions_twice=sum(n > 1 for n in counts),
        decisions_missing=sum(n == 0 for n in counts),
        serving_again_s=serving_again_s,
        first_ok_after_s=(
            round(min(after) - fault_lifted_at, 2)
            if after and fault_lifted_at is not None
            else None
        ),
        notes=tuple(notes),
    )


def verdict(figures: Sequence[ScenarioFigures]) -> tuple[str, ...]:
    """Every must-be-0 figure that is not 0, across the scenarios (empty: all held)."""
    return tuple(v for f in figures for v in f.violations())
