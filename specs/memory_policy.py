"""The ``MemoryPolicy`` kind: which stores an agent remembers with, and how."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from specs._common import Metadata, Model, Template


class ShortTermMemory(Model):
    #: ``sqlite`` (the default) keeps a session's turns across kiln processes on one
    #: machine; ``inprocess`` only within one process; ``redis`` across machines
    backend: Literal["sqlite", "inprocess", "redis"] = "sqlite"
    #: the sqlite file (relative to the spec's file; default ``short_term.db`` in the
    #: memory folder)
    path: str | None = None
    #: the Redis server (default ``redis://127.0.0.1:6379/0``)
    url: str | None = None
    max_messages: int = Field(50, ge=1, le=100_000)
    max_tokens: int | None = Field(None, ge=1, le=100_000_000)
    summarize: bool = True
    ttl_s: int | None = Field(None, ge=1, le=315_360_000)


class VectorMemory(Model):
    backend: Literal["chroma", "chroma-server"] = "chroma"
    path: str | None = None
    url: str | None = None
    #: ``default``, ``hashing/<dim>``, ``sentence``, ``litellm/<model>``; unset: the
    #: project's (``$KILN_EMBEDDER``, else ``default``). Stored with each collection.
    embedder: str | None = None
    collection: str | None = None


class GraphMemory(Model):
    backend: Literal["networkx", "neo4j"] = "networkx"
    path: str | None = None
    uri: str | None = None
    user: str | None = None
    password: str | None = None
    #: how many hops around the entities a query mentions are recalled
    depth: int = Field(1, ge=1, le=3)
    #: at most this many relations are recalled
    limit: int = Field(20, ge=1, le=500)


class EpisodicMemory(Model):
    enabled: bool = True
    top_k: int = Field(3, ge=1, le=100)
    #: only past runs that ended so (all when unset)
    status: tuple[
        Literal["succeeded", "failed", "limit_exceeded", "loop_detected", "cancelled"], ...
    ] | None = None
    #: only past runs that started within this many days
    within_days: float | None = Field(None, gt=0, le=36_500)


class RetrievalWeights(Model):
    relevance: float = Field(0.5, ge=0)
    recency: float = Field(0.3, ge=0)
    importance: float = Field(0.2, ge=0)


class Retrieval(Model):
    top_k: int = Field(5, ge=1, le=200)
    min_score: float = Field(0.0, ge=0, le=1)
    weights: RetrievalWeights = Field(default_factory=RetrievalWeights)
    recency_half_life_days: float = Field(30, gt=0)


class Injection(Model):
    position: Literal["system", "before_input"] = "system"
    template: Template | None = None


class MemoryPolicySpec(Model):
    scope: Literal["agent", "user", "session", "crew"] = "agent"
    short_term: ShortTermMemory | None = Field(default_factory=ShortTermMemory)
    vector: VectorMemory | None = None
    graph: GraphMemory | None = None
    episodic: EpisodicMemory | None = None
    remember: tuple[Literal["final_answers", "tool_observations", "user_facts"], ...] = (
        "final_answers",
    )
    ttl_s: int | None = Field(None, ge=1, le=315_360_000)
    retrieval: Retrieval = Field(default_factory=Retrieval)
    inject: Injection = Field(default_factory=Injection)


class MemoryPolicy(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["MemoryPolicy"]
    metadata: Metadata
    spec: MemoryPolicySpec = Field(default_factory=MemoryPolicySpec)
