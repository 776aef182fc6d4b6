"""kiln plan diff: added, removed and changed specs and nodes, and new reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.diff import diff_plans, render
from runtime.cli import main
from tests.helpers import EXAMPLES, WriteSpecs

AGENT = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: helper}
spec:
  tools: [calculator]
  limits: {max_iterations: 4}
"""

SHELL = """
apiVersion: kiln/v1
kind: Tool
metadata: {name: shell}
spec:
  description: Run a command with ${env:DEPLOY_TOKEN}.
  executor: {type: shell, argv: [sh, -c, "{{ input.cmd }}"]}
  input_schema: {type: object, properties: {cmd: {type: string}}}
"""


def _plan_file(root: Path, name: str) -> Path:
    out = root.parent / f"{name}.json"
    assert main(["compile", str(root), "-o", str(out)]) == 0
    return out


def test_identical_plans_have_no_changes(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert main(["compile", str(EXAMPLES / "quickstart"), "-o", str(out)]) == 0
    plan = json.loads(out.read_text())
    assert diff_plans(plan, plan) == []
    assert render([]) == "No changes: the plans are the same.\n"


def test_changes_and_new_reach_are_listed(
    write_specs: WriteSpecs, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _plan_file(write_specs(**{"a.yaml": AGENT}), "old")
    new_text = AGENT.replace("[calculator]", "[calculator, shell]").replace(": 4}", ": 8}")
    new = _plan_file(write_specs(**{"a.yaml": new_text, "b.yaml": SHELL}), "new")
    capsys.readouterr()
    assert main(["plan", "diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "+ Tool/shell" in out
    assert "~ Agent/helper" in out
    assert "spec.limits.max_iterations: 4 -> 8" in out
    assert "+ tool.shell (tool_call)" in out
    assert "! Agent/helper" in out
    assert "can now reach tool 'shell' (listed)" in out
    assert "can now read secret ${env:DEPLOY_TOKEN}" in out
    assert out.rstrip().endswith("with new reach (review these).")
    assert main(["plan", "diff", str(old), str(new), "--exit-code"]) == 1
    assert main(["plan", "diff", str(old), str(old), "--exit-code"]) == 0


def test_json_output_lists_changes(
    write_specs: WriteSpecs, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _plan_file(write_specs(**{"a.yaml": AGENT}), "old")
    new = _plan_file(write_specs(**{"a.yaml": AGENT.replace("helper", "aide")}), "new")
    capsys.readouterr()
    assert main(["plan", "diff", str(old), str(new), "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    specs = {(c["op"], c["subject"]) for c in changes if c["section"] == "specs"}
    assert specs == {("+", "Agent/aide"), ("-", "Agent/helper")}


def test_files_that_are_not_plans_are_errors_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    assert main(["plan", "diff", str(junk), str(other)]) == 1
    assert "is not a JSON plan" in capsys.readouterr().err
    assert main(["plan", "diff", str(other), str(other)]) == 1
    assert "is not a kiln plan" in capsys.readouterr().err
    assert main(["plan", "diff", str(tmp_path / "missing.json"), str(other)]) == 1
    assert "cannot read" in capsys.readouterr().err
