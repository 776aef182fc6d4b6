"""The lowered graph as Mermaid or Graphviz DOT, for people who would rather look than read."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from compiler.ir import Edge, Graph, Node

_MERMAID_SHAPES = {
    "input": ("([", "])"),
    "output": ("([", "])"),
    "agent_run": ("[", "]"),
    "tool_call": ("[/", "/]"),
    "memory_read": ("[(", ")]"),
    "memory_write": ("[(", ")]"),
    "approval": ("{", "}"),
    "join": ("((", "))"),
}
_MERMAID_ARROWS = {
    "data": "-->",
    "control": "-.->",
    "may_call": "-.-",
    "gate": "==>",
    "delegate": "==>",
}
_DOT_SHAPES = {
    "input": "oval", "output": "oval", "agent_run": "box", "tool_call": "parallelogram",
    "memory_read": "cylinder", "memory_write": "cylinder", "approval": "diamond", "join": "circle",
}  # fmt: skip
_DOT_STYLES = {
    "data": "solid",
    "control": "dashed",
    "may_call": "dotted",
    "gate": "bold",
    "delegate": "bold",
}


def label(node: Node) -> str:
    """A short human label: what the node does and with which spec."""
    name = node.spec.split("/", 1)[1] if node.spec else ""
    text = {
        "input": "inputs",
        "output": "result",
        "agent_run": _agent_label(node, name),
        "tool_call": f"tool {name}",
        "memory_read": f"recall {name}",
        "memory_write": f"remember {name}",
        "approval": f"approve {name}?",
        "join": "join",
    }[node.kind]
    return text + (" ∥" if node.parallel else "")


def _agent_label(node: Node, name: str) -> str:
    if "graph" in node.attrs:  # a delegate: it runs that agent's own graph
        return f"delegate to {name}"
    if node.attrs.get("role") == "manager":
        return f"manager: {name}"
    return f"{node.task}: {name}" if node.task else name


def _edge_label(edge: Edge) -> str:
    return ", ".join(b.name for b in edge.bindings if b.name.startswith("tasks."))


def _drawn_source(graph: Graph, edge: Edge) -> str:
    """Where a data edge is drawn from: the task that produced the output it carries.

    In the IR a task's output leaves from the last node of its chain (the memory write
    after the agent run, when it remembers): true for the executor, but a reader looks
    for the arrow at the task.
    """
    if edge.kind != "data":
        return edge.source
    source = next((n for n in graph.nodes if n.id == edge.source), None)
    if source is None or source.kind == "agent_run" or source.task is None:
        return edge.source
    if f"tasks.{source.task}.output" not in {b.name for b in edge.bindings}:
        return edge.source  # a join gathering other tasks' outputs for this one
    producer = next(
        (n for n in graph.nodes if n.kind == "agent_run" and n.task == source.task), None
    )
    return producer.id if producer is not None else edge.source


def mermaid(graphs: Iterable[Graph]) -> str:
    out = ["flowchart TD"]
    for i, g in enumerate(graphs):
        ident = _ident_factory(i, g)
        out.append(f'  subgraph {ident("")}["{_quote(g.name)}"]')
        out.append("    direction TB")  # a subgraph otherwise takes its own direction
        for node in g.nodes:
            open_, close = _MERMAID_SHAPES[node.kind]
            out.append(f'    {ident(node.id)}{open_}"{_quote(label(node))}"{close}')
        for edge in g.edges:
            arrow = _MERMAID_ARROWS[edge.kind]
            text = _edge_label(edge)
            middle = f'{arrow}|"{_quote(text)}"|' if text else arrow
            out.append(f"    {ident(_drawn_source(g, edge))} {middle} {ident(edge.target)}")
        out.append("  end")
    return "\n".join(out) + "\n"


def dot(graphs: Iterable[Graph]) -> str:
    out = ["digraph kiln {", "  rankdir=TB;", '  node [fontname="Helvetica"];']
    for i, g in enumerate(graphs):
        ident = _ident_factory(i, g)
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f'    label="{_quote(g.name)}";')
        for node in g.nodes:
            out.append(
                f'    {ident(node.id)} [label="{_quote(label(node))}", '
                f"shape={_DOT_SHAPES[node.kind]}];"
            )
        for edge in g.edges:
            attrs = f"style={_DOT_STYLES[edge.kind]}"
            if text := _edge_label(edge):
                attrs += f', label="{_quote(text)}"'
            if edge.kind == "may_call":
                attrs += ", arrowhead=none"
            out.append(f"    {ident(_drawn_source(g, edge))} -> {ident(edge.target)} [{attrs}];")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def _ident_factory(index: int, graph: Graph) -> Callable[[str], str]:
    """Identifiers both languages accept, unique however node ids are spelled."""
    ids = {node.id: f"g{index}n{i}" for i, node in enumerate(graph.nodes)}
    return lambda node_id: ids[node_id] if node_id else f"g{index}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")
