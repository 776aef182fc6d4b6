"""Model faults during runs: retried, fallen back from, or failed with a clear error; the
native tool-calling path; and conversations kept inside the context window."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest

from runtime.agent import context
from runtime.llm.gateway import Gateway
from runtime.llm.scripted import load_script
from runtime.llm.types import ModelBackend, ModelRequest, ModelResponse, message_tokens
from runtime.run import CompileFailed
from tests.helpers import WriteSpecs
from tests.runtime_kit import FAST, agent, run_specs


def _with_models(primary: str, fallbacks: str = "[]") -> str:
    return agent(extra=f"model: {primary}\nfallbacks: {fallbacks}\n")


def _script(folder: Path, name: str, text: str) -> None:
    (folder / ".." / name).write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_rate_limit_is_retried_then_the_run_succeeds(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    gateway = Gateway(retry=FAST)
    ran = run_specs(
        folder,
        "solver:\n  - {error: 429}\n  - {error: 429}\n  - {thought: ok, final: fine}\n",
        gateway=gateway,
    )
    assert ran.result.ok and ran.result.output == "fine"
    assert gateway.retries == 2
    assert ran.of("agent.thought")[0].step == 1  # retries are one step, not three


def test_a_500_on_the_primary_uses_the_fallback(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{"a.yaml": _with_models("scripted:../primary.yaml", "[scripted:../fallback.yaml]")}
    )
    _script(folder, "primary.yaml", "solver:\n" + "  - {error: 500}\n" * 4)
    _script(folder, "fallback.yaml", "solver:\n  - {thought: ok, final: from fallback}\n")
    gateway = Gateway(retry=FAST)
    ran = run_specs(folder, "", gateway=gateway, models=True)
    assert ran.result.ok and ran.result.output == "from fallback"
    assert gateway.fallbacks_used == 1
    assert ran.of("agent.thought")[0].data["model"].endswith("fallback.yaml")


def test_timeouts_are_retried_then_fail_the_run_clearly(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    ran = run_specs(folder, "solver:\n" + "  - {error: timeout}\n" * 4)
    assert ran.result.status == "failed"
    error = ran.result.error or ""
    assert error.startswith("model call failed: all models failed:")
    assert "scripted error timeout" in error and "4 attempts" in error


def test_a_missing_script_file_is_a_compile_error(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": _with_models("scripted:../missing.yaml")})
    with pytest.raises(CompileFailed) as caught:
        run_specs(folder, "", models=True)
    (diagnostic,) = caught.value.compilation.errors
    assert diagnostic.code == "K4014" and "'../missing.yaml' does not exist" in diagnostic.message


class _Recording:
    """The scripted model behind a faithful wrapper that records what it was sent: in
    native tool-calling mode (as OpenAI-style models reply) or with a small window."""

    provider = "scripted"
    constrained = False

    def __init__(self, path: Path, *, native: bool = False, window: int = 128_000) -> None:
        self.model = load_script(path)
        self.model.native_tools = native
        self.name = f"recording:{path.name}"
        self.native_tools = native
        self.context_window = window
        self.requests: list[ModelRequest] = []
        self.sent: list[int] = []

    def factory(self, name: str) -> ModelBackend:
        return self

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        self.sent.append(message_tokens(request.messages))
        return await self.model.complete(request)


def test_native_tool_calls_are_executed_and_answered_with_tool_messages(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(**{"a.yaml": agent(output_schema="{type: object, required: [n]}")})
    script = tmp_path / "native.yaml"
    script.write_text(
        "solver:\n  - {thought: count, tool: word_count, input: {text: a b}}\n"
        "  - {thought: done, final: {n: 2}}\n"
    )
    native = _Recording(script, native=True)
    ran = run_specs(folder, "", gateway=Gateway(retry=FAST, factory=native.factory), models=True)
    assert ran.result.ok and ran.result.output == {"n": 2}
    first, second = native.requests
    assert [t.name for t in first.tools] == ["calculator", "word_count"]
    assert first.response_schema is None
    roles = [m["role"] for m in second.messages]
    assert roles == ["system", "user", "assistant", "tool"]
    assert second.messages[2]["tool_calls"][0]["function"]["name"] == "word_count"
    assert second.messages[3]["tool_call_id"] == "call_1"
    assert '"words": 2' in second.messages[3]["content"]


def test_a_long_run_stays_inside_a_small_context_window(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(**{"a.yaml": agent(limits="{max_iterations: 40, max_tokens: 1000000}")})
    long_text = "word " * 400
    turns = [
        f"  - {{thought: 'step {i}', tool: word_count, input: {{text: '{long_text}{i}'}}}}\n"
        for i in range(20)
    ]
    script = tmp_path / "long.yaml"
    script.write_text("solver:\n" + "".join(turns) + "  - {thought: done, final: ok}\n")
    small = _Recording(script, window=4096)
    ran = run_specs(folder, "", gateway=Gateway(retry=FAST, factory=small.factory), models=True)
    assert ran.result.ok, ran.result.error
    budget = 4096 - 512
    assert max(small.sent) <= budget
    assert small.sent[-1] < sum(small.sent) / len(small.sent) * 3


def _conversation(observations: int, size: int) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "task"},
    ]
    for i in range(observations):
        messages.append({"role": "assistant", "content": f"call {i}"})
        messages.append({"role": "user", "name": "observation", "content": f"{i}:" + "x" * size})
    return messages


def test_fit_trims_the_oldest_observations_first() -> None:
    messages = _conversation(6, 400)

    async def never(_: object) -> str:
        raise AssertionError("trimming was enough; no summary needed")

    fitted = anyio.run(context.fit, messages, message_tokens(messages) - 150, never)
    contents = [str(m["content"]) for m in fitted if m.get("name") == "observation"]
    assert contents[0].startswith("[observation trimmed")
    assert contents[-1].startswith("5:") and contents[-2].startswith("4:")
    assert messages[3]["content"] != fitted[3]["content"]  # the input list is not changed
    assert str(messages[3]["content"]).startswith("0:")


def test_fit_summarises_when_trimming_is_not_enough() -> None:
    messages = _conversation(12, 40)
    seen: list[int] = []

    async def summarise(middle: object) -> str:
        seen.append(len(middle))  # type: ignore[arg-type]
        return "- earlier: counted words"

    budget = message_tokens(messages) // 3
    fitted = anyio.run(context.fit, messages, budget, summarise)
    assert seen and message_tokens(fitted) <= budget
    assert fitted[0]["content"] == "rules" and fitted[1]["content"] == "task"
    assert "Summary of the earlier steps" in str(fitted[2]["content"])


def test_fit_never_separates_a_native_call_from_its_result() -> None:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "t"},
    ]
    for i in range(8):
        messages.append({"role": "assistant", "content": None, "tool_calls": [{"id": str(i)}]})
        messages.append({"role": "tool", "tool_call_id": str(i), "content": "y" * 300})

    async def summarise(middle: object) -> str:
        return "summary"

    fitted = anyio.run(context.fit, messages, 60, summarise)
    for i, m in enumerate(fitted):
        if m["role"] == "tool":
            assert fitted[i - 1].get("tool_calls"), "a tool result lost its call"
