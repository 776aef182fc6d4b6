"""The graph conformance suite against a real Neo4j server, when one is given.

Set ``NEO4J_URI`` (``bolt://localhost:7687``), ``NEO4J_USER`` (``neo4j`` by default) and
``NEO4J_PASSWORD`` to run it. Without ``NEO4J_URI`` the whole module is skipped: no Neo4j
server can be installed on the machines this project is built on (it is not in Debian or
PyPI), so here ``tests/unit/test_neo4j_cypher.py`` checks the backend against a fake
driver instead.

The tests are those of ``tests/conformance/test_graph_stores.py``, unedited; this module
only gives them a Neo4j ``backend``. Each test writes under its own policy name and
deletes what it wrote, so a shared server is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.memory.registry import StoreSettings
from tests.conformance.test_graph_stores import (
    Backend,
    Space,
    anyio_backend,
    graph,
    space,
    test_a_hub_is_cut_at_limit,
    test_a_relation_creates_its_ends_and_unstamped_ones_get_now,
    test_a_relation_merged_again_is_counted_not_duplicated,
    test_close_twice_is_fine,
    test_concurrent_merges_from_many_tasks_are_exact,
    test_concurrent_processes_write_one_store_exactly,
    test_counts_and_namespaces,
    test_data_survives_a_process_restart,
    test_delete_a_whole_namespace,
    test_delete_names_takes_their_relations,
    test_entities_merge_by_normalised_name,
    test_hostile_names_are_data,
    test_match_among_thousands_of_entities,
    test_match_finds_known_names_as_whole_words,
    test_names_that_normalise_to_nothing_are_dropped,
    test_neighbourhood_grows_with_depth,
    test_neighbourhood_of_several_names_and_edge_cases,
    test_neighbourhood_stops_at_limit,
    test_neighbourhood_within_a_hop_is_most_recent_first,
    test_tenants_never_see_each_other,
    test_the_store_is_a_graph_store,
    test_two_stores_on_one_place_see_each_others_writes,
)

URI = os.environ.get("NEO4J_URI", "")
if not URI:
    pytest.skip(
        "NEO4J_URI is not set: no Neo4j server can be installed on these machines, so the "
        "live graph conformance run needs one given (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.anyio

__all__ = [  # the suite's tests and fixtures, collected here against Neo4j
    "anyio_backend",
    "graph",
    "space",
    "test_a_hub_is_cut_at_limit",
    "test_a_relation_creates_its_ends_and_unstamped_ones_get_now",
    "test_a_relation_merged_again_is_counted_not_duplicated",
    "test_close_twice_is_fine",
    "test_concurrent_merges_from_many_tasks_are_exact",
    "test_concurrent_processes_write_one_store_exactly",
    "test_counts_and_namespaces",
    "test_data_survives_a_process_restart",
    "test_delete_a_whole_namespace",
    "test_delete_names_takes_their_relations",
    "test_entities_merge_by_normalised_name",
    "test_hostile_names_are_data",
    "test_match_among_thousands_of_entities",
    "test_match_finds_known_names_as_whole_words",
    "test_names_that_normalise_to_nothing_are_dropped",
    "test_neighbourhood_grows_with_depth",
    "test_neighbourhood_of_several_names_and_edge_cases",
    "test_neighbourhood_stops_at_limit",
    "test_neighbourhood_within_a_hop_is_most_recent_first",
    "test_tenants_never_see_each_other",
    "test_the_store_is_a_graph_store",
    "test_two_stores_on_one_place_see_each_others_writes",
]


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    settings = StoreSettings(
        root=tmp_path,
        uri=URI,
        user=os.environ.get("NEO4J_USER", "neo4j"),
        password=os.environ.get("NEO4J_PASSWORD", ""),
    )
    return Backend("neo4j", settings)


@pytest.fixture(autouse=True)
async def forget_what_the_test_wrote(backend: Backend, space: Space) -> AsyncIterator[None]:
    yield
    store = backend.open()
    try:
        for key in await store.namespaces():
            if space.owns(key):
                await store.delete(key)
    finally:
        await store.close()
