"""Pass 6, lower: the resolved program to execution graphs (see :mod:`compiler.ir`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from compiler.graphs import generations
from compiler.hashing import Fingerprint
from compiler.ir import Binding, Edge, EdgeKind, Graph, Node, NodeKind
from compiler.reach import tools_of
from compiler.symbols import Program, SpecEntry, TemplateSite
from specs import Crew
from specs.source import Span


def lower(program: Program, prints: Mapping[str, Fingerprint]) -> tuple[Graph, ...]:
    """One graph per agent and per crew, sorted by name."""
    hashes = {key: fp.hash for key, fp in prints.items()}
    graphs = [_agent_graph(program, hashes, name) for name in sorted(program.agents)]
    graphs += [_crew_graph(program, hashes, name) for name in sorted(program.crews)]
    return tuple(graphs)


@dataclass(slots=True)
class _Builder:
    program: Program
    hashes: Mapping[str, str]
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def node(
        self,
        node_id: str,
        kind: NodeKind,
        *,
        spec: str | None = None,
        task: str | None = None,
        span: Span | None = None,
        **attrs: Any,
    ) -> str:
        if spec is not None:
            attrs["spec_hash"] = self.hashes[spec]
        self.nodes[node_id] = Node(
            id=node_id, kind=kind, spec=spec, task=task, attrs=attrs, span=span
        )
        return node_id

    def edge(self, source: str, target: str, kind: EdgeKind, *bindings: Binding) -> None:
        self.edges.append(Edge(source=source, target=target, kind=kind, bindings=bindings))

    def agent_run(
        self,
        prefix: str,
        agent_name: str,
        task: str | None,
        *,
        shared: tuple[str, str | None] | None = None,
        **attrs: Any,
    ) -> tuple[str, str]:
        """The nodes of one agent run; returns (head, tail): where work enters and leaves.
        ``shared`` is (crew, policy) for a crew with ``shared_memory``: the run reads and
        writes the crew's namespace, under the crew's policy when it names one."""
        entry = self.program.agents[agent_name]
        spec = self.program.agent(agent_name).spec
        run = self.node(
            f"{prefix}agent",
            "agent_run",
            spec=entry.key,
            task=task,
            span=entry.doc.span,
            agent=agent_name,
            model=spec.model,
            fallbacks=list(spec.fallbacks),
            strategy=spec.strategy,
            **attrs,
        )
        head = tail = run
        memory = spec.memory
        sharing: dict[str, Any] = {}
        if shared is not None:
            memory = shared[1] or memory
            sharing = {"crew": shared[0]}
        if memory is not None and memory in self.program.policies:
            policy = self.program.policies[memory].key
            head = self.node(
                f"{prefix}memory.read", "memory_read", spec=policy, task=task, **sharing
            )
            tail = self.node(
                f"{prefix}memory.write", "memory_write", spec=policy, task=task, **sharing
            )
            self.edge(head, run, "data", Binding(name="memory"))
            self.edge(run, tail, "data", Binding(name="answer"))
        for tool_name, how in tools_of(self.program, agent_name):
            tool = self.program.tools[tool_name]
            call = self.node(
                f"{prefix}tool.{tool_name}", "tool_call", spec=tool.key, task=task, via=how
            )
            if self.program.tool(tool_name).spec.requires_approval:
                gate = self.node(
                    f"{prefix}approval.{tool_name}", "approval", spec=tool.key, task=task
                )
                self.edge(run, gate, "may_call")
                self.edge(gate, call, "gate")
            else:
                self.edge(run, call, "may_call")
        for other in spec.delegate_to:
            if other in self.program.agents:
                target = self.node(
                    f"{prefix}delegate.{other}",
                    "agent_run",
                    spec=self.program.agents[other].key,
                    task=task,
                    agent=other,
                    graph=f"Agent/{other}",
                )
                self.edge(run, target, "delegate")
        return head, tail

    def graph(self, name: str, entry: str, exit: str, stages: tuple[tuple[str, ...], ...]) -> Graph:
        nodes = tuple(sorted(self.nodes.values(), key=lambda n: n.id))
        return Graph(
            name=name,
            entry=entry,
            exit=exit,
            nodes=nodes,
            edges=tuple(sorted(set(self.edges), key=Edge.sort_key)),
            stages=stages,
        )


def _input_bindings(names: set[str]) -> tuple[Binding, ...]:
    return tuple(Binding(name=f"inputs.{n}", path=(n,)) for n in sorted(names))


def _agent_graph(program: Program, hashes: Mapping[str, str], name: str) -> Graph:
    b = _Builder(program, hashes)
    spec = program.agent(name).spec
    start = b.node("input", "input", inputs=sorted(spec.inputs))
    head, tail = b.agent_run("", name, None)
    end = b.node("output", "output")
    b.edge(start, head, "data", *_input_bindings(set(spec.inputs)))
    b.edge(tail, end, "data", Binding(name="output"))
    return b.graph(f"Agent/{name}", start, end, ())


def _crew_graph(program: Program, hashes: Mapping[str, str], name: str) -> Graph:
    entry = program.crews[name]
    crew = program.crew(name)
    deps = program.task_deps.get(name, {})
    b = _Builder(program, hashes)
    start = b.node(
        "input",
        "input",
        inputs=sorted(crew.spec.inputs),
        process=crew.spec.process,
        memory=crew.spec.memory,
        shared_memory=crew.spec.shared_memory,
    )
    order = _task_order(crew, deps)
    stage_of = {t: i for i, group in enumerate(order) for t in group}
    crowded = {t for group in order if len(group) > 1 for t in group}
    ends: dict[str, tuple[str, str]] = {}
    for index, task in enumerate(crew.spec.tasks):
        if task.agent not in program.agents:
            continue
        ends[task.name] = b.agent_run(
            f"task.{task.name}.",
            task.agent,
            task.name,
            shared=(name, crew.spec.memory) if crew.spec.shared_memory else None,
            prompt=crew.spec.prompt_of(index),
            output_schema=task.output_schema,
        )
    manager = None
    boss = program.manager(name)
    if boss is not None:
        manager, _ = b.agent_run("manager.", boss, None, role="manager")
        b.edge(start, manager, "data", *_input_bindings(set(crew.spec.inputs)))
    for i, task in enumerate(crew.spec.tasks):
        if task.name not in ends:
            continue
        head = ends[task.name][0]
        used = _inputs_read(program, entry, i)
        if manager is not None:
            b.edge(manager, head, "delegate")
        waits = [d for d in deps.get(task.name, ()) if d in ends]
        target = head
        if len(waits) > 1:
            target = b.node(f"task.{task.name}.join", "join", task=task.name)
            b.edge(
                target, head, "data", *(Binding(name=f"tasks.{d}.output") for d in sorted(waits))
            )
        for dep in sorted(waits):
            b.edge(ends[dep][1], target, "data", Binding(name=f"tasks.{dep}.output"))
        if used or not waits:
            b.edge(start, head, "data", *_input_bindings(used))
        if crew.spec.process == "sequential" and i > 0:
            previous = crew.spec.tasks[i - 1].name
            if previous in ends and previous not in waits:
                b.edge(ends[previous][1], head, "control")
    end = b.node("output", "output")
    for task_name in _result_tasks(crew, deps, ends):
        b.edge(ends[task_name][1], end, "data", Binding(name=f"tasks.{task_name}.output"))
    _mark_stages(b, stage_of, crowded)
    return b.graph(f"Crew/{name}", start, end, order)


def _inputs_read(program: Program, entry: SpecEntry, index: int) -> set[str]:
    parsed = program.templates.get(
        TemplateSite(spec=entry.key, path=("spec", "tasks", index, "prompt"))
    )
    refs = parsed.references if parsed is not None else ()
    return {str(r.path[1]) for r in refs if r.path[0] == "inputs" and len(r.path) > 1}


def _task_order(crew: Crew, deps: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Stages of tasks: a sequential crew runs one task a stage, in order; others by depth."""
    names = [t.name for t in crew.spec.tasks]
    if crew.spec.process == "sequential":
        return tuple((n,) for n in dict.fromkeys(names))
    layers = generations({n: deps.get(n, ()) for n in names})
    if layers is None:
        return tuple((n,) for n in dict.fromkeys(names))  # reported by check; never lowered
    return tuple(tuple(layer) for layer in layers)


def _result_tasks(
    crew: Crew, deps: Mapping[str, tuple[str, ...]], ends: Mapping[str, object]
) -> list[str]:
    """The task whose output is the crew's result: ``output``, else every task no one waits on."""
    if crew.spec.output is not None:
        return [crew.spec.output] if crew.spec.output in ends else []
    if crew.spec.process == "sequential":
        return [crew.spec.tasks[-1].name] if crew.spec.tasks[-1].name in ends else []
    waited = {d for ds in deps.values() for d in ds}
    return sorted(t.name for t in crew.spec.tasks if t.name not in waited and t.name in ends)


def _mark_stages(b: _Builder, stage_of: Mapping[str, int], crowded: set[str]) -> None:
    for node_id, node in list(b.nodes.items()):
        if node.task is None:
            continue
        b.nodes[node_id] = replace(
            node, stage=stage_of.get(node.task, 0), parallel=node.task in crowded
        )
