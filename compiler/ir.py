"""The execution graph IR: what the runtime executes.

A :class:`Graph` is built for every agent (``Agent/<name>``, the agent run on its own) and
every crew (``Crew/<name>``). Nodes are steps the runtime performs; edges say what each
step waits for and, for ``data`` edges, which values flow into the consumer's template
scope. Everything here is frozen; spans ride along for error messages but never take part
in equality or in the plan's hashes.

Node kinds:

- ``input``: the run's inputs (``inputs.*``) enter here; ``output``: the run's result.
- ``memory_read`` / ``memory_write``: recall before an agent run, remember after it.
- ``agent_run``: one agent strategy loop (react, cot, tot) with its model and limits.
- ``tool_call``: a tool the agent run may call, any number of times within its limits.
- ``approval``: a human gate in front of a tool whose spec says ``requires_approval``.
- ``join``: waits for all its predecessors and merges their bindings.

Edge kinds: ``data`` (wait, and bind values), ``control`` (wait only: sequential order),
``may_call`` (an agent run may invoke the target during its loop), ``gate`` (approval
before a tool call), ``delegate`` (a manager or delegating agent may hand work to the
target, which runs the target agent's own graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from specs.source import Span

NodeKind = Literal[
    "input", "output", "memory_read", "memory_write", "agent_run", "tool_call", "approval", "join"
]
EdgeKind = Literal["data", "control", "may_call", "gate", "delegate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """A value flowing along a data edge: the source node's output at ``path``, bound in the
    target's template scope as ``name`` (``tasks.research.output``, ``inputs.topic``)."""

    name: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    id: str
    kind: NodeKind
    spec: str | None = None
    task: str | None = None
    stage: int = 0
    parallel: bool = False
    attrs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "spec": self.spec,
            "task": self.task,
            "stage": self.stage,
            "parallel": self.parallel,
            "attrs": dict(self.attrs),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    bindings: tuple[Binding, ...] = ()

    def sort_key(self) -> tuple[str, str, str]:
        return (self.source, self.target, self.kind)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "bindings": [{"name": b.name, "path": list(b.path)} for b in self.bindings],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """One executable graph. ``stages`` lists the task groups in order: a group's tasks
    have no dependency on each other and run concurrently."""

    name: str
    entry: str
    exit: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    stages: tuple[tuple[str, ...], ...] = ()

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "exit": self.exit,
            "nodes": {n.id: n.as_json() for n in self.nodes},
            "edges": [e.as_json() for e in sorted(self.edges, key=Edge.sort_key)],
            "stages": [list(s) for s in self.stages],
        }
