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
