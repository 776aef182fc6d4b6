"""The few graph algorithms the compiler needs, over ``{node: successors}`` mappings.

Kept here instead of using networkx: importing networkx costs more than the whole of
``kiln validate`` is allowed to take, and specs make graphs of tens of nodes. All of these
are iterative (no recursion limit) and deterministic (nodes visited in sorted order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Edges = Mapping[str, Iterable[str]]


def _successors(edges: Edges) -> dict[str, list[str]]:
    """Successors of every node, sorted, restricted to nodes that are keys of ``edges``."""
    return {n: sorted({m for m in edges[n] if m in edges}) for n in sorted(edges)}


def cycles(edges: Edges) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each rotated to start at its
    smallest node; sorted. A self-loop is a cycle of one."""
    succ = _successors(edges)
    found: list[list[str]] = []
    for component in _components(succ):
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in succ[start]:
            continue
        found.append(_cycle_through(start, succ, members))
    return sorted(found)


def _cycle_through(start: str, succ: Mapping[str, list[str]], members: set[str]) -> list[str]:
    """A simple cycle from ``start`` back to it, inside one strongly connected component."""
    parent: dict[str, str] = {}
    queue = [start]
    for node in queue:  # breadth first: the shortest way back to start
        for nxt in succ[node]:
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return list(reversed(path))
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return [start]  # unreachable for a real component


def _components(succ: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in succ:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = succ[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def descendants(edges: Edges) -> dict[str, set[str]]:
    """Every node reachable from each node (not counting itself unless on a cycle)."""
    succ = _successors(edges)
    reach: dict[str, set[str]] = {}
    for start in succ:
        seen: set[str] = set()
        todo = list(succ[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(succ[node])
        reach[start] = seen
    return reach


def generations(edges: Edges) -> list[list[str]] | None:
    """Nodes in layers: each layer depends only on earlier ones (``edges`` maps a node to what
    it depends on). ``None`` when there is a cycle."""
    succ = _successors(edges)
    waiting = {n: len(deps) for n, deps in succ.items()}
    users: dict[str, list[str]] = {n: [] for n in succ}
    for node, deps in succ.items():
        for dep in deps:
            users[dep].append(node)
    layer = sorted(n for n, count in waiting.items() if count == 0)
    layers: list[list[str]] = []
    while layer:
        layers.append(layer)
        ready: list[str] = []
        for node in layer:
            for user in users[node]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    ready.append(user)
        layer = sorted(ready)
    return layers if sum(map(len, layers)) == len(succ) else None
