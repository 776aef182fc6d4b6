"""The gateway: retries with backoff, fallbacks, circuit breakers, all without a real model."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from runtime.llm.gateway import CircuitBreaker, Gateway, RetryPolicy, default_backend
from runtime.llm.hosted import HostedModel
from runtime.llm.local import LocalModel
from runtime.llm.types import (
    AuthError,
    BadRequest,
    ContextWindowExceeded,
    ModelBackend,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelTimeout,
    ModelUnavailable,
    RateLimited,
    ServerError,
    Usage,
)

pytestmark = pytest.mark.anyio

REQUEST = ModelRequest(messages=[{"role": "user", "content": "hi"}])


class FakeBackend:
    """A fake model: plays ``script`` (errors to raise, texts to answer) in order, then
    repeats its last entry; records how often it was called."""

    def __init__(self, name: str, script: Sequence[ModelError | str]) -> None:
        self._name = name
        self._script = list(script)
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def provider(self) -> str:
        return self._name.partition("/")[0]

    @property
    def native_tools(self) -> bool:
        return False

    @property
    def constrained(self) -> bool:
        return False

    @property
    def context_window(self) -> int:
        return 4096

    async def complete(self, request: ModelRequest) -> ModelResponse:
        step = self._script[min(self.calls, len(self._script) - 1)]
        self.calls += 1
        if isinstance(step, ModelError):
            raise step
        return ModelResponse(text=step, usage=Usage(3, 2), model=self._name)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A gateway over fake backends, with sleeps recorded instead of slept."""

    def __init__(self, retry: RetryPolicy | None = None, **backends: Sequence[ModelError | str]):
        # Keyword names stand for model strings: openai__m is openai/m.
        models = {name.replace("__", "/"): script for name, script in backends.items()}
        self.fakes = {model: FakeBackend(model, script) for model, script in models.items()}
        self.delays: list[float] = []
        self.clock = Clock()
        self.made: list[str] = []
        self.gateway = Gateway(
            retry=retry or RetryPolicy(),
            factory=self._make,
            sleep=self._sleep,
            clock=self.clock,
            rng=random.Random(7),
        )

    def _make(self, model: str) -> ModelBackend:
        self.made.append(model)
        if model not in self.fakes:
            raise ModelUnavailable(f"no such model {model}")
        return self.fakes[model]

    async def _sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.now += seconds


# --- RetryPolicy ---------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(base_s=0.5, max_s=8.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_stays_within_zero_and_the_ceiling_and_varies() -> None:
    policy = RetryPolicy(base_s=0.5, max_s=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 8.0)]:
        draws = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # full jitter reaches near the ceiling
        assert min(draws) < ceiling * 0.2  # and near zero
    assert policy.delay(10_000, None, rng) <= 8.0  # no overflow on absurd attempt numbers


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    policy = RetryPolicy(base_s=0.5, max_s=8.0)
    assert policy.delay(1, RateLimited("slow down", retry_after_s=3.0)) == 3.0
    assert policy.delay(1, RateLimited("slow down", retry_after_s=120.0)) == 8.0
    assert policy.delay(1, RateLimited("slow down", retry_after_s=-1.0)) == 0.0


# --- retries -------------------------------------------------------------------------------


async def test_retryable_errors_are_retried_until_an_answer() -> None:
    h = Harness(openai__m=[ServerError("boom"), ModelTimeout("slow"), "ok"])
    response = await h.gateway.complete(["openai/m"], REQUEST)
    assert (response.text, response.model, response.attempts) == ("ok", "openai/m", 3)
    assert len(h.delays) == 2
    assert h.gateway.stats() == {"calls": 3, "retries": 2, "fallbacks_used": 0}


async def test_backoff_grows_between_retries_then_gives_up() -> None:
    h = Harness(RetryPolicy(max_retries=3, base_s=0.5, jitter=False), openai__m=[ServerError("x")])
    with pytest.raises(ServerError) as caught:
        await h.gateway.complete(["openai/m"], REQUEST)
    assert h.delays == [0.5, 1.0, 2.0]
    assert h.fakes["openai/m"].calls == 4
    assert str(caught.value) == "all models failed: openai/m: x, 4 attempts"


async def test_retry_after_from_the_provider_is_honoured() -> None:
    h = Harness(openai__m=[RateLimited("429", retry_after_s=2.5), "ok"])
    response = await h.gateway.complete(["openai/m"], REQUEST)
    assert response.text == "ok"
    assert h.delays == [2.5]


# --- fallbacks -----------------------------------------------------------------------------


async def test_fallbacks_are_tried_in_order() -> None:
    h = Harness(
        RetryPolicy(max_retries=1),
        openai__a=[ServerError("a down")],
        anthropic__b=[BadRequest("b refuses")],
        groq__c=["from c"],
    )
    response = await h.gateway.complete(["openai/a", "anthropic/b", "groq/c"], REQUEST)
    assert (response.text, response.model, response.attempts) == ("from c", "groq/c", 4)
    assert [h.fakes[m].calls for m in ("openai/a", "anthropic/b", "groq/c")] == [2, 1, 1]
    assert h.made == ["openai/a", "anthropic/b", "groq/c"]
    assert h.gateway.fallbacks_used == 2


async def test_a_non_retryable_error_moves_to_the_fallback_at_once() -> None:
    h = Harness(openai__a=[AuthError("bad key")], anthropic__b=["ok"])
    response = await h.gateway.complete(["openai/a", "anthropic/b"], REQUEST)
    assert response.model == "anthropic/b"
    assert h.fakes["openai/a"].calls == 1
    assert h.delays == []


async def test_context_window_exceeded_is_raised_at_once_without_fallback() -> None:
    h = Harness(openai__a=[ContextWindowExceeded("too long")], anthropic__b=["ok"])
    with pytest.raises(ContextWindowExceeded, match="too long") as caught:
        await h.gateway.complete(["openai/a", "anthropic/b"], REQUEST)
    assert caught.value.model == "openai/a"
    assert h.fakes["anthropic/b"].calls == 0
    assert h.delays == []


async def test_when_all_fail_the_message_names_every_model_and_why() -> None:
    h = Harness(
        openai__a=[RateLimited("rate limited (429)")],
        anthropic__b=[ModelTimeout("timeout after 60 s")],
    )
    with pytest.raises(ModelTimeout) as caught:
        await h.gateway.complete(["openai/a", "anthropic/b"], REQUEST)
    assert str(caught.value) == (
        "all models failed: openai/a: rate limited (429), 4 attempts; "
        "anthropic/b: timeout after 60 s, 4 attempts"
    )
    assert isinstance(caught.value.__cause__, ModelTimeout)


async def test_a_model_that_cannot_be_created_is_skipped_and_named() -> None:
    h = Harness(anthropic__b=[AuthError("no key")])
    with pytest.raises(AuthError) as caught:
        await h.gateway.complete(["local/missing", "anthropic/b"], REQUEST)
    assert str(caught.value) == (
        "all models failed: local/missing: no such model local/missing, 0 attempts; "
        "anthropic/b: no key, 1 attempt"
    )


async def test_backends_are_created_once_per_model_string() -> None:
    h = Harness(openai__m=["ok"])
    for _ in range(3):
        await h.gateway.complete(["openai/m"], REQUEST)
    assert h.made == ["openai/m"]
    assert h.gateway.backend("openai/m") is h.fakes["openai/m"]


async def test_an_empty_model_list_is_refused() -> None:
    with pytest.raises(ModelUnavailable, match="empty"):
        await Harness().gateway.complete([], REQUEST)


# --- circuit breaker -----------------------------------------------------------------------


def state(breaker: CircuitBreaker) -> str:
    return breaker.state  # a call, so mypy does not keep a narrowed value across transitions


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("openai", failures=3, cooldown_s=30.0, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert state(breaker) == "closed"
    breaker.record_failure()
    assert state(breaker) == "open"
    with pytest.raises(ModelUnavailable) as caught:
        breaker.before_call()
    assert str(caught.value) == (
        "circuit open for provider openai after 3 failures; retrying after 30s"
    )
    clock.now += 29.9
    with pytest.raises(ModelUnavailable):
        breaker.before_call()
    clock.now += 0.1
    assert state(breaker) == "half_open"
    breaker.before_call()  # the one trial call
    with pytest.raises(ModelUnavailable):
        breaker.before_call()  # a second caller during the trial fails fast
    breaker.record_failure()
    assert state(breaker) == "open"
    clock.now += 30.0
    breaker.before_call()
    breaker.record_success()
    assert state(breaker) == "closed"
    breaker.before_call()


def test_a_trial_that_never_reports_is_replaced_after_a_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker("openai", failures=1, cooldown_s=10.0, clock=clock)
    breaker.record_failure()
    clock.now += 10.0
    breaker.before_call()  # trial starts, its caller is cancelled and never reports
    clock.now += 10.0
    breaker.before_call()  # a new trial is allowed
    assert state(breaker) == "half_open"


def test_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker("openai", failures=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state(breaker) == "closed"


async def test_gateway_breaker_fails_fast_then_lets_a_trial_through() -> None:
    h = Harness(RetryPolicy(max_retries=0), openai__a=[ServerError("down")], openai__b=["ok"])
    for _ in range(5):
        with pytest.raises(ServerError):
            await h.gateway.complete(["openai/a"], REQUEST)
    assert state(h.gateway.breaker("openai")) == "open"
    # Another model of the same provider is refused without a call: the provider is down.
    with pytest.raises(ModelUnavailable, match="circuit open for provider openai after 5"):
        await h.gateway.complete(["openai/b"], REQUEST)
    assert h.fakes["openai/b"].calls == 0
    h.clock.now += 30.0
    response = await h.gateway.complete(["openai/b"], REQUEST)
    assert response.text == "ok"
    assert state(h.gateway.breaker("openai")) == "closed"


async def test_breakers_are_per_provider() -> None:
    h = Harness(RetryPolicy(max_retries=0), openai__a=[ServerError("down")], anthropic__b=["fine"])
    for _ in range(5):
        with pytest.raises(ServerError):
            await h.gateway.complete(["openai/a"], REQUEST)
    response = await h.gateway.complete(["openai/a", "anthropic/b"], REQUEST)
    assert (response.model, response.attempts) == ("anthropic/b", 1)
    assert h.fakes["openai/a"].calls == 5


async def test_the_breaker_opening_mid_retries_moves_to_the_fallback() -> None:
    h = Harness(openai__a=[ServerError("down")], anthropic__b=["ok"])
    h.gateway = Gateway(
        retry=RetryPolicy(max_retries=10),
        breaker_failures=3,
        factory=h._make,
        sleep=h._sleep,
        clock=h.clock,
    )
    response = await h.gateway.complete(["openai/a", "anthropic/b"], REQUEST)
    assert h.fakes["openai/a"].calls == 3
    assert (response.model, response.attempts) == ("anthropic/b", 4)


# --- default_backend -----------------------------------------------------------------------


def test_default_backend_refuses_bad_model_strings() -> None:
    with pytest.raises(ModelUnavailable, match="unknown model provider 'opnai'") as caught:
        default_backend("opnai/gpt-4o-mini")
    assert "did you mean 'openai/gpt-4o-mini'" in str(caught.value)
    with pytest.raises(ModelUnavailable, match="has no provider"):
        default_backend("gpt-4o-mini")


def test_default_backend_picks_the_backend_by_kind(tmp_path: Path) -> None:
    hosted = default_backend("openai/gpt-4o-mini")
    assert isinstance(hosted, HostedModel)
    assert (hosted.name, hosted.provider) == ("openai/gpt-4o-mini", "openai")
    local = default_backend("local/smollm2-135m")
    assert isinstance(local, LocalModel)
    assert (local.name, local.provider, local.constrained) == ("local/smollm2-135m", "local", True)
    with pytest.raises(ModelError, match="not found"):
        default_backend(f"scripted:{tmp_path / 'missing.yaml'}")
