"""Neo4jGraph without a server: what it sends, and what it makes of the answers.

No Neo4j server can be installed on these machines, so :class:`FakeNeo4jDriver` stands in:
it records every query and its parameters, and answers each of the module's queries the
way its Cypher would (a few lines of Python per query). The tests check that

- every query sent is one of the module's constants, and every value (names with quotes,
  backticks, ``}) DETACH DELETE n //``, unicode; namespaces; relation names) travels only
  in the parameters: the query text never changes with the data;
- no constant can take values by formatting, and no code path formats one (a static
  check of the module's source);
- the Python side (hops, limits, mentions, counts, errors) behaves as the conformance
  suite expects. Whether the Cypher itself does what the fake does is for
  ``tests/integration/test_neo4j_live.py`` to show, against a real server.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import neo4j.exceptions
import pytest

import runtime.memory.graph.neo4j as module
from runtime.memory.graph.neo4j import (
    COUNTS,
    DELETE_ENTITIES,
    DELETE_NAMESPACE,
    HOP,
    KNOWN,
    MERGE_ENTITIES,
    MERGE_RELATIONS,
    NAMESPACES,
    QUERIES,
    SCHEMA,
    Neo4jGraph,
)
from runtime.memory.records import (
    Entity,
    MemoryStoreError,
    Relation,
    StoreUnavailable,
    normalise_name,
)
from runtime.memory.registry import StoreSettings

pytestmark = pytest.mark.anyio

HOSTILE = (
    "}) DETACH DELETE n //",
    'O\'Brien "quoted" `ticks`',
    "$namespace {key: 'x'} ${param}",
    "Zoë 東京 \u202e",
    "') RETURN 1 //",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the fake --------------------------------------------------------------------------


@dataclass
class FakeNeo4jDriver:
    """Records ``(query, parameters)`` of every ``tx.run``; answers as the Cypher would."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    nodes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    #: raised by the next ``tx.run``, once
    fail: Exception | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    def session(self, **config: Any) -> FakeSession:
        self.sessions.append(config)
        return FakeSession(self)

    async def close(self) -> None:
        self.closed = True

    async def run(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.sent.append((query, params))
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        answer = ANSWERS.get(query)
        if answer is None:
            raise AssertionError(f"not one of the module's queries: {query!r}")
        return answer(self, params)


@dataclass
class FakeSession:
    driver: FakeNeo4jDriver

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute_read(self, work: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await work(FakeTransaction(self.driver), *args)

    async def execute_write(self, work: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await work(FakeTransaction(self.driver), *args)


@dataclass
class FakeTransaction:
    driver: FakeNeo4jDriver

    async def run(self, query: str, params: dict[str, Any]) -> FakeResult:
        return FakeResult(await self.driver.run(query, params))


@dataclass
class FakeResult:
    rows: list[dict[str, Any]]

    async def data(self) -> list[dict[str, Any]]:
        return self.rows


Answer = Callable[[FakeNeo4jDriver, dict[str, Any]], list[dict[str, Any]]]


def merge_entities(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    for e in p["entities"]:
        node = db.nodes.setdefault(
            (p["namespace"], e["key"]), {"name": e["name"], "type": e["type"]}
        )
        if e["type"] != p["default_type"]:
            node["type"] = e["type"]
    return []


def merge_relations(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    ns = p["namespace"]
    for r in p["relations"]:
        if (ns, r["source_key"]) not in db.nodes or (ns, r["target_key"]) not in db.nodes:
            continue
        key = (ns, r["source_key"], r["relation"], r["target_key"])
        edge = db.edges.get(key)
        if edge is None:
            db.edges[key] = {"count": 1, "ts": r["ts"], "agent": r["agent"], "run_id": r["run_id"]}
        else:
            edge.update(count=edge["count"] + 1, ts=max(edge["ts"], r["ts"]), agent=r["agent"])
            edge["run_id"] = r["run_id"]
    return []


def known(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    ns = p["namespace"]
    return [{"key": k, "name": db.nodes[ns, k]["name"]} for k in p["keys"] if (ns, k) in db.nodes]


def hop(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    ns, frontier, earlier = p["namespace"], set(p["frontier"]), set(p["earlier"])
    rows = []
    for (space, s, name, t), e in db.edges.items():
        if space != ns:
            continue
        touches = (s in frontier and t not in earlier) or (t in frontier and s not in earlier)
        if touches:
            rows.append((s, name, t, e))
    rows.sort(key=lambda r: (-r[3]["ts"], -r[3]["count"], r[0], r[1], r[2]))
    return [
        {
            "source_key": s,
            "source": db.nodes[ns, s]["name"],
            "relation": name,
            "target_key": t,
            "target": db.nodes[ns, t]["name"],
            "agent": e["agent"],
            "run_id": e["run_id"],
            "ts": e["ts"],
        }
        for s, name, t, e in rows[: p["limit"]]
    ]


def delete(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    ns, keys = p["namespace"], p.get("keys")
    gone = {k for (space, k) in db.nodes if space == ns and (keys is None or k in keys)}
    for k in gone:
        del db.nodes[ns, k]
    for edge in [e for e in db.edges if e[0] == ns and (e[1] in gone or e[3] in gone)]:
        del db.edges[edge]
    return [{"deleted": len(gone)}]


def counts(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    ns = p["namespace"]
    entities = sum(1 for space, _ in db.nodes if space == ns)
    return [{"entities": entities, "relations": sum(1 for e in db.edges if e[0] == ns)}]


def namespaces(db: FakeNeo4jDriver, p: dict[str, Any]) -> list[dict[str, Any]]:
    tally: dict[str, int] = {}
    for space, _ in db.nodes:
        tally[space] = tally.get(space, 0) + 1
    return [{"namespace": k, "entities": v} for k, v in tally.items()]


ANSWERS: dict[str, Answer] = {
    **{statement: (lambda db, p: []) for statement in SCHEMA},
    MERGE_ENTITIES: merge_entities,
    MERGE_RELATIONS: merge_relations,
    KNOWN: known,
    HOP: hop,
    DELETE_ENTITIES: delete,
    DELETE_NAMESPACE: delete,
    COUNTS: counts,
    NAMESPACES: namespaces,
}


@pytest.fixture
def driver() -> FakeNeo4jDriver:
    return FakeNeo4jDriver()


@pytest.fixture
def graph(driver: FakeNeo4jDriver) -> Neo4jGraph:
    return Neo4jGraph("bolt://db.example:7687", "neo4j", "pw-not-for-logs", driver=driver)


def rel(source: str, relation: str, target: str, ts: float = 0.0) -> Relation:
    return Relation(source=source, relation=relation, target=target, ts=ts)


# --- what is sent ------------------------------------------------------------------------


async def workload(graph: Neo4jGraph, ns: str) -> None:
    """Every method, with hostile values wherever a value can go."""
    await graph.merge(
        ns,
        [Entity(name=name, type=name) for name in HOSTILE],
        [
            Relation(source=HOSTILE[0], relation=HOSTILE[1], target=HOSTILE[2], agent=HOSTILE[3])
            for _ in range(2)
        ]
        + [Relation(source=HOSTILE[2], relation="knows", target=HOSTILE[4], run_id=HOSTILE[0])],
    )
    assert await graph.match(ns, f"what about {HOSTILE[0]} and {HOSTILE[3]}?")
    assert await graph.neighbourhood(ns, [HOSTILE[0]], depth=3)
    assert await graph.counts(ns) == (len(HOSTILE), 2)
    assert ns in await graph.namespaces()
    assert await graph.delete(ns, [HOSTILE[4]]) == 1
    assert await graph.delete(ns) == len(HOSTILE) - 1


async def test_every_query_sent_is_a_module_constant(
    graph: Neo4jGraph, driver: FakeNeo4jDriver
) -> None:
    await workload(graph, "policy/tenant/user:" + HOSTILE[0])
    sent = {query for query, _ in driver.sent}
    assert all(any(query is constant for constant in QUERIES) for query in sent)
    # the workload reached every query there is
    assert sent == set(QUERIES)


async def test_hostile_values_travel_only_as_parameters(
    graph: Neo4jGraph, driver: FakeNeo4jDriver
) -> None:
    ns = "policy/tenant/user:" + HOSTILE[2]
    await workload(graph, ns)
    parameters = json.dumps([params for _, params in driver.sent], ensure_ascii=False)
    for value in (*HOSTILE, ns, normalise_name(HOSTILE[1])):
        assert value in parameters or json.dumps(value, ensure_ascii=False)[1:-1] in parameters
        for query, _ in driver.sent:
            assert value not in query
    # the relation's name is a property value, never a relationship type
    (merged,) = [p for q, p in driver.sent if q is MERGE_RELATIONS]
    assert merged["relations"][0]["relation"] == "o_brien_quoted_ticks"


async def test_the_schema_is_created_once_before_anything_else(
    graph: Neo4jGraph, driver: FakeNeo4jDriver
) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(graph.counts, "ns")
    queries = [query for query, _ in driver.sent]
    assert queries[: len(SCHEMA)] == list(SCHEMA)
    assert sum(query in SCHEMA for query in queries) == len(SCHEMA)
    assert queries[len(SCHEMA) :] == [COUNTS] * 10


async def test_database_and_close(driver: FakeNeo4jDriver) -> None:
    graph = Neo4jGraph("neo4j://db:7687", "me", "pw", database="memories", driver=driver)
    await graph.counts("ns")
    assert driver.sessions and all(s == {"database": "memories"} for s in driver.sessions)
    await graph.close()
    await graph.close()
    assert driver.closed
    with pytest.raises(MemoryStoreError, match="closed"):
        await graph.counts("ns")


# --- static checks of the module ----------------------------------------------------------

FORMAT_FIELD = re.compile(r"\{[^{}:]*\}|%[sdr(]")


def test_no_query_can_take_values_by_formatting() -> None:
    for query in QUERIES:
        # Cypher's own maps ({namespace: $namespace}) have a colon; format fields do not
        assert not FORMAT_FIELD.search(query), query
    tree = ast.parse(inspect.getsource(module))
    literal = 0
    for node in tree.body:
        # every query constant is one plain string literal: nothing was formatted into it
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value = getattr(module, node.target.id)
            if node.target.id == "SCHEMA":
                assert isinstance(node.value, ast.Tuple)
                assert all(isinstance(e, ast.Constant) for e in node.value.elts)
                literal += len(node.value.elts)
            elif isinstance(value, str) and value in QUERIES:
                assert isinstance(node.value, ast.Constant), node.target.id
                literal += 1
    assert literal == len(QUERIES)


def test_no_code_path_formats_a_query() -> None:
    tree = ast.parse(inspect.getsource(module))
    cypher = re.compile(r"\b(MATCH|MERGE|CREATE|DELETE|RETURN|UNWIND|SET)\b")
    runs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # f-strings are for error messages only
            text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
            assert not cypher.search(text), ast.unparse(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr != "format", ast.unparse(node)
            if node.func.attr == "run":
                runs.append(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            for side in (node.left, node.right):
                assert not (isinstance(side, ast.Constant) and isinstance(side.value, str)), (
                    ast.unparse(node)
                )
    # the one place a query is run passes it through untouched, values apart
    (run,) = runs
    assert ast.unparse(run) == "tx.run(query, params)"
    # and every query given to it is a constant (or a name bound only to constants)
    constants = {name for name in vars(module) if getattr(module, name) in QUERIES}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "_rows":
            query = node.args[1]
            assert isinstance(query, ast.Name), ast.unparse(node)
            assert query.id in constants | {"query"}, ast.unparse(node)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(".execute_write"):
            if node.args and ast.unparse(node.args[0]) == "_rows":
                assert ast.unparse(node.args[1]) == "statement"
        if isinstance(node, ast.For) and ast.unparse(node.target) == "statement":
            assert ast.unparse(node.iter) == "SCHEMA"
        if isinstance(node, ast.Assign) and "query" in ast.unparse(node.targets[0]).split(", "):
            value = node.value
            assert isinstance(value, ast.Tuple) and isinstance(value.elts[0], ast.Name)
            assert value.elts[0].id in constants


def test_labels_and_relationship_type_are_fixed() -> None:
    for query in QUERIES:
        labels = set(re.findall(r":([A-Za-z_]+)\b(?!\s*\$)", query.split("RETURN")[0]))
        assert labels <= {"KilnEntity", "KILN_REL"}, (query, labels)


# --- the Python side, through the fake ---------------------------------------------------


async def test_neighbourhood_takes_one_query_per_hop(
    graph: Neo4jGraph, driver: FakeNeo4jDriver
) -> None:
    await graph.merge(
        "ns",
        [],
        [
            rel("A", "r1", "B", 10),
            rel("B", "r2", "C", 20),
            rel("C", "r3", "D", 30),
            rel("E", "r4", "A", 40),
        ],
    )
    driver.sent.clear()
    found = await graph.neighbourhood("ns", ["a"], depth=2)
    assert [(r.source, r.relation, r.target) for r in found] == [
        ("E", "r4", "A"),
        ("A", "r1", "B"),
        ("B", "r2", "C"),
    ]
    hops = [params for query, params in driver.sent if query is HOP]
    assert [(h["frontier"], h["earlier"]) for h in hops] == [(["a"], []), (["e", "b"], ["a"])]
    # a hop cut by the limit ends the walk
    driver.sent.clear()
    assert len(await graph.neighbourhood("ns", ["A"], depth=5, limit=1)) == 1
    assert [p["limit"] for q, p in driver.sent if q is HOP] == [2]
    assert await graph.neighbourhood("ns", ["A"], depth=0) == []
    assert await graph.neighbourhood("ns", ["  "]) == []


async def test_match_asks_for_the_texts_word_runs_and_keeps_the_longest(
    graph: Neo4jGraph, driver: FakeNeo4jDriver
) -> None:
    await graph.merge("ns", [Entity(name="New York"), Entity(name="New York City")], [])
    driver.sent.clear()
    assert await graph.match("ns", "I love new york city!") == ["New York City"]
    ((query, params),) = driver.sent
    assert query is KNOWN and "new york city" in params["keys"] and "i love" in params["keys"]
    assert await graph.match("ns", " ?! ") == []


async def test_merges_are_one_batch_each(graph: Neo4jGraph, driver: FakeNeo4jDriver) -> None:
    await graph.counts("ns")
    driver.sent.clear()
    await graph.merge(
        "ns",
        [Entity(name=f"e{i}") for i in range(100)],
        [rel(f"e{i}", "next", f"e{i + 1}") for i in range(99)],
    )
    assert [q for q, _ in driver.sent] == [MERGE_ENTITIES, MERGE_RELATIONS]
    assert await graph.counts("ns") == (100, 99)
    driver.sent.clear()
    await graph.merge("ns", [Entity(name="")], [])
    await graph.merge("ns", [Entity(name="only")], [])
    assert [q for q, _ in driver.sent] == [MERGE_ENTITIES]


async def test_namespaces_and_deletes(graph: Neo4jGraph) -> None:
    await graph.merge("a", [Entity(name="x"), Entity(name="y")], [])
    await graph.merge("b", [Entity(name="x")], [])
    assert await graph.namespaces() == {"a": 2, "b": 1}
    assert await graph.delete("a", ["", "   "]) == 0
    assert await graph.delete("a", ["X", "x."]) == 1
    assert await graph.delete("b") == 1
    assert await graph.namespaces() == {"a": 1}


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (neo4j.exceptions.ServiceUnavailable("down; auth pw-not-for-logs"), StoreUnavailable, True),
        (neo4j.exceptions.SessionExpired("gone"), StoreUnavailable, True),
        (neo4j.exceptions.AuthError("pw-not-for-logs is wrong"), StoreUnavailable, False),
        (neo4j.exceptions.TransientError("deadlock"), MemoryStoreError, True),
        (neo4j.exceptions.CypherSyntaxError("bad"), MemoryStoreError, False),
        (ConnectionResetError("reset"), StoreUnavailable, True),
    ],
)
async def test_driver_errors_are_translated(
    graph: Neo4jGraph,
    driver: FakeNeo4jDriver,
    error: Exception,
    kind: type[MemoryStoreError],
    retryable: bool,
) -> None:
    await graph.counts("ns")
    driver.fail = error
    with pytest.raises(kind) as caught:
        await graph.counts("ns")
    assert type(caught.value) is kind
    assert caught.value.retryable is retryable
    assert "bolt://db.example:7687" in str(caught.value)
    assert "pw-not-for-logs" not in str(caught.value)
    assert await graph.counts("ns") == (0, 0)  # and the next call goes through


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def driver_log() -> Iterator[logging.Logger]:
    """The driver's logger as nobody configured it, and as it was again afterwards."""
    log = logging.getLogger(module.DRIVER_LOGGER)
    level = log.level
    log.setLevel(logging.NOTSET)
    try:
        yield log
    finally:
        log.setLevel(level)


async def unreachable(retry_s: float) -> StoreUnavailable:
    """What a merge into a server that is not there raises (the port is closed)."""
    uri = f"bolt://127.0.0.1:{free_port()}"
    graph = Neo4jGraph(uri, "neo4j", "sup3r-secret", retry_s=retry_s, connect_timeout_s=1.0)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await graph.merge("ns", [Entity(name="x")], [])
    finally:
        await graph.close()
    assert caught.value.retryable is True
    assert uri in str(caught.value) and "sup3r-secret" not in str(caught.value)
    return caught.value


async def test_a_server_that_is_not_there_is_unavailable_and_retryable(
    driver_log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # whatever reaches the root logger's handlers
    # retry_s > 0: the driver retries once, and would warn about it
    await unreachable(retry_s=0.2)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] == module.DRIVER_LOGGER and r.levelno >= logging.WARNING
    ]
    assert warnings == []
    captured = capsys.readouterr()
    assert "retried" not in captured.err and "retried" not in captured.out
    assert driver_log.level == logging.ERROR


async def test_the_drivers_logs_stay_for_an_application_that_asked_for_them(
    driver_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    driver_log.setLevel(logging.WARNING)
    await unreachable(retry_s=0.2)
    assert driver_log.level == logging.WARNING
    retries = [r for r in caplog.records if "will be retried" in r.getMessage()]
    assert retries and all(r.name.startswith(module.DRIVER_LOGGER) for r in retries)


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:7474", "bolt://neo4j:sup3r-secret@127.0.0.1:7687", "no uri"]
)
async def test_an_unusable_uri_is_not_retryable(uri: str) -> None:
    graph = Neo4jGraph(uri, "neo4j", "other", retry_s=0.1)
    with pytest.raises(StoreUnavailable) as caught:
        await graph.counts("ns")
    assert caught.value.retryable is False
    assert "sup3r-secret" not in str(caught.value)
    await graph.close()


def test_from_settings(tmp_path: Any) -> None:
    with pytest.raises(StoreUnavailable, match="needs a uri"):
        Neo4jGraph.from_settings(StoreSettings(root=tmp_path))
    graph = Neo4jGraph.from_settings(
        StoreSettings(root=tmp_path, uri="neo4j://user:pw@db:7687", password="pw")
    )
    assert graph.uri == "neo4j://db:7687"
