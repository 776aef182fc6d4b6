"""Dependency cycles: crew tasks waiting on each other, agents delegating in a ring."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import networkx as nx

from compiler.diagnostics import Diagnostic, error
from compiler.symbols import Program
from specs import Crew


def check_cycles(program: Program) -> Iterator[Diagnostic]:
    for name, entry in program.crews.items():
        crew = entry.model
        assert isinstance(crew, Crew)
        index = {t.name: i for i, t in enumerate(crew.spec.tasks)}
        for cycle in _cycles(program.task_deps.get(name, {})):
            first = index[cycle[0]]
            where = "depends_on" if crew.spec.tasks[first].depends_on is not None else "prompt"
            yield error(
                "K4001",
                f"tasks of crew '{name}' depend on each other in a cycle: "
                + " -> ".join([*cycle, cycle[0]]),
                entry.doc.locate(("spec", "tasks", first, where)),
                "a task can only use the output of tasks that finish before it: "
                "remove one of these dependencies",
            )
    delegation = {n: program.agent(n).spec.delegate_to for n in program.agents}
    for cycle in _cycles(delegation):
        entry = program.agents[cycle[0]]
        yield error(
            "K4001",
            "agents delegate to each other in a cycle: " + " -> ".join([*cycle, cycle[0]]),
            entry.doc.locate(("spec", "delegate_to")),
            "delegation must end somewhere: remove one agent from a delegate_to list",
        )


def _cycles(edges: Mapping[str, tuple[str, ...]]) -> Iterator[list[str]]:
    """Each elementary cycle once, rotated to start at its smallest name, in a stable order."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(edges)
    graph.add_edges_from((src, dst) for src, dsts in edges.items() for dst in dsts if dst in edges)
    found: list[list[str]] = []
    for component in nx.strongly_connected_components(graph):
        sub = graph.subgraph(component)
        if len(component) == 1 and not sub.has_edge(*(next(iter(component)),) * 2):
            continue
        cycle = [u for u, _ in nx.find_cycle(sub)]
        start = cycle.index(min(cycle))
        found.append(cycle[start:] + cycle[:start])
    yield from sorted(found)
