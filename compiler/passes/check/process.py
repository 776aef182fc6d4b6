"""Crew shape: the process, its manager and task order agree with each other."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.diagnostics import Diagnostic, error
from compiler.symbols import Program, SpecEntry
from specs import Crew
from specs.source import DataPath


def check_process(program: Program) -> Iterator[Diagnostic]:
    for name, entry in program.crews.items():
        yield from _crew(entry, program.task_deps.get(name, {}))
        if not entry.lost("spec", "inputs"):
            yield from _inputs(entry, program)


def _crew(entry: SpecEntry, deps: Mapping[str, tuple[str, ...]]) -> Iterator[Diagnostic]:
    crew = entry.model
    assert isinstance(crew, Crew)
    spec = crew.spec
    if spec.process == "hierarchical" and spec.manager is None:
        yield error(
            "K4010",
            f"crew '{crew.metadata.name}' is hierarchical but has no manager",
            entry.doc.locate(("spec", "process")),
            "add 'manager: <agent>' naming the agent that delegates the tasks",
        )
    if spec.process != "hierarchical" and spec.manager is not None:
        yield error(
            "K4010",
            f"crew '{crew.metadata.name}' names a manager but its process is '{spec.process}'",
            entry.doc.locate(("spec", "manager"), key=True),
            "set 'process: hierarchical', or remove the manager",
        )
    if spec.process != "sequential":
        return
    position = {t.name: i for i, t in enumerate(spec.tasks)}
    for i, task in enumerate(spec.tasks):
        for dep in deps.get(task.name, ()):
            if position.get(dep, -1) > i:
                where = ("depends_on",) if task.depends_on is not None else ("prompt",)
                yield error(
                    "K4010",
                    f"task '{task.name}' of sequential crew '{crew.metadata.name}' "
                    f"depends on '{dep}', which runs after it",
                    entry.doc.locate(("spec", "tasks", i, *where)),
                    "a sequential crew runs its tasks in the order written: move "
                    f"'{dep}' before '{task.name}', or use 'process: parallel'",
                )


def _inputs(entry: SpecEntry, program: Program) -> Iterator[Diagnostic]:
    """Each agent a crew runs gets its inputs from the crew: every required one must exist."""
    crew = entry.model
    assert isinstance(crew, Crew)
    declared = crew.spec.inputs
    runs: list[tuple[DataPath, str]] = [
        (("spec", "tasks", i, "agent"), t.agent) for i, t in enumerate(crew.spec.tasks)
    ]
    if crew.spec.manager is not None:
        runs.append((("spec", "manager"), crew.spec.manager))
    for path, agent_name in runs:
        if agent_name not in program.agents:
            continue  # already reported by resolve
        for input_name, spec in sorted(program.agent(agent_name).spec.inputs.items()):
            if spec.is_required and input_name not in declared:
                yield error(
                    "K4011",
                    f"agent '{agent_name}' needs input '{input_name}', "
                    f"which crew '{crew.metadata.name}' does not declare",
                    entry.doc.locate(path),
                    f"declare it under the crew's spec.inputs: '{input_name}: {{type: "
                    f"{spec.type}}}', or give the agent's input a default",
                )
