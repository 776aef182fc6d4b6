"""Reach and worst-case bounds (kiln compile --explain)."""

from __future__ import annotations

import pytest

from compiler.pipeline import Compilation, compile_paths
from runtime.cli import main
from tests.helpers import EXAMPLES, WriteSpecs

SPECS = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: lead}
spec:
  model: openai/gpt-4o-mini
  delegate_to: [helper]
  tools: [calculator]
  limits: {max_iterations: 3, max_tokens: 1000}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: helper}
spec:
  model: local/smollm2-135m
  tool_discovery: {labels: {category: web}}
  limits: {max_iterations: 2, max_tokens: 500}
---
apiVersion: kiln/v1
kind: Tool
metadata: {name: github, labels: {category: web}}
spec:
  description: Call the GitHub API.
  executor:
    type: http
    url: https://api.github.com/repos
    headers: {Authorization: "Bearer ${env:GITHUB_TOKEN}"}
"""


def _compile(write_specs: WriteSpecs, text: str) -> Compilation:
    result = compile_paths([write_specs(**{"specs.yaml": text})])
    assert result.ok, result.diagnostics
    return result


def test_reach_follows_delegation_and_discovery(write_specs: WriteSpecs) -> None:
    reach = _compile(write_specs, SPECS).reach["Agent/lead"]
    assert reach.tools == {
        "calculator": "listed",
        "github": "via helper",
        "http_get": "via helper",
        "http_request": "via helper",
    }
    assert reach.agents == ("helper",)
    assert reach.secrets == ("GITHUB_TOKEN",)


def test_delegation_multiplies_the_delegates_budget(write_specs: WriteSpecs) -> None:
    bounds = _compile(write_specs, SPECS).reach["Agent/lead"].bounds
    # own 3 calls, plus each of its 3 tool calls may run helper's whole budget (2 calls)
    assert bounds.model_calls == 3 + 3 * 2
    assert bounds.tokens == 1000 + 3 * 500
    assert bounds.cost_usd == pytest.approx(1000 * 0.6 / 1e6)  # helper is local: free


def test_unknown_price_is_a_warning_and_no_cost_bound(write_specs: WriteSpecs) -> None:
    result = _compile(write_specs, SPECS.replace("openai/gpt-4o-mini", "openai/gpt-9-ultra"))
    assert [d.code for d in result.diagnostics] == ["K5003"]
    assert result.reach["Agent/lead"].bounds.cost_usd is None


def test_max_cost_caps_the_bound(write_specs: WriteSpecs) -> None:
    text = SPECS.replace("max_tokens: 1000}", "max_tokens: 1000, max_cost_usd: 0.0001}")
    assert _compile(write_specs, text).reach["Agent/lead"].bounds.cost_usd == 0.0001


def test_crew_bounds_add_up_the_tasks() -> None:
    reach = compile_paths([EXAMPLES / "research-crew"]).reach
    crew = reach["Crew/research"].bounds
    researcher, analyst, writer = (
        reach[f"Agent/{n}"].bounds for n in ("researcher", "analyst", "writer")
    )
    assert crew.model_calls == 2 * researcher.model_calls + analyst.model_calls + writer.model_calls
    assert crew.tokens == 2 * researcher.tokens + analyst.tokens + writer.tokens


def test_explain_prints_reach_and_bounds(
    write_specs: WriteSpecs, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_specs(**{"specs.yaml": SPECS})
    assert main(["compile", str(root), "-o", str(root / "plan.json"), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "Agent/lead" in out
    assert "github (via helper)" in out
    assert "${env:GITHUB_TOKEN}" in out
    assert "9 model calls" in out
