"""The compiler's own graph algorithms agree with networkx on random graphs."""

from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.graphs import cycles, descendants, generations

NODES = [f"t{i}" for i in range(8)]
graphs = st.dictionaries(
    st.sampled_from(NODES), st.lists(st.sampled_from(NODES), max_size=4), min_size=1
)


def _nx(edges: dict[str, list[str]]) -> nx.DiGraph[str]:
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(edges)
    graph.add_edges_from((a, b) for a, bs in edges.items() for b in bs if b in edges)
    return graph


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_cycles_are_real_and_one_per_cyclic_component(edges: dict[str, list[str]]) -> None:
    graph = _nx(edges)
    found = cycles(edges)
    cyclic = [
        c
        for c in nx.strongly_connected_components(graph)
        if len(c) > 1 or graph.has_edge(next(iter(c)), next(iter(c)))
    ]
    assert len(found) == len(cyclic)
    assert (found == []) == nx.is_directed_acyclic_graph(graph)
    for cycle in found:
        assert cycle[0] == min(cycle)
        assert len(set(cycle)) == len(cycle)
        for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            assert graph.has_edge(a, b)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_descendants_match_networkx(edges: dict[str, list[str]]) -> None:
    graph = _nx(edges)
    reach = descendants(edges)
    for node in edges:
        expected = nx.descendants(graph, node)
        if any(
            node in c and (len(c) > 1 or graph.has_edge(node, node))
            for c in nx.strongly_connected_components(graph)
        ):
            expected = expected | {node}
        assert reach[node] == expected


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_generations_match_networkx(edges: dict[str, list[str]]) -> None:
    # edges map a node to what it depends on: reverse them for networkx's generations
    graph = _nx(edges).reverse()
    layers = generations(edges)
    if not nx.is_directed_acyclic_graph(graph):
        assert layers is None
    else:
        assert layers == [sorted(g) for g in nx.topological_generations(graph)]
