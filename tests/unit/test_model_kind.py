"""``kind: Model``: a model named once, with its fallbacks and parameters, shared by agents."""

from __future__ import annotations

from compiler.pipeline import compile_paths
from tests.helpers import WriteSpecs
from tests.runtime_kit import run_specs

MODELS = """
apiVersion: kiln/v1
kind: Model
metadata: {name: fast}
spec:
  model: openai/gpt-4o-mini
  fallbacks: [anthropic/claude-3-5-haiku-latest]
  params: {max_tokens: 300, temperature: 0.1}
"""
AGENT = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: %s}
spec:
  model: %s
  instructions: hi
%s
"""


def test_agents_naming_a_model_get_its_string_fallbacks_and_params(
    write_specs: WriteSpecs,
) -> None:
    own = "  fallbacks: [groq/llama-3.1-8b-instant]\n  model_params: {temperature: 0.5}"
    folder = write_specs(
        **{
            "models.yaml": MODELS,
            "a.yaml": AGENT % ("a", "fast", own),
            "b.yaml": AGENT % ("b", "fast", ""),
        }
    )
    result = compile_paths([folder])
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program is not None
    a, b = result.program.agent("a").spec, result.program.agent("b").spec
    assert a.model == b.model == "openai/gpt-4o-mini"
    assert a.fallbacks == ("anthropic/claude-3-5-haiku-latest", "groq/llama-3.1-8b-instant")
    assert a.model_params == {"max_tokens": 300, "temperature": 0.5}  # the agent's own win
    assert b.model_params == {"max_tokens": 300, "temperature": 0.1}
    assert result.plan is not None and "Model/fast" in result.plan["specs"]


def test_mistakes_are_reported_where_they_are_written(write_specs: WriteSpecs) -> None:
    broken = MODELS.replace("openai/gpt-4o-mini", "openaii/gpt-4o-mini")
    folder = write_specs(
        **{
            "models.yaml": broken,
            "a.yaml": AGENT % ("a", "fast", ""),
            "b.yaml": AGENT % ("b", "fsat", ""),
        }
    )
    result = compile_paths([folder])
    found = {(d.span.path.rsplit("/", 1)[-1], d.message, d.hint) for d in result.errors}
    assert (
        "models.yaml",
        "unknown model provider 'openaii' in 'openaii/gpt-4o-mini'",
        "did you mean 'openai/gpt-4o-mini'?",
    ) in found
    assert ("b.yaml", "model 'fsat' has no provider", "did you mean 'fast'?") in found
    assert not [f for f in found if f[0] == "a.yaml"]  # the agent wrote nothing wrong


def test_a_scripted_model_file_stays_relative_to_the_model_spec(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "shared__models.yaml": MODELS.replace(
                "openai/gpt-4o-mini", "scripted:turns.script"
            ).replace("  fallbacks: [anthropic/claude-3-5-haiku-latest]\n", ""),
            "shared__turns.script": "a:\n  - {thought: done, final: four}\n",
            "agents__a.yaml": AGENT % ("a", "fast", ""),
        }
    )
    ran = run_specs(folder, "", agent="a", text="2+2?", models=True)
    assert ran.result.status == "succeeded", ran.result.error
    assert ran.result.output == "four"
