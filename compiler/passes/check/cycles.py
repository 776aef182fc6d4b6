"""Dependency cycles: crew tasks waiting on each other, agents delegating in a ring."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.diagnostics import Diagnostic, error
from compiler.graphs import cycles
from compiler.locate import inside
from compiler.symbols import Program
from specs import Crew


def check_cycles(program: Program, files: Mapping[str, str]) -> Iterator[Diagnostic]:
    for name, entry in program.crews.items():
        crew = entry.model
        assert isinstance(crew, Crew)
        index = {t.name: i for i, t in enumerate(crew.spec.tasks)}
        for cycle in cycles(program.task_deps.get(name, {})):
            first = index[cycle[0]]
            waits_on = cycle[1] if len(cycle) > 1 else cycle[0]
            written = crew.spec.tasks[first].depends_on
            if written is not None:
                at = written.index(waits_on) if waits_on in written else None
                where = ("depends_on", at) if at is not None else ("depends_on",)
                span = entry.doc.locate(("spec", "tasks", first, *where))
            else:  # inferred from the prompt: point at the reference that makes it wait
                path = ("spec", "tasks", first, "prompt")
                span = inside(entry.doc, files, path, 1, (f"tasks.{waits_on}",))
            yield error(
                "K4001",
                f"tasks of crew '{name}' depend on each other in a cycle: "
                + " -> ".join([*cycle, cycle[0]]),
                span,
                "each task waits for the next one in the cycle, so none can start: "
                "remove one of these dependencies",
            )
    delegation = {n: program.agent(n).spec.delegate_to for n in program.agents}
    for cycle in cycles(delegation):
        entry = program.agents[cycle[0]]
        yield error(
            "K4001",
            "agents delegate to each other in a cycle: " + " -> ".join([*cycle, cycle[0]]),
            entry.doc.locate(("spec", "delegate_to")),
            "delegation must end somewhere: remove one agent from a delegate_to list",
        )
