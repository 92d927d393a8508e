"""The retry budget and the naming of failures, without the SDK or a server."""

from __future__ import annotations

import json

import pytest
from google.genai import errors

from clinicflow.llm_policy import OUTCOMES, Attempts, classify


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def attempts(clock: Clock, budget_s: float = 6.0, retries: int = 1) -> Attempts:
    return Attempts(timeout_s=4.0, retries=retries, budget_s=budget_s, backoff_s=0.3, clock=clock)


def test_attempt_timeout_is_capped_by_what_is_left() -> None:
    clock = Clock()
    policy = attempts(clock, budget_s=6.0)
    assert policy.timeout() == 4.0
    clock.now += 4.0
    assert policy.done("timeout", None) == 0.3
    clock.now += 0.3
    assert policy.timeout() == pytest.approx(1.7)
    clock.now += 1.7
    assert policy.done("timeout", None) is None  # retries spent
    assert (policy.count, policy.outcome, policy.elapsed_ms()) == (2, "timeout", 6000.0)


def test_no_retry_without_time_for_it() -> None:
    clock = Clock()
    policy = attempts(clock, budget_s=1.0)
    assert policy.timeout() == 1.0
    clock.now += 0.6
    assert policy.done("server_error", None) is None  # 0.4 s left minus 0.3 s backoff


@pytest.mark.parametrize("outcome", ["client_error", "error", "ok"])
def test_only_retryable_outcomes_retry(outcome: str) -> None:
    policy = attempts(Clock())
    policy.timeout()
    assert policy.done(outcome, None) is None


def test_tokens_add_up_over_attempts() -> None:
    class Usage:
        prompt_token_count = 10
        candidates_token_count = None

    policy = attempts(Clock())
    policy.timeout()
    policy.done("malformed", Usage())
    policy.timeout()
    policy.done("ok", Usage())
    assert (policy.tokens_in, policy.tokens_out) == (20, 0)


def test_no_budget_no_attempt() -> None:
    policy = attempts(Clock(), budget_s=0.0)
    assert policy.timeout() is None
    assert (policy.count, policy.outcome) == (0, "timeout")


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        pytest.param(errors.ClientError(429, {}), "rate_limited", id="429"),
        pytest.param(errors.ClientError(404, {}), "client_error", id="404"),
        pytest.param(errors.ClientError(408, {}), "timeout", id="408"),
        pytest.param(errors.ServerError(503, {}), "server_error", id="503"),
        pytest.param(TimeoutError(), "timeout", id="asyncio-timeout"),
        pytest.param(ConnectionRefusedError(), "refused", id="refused"),
        pytest.param(json.JSONDecodeError("x", "", 0), "malformed", id="json"),
        pytest.param(RuntimeError("boom"), "error", id="other"),
    ],
)
def test_classify(exc: BaseException, outcome: str) -> None:
    assert classify(exc) == outcome
    assert outcome in OUTCOMES
