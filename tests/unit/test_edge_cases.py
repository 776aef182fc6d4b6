"""Edge cases found in review: each once let bad input raise, or said something wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.jsonschema_lite import plainly_valid
from compiler.pipeline import compile_paths
from runtime.cli import main
from tests.helpers import EXAMPLES, WriteSpecs

AGENT = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: solo}\nspec:\n"


def _codes(root: Path) -> list[tuple[int, int, str]]:
    return [(d.span.line, d.span.col, d.code) for d in compile_paths([root]).diagnostics]


def test_huge_limits_are_rejected_not_overflowed(write_specs: WriteSpecs) -> None:
    root = write_specs(**{"a.yaml": AGENT + "  limits: {max_tokens: 1" + "0" * 400 + "}\n"})
    assert _codes(root) == [(5, 24, "K2004")]


def test_a_path_too_long_for_the_system_is_a_diagnostic() -> None:
    [diag] = compile_paths(["x" * 5000]).diagnostics
    assert diag.code == "K1001" and "cannot read" in diag.message


def test_tagged_and_anchored_keys_are_errors(write_specs: WriteSpecs) -> None:
    tagged = write_specs(**{"a.yaml": "a: 1\n!!python/object/apply:os.system x: 1\n"})
    assert _codes(tagged) == [(2, 1, "K1008")]
    anchored = write_specs(**{"a.yaml": "{&k foo: 1, bar: *k}\n"})
    assert _codes(anchored) == [(1, 2, "K1003")]


def test_delegating_to_itself_is_a_cycle_not_an_unknown_agent(write_specs: WriteSpecs) -> None:
    root = write_specs(**{"a.yaml": AGENT + "  delegate_to: [solo]\n"})
    assert [code for _, _, code in _codes(root)] == ["K4001"]


def test_duplicate_specs_do_not_judge_one_template_against_the_other(
    write_specs: WriteSpecs,
) -> None:
    first = AGENT + "  inputs: {topic: {}}\n  instructions: 'About {{ inputs.topic }}'\n"
    second = AGENT + "  instructions: 'No inputs here'\n"
    root = write_specs(**{"a.yaml": first, "b.yaml": second})
    assert [code for _, _, code in _codes(root)] == ["K3001"]


def test_a_secret_written_around_an_env_reference(write_specs: WriteSpecs) -> None:
    root = write_specs(**{"a.yaml": AGENT + "  model_params: {api_key: 'ab${env:KEY}cd'}\n"})
    [diag] = compile_paths([root]).diagnostics
    assert diag.code == "K4008" and (diag.span.line, diag.span.col) == (5, 27)


def test_schema_anchors_and_ids_go_to_jsonschema() -> None:
    assert not plainly_valid({"$anchor": "1 bad"})
    assert not plainly_valid({"$id": "a#b"})


def test_compile_json_keeps_stdout_for_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(EXAMPLES / "quickstart"), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["kiln_plan"] == 1
    assert json.loads(captured.err) == []


@pytest.mark.parametrize(
    "plan",
    [
        {"kiln_plan": 1, "graphs": {"g": {"nodes": {"n": {}}}}},
        {"kiln_plan": 1, "analysis": {"Agent/a": {"tools": ["x"]}}},
        {
            "kiln_plan": 1,
            "graphs": {"g": {"edges": [{"source": 1, "target": 2, "kind": 3, "bindings": [{}]}]}},
        },
    ],
)
def test_plan_diff_of_damaged_plans_is_an_error(
    plan: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    assert main(["compile", str(EXAMPLES / "quickstart"), "-o", str(good)]) == 0
    bad.write_text(json.dumps(plan))
    assert main(["plan", "diff", str(good), str(bad)]) == 1
    assert "internal error" not in capsys.readouterr().err


CREW = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: w}
spec:
  output_schema: {type: object, properties: {title: {type: string}}, additionalProperties: true}
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: c}
spec:
  process: sequential
  tasks:
    - {name: outline, agent: w, prompt: go}
    - {name: facts, agent: w, prompt: go}
    - name: draft
      agent: w
      depends_on: [facts]
      prompt: "{{ tasks.outline.output.title }} {{ tasks.facts.output.anything }}"
"""


def test_sequential_crews_may_read_any_earlier_task(write_specs: WriteSpecs) -> None:
    # outline is not in depends_on, but in a sequential crew it has run; and the schema
    # says additionalProperties: true, so 'anything' may be there
    assert _codes(write_specs(**{"c.yaml": CREW})) == []


def test_macros_are_not_undefined_variables(write_specs: WriteSpecs) -> None:
    text = AGENT + (
        "  inputs: {topic: {}}\n  instructions: |\n"
        "    {% macro bullet(x) %}- {{ x }}{% endmacro %}\n    {{ bullet(inputs.topic) }}\n"
    )
    assert _codes(write_specs(**{"a.yaml": text})) == []


def test_an_unknown_agent_does_not_make_its_output_text(write_specs: WriteSpecs) -> None:
    text = CREW.replace("- {name: outline, agent: w,", "- {name: outline, agent: nobody,")
    assert [c for _, _, c in _codes(write_specs(**{"c.yaml": text}))] == ["K3004"]


def test_dashed_task_names_read_with_a_dot_are_explained(write_specs: WriteSpecs) -> None:
    text = (
        CREW.replace("name: facts", "name: gather-facts")
        .replace("[facts]", "[gather-facts]")
        .replace("tasks.facts.output", "tasks.gather-facts.output")
    )
    [diag] = compile_paths([write_specs(**{"c.yaml": text})]).diagnostics
    assert diag.code == "K4004" and "'-' is subtraction" in diag.message
    assert diag.hint == "write tasks['gather-facts'].output for a task whose name has a '-'"


def test_hierarchical_bounds_count_the_managers_own_calls(write_specs: WriteSpecs) -> None:
    text = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: boss}
    spec: {delegate_to: [helper], limits: {max_iterations: 3, max_tokens: 1000}}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: helper}
    spec: {limits: {max_iterations: 2, max_tokens: 500}}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: dev}
    spec: {limits: {max_iterations: 5, max_tokens: 2000}}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: team}
    spec:
      process: hierarchical
      manager: boss
      tasks: [{name: build, agent: dev, prompt: build it}]
    """
    bounds = compile_paths([write_specs(**{"c.yaml": text})]).reach["Crew/team"].bounds
    # 3 own calls, each of which may run the dearest of dev (5 calls) and helper (2)
    assert (bounds.model_calls, bounds.tokens) == (3 + 3 * 5, 1000 + 3 * 2000)


def test_plan_diff_names_the_task_that_changed_and_flags_loosened_tools(
    write_specs: WriteSpecs, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = (
        "apiVersion: kiln/v1\nkind: Tool\nmetadata: {name: deploy}\nspec:\n"
        "  description: Deploy.\n  requires_approval: true\n"
        "  executor: {type: python, code: 'def run(): return {}'}\n"
    )
    users = "---\n" + AGENT + "  tools: [deploy]\n"
    old = write_specs(**{"c.yaml": CREW, "t.yaml": tool + users})
    new = write_specs(
        **{
            "c.yaml": CREW.replace("{{ tasks.facts", "Now: {{ tasks.facts"),
            "t.yaml": tool.replace("requires_approval: true", "requires_approval: false") + users,
        }
    )
    plans = []
    for root in (old, new):
        assert main(["compile", str(root), "-o", str(root / "plan.json")]) == 0
        plans.append(str(root / "plan.json"))
    capsys.readouterr()
    assert main(["plan", "diff", *plans]) == 0
    out = capsys.readouterr().out
    assert "spec.tasks[draft].prompt:" in out
    assert "! Tool/deploy" in out and "no longer asks for approval" in out
