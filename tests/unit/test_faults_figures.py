"""`zhol faults`: the figures and the must-be-0 verdict, from made-up observations."""

from __future__ import annotations

from zhol.cli.faults_figures import CallRecord, LogView, ScenarioFigures, aggregate, verdict

DECISIONS = ("lump_sum", "clinic")


def call(code: str, message_id: str, started: float = 0.0, seconds: float = 0.1) -> CallRecord:
    return CallRecord(code, message_id, started, seconds, 2.0)


def logs(*ids: str, answered: bool = True, side: str = "consumer") -> LogView:
    request, response = ("out", "in") if side == "consumer" else ("in", "out")
    records = {(m, "request", request) for m in ids}
    if answered:
        records |= {(m, "response", response) for m in ids}
    return LogView(frozenset(records))


def figures(
    calls: list[CallRecord],
    consumer: LogView,
    provider: LogView,
    decision_counts: dict[tuple[str, str], int] | None = None,
    births: tuple[str, ...] = (),
    lifted: float | None = None,
) -> ScenarioFigures:
    return aggregate(
        "s", calls, consumer, provider, decision_counts or {}, births, DECISIONS, 1.5, lifted
    )


def test_counts_add_up_and_every_ok_call_logged_on_both_sides_holds() -> None:
    calls = [call("OK", "a"), call("OK", "b"), call("Server.ClientProxy.Timeout", ""),
             call("grpc.UNAVAILABLE", "")]  # fmt: skip
    f = figures(calls, logs("a", "b"), logs("a", "b", side="provider"))
    assert (f.calls_sent, f.answered_ok) == (4, 2)
    assert f.failed_by_code == {"Server.ClientProxy.Timeout": 1, "grpc.UNAVAILABLE": 1}
    assert f.calls_sent == f.answered_ok + sum(f.failed_by_code.values())
    assert (f.ok_not_logged_consumer, f.ok_not_logged_provider) == (0, 0)
    assert f.violations() == () and verdict([f]) == ()


def test_an_ok_call_missing_from_a_log_or_half_logged_is_a_violation() -> None:
    calls = [call("OK", "a"), call("OK", "b"), call("OK", "")]
    consumer = LogView(logs("a").records | {("b", "request", "out")})  # b: response missing
    f = figures(calls, consumer, logs("a", "b", side="provider"))
    assert f.ok_not_logged_consumer == 2  # b half logged, the one without a message id
    assert f.ok_not_logged_provider == 1
    assert verdict([f]) == ("s: ok_not_logged_consumer=2", "s: ok_not_logged_provider=1")


def test_requests_the_consumer_alone_logged_and_late_answers_are_counted_not_violations() -> None:
    calls = [call("OK", "a"), call("Server.ClientProxy.LoggingFailed", "b"),
             call("Server.ClientProxy.Timeout", "c", seconds=3.5),
             call("Server.ClientProxy.NetworkError", "d")]  # fmt: skip
    consumer = LogView(logs("a", "b", "c").records | {("d", "request", "out")})
    f = figures(calls, consumer, logs("a", "b", "c", side="provider"))
    assert (f.logged_consumer_only, f.logged_provider_only) == (1, 0)
    assert (f.failed_answer_logged_consumer, f.failed_answer_logged_provider) == (2, 2)
    assert f.failed_after_deadline == 1  # 3.5 s against a 2 s deadline
    assert verdict([f]) == ()


def test_an_exchange_only_the_provider_logged_is_a_violation() -> None:
    """The provider acted on a request the consumer's log does not hold: the consumer
    sent something it had not logged."""
    f = figures([call("Server.ClientProxy.LoggingFailed", "b")], logs(), logs("b", side="provider"))
    assert f.logged_provider_only == 1
    assert verdict([f]) == ("s: logged_provider_only=1",)


def test_a_decision_made_twice_is_a_violation_and_a_missing_one_is_counted() -> None:
    counts = {("c1", "lump_sum"): 1, ("c1", "clinic"): 2, ("c2", "lump_sum"): 1}
    f = figures([], logs(), logs(side="provider"), decision_counts=counts, births=("c1", "c2"))
    assert (f.births, f.decisions_twice, f.decisions_missing) == (2, 1, 1)
    assert verdict([f]) == ("s: decisions_twice=1",)


def test_first_ok_after_the_fault_counts_from_when_it_was_lifted() -> None:
    calls = [call("OK", "a", started=9.0), call("OK", "b", started=10.5, seconds=0.2),
             call("OK", "c", started=11.0)]  # fmt: skip
    both = (logs("a", "b", "c"), logs("a", "b", "c", side="provider"))
    assert figures(calls, *both, lifted=10.0).first_ok_after_s == 0.7
    assert figures(calls, *both).first_ok_after_s is None


def test_a_scenario_that_could_not_run_says_why_and_violates_nothing() -> None:
    f = ScenarioFigures("full-disk-consumer", not_run="cannot mount tmpfs")
    assert f.as_json() == {"scenario": "full-disk-consumer", "not_run": "cannot mount tmpfs"}
    assert verdict([f]) == ()
