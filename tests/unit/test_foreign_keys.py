"""Keys from CrewAI, cagent and ADK files get a hint saying where they go in kiln."""

from __future__ import annotations

from compiler.pipeline import compile_paths
from tests.helpers import WriteSpecs

PORTED = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: researcher}
spec:
  model: openai/gpt-4o-mini
  role: Researcher
  backstory: You love facts.
  instruction: Be brief.
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: c}
spec:
  tasks:
    - {name: t, agent: researcher, prompt: hi, expected_output: a list, output_file: out.md}
"""


def test_foreign_keys_say_where_they_go(write_specs: WriteSpecs) -> None:
    result = compile_paths([write_specs(**{"a.yaml": PORTED})])
    hints = {d.message.split("'")[1]: d.hint or "" for d in result.diagnostics if d.code == "K2003"}
    assert set(hints) == {"role", "backstory", "instruction", "expected_output", "output_file"}
    assert "spec.instructions" in hints["role"] and "kiln import crewai" in hints["backstory"]
    assert "output_schema" in hints["expected_output"] and "prompt" in hints["expected_output"]
    assert "file_write" in hints["output_file"]
    assert "did you mean 'output_schema'" not in hints["output_file"]
    assert "did you mean 'instructions'?" in hints["instruction"]
