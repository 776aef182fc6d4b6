"""HostedModel against a local OpenAI-compatible server (a faithful fake of a hosted provider,
named as such: real HTTP on loopback, the provider's wire format, litellm and the OpenAI SDK
in between). What it checks is what reaches the provider, which litellm's mocks cannot show.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runtime.llm.gateway import Gateway, RetryPolicy
from runtime.llm.hosted import HostedModel
from runtime.llm.types import ModelRequest, RateLimited, ServerError

pytestmark = [
    pytest.mark.anyio,
    # litellm builds pydantic adapters over TypedDicts with ReadOnly items, and pydantic warns
    # about each once per process, in whichever test first gets there: their warnings, not
    # failures of ours.
    pytest.mark.filterwarnings("ignore:.* on TypedDict class:UserWarning"),
]

REQUEST = ModelRequest(messages=[{"role": "user", "content": "What is 2+2?"}])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # litellm runs on asyncio only


@dataclass
class Provider:
    """An OpenAI-compatible chat endpoint that answers 429 to its first ``refusals`` calls."""

    refusals: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def _reply(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    }


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.requests.append(json.loads(body or b"{}"))
            if len(state.requests) <= state.refusals:
                payload = {"error": {"message": "slow down", "type": "rate_limit_exceeded"}}
                self._send(429, payload, {"retry-after": "0"})
            else:
                self._send(200, _reply("4"), {})

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _model(provider: Provider) -> HostedModel:
    return HostedModel("openai/gpt-4o-mini", {"api_base": provider.url, "api_key": "sk-local"})


async def test_429_twice_reaches_the_provider_as_often_as_kiln_reports_attempts(
    provider: Provider,
) -> None:
    provider.refusals = 2
    model = _model(provider)
    gateway = Gateway(retry=RetryPolicy(max_retries=3, base_s=0.0), factory=lambda _: model)
    response = await gateway.complete(["openai/gpt-4o-mini"], REQUEST)
    assert response.text == "4"
    assert response.attempts == 3
    assert len(provider.requests) == 3  # no retries hidden inside litellm or the OpenAI SDK


async def test_one_kiln_attempt_is_one_request(provider: Provider) -> None:
    provider.refusals = 1
    with pytest.raises(RateLimited):
        await _model(provider).complete(REQUEST)
    assert len(provider.requests) == 1


async def test_a_user_cannot_turn_the_sdk_retries_back_on_by_accident(provider: Provider) -> None:
    provider.refusals = 5
    model = HostedModel(
        "openai/gpt-4o-mini",
        {"api_base": provider.url, "api_key": "sk-local", "max_retries": 4, "num_retries": 4},
    )
    with pytest.raises(RateLimited):
        await model.complete(REQUEST)
    assert len(provider.requests) == 1


async def test_an_unreachable_ollama_is_named_without_python_object_reprs() -> None:
    with socket_closed_port() as port:
        model = HostedModel("ollama/llama3", {"api_base": f"http://127.0.0.1:{port}"})
        with pytest.raises(ServerError) as caught:
            await model.complete(REQUEST)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "object at 0x" not in message and "SSLContext" not in message


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port that nothing listens on (bound, never listening, while in use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
