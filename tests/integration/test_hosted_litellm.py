"""HostedModel against the real litellm, offline: litellm's own mock facilities stand in for
the provider, and any attempt to open a network connection fails the test."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from compiler.models import PRICES
from runtime.llm.gateway import Gateway, RetryPolicy
from runtime.llm.hosted import HostedModel, _translate
from runtime.llm.types import (
    AuthError,
    BadRequest,
    ContextWindowExceeded,
    ModelBackend,
    ModelRequest,
    ModelResponse,
    ModelTimeout,
    RateLimited,
    ServerError,
    ToolCall,
    ToolDef,
)

pytestmark = pytest.mark.anyio

REQUEST = ModelRequest(messages=[{"role": "user", "content": "What is 2+2?"}])
MINI = "openai/gpt-4o-mini"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # litellm runs on asyncio only


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No network: litellm uses its bundled price map, and every connection or DNS lookup
    is refused and recorded (the test fails if there was any)."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def refuse_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"getaddrinfo {host}")
        raise OSError("network disabled in this test")

    def refuse_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(f"connect {address}")
            raise OSError("network disabled in this test")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    yield attempts
    assert attempts == [], f"litellm tried to reach the network: {attempts}"


class Sequenced:
    """A fake backend that hands each call to the next real backend of a list (the last one
    repeats): one model string whose behaviour changes between calls."""

    def __init__(self, backends: Sequence[HostedModel]) -> None:
        self._backends = list(backends)
        self.calls = 0

    @property
    def name(self) -> str:
        return self._backends[0].name

    @property
    def provider(self) -> str:
        return self._backends[0].provider

    @property
    def native_tools(self) -> bool:
        return self._backends[0].native_tools

    @property
    def constrained(self) -> bool:
        return self._backends[0].constrained

    @property
    def context_window(self) -> int:
        return self._backends[0].context_window

    async def complete(self, request: ModelRequest) -> ModelResponse:
        backend = self._backends[min(self.calls, len(self._backends) - 1)]
        self.calls += 1
        return await backend.complete(request)


def gateway(backends: dict[str, ModelBackend], delays: list[float]) -> Gateway:
    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    return Gateway(factory=backends.__getitem__, sleep=sleep, retry=RetryPolicy(max_retries=3))


def mocked(model: str = MINI, **params: Any) -> HostedModel:
    return HostedModel(model, params)


async def test_a_mock_reply_has_text_usage_and_cost() -> None:
    response = await mocked(mock_response="4").complete(REQUEST)
    assert response.text == "4"
    assert response.tool_calls == ()
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    inp, out = PRICES[MINI]
    expected = (usage.prompt_tokens * inp + usage.completion_tokens * out) / 1e6
    assert usage.cost_known
    assert usage.cost_usd == pytest.approx(expected)


async def test_cost_falls_back_to_our_table_then_to_unknown() -> None:
    # litellm's bundled map lacks this alias; compiler.models.PRICES has it.
    haiku = await mocked("anthropic/claude-3-5-haiku-latest", mock_response="hi").complete(REQUEST)
    assert haiku.usage.cost_known and haiku.usage.cost_usd > 0
    unknown = await mocked("openai/no-such-model-xyz", mock_response="hi").complete(REQUEST)
    assert (unknown.usage.cost_known, unknown.usage.cost_usd) == (False, 0.0)
    assert unknown.usage.prompt_tokens > 0


async def test_rate_limit_is_retried_then_answered() -> None:
    backend = Sequenced([mocked(mock_response="litellm.RateLimitError"), mocked(mock_response="4")])
    delays: list[float] = []
    response = await gateway({MINI: backend}, delays).complete([MINI], REQUEST)
    assert (response.text, response.model, response.attempts) == ("4", MINI, 2)
    assert len(delays) == 1


async def test_rate_limit_becomes_rate_limited() -> None:
    with pytest.raises(RateLimited, match=r"^rate limited \(429\): this is a mock") as caught:
        await mocked(mock_response="litellm.RateLimitError").complete(REQUEST)
    assert caught.value.model == MINI
    assert caught.value.retryable


async def test_server_error_on_the_primary_falls_back() -> None:
    fallback = "anthropic/claude-3-5-haiku-latest"
    backends: dict[str, ModelBackend] = {
        MINI: mocked(mock_response="litellm.InternalServerError"),
        fallback: mocked(fallback, mock_response="ok"),
    }
    delays: list[float] = []
    gw = gateway(backends, delays)
    response = await gw.complete([MINI, fallback], REQUEST)
    assert (response.text, response.model, response.attempts) == ("ok", fallback, 5)
    assert gw.stats() == {"calls": 5, "retries": 3, "fallbacks_used": 1}


async def test_a_timeout_is_retried_then_reported_clearly() -> None:
    backend = mocked(mock_timeout=True, timeout=0.01)
    delays: list[float] = []
    with pytest.raises(ModelTimeout) as caught:
        await gateway({MINI: backend}, delays).complete([MINI], REQUEST)
    assert str(caught.value) == (
        "all models failed: openai/gpt-4o-mini: timeout after 0.01 s: "
        "This is a mock timeout error, 4 attempts"
    )
    assert len(delays) == 3


async def test_context_window_exceeded_is_not_a_bad_request() -> None:
    with pytest.raises(ContextWindowExceeded, match="context window exceeded"):
        await mocked(mock_response="litellm.ContextWindowExceededError").complete(REQUEST)


async def test_tool_calls_are_parsed() -> None:
    calls = [
        {"id": "c1", "type": "function",
         "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'}},
        {"id": "c2", "type": "function", "function": {"name": "search", "arguments": "{oops"}},
        {"id": "c3", "type": "function", "function": {"name": "now", "arguments": "[1]"}},
    ]  # fmt: skip
    tools = [ToolDef("calculator", "adds", {"type": "object"})]
    request = ModelRequest(messages=REQUEST.messages, tools=tools)
    response = await mocked(mock_response="", mock_tool_calls=calls).complete(request)
    assert response.tool_calls == (
        ToolCall("c1", "calculator", {"expression": "2+2"}),
        ToolCall("c2", "search", "{oops"),
        ToolCall("c3", "now", "[1]"),
    )


async def test_request_params_override_model_params() -> None:
    backend = mocked(mock_response="from the spec")
    request = ModelRequest(messages=REQUEST.messages, params={"mock_response": "from the call"})
    assert (await backend.complete(request)).text == "from the call"


async def test_a_schema_request_is_accepted() -> None:
    request = ModelRequest(
        messages=REQUEST.messages,
        response_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
        max_tokens=20,
        temperature=0.0,
    )
    response = await mocked(mock_response='{"answer": "4"}').complete(request)
    assert response.text == '{"answer": "4"}'


def test_capabilities_come_from_litellm_with_safe_defaults() -> None:
    mini = HostedModel(MINI)
    assert (mini.native_tools, mini.constrained, mini.context_window) == (True, True, 128000)
    odd = HostedModel("openai/no-such-model-xyz")
    assert (odd.native_tools, odd.constrained, odd.context_window) == (False, False, 8192)


def _status_error(name: str, status: int, headers: dict[str, str] | None = None) -> Exception:
    import litellm

    cls = getattr(litellm, name)
    request = httpx.Request("POST", "https://api.example.invalid/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    error: Exception = cls(message="nope", llm_provider="openai", model=MINI, response=response)
    return error


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("RateLimitError", 429, RateLimited),
        ("AuthenticationError", 401, AuthError),
        ("PermissionDeniedError", 403, AuthError),
        ("NotFoundError", 404, BadRequest),
        ("BadRequestError", 400, BadRequest),
        ("InternalServerError", 500, ServerError),
        ("ContextWindowExceededError", 400, ContextWindowExceeded),
    ],
)
def test_litellm_errors_map_to_model_errors(name: str, status: int, kind: type[Exception]) -> None:
    error = _translate(_status_error(name, status), MINI, None)
    assert type(error) is kind
    assert error.model == MINI
    assert f"({status})" in str(error)


def test_retry_after_headers_are_read() -> None:
    seconds = _status_error("RateLimitError", 429, {"retry-after": "7"})
    millis = _status_error("RateLimitError", 429, {"retry-after-ms": "1500"})
    date = _status_error("RateLimitError", 429, {"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert _translate(seconds, MINI, None).retry_after_s == 7.0
    assert _translate(millis, MINI, None).retry_after_s == 1.5
    assert _translate(date, MINI, None).retry_after_s == 0.0  # a date in the past: now


def test_unknown_exceptions_become_server_errors_named_by_type() -> None:
    error = _translate(KeyError("choices"), MINI, None)
    assert type(error) is ServerError
    assert str(error) == "KeyError: 'choices'"
