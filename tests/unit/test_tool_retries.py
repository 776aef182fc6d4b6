"""Error classification and retries with backoff in the ToolBox call path.

Sleeps are recorded, never slept: the delays are asserted as numbers, not timed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from runtime.tools.box import ToolBox, ToolError, ToolOutcome, ToolRetry, bind, virtual
from specs import Tool

EXACT = ToolRetry(jitter=False)


def make_tool(
    executor: dict[str, Any], *, side_effects: bool = False, idempotent: bool = False
) -> Tool:
    return Tool.model_validate(
        {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": "fetch"},
            "spec": {
                "description": "Fetch a thing.",
                "executor": executor,
                "side_effects": side_effects,
                "idempotent": idempotent,
            },
        }
    )


BUILTIN = {"type": "builtin", "function": "stdlib_tools.word_count:run"}
HTTP = {"type": "http", "url": "http://127.0.0.1:9/x", "max_attempts": 5}


class Flaky:
    """Fails with the given errors in turn, then answers ``{"ok": n}`` (n: calls made)."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": self.calls}


def run(
    executor: Flaky,
    *,
    spec: dict[str, Any] = BUILTIN,
    side_effects: bool = False,
    idempotent: bool = False,
    retry: ToolRetry = EXACT,
) -> tuple[ToolOutcome, list[float]]:
    tool = make_tool(spec, side_effects=side_effects, idempotent=idempotent)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    box = ToolBox(
        {"fetch": bind(tool)},
        {spec["type"]: executor},
        retry=retry,
        sleep=sleep,
    )
    return anyio.run(box.call, "fetch", {}), slept


def test_retryable_failures_are_retried_with_doubling_waits() -> None:
    flaky = Flaky(ToolError("503", retryable=True), ToolError("503", retryable=True))
    outcome, slept = run(flaky)
    assert outcome.ok and outcome.output == {"ok": 3}
    assert outcome.attempts == 3 and flaky.calls == 3
    assert slept == [0.2, 0.4]


def test_after_the_last_attempt_the_error_says_how_often_it_was_tried() -> None:
    flaky = Flaky(*(ToolError("HTTP 503 from the service", retryable=True) for _ in range(9)))
    outcome, slept = run(flaky)
    assert outcome.status == "error" and outcome.retryable
    assert outcome.error == "HTTP 503 from the service (failed 3 times)"
    assert outcome.attempts == 3 and len(slept) == 2


def test_permanent_failures_and_bugs_are_not_retried() -> None:
    for error in (ToolError("HTTP 404: no such page"), KeyError("oops")):
        flaky = Flaky(error)
        outcome, slept = run(flaky)
        assert outcome.status == "error" and not outcome.retryable
        assert outcome.attempts == 1 and slept == [] and flaky.calls == 1
    assert outcome.error == "KeyError: 'oops'"


def test_the_executor_max_attempts_wins() -> None:
    flaky = Flaky(*(ToolError("timeout", retryable=True) for _ in range(9)))
    outcome, slept = run(flaky, spec=HTTP)
    assert outcome.attempts == 5 and flaky.calls == 5
    assert slept == [0.2, 0.4, 0.8, 1.6]
    one = Flaky(*(ToolError("timeout", retryable=True) for _ in range(9)))
    outcome, slept = run(one, spec={**HTTP, "max_attempts": 1})
    assert outcome.attempts == 1 and slept == [] and outcome.error == "timeout"


def test_waits_are_capped() -> None:
    flaky = Flaky(*(ToolError("timeout", retryable=True) for _ in range(20)))
    outcome, slept = run(flaky, spec={**HTTP, "max_attempts": 10})
    assert outcome.attempts == 10
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0]


def test_retry_after_is_honoured_and_a_long_one_is_not_cut_short() -> None:
    flaky = Flaky(ToolError("429", retryable=True, retry_after=1.5))
    outcome, slept = run(flaky)
    assert outcome.ok and slept == [1.5]
    patient = Flaky(ToolError("429 slow down", retryable=True, retry_after=120))
    outcome, slept = run(patient)
    assert outcome.status == "error" and outcome.attempts == 1 and slept == []
    assert outcome.error == "429 slow down (the service asks to wait 120 s before trying again)"


def test_side_effecting_tools_are_retried_only_when_the_call_never_got_anywhere() -> None:
    unsure = Flaky(ToolError("timed out waiting for the answer", retryable=True))
    outcome, slept = run(unsure, side_effects=True)
    assert outcome.status == "error" and outcome.retryable
    assert outcome.attempts == 1 and slept == [] and unsure.calls == 1
    assert outcome.error == (
        "timed out waiting for the answer "
        "(not retried: the tool has side effects, and the call may have landed)"
    )
    refused = Flaky(ToolError("connection refused", safe_to_retry=True))
    outcome, slept = run(refused, side_effects=True)
    assert outcome.ok and outcome.attempts == 2 and slept == [0.2]


def test_an_idempotent_side_effecting_tool_is_retried_after_a_crash() -> None:
    """#12 item 17: a side-effecting tool is retried when it says it is idempotent (the
    same idempotency key does its effect once), and only then."""
    crashed = Flaky(ToolError("the sandbox crashed", retryable=True))
    outcome, slept = run(crashed, side_effects=True, idempotent=True)
    assert outcome.ok and outcome.attempts == 2 and slept == [0.2]
    again = Flaky(ToolError("the sandbox crashed", retryable=True))
    outcome, _ = run(again, side_effects=True)
    assert outcome.status == "error" and again.calls == 1


def test_safe_to_retry_implies_retryable() -> None:
    error = ToolError("connection refused", safe_to_retry=True)
    assert error.retryable and error.safe_to_retry and error.retry_after is None


def test_full_jitter_stays_under_the_ceiling() -> None:
    policy = ToolRetry()
    rng = random.Random(7)
    for retry, ceiling in ((1, 0.2), (2, 0.4), (3, 0.8), (10, 5.0), (500, 5.0)):
        waits = [policy.delay(retry, rng=rng) for _ in range(200)]
        assert all(w is not None and 0.0 <= w <= ceiling for w in waits)
        assert max(w for w in waits if w is not None) > ceiling / 2  # spread, not a constant


def test_a_seeded_box_retries_the_same_way_twice() -> None:
    def slept_with(seed: int) -> list[float]:
        flaky = Flaky(*(ToolError("503", retryable=True) for _ in range(9)))
        tool = make_tool(HTTP)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        box = ToolBox({"fetch": bind(tool)}, {"http": flaky}, sleep=sleep, rng=random.Random(seed))
        anyio.run(box.call, "fetch", {})
        return slept

    assert slept_with(3) == slept_with(3) and len(slept_with(3)) == 4
    assert slept_with(3) != slept_with(4)


def test_runtime_tools_are_called_once() -> None:
    calls = 0

    async def ask(arguments: Mapping[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        raise ToolError("the helper is busy", retryable=True)

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    tool = virtual("ask_helper", "Ask.", {"type": "object"}, ask)
    box = ToolBox({"ask_helper": tool}, {}, sleep=sleep)
    outcome = anyio.run(box.call, "ask_helper", {})
    assert outcome.status == "error" and outcome.attempts == 1 and calls == 1 and slept == []


def test_the_real_sleep_is_anyio_sleep() -> None:
    box = ToolBox({}, {})
    assert box.sleep is anyio.sleep


def test_cancellation_during_a_wait_is_not_swallowed() -> None:
    flaky = Flaky(*(ToolError("503", retryable=True) for _ in range(9)))
    tool = make_tool(BUILTIN)
    box = ToolBox({"fetch": bind(tool)}, {"builtin": flaky}, retry=ToolRetry(base_s=60))

    async def go() -> None:
        with anyio.move_on_after(0.05) as scope:
            await box.call("fetch", {})
        assert scope.cancelled_caught

    anyio.run(go)
    assert flaky.calls == 1


@pytest.mark.parametrize("attempts", [0, -2])
def test_a_policy_always_makes_at_least_one_call(attempts: int) -> None:
    flaky = Flaky(ToolError("503", retryable=True))
    outcome, _ = run(flaky, retry=ToolRetry(attempts=attempts, jitter=False))
    assert outcome.attempts == 1 and flaky.calls == 1
