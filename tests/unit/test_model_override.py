"""``--model`` replaces an agent's models but keeps its reply parameters."""

from __future__ import annotations

from typing import Any

from runtime.llm.gateway import Gateway, default_backend
from runtime.llm.params import params_for
from runtime.llm.types import ModelBackend, ModelRequest, ModelResponse
from tests.helpers import WriteSpecs
from tests.runtime_kit import FAST, agent, run_specs

PARAMS = """
model: openai/gpt-4o-mini
model_params: {max_tokens: 77, temperature: 0.3, api_base: "http://10.0.0.1/v1"}
"""


class Recording:
    """A real backend (the scripted model) that remembers the params of each request."""

    def __init__(self, backend: ModelBackend, seen: list[dict[str, Any]]) -> None:
        self._backend = backend
        self._seen = seen
        self.name = backend.name
        self.provider = backend.provider
        self.native_tools = backend.native_tools
        self.constrained = backend.constrained
        self.context_window = backend.context_window

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self._seen.append(dict(request.params))
        return await self._backend.complete(request)


def test_model_override_keeps_reply_params_and_drops_the_endpoint(
    write_specs: WriteSpecs,
) -> None:
    seen: list[dict[str, Any]] = []
    gateway = Gateway(retry=FAST, factory=lambda m: Recording(default_backend(m), seen))
    folder = write_specs(**{"a.yaml": agent(tools="[]", extra=PARAMS)})
    ran = run_specs(folder, "solver:\n  - {thought: done, final: four}\n", gateway=gateway)
    assert ran.result.status == "succeeded"
    assert seen == [{"max_tokens": 77, "temperature": 0.3}]


def test_params_for() -> None:
    params = {"max_tokens": 5, "api_base": "http://x", "extra_headers": {"a": "b"}}
    assert params_for(params, "openai/a", None) == params
    assert params_for(params, "openai/a", "openai/b") == params  # same provider: same endpoint
    assert params_for(params, "openai/a", "anthropic/b") == {"max_tokens": 5}
    assert params_for(params, "openai/a", "scripted:turns.yaml") == {"max_tokens": 5}
