"""Python and shell tools from specs, called by agents, each call in a real sandbox (the
default backend: the first of nsjail and bwrap that works here)."""

from __future__ import annotations

import pytest

from tests.helpers import WriteSpecs, readable_by_all
from tests.runtime_kit import agent, run_specs

STATS = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: stats}
spec:
  description: Mean and spread of some numbers.
  input_schema:
    type: object
    properties: {values: {type: array, items: {type: number}}}
    required: [values]
  output_schema:
    type: object
    properties: {mean: {type: number}, spread: {type: number}}
    required: [mean, spread]
  executor:
    type: python
    code: |
      import statistics

      def run(values):
          print("values:", len(values))
          return {"mean": statistics.mean(values), "spread": max(values) - min(values)}
  sandbox: {memory_mb: 128, timeout_s: 5}
"""

ECHO = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: shout}
spec:
  description: Echo a text back.
  input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
  executor:
    type: shell
    argv: ["/usr/bin/printf", "%s", "{{ input.text }}"]
"""

IMPORTED = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: slug}
spec:
  description: A URL slug of a title.
  input_schema: {type: object, properties: {title: {type: string}}, required: [title]}
  executor: {type: python, entrypoint: "sluggy:slug", paths: [lib]}
"""


TWO_CALLS = """
solver:
  - {thought: t, tool: stats, input: {values: [2, 4]}}
  - {thought: t, final: x}
"""


def test_a_python_tool_runs_sandboxed_and_its_bug_is_an_observation(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[stats]"), "t.yaml": STATS})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: compute, tool: stats, input: {values: [1, 2, 6]}}
          - {thought: and none, tool: stats, input: {values: []}}
          - {thought: "empty input broke it; I know the first", final: "mean 3, spread 5"}
        """,
    )
    assert ran.result.ok, ran.result.error
    first, second = ran.of("tool.result")
    assert (first.data["status"], first.data["output"]) == ("ok", {"mean": 3, "spread": 5})
    assert first.data["stdout"] == "values: 3\n"  # what it printed goes to the trace
    assert second.data["status"] == "error"
    assert second.data["error"].startswith("StatisticsError: mean requires at least one")


def test_a_shell_tool_gets_its_input_as_one_argument_never_through_a_shell(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[shout]"), "t.yaml": ECHO})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: t, tool: shout, input: {text: "$(id); rm -rf /tmp"}}
          - {thought: t, final: done}
        """,
    )
    (result,) = ran.of("tool.result")
    # printf got the text as one operand and printed it: no shell saw it, nothing ran
    assert result.data["status"] == "ok"
    assert result.data["output"] == {"stdout": "$(id); rm -rf /tmp", "exit_code": 0}


def test_an_entrypoint_tool_imports_from_its_allowed_path(write_specs: WriteSpecs) -> None:
    root = write_specs(
        **{
            "a.yaml": agent(tools="[slug]"),
            "t.yaml": IMPORTED,
            "lib__sluggy.py": "def slug(title):\n    return '-'.join(title.lower().split())\n",
        }
    )
    folder = readable_by_all(root)
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: t, tool: slug, input: {title: "Hello Sandboxed World"}}
          - {thought: t, final: ok}
        """,
    )
    (result,) = ran.of("tool.result")
    assert (result.data["status"], result.data["output"]) == ("ok", "hello-sandboxed-world")


@pytest.mark.parametrize("backend", ["nsjail", "bwrap"])
def test_each_backend_runs_the_tool(write_specs: WriteSpecs, backend: str) -> None:
    spec = STATS.replace("timeout_s: 5}", "timeout_s: 5, backend: " + backend + "}")
    folder = write_specs(**{"a.yaml": agent(tools="[stats]"), "t.yaml": spec})
    ran = run_specs(
        folder,
        TWO_CALLS,
    )
    (result,) = ran.of("tool.result")
    assert result.data["output"] == {"mean": 3, "spread": 2}


def test_the_none_backend_refuses_unless_unsafe(write_specs: WriteSpecs) -> None:
    spec = STATS.replace("timeout_s: 5}", "timeout_s: 5, backend: none}")
    folder = write_specs(**{"a.yaml": agent(tools="[stats]"), "t.yaml": spec})
    ran = run_specs(
        folder,
        TWO_CALLS,
    )
    (result,) = ran.of("tool.result")
    assert result.data["status"] == "error"
    assert "'none' sandbox, which isolates nothing" in result.data["error"]
    spec = spec.replace("backend: none", "backend: none, unsafe: true")
    unsafe = write_specs(**{"a.yaml": agent(tools="[stats]"), "t.yaml": spec})
    ran = run_specs(
        unsafe,
        TWO_CALLS,
    )
    assert ran.of("tool.result")[0].data["output"] == {"mean": 3, "spread": 2}
