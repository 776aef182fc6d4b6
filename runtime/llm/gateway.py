"""The gateway: one call that survives a flaky provider.

``Gateway.complete(models, request)`` tries the primary model, then each fallback in order.
Per model, retryable errors (rate limits, server errors, timeouts) are retried with
exponential backoff and full jitter, honouring a provider's ``Retry-After``; other errors
move to the next model at once, except :class:`ContextWindowExceeded`, which goes straight
back to the caller (trimming the context is its job; a fallback would not help). A circuit
breaker per provider stops hammering a provider that keeps failing.

Backends are created on first use from the model string (``default_backend``): nothing
heavy (litellm, llama.cpp) is imported before a model is actually called.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import anyio

from compiler.models import ModelProblem, parse_model
from runtime.llm.types import (
    ContextWindowExceeded,
    ModelBackend,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelUnavailable,
)

__all__ = ["CircuitBreaker", "Gateway", "RetryPolicy", "default_backend"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one model is retried."""

    max_retries: int = 3
    base_s: float = 0.5
    max_s: float = 8.0
    jitter: bool = True

    def delay(
        self, attempt: int, error: ModelError | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry).

        A provider's ``retry_after_s`` wins (capped at ``max_s``); otherwise the ceiling
        doubles from ``base_s`` up to ``max_s`` and, with jitter, the wait is uniform in
        ``[0, ceiling]`` ("full jitter": spreads clients apart better than a fixed backoff).
        """
        if error is not None and error.retry_after_s is not None:
            return min(max(error.retry_after_s, 0.0), self.max_s)
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(max(attempt - 1, 0), 60))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0.0, ceiling)


class CircuitBreaker:
    """closed → (``failures`` consecutive failures) → open → (``cooldown_s``) → half-open.

    Half-open lets one trial call through: success closes the circuit, failure opens it
    again. A trial that never reports (its caller was cancelled) is replaced by a new one
    after another cooldown, so the breaker cannot stay stuck half-open.
    """

    def __init__(
        self,
        provider: str,
        *,
        failures: int = 5,
        cooldown_s: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.provider = provider
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._trial_at is not None or self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Raise :class:`ModelUnavailable` when the provider must not be called now."""
        if self._opened_at is None:
            return
        now = self._clock()
        since = self._trial_at if self._trial_at is not None else self._opened_at
        if now - since >= self.cooldown_s:
            self._trial_at = now  # this call is the trial
            return
        wait = self.cooldown_s - (now - since)
        raise ModelUnavailable(
            f"circuit open for provider {self.provider} after {self._consecutive} failures; "
            f"retrying after {wait:.0f}s",
            retry_after_s=wait,
        )

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_at = None

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._trial_at is not None or self._consecutive >= self.failures:
            self._opened_at = self._clock()
            self._trial_at = None


@dataclass(slots=True)
class _Outcome:
    """What happened to one model during one ``complete`` call."""

    model: str
    attempts: int = 0
    error: ModelError | None = None

    def summary(self) -> str:
        reason = str(self.error) if self.error is not None else "not tried"
        plural = "" if self.attempts == 1 else "s"
        return f"{self.model}: {reason}, {self.attempts} attempt{plural}"


class Gateway:
    """Retries, fallbacks and circuit breakers in front of model backends.

    Counters for traces: ``calls`` (backend calls made), ``retries`` (waits before a
    retry), ``fallbacks_used`` (times a later model in the list was tried).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing it is safe
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 30.0,
        factory: Callable[[str], ModelBackend] | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry
        self._breaker_failures = breaker_failures
        self._breaker_cooldown_s = breaker_cooldown_s
        self._factory = factory or default_backend
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._backends: dict[str, ModelBackend] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self.calls = 0
        self.retries = 0
        self.fallbacks_used = 0

    def backend(self, model: str) -> ModelBackend:
        """The backend for a model string, created on first use and then reused."""
        backend = self._backends.get(model)
        if backend is None:
            backend = self._backends[model] = self._factory(model)
        return backend

    def register(self, model: str, backend: ModelBackend) -> None:
        """Answer ``model`` with ``backend`` (an object a program hands in)."""
        self._backends[model] = backend

    def breaker(self, provider: str) -> CircuitBreaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = self._breakers[provider] = CircuitBreaker(
                provider,
                failures=self._breaker_failures,
                cooldown_s=self._breaker_cooldown_s,
                clock=self._clock,
            )
        return breaker

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "retries": self.retries, "fallbacks_used": self.fallbacks_used}

    async def complete(self, models: Sequence[str], request: ModelRequest) -> ModelResponse:
        """Answer ``request`` with the first model in ``models`` that can.

        Raises :class:`ContextWindowExceeded` at once; when every model fails, raises the
        last error's class with a message naming each model, why it failed and how often
        it was tried.
        """
        if not models:
            raise ModelUnavailable("no model to call: the model list is empty")
        outcomes: list[_Outcome] = []
        for index, model in enumerate(models):
            if index:
                self.fallbacks_used += 1
            outcome = _Outcome(model)
            outcomes.append(outcome)
            response = await self._try_model(outcome, request)
            if response is not None:
                total = sum(o.attempts for o in outcomes)
                return replace(response, model=model, attempts=total)
        raise _all_failed(outcomes)

    async def _try_model(self, outcome: _Outcome, request: ModelRequest) -> ModelResponse | None:
        """Call one model with retries; ``None`` when it gave up (the reason is recorded)."""
        try:
            backend = self.backend(outcome.model)
        except ModelError as exc:
            outcome.error = _named(exc, outcome.model)
            return None
        breaker = self.breaker(backend.provider)
        while True:
            try:
                breaker.before_call()
            except ModelUnavailable as exc:
                outcome.error = _named(exc, outcome.model)
                return None
            outcome.attempts += 1
            self.calls += 1
            try:
                response = await backend.complete(request)
            except ModelError as exc:
                error = _named(exc, outcome.model)
                outcome.error = error
                self._record(breaker, error)
                if isinstance(error, ContextWindowExceeded):
                    raise  # the caller trims its context; another model would not help
                if not error.retryable or outcome.attempts > self.retry.max_retries:
                    return None
                self.retries += 1
                await self._sleep(self.retry.delay(outcome.attempts, error, self._rng))
                continue
            breaker.record_success()
            return response

    @staticmethod
    def _record(breaker: CircuitBreaker, error: ModelError) -> None:
        # Only retryable errors say the provider is unwell; a bad request or a refused key
        # is an answer from a working provider.
        if error.retryable:
            breaker.record_failure()
        else:
            breaker.record_success()


def default_backend(model: str) -> ModelBackend:
    """The backend a model string names: ``local/…``, ``scripted:…`` or a litellm model."""
    ref = parse_model(model)
    if isinstance(ref, ModelProblem):
        hint = f" ({ref.hint})" if ref.hint else ""
        raise ModelUnavailable(f"{ref.message}{hint}", model=model)
    if ref.kind == "local":
        from runtime.llm.local import LocalModel

        return LocalModel(ref.name)
    if ref.kind == "scripted":
        from runtime.llm.scripted import load_script

        return load_script(ref.name)
    from runtime.llm.hosted import HostedModel

    return HostedModel(model)


def _named(error: ModelError, model: str) -> ModelError:
    if not error.model:
        error.model = model
    return error


def _all_failed(outcomes: Sequence[_Outcome]) -> ModelError:
    last = outcomes[-1].error
    kind = type(last) if last is not None else ModelError
    message = "all models failed: " + "; ".join(o.summary() for o in outcomes)
    if len(outcomes) == 1 and getattr(last, "speaks_for_itself", False):
        message = f"{outcomes[0].model}: {last}"  # a script that ran out: no model "failed"
    try:
        error = kind(message, model=outcomes[-1].model)
    except TypeError:  # a subclass with another constructor: keep the message, lose the class
        error = ModelError(message, model=outcomes[-1].model)
    error.__cause__ = last
    return error
