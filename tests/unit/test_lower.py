"""Lowering crews and agents to execution graphs."""

from __future__ import annotations

from compiler.ir import Graph
from compiler.pipeline import compile_paths
from tests.helpers import EXAMPLES, WriteSpecs


def _graphs(*paths: object) -> dict[str, Graph]:
    result = compile_paths([str(p) for p in paths])
    assert result.ok, result.diagnostics
    return {g.name: g for g in result.graphs}


def _edges(graph: Graph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in graph.edges}


def test_research_crew_runs_its_independent_tasks_in_parallel() -> None:
    crew = _graphs(EXAMPLES / "research-crew")["Crew/research"]
    assert crew.stages == (("research",), ("analyze", "check_sources"), ("write",))
    parallel = {n.task for n in crew.nodes if n.parallel}
    assert parallel == {"analyze", "check_sources"}
    assert crew.node("task.write.agent").stage == 2


def test_a_task_waiting_on_two_tasks_gets_a_join_with_their_bindings() -> None:
    crew = _graphs(EXAMPLES / "research-crew")["Crew/research"]
    join = crew.node("task.write.join")
    assert join.kind == "join"
    into_write = [e for e in crew.edges if e.target == "task.write.agent" and e.kind == "data"]
    names = {b.name for e in into_write for b in e.bindings}
    assert {"tasks.analyze.output", "tasks.check_sources.output", "inputs.topic"} <= names
    assert ("task.analyze.agent", "task.write.join", "data") in _edges(crew)


def test_agent_runs_are_framed_by_memory_and_may_call_their_tools() -> None:
    crew = _graphs(EXAMPLES / "research-crew")["Crew/research"]
    edges = _edges(crew)
    assert ("task.research.memory.read", "task.research.agent", "data") in edges
    assert ("task.research.agent", "task.research.memory.write", "data") in edges
    assert ("task.research.agent", "task.research.tool.http_get", "may_call") in edges
    # the crew's result comes from its `output` task only
    assert {e.source for e in crew.edges if e.target == crew.exit} == {"task.write.agent"}


def test_tools_that_need_approval_are_gated(write_specs: WriteSpecs) -> None:
    root = write_specs(
        **{
            "a.yaml": """
            apiVersion: kiln/v1
            kind: Agent
            metadata: {name: ops}
            spec: {tools: [deploy]}
            ---
            apiVersion: kiln/v1
            kind: Tool
            metadata: {name: deploy}
            spec:
              description: Deploy the service.
              requires_approval: true
              executor: {type: python, code: "def run(): return {}"}
            """
        }
    )
    agent = _graphs(root)["Agent/ops"]
    assert agent.node("approval.deploy").kind == "approval"
    assert ("agent", "approval.deploy", "may_call") in _edges(agent)
    assert ("approval.deploy", "tool.deploy", "gate") in _edges(agent)
    assert ("agent", "tool.deploy", "may_call") not in _edges(agent)


CREW = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: worker}
spec: {}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: boss}
spec: {}
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: team}
spec:
  process: PROCESS
  MANAGER
  tasks:
    - {name: one, agent: worker, prompt: first}
    - {name: two, agent: worker, prompt: second}
    - {name: three, agent: worker, prompt: "third, after {{ tasks.one.output }}"}
"""


def test_sequential_crews_run_tasks_in_written_order(write_specs: WriteSpecs) -> None:
    text = CREW.replace("PROCESS", "sequential").replace("MANAGER", "")
    crew = _graphs(write_specs(**{"c.yaml": text}))["Crew/team"]
    assert crew.stages == (("one",), ("two",), ("three",))
    assert ("task.one.agent", "task.two.agent", "control") in _edges(crew)
    assert ("task.two.agent", "task.three.agent", "control") in _edges(crew)
    assert ("task.one.agent", "task.three.agent", "data") in _edges(crew)
    assert not any(n.parallel for n in crew.nodes)


def test_parallel_crews_infer_dependencies_from_prompts(write_specs: WriteSpecs) -> None:
    text = CREW.replace("PROCESS", "parallel").replace("MANAGER", "")
    crew = _graphs(write_specs(**{"c.yaml": text}))["Crew/team"]
    assert crew.stages == (("one", "two"), ("three",))
    assert {e.source for e in crew.edges if e.target == crew.exit} == {
        "task.two.agent",
        "task.three.agent",
    }


def test_hierarchical_crews_hand_tasks_out_from_the_manager(write_specs: WriteSpecs) -> None:
    text = CREW.replace("PROCESS", "hierarchical").replace("MANAGER", "manager: boss")
    crew = _graphs(write_specs(**{"c.yaml": text}))["Crew/team"]
    manager = crew.node("manager.agent")
    assert manager.attrs["role"] == "manager"
    delegated = {
        e.target for e in crew.edges if e.source == "manager.agent" and e.kind == "delegate"
    }
    assert delegated == {"task.one.agent", "task.two.agent", "task.three.agent"}


def test_every_agent_also_gets_a_graph_of_its_own() -> None:
    graphs = _graphs(EXAMPLES / "research-crew")
    assert set(graphs) == {"Agent/analyst", "Agent/researcher", "Agent/writer", "Crew/research"}
    alone = graphs["Agent/analyst"]
    assert alone.node(alone.entry).kind == "input"
    assert alone.node("agent").attrs["strategy"] == "cot"
