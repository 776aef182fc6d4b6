"""The plan: deterministic bytes, and hashes that follow meaning rather than formatting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from compiler.passes.emit import dumps
from compiler.pipeline import compile_paths
from tests.helpers import EXAMPLES, WriteSpecs

AGENT = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: helper}
spec:
  model: local/smollm2-135m
  instructions: Help with {{ inputs.task }}.
  inputs: {task: {type: string}}
  tools: [calculator]
  limits: {max_iterations: 4}
"""

# The same agent: block style, keys reordered, comments, quoted strings, defaults written out.
AGENT_REFORMATTED = """
# a comment that changes nothing
kind: "Agent"
apiVersion: 'kiln/v1'
spec:
  limits:
    max_iterations: 4      # same value
    timeout_s: 300         # the default, written out
  tools:
    - "calculator"
  inputs:
    task:
      type: string
  instructions: "Help with {{ inputs.task }}."
  model: "local/smollm2-135m"
metadata:
  name: helper
"""


def _plan(root: Path) -> dict[str, Any]:
    result = compile_paths([root])
    assert result.ok, result.diagnostics
    assert result.plan is not None
    return dict(result.plan)


def test_same_input_gives_same_bytes() -> None:
    first = compile_paths([EXAMPLES / "research-crew"])
    second = compile_paths([EXAMPLES / "research-crew"])
    assert first.plan is not None and second.plan is not None
    assert dumps(first.plan) == dumps(second.plan)


def test_plan_text_has_sorted_keys_and_a_hash_per_spec() -> None:
    plan = _plan(EXAMPLES / "quickstart")
    text = dumps(plan)
    assert json.loads(text) == plan
    assert text == json.dumps(plan, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert set(plan["specs"]) == {
        "Agent/assistant",
        "Tool/word_count",
        "Tool/calculator",
        "Tool/current_time",
    }
    for entry in plan["specs"].values():
        assert entry["hash"].startswith("sha256:") and len(entry["hash"]) == 71
    assert str(plan["plan_hash"]).startswith("sha256:")


def test_formatting_key_order_comments_and_defaults_do_not_change_hashes(
    write_specs: WriteSpecs,
) -> None:
    plain = _plan(write_specs(**{"agent.yaml": AGENT}))
    reformatted = _plan(write_specs(**{"elsewhere__deep__x.yml": AGENT_REFORMATTED}))
    assert plain["plan_hash"] == reformatted["plan_hash"]
    assert dumps(plain) == dumps(reformatted)


def test_moving_specs_between_files_does_not_change_hashes(tmp_path: Path) -> None:
    source = EXAMPLES / "research-crew"
    original = _plan(source)
    merged = tmp_path / "merged"
    merged.mkdir()
    docs = [p.read_text() for p in sorted(source.glob("*.yaml"))]
    (merged / "all.yaml").write_text("\n---\n".join(reversed(docs)))
    assert _plan(merged)["plan_hash"] == original["plan_hash"]
    scattered = tmp_path / "scattered"
    shutil.copytree(source, scattered / "a" / "b")
    assert _plan(scattered)["plan_hash"] == original["plan_hash"]


def test_changing_any_value_changes_the_spec_hash_and_plan_hash(write_specs: WriteSpecs) -> None:
    base = _plan(write_specs(**{"agent.yaml": AGENT}))
    for old, new in [
        ("max_iterations: 4", "max_iterations: 5"),
        ("Help with", "Assist with"),
        ("model: local/smollm2-135m", "model: openai/gpt-4o-mini"),
        ("name: helper", "name: helper2"),
    ]:
        changed = _plan(write_specs(**{"agent.yaml": AGENT.replace(old, new)}))
        assert changed["plan_hash"] != base["plan_hash"], old
        assert changed["specs"] != base["specs"], old


def test_plan_has_no_file_locations(write_specs: WriteSpecs) -> None:
    root = write_specs(**{"agent.yaml": AGENT})
    assert str(root) not in dumps(_plan(root))
