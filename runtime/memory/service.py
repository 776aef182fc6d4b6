"""Memory policies at work: what a run recalls before an agent thinks, and what it
remembers after the agent answers.

One :class:`MemoryService` serves every run of a prepared program. It opens each store a
policy names once (lazily, through :mod:`runtime.memory.registry`), works out the
:class:`~runtime.memory.records.Namespace` of every read and write from the policy's scope
and :class:`Who` the run is for, and reports what it did as ``memory.read`` and
``memory.write`` events. A read that finds nothing says why: the store is empty, every
memory scored under ``min_score``, or the memories that exist belong to other scopes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runtime.memory.calls import Ask, extract, summariser, turn_message
from runtime.memory.inject import render
from runtime.memory.records import (
    DEFAULT_TENANT,
    Memory,
    MemoryKind,
    Namespace,
    Turn,
    plural,
)
from runtime.memory.scoring import Scored, Weights, rank
from runtime.memory.stores import Stores

if TYPE_CHECKING:
    from compiler.symbols import Program
    from runtime.llm.types import Message
    from runtime.memory.extract import Extraction
    from runtime.memory.protocols import VectorStore
    from specs.memory_policy import MemoryPolicySpec

__all__ = ["Ask", "MemoryService", "Observation", "Recall", "Who"]

#: how many candidates a vector search fetches per memory it keeps, so recency and
#: importance can reorder more than the nearest few
_OVERFETCH = 4
_IMPORTANCE: Mapping[MemoryKind, float] = {
    "answer": 0.5,
    "observation": 0.3,
    "fact": 0.8,
    "summary": 0.4,
    "note": 0.5,
}
_TEXT_LIMIT = 4_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Who:
    """Who a run is for. ``tenant`` is the user (``kiln run --user``): no run ever reads
    another tenant's memories. ``session`` is the conversation (``--session``)."""

    tenant: str = DEFAULT_TENANT
    session: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """A tool result an agent saw, for ``remember: [tool_observations]``."""

    tool: str
    input: Any
    output: Any

    @property
    def text(self) -> str:
        args = json.dumps(self.input, ensure_ascii=False, default=str, sort_keys=True)
        out = self.output if isinstance(self.output, str) else json.dumps(
            self.output, ensure_ascii=False, default=str
        )
        return f"{self.tool}({args}) returned {out}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Recall:
    """What a read found: earlier turns (as chat messages), the text to inject and where,
    and every item with its store and score, for the ``memory.read`` event."""

    namespace: str
    history: tuple[Message, ...] = ()
    block: str = ""
    position: Literal["system", "before_input"] = "system"
    items: tuple[dict[str, Any], ...] = ()
    stores: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        """Why nothing was recalled, store by store; ``None`` when something was."""
        if self.items or self.history:
            return None
        reasons = [f"{name}: {info['reason']}" for name, info in self.stores.items()]
        return "; ".join(reasons) or "the policy names no store"

    def as_json(self, policy: str) -> dict[str, Any]:
        """What ``kiln memory query --json`` and the server's memory query answer."""
        return {
            "policy": policy,
            "namespace": self.namespace,
            "items": list(self.items),
            "turns": list(self.history),
            "stores": dict(self.stores),
            "reason": self.reason,
        }


class MemoryService:
    """Recall and remember for the agents of one program, by their memory policies."""

    def __init__(
        self,
        program: Program,
        *,
        root: Path | str | None = None,
        runs_db: Path | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.program = program
        #: the stores the program's policies name, opened when first used
        self.stores = Stores(program, root=root, runs_db=runs_db)
        self.clock = clock

    # -- namespaces -------------------------------------------------------------------------

    def namespace(
        self, policy: str, agent: str, who: Who, *, run_id: str = "", crew: str | None = None
    ) -> Namespace:
        """Where ``agent`` reads and writes under ``policy`` in a run for ``who``. A crew
        with ``shared_memory`` passes its name as ``crew``: its agents share one namespace."""
        scope = self.program.policy(policy).spec.scope
        if crew is not None:
            return Namespace(policy=policy, tenant=who.tenant, scope="crew", owner=crew)
        if scope == "user":
            owner = who.tenant
        elif scope == "session":
            # no session named: the run is its own session, so nothing outlives it
            owner = who.session or f"run-{run_id}"
        else:  # agent, and crew scope outside a shared crew: the agent's own
            owner = agent
            scope = "agent"
        return Namespace(policy=policy, tenant=who.tenant, scope=scope, owner=owner)

    # -- reading ----------------------------------------------------------------------------

    async def recall(
        self,
        *,
        policy: str,
        agent: str,
        query: str,
        who: Who,
        run_id: str = "",
        crew: str | None = None,
        top_k: int | None = None,
    ) -> Recall:
        """Everything ``policy`` recalls for ``agent`` about ``query``."""
        spec = self.program.policy(policy).spec
        ns = self.namespace(policy, agent, who, run_id=run_id, crew=crew)
        now = self.clock()
        items: list[dict[str, Any]] = []
        stores: dict[str, dict[str, Any]] = {}
        history: list[Message] = []
        if spec.short_term is not None:
            window = _window(ns, who)
            turns = await self.stores.short_term(policy).window(window)
            history = [turn_message(t, reader=agent) for t in turns]
            stores["short_term"] = {
                "turns": len(turns),
                "window": window,
                "reason": plural(len(turns), "earlier turn") if turns else _no_turns(ns),
            }
        scored: list[Scored] = []
        if spec.vector is not None:
            scored, info = await self._search(policy, spec, ns, query, now, top_k)
            stores["vector"] = info
            items.extend({"store": "vector", **s.as_json()} for s in scored)
        relations: list[str] = []
        if spec.graph is not None:
            relations, info = await self._neighbourhood(policy, spec, ns, query)
            stores["graph"] = info
            items.extend({"store": "graph", "text": r} for r in relations)
        episodes: list[dict[str, Any]] = []
        if spec.episodic is not None and spec.episodic.enabled:
            episodes, info = await self._episodes(spec, agent, who, query, now)
            stores["episodic"] = info
            items.extend({"store": "episodic", **e} for e in episodes)
        block = render(spec, query, scored, relations, episodes)
        return Recall(
            namespace=ns.key,
            history=tuple(history),
            block=block,
            position=spec.inject.position,
            items=tuple(items),
            stores=stores,
        )

    async def _search(
        self,
        policy: str,
        spec: MemoryPolicySpec,
        ns: Namespace,
        query: str,
        now: float,
        top_k: int | None,
    ) -> tuple[list[Scored], dict[str, Any]]:
        store = self.stores.vector(policy)
        retrieval = spec.retrieval
        k = top_k or retrieval.top_k
        hits = await store.search(ns.key, query, k * _OVERFETCH, now=now) if query.strip() else []
        weights = Weights(
            relevance=retrieval.weights.relevance,
            recency=retrieval.weights.recency,
            importance=retrieval.weights.importance,
            half_life_days=retrieval.recency_half_life_days,
        )
        scored, under = rank(
            hits, weights=weights, now=now, top_k=k, min_score=retrieval.min_score
        )
        info: dict[str, Any] = {"found": len(scored), "searched": len(hits)}
        if scored:
            info["reason"] = f"{len(scored)} of {plural(len(hits), 'candidate')} kept"
        elif not query.strip():
            info["reason"] = "the query is empty"
        elif hits:
            best = max(relevance for _, relevance in hits)
            info["reason"] = (
                f"{'all ' if under > 1 else ''}{plural(under, 'candidate')} scored under "
                f"min_score {retrieval.min_score:g} (best relevance {best:.2f})"
            )
        else:
            info["reason"] = await self._why_empty(store, ns)
        return scored, info

    async def _why_empty(self, store: VectorStore, ns: Namespace) -> str:
        if await store.count(ns.key):  # only expired memories left
            return f"every memory in {ns.key} has expired"
        # other tenants' namespaces are never mentioned, not even counted
        tenant = ns.key.rsplit("/", 1)[0]
        mine = {
            k: n
            for k, n in (await store.namespaces()).items()
            if k != ns.key and k.rsplit("/", 1)[0] == tenant
        }
        if mine:
            held = sum(mine.values())
            return (
                f"nothing remembered in {ns.key}; scope filter: {plural(held, 'memory')} of "
                f"policy {ns.policy!r} for this user belong to {plural(len(mine), 'other scope')}"
                f" (other agents, sessions or crews), which scope {ns.scope!r} keeps apart"
            )
        return f"empty store: nothing remembered yet in {ns.key}"

    async def _neighbourhood(
        self, policy: str, spec: MemoryPolicySpec, ns: Namespace, query: str
    ) -> tuple[list[str], dict[str, Any]]:
        assert spec.graph is not None
        graph = self.stores.graph(policy)
        names = await graph.match(ns.key, query)
        if not names:
            entities, _ = await graph.counts(ns.key)
            reason = (
                f"no known entity is mentioned in the query ({entities} known in {ns.key})"
                if entities
                else f"empty store: no entities in {ns.key}"
            )
            return [], {"entities": [], "found": 0, "reason": reason}
        relations = await graph.neighbourhood(
            ns.key, names, depth=spec.graph.depth, limit=spec.graph.limit
        )
        if spec.ttl_s:  # what was last said longer ago than the policy keeps things
            oldest = self.clock() - spec.ttl_s
            relations = [r for r in relations if not r.ts or r.ts >= oldest]
        texts = [r.as_text() for r in relations]
        reason = (
            f"{plural(len(texts), 'relation')} around {', '.join(names)}"
            if texts
            else f"{', '.join(names)} known, with no relations"
        )
        return texts, {"entities": names, "found": len(texts), "reason": reason}

    async def _episodes(
        self, spec: MemoryPolicySpec, agent: str, who: Who, query: str, now: float
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        assert spec.episodic is not None
        store = await self.stores.episodic(spec.vector.embedder if spec.vector else None)
        if store is None:
            return [], {"found": 0, "reason": "no trace store: runs are not recorded"}
        episodic = spec.episodic
        limits = [now - episodic.within_days * 86_400] if episodic.within_days else []
        if spec.ttl_s:  # past runs are forgotten with the rest of the policy's memories
            limits.append(now - spec.ttl_s)
        since = max(limits) if limits else None
        hits = await store.search(
            agent=agent,
            tenant=who.tenant,
            query=query,
            k=episodic.top_k,
            since=since,
            status=list(episodic.status) if episodic.status else None,
        )
        found = [{**episode.as_json(), "relevance": round(score, 4)} for episode, score in hits]
        if found:
            reason = plural(len(found), "past run")
        else:
            total = await store.count(agent=agent, tenant=who.tenant)
            reason = (
                f"none of {plural(total, 'past run')} of {agent!r} for {who.tenant!r} passed the "
                f"filters (status {list(episodic.status or ()) or 'any'}, within "
                f"{episodic.within_days or 'any number of'} days)"
                if total
                else f"no past runs of {agent!r} for {who.tenant!r}"
            )
        return found, {"found": len(found), "reason": reason}

    # -- writing ----------------------------------------------------------------------------

    async def remember(
        self,
        *,
        policy: str,
        agent: str,
        task: str | None,
        prompt: str,
        answer: Any,
        who: Who,
        run_id: str = "",
        crew: str | None = None,
        observations: Sequence[Observation] = (),
        models: tuple[str, ...] = (),
        ask: Ask | None = None,
        write_id: str | None = None,
        again: bool = False,
    ) -> dict[str, Any]:
        """Write what ``policy`` says to remember of one finished agent run; returns the
        ``memory.write`` event's data.

        A durable run names the write (``write_id``, its journal step): the records it adds
        get ids derived from it, so writing again replaces them instead of adding copies.
        ``again`` says this write may have been made before (its process died during it):
        the window's turns are then not appended a second time."""
        spec = self.program.policy(policy).spec
        ns = self.namespace(policy, agent, who, run_id=run_id, crew=crew)
        now = self.clock()
        expires = now + spec.ttl_s if spec.ttl_s else None
        answer_text = _text(answer)
        written: list[dict[str, Any]] = []
        notes: dict[str, str] = {}
        if spec.short_term is not None:
            summarize = None
            if spec.short_term.summarize and ask is not None and models:
                summarize = summariser(ask, models, agent, task, run_id)
            notes["short_term"] = await self._append_turns(
                policy, spec, _window(ns, who), agent, prompt, answer_text, summarize, again
            )
            written.append({"store": "short_term", "kind": "turns", "text": prompt[:200]})
        extraction = await self._extractions(spec, prompt, answer_text, agent, task, run_id,
                                             models, ask, notes)  # fmt: skip
        if spec.vector is not None:
            memories = self._memories(
                spec, ns, agent, run_id, prompt, answer_text, observations, extraction, now,
                expires,
            )
            if write_id is not None:
                memories = [
                    replace(m, id=_derived_id(run_id, ns.key, write_id, i))
                    for i, m in enumerate(memories)
                ]
            if memories:
                await self.stores.vector(policy).add(ns.key, memories)
            written.extend(
                {"store": "vector", "id": m.id, "kind": m.kind, "text": m.text} for m in memories
            )
        if spec.graph is not None and extraction is not None:
            relations = tuple(
                _stamped(r, agent, run_id, now) for r in extraction.relations
            )
            if extraction.entities or relations:
                await self.stores.graph(policy).merge(ns.key, extraction.entities, relations)
            written.extend({"store": "graph", "text": r.as_text()} for r in relations)
            written.extend(
                {"store": "graph", "kind": "entity", "text": e.name} for e in extraction.entities
            )
        return {"policy": policy, "namespace": ns.key, "items": written, "notes": notes}

    async def _extractions(
        self,
        spec: MemoryPolicySpec,
        prompt: str,
        answer: str,
        agent: str,
        task: str | None,
        run_id: str,
        models: tuple[str, ...],
        ask: Ask | None,
        notes: dict[str, str],
    ) -> Extraction | None:
        """What the policy extracts: user facts from the user's words only; entities and
        relations (with a graph) from the user's words and, in a second call, the answer's.
        Facts are never taken from what the agent said."""
        facts = "user_facts" in spec.remember
        graph = spec.graph is not None
        if not facts and not graph:
            return None
        call = functools.partial(
            extract, ask, models, agent=agent, task=task, run_id=run_id, notes=notes
        )
        said = await call(prompt, facts=facts, graph=graph)
        if not graph or not answer.strip():
            return said
        from runtime.memory.extract import Extraction

        answered = await call(answer, facts=False, graph=True)
        if said is None or answered is None:
            return said or answered
        return Extraction(
            facts=said.facts,
            entities=(*said.entities, *answered.entities),
            relations=(*said.relations, *answered.relations),
        )

    def _memories(
        self,
        spec: MemoryPolicySpec,
        ns: Namespace,
        agent: str,
        run_id: str,
        prompt: str,
        answer: str,
        observations: Sequence[Observation],
        extraction: Any,
        now: float,
        expires: float | None,
    ) -> list[Memory]:
        def memory(text: str, kind: MemoryKind, importance: float | None = None) -> Memory:
            return Memory(
                text=text[:_TEXT_LIMIT],
                kind=kind,
                namespace=ns.key,
                agent=agent,
                run_id=run_id,
                created_at=now,
                expires_at=expires,
                importance=_IMPORTANCE[kind] if importance is None else importance,
            )

        out: list[Memory] = []
        if "final_answers" in spec.remember and answer.strip():
            out.append(memory(f"Asked: {prompt.strip()}\nAnswered: {answer.strip()}", "answer"))
        if "tool_observations" in spec.remember:
            out.extend(memory(o.text, "observation") for o in observations)
        if "user_facts" in spec.remember and extraction is not None:
            out.extend(memory(f.text, "fact", f.importance) for f in extraction.facts)
        return out

    async def _append_turns(
        self,
        policy: str,
        spec: MemoryPolicySpec,
        window: str,
        agent: str,
        prompt: str,
        answer: str,
        summarize: Callable[[Sequence[Turn]], Awaitable[str]] | None,
        again: bool = False,
    ) -> str:
        from runtime.memory.window import fit

        short = spec.short_term
        assert short is not None
        store = self.stores.short_term(policy)
        ttl = short.ttl_s or spec.ttl_s
        now = self.clock()
        turns = [
            Turn(role="user", content=prompt, agent=agent, ts=now),
            Turn(role="assistant", content=answer, agent=agent, ts=now),
        ]
        if not again or not _ends_with(await store.window(window), turns):
            await store.append(window, turns, ttl_s=ttl)
        result = await fit(
            store,
            window,
            max_messages=short.max_messages,
            max_tokens=short.max_tokens,
            summarize=summarize,
            agent=agent,
        )
        return result.message

    # -- people: kiln memory ----------------------------------------------------------------

    async def forget(
        self,
        *,
        policy: str,
        namespace: Namespace,
        agent: str,
        session: str | None = None,
        ids: Sequence[str] | None = None,
        before: float | None = None,
        expired: bool = False,
    ) -> dict[str, int]:
        """Forget what ``policy`` keeps in ``namespace``: by ids, by age or the expired ones
        (vector memories), or everything (no filter): memories, entities, every
        conversation window of the namespace and the agent's past runs for its user.
        With ``session`` (and a scope other than ``session``), only that conversation's
        window. Returns how many items each store dropped."""
        spec = self.program.policy(policy).spec
        key = namespace.key
        counts: dict[str, int] = {}
        if session is not None and namespace.scope != "session":
            if spec.short_term is not None:
                window = _window(namespace, Who(tenant=namespace.tenant, session=session))
                counts["short_term"] = await self.stores.short_term(policy).clear(window)
            return counts
        everything = ids is None and before is None and not expired
        if spec.vector is not None:
            vector = self.stores.vector(policy)
            if everything:
                counts["vector"] = await vector.delete(key)
            else:
                counts["vector"] = await vector.delete(
                    key, ids=ids, before=before, expired_at=self.clock() if expired else None
                )
        if not everything:
            return counts
        if spec.short_term is not None:
            store = self.stores.short_term(policy)
            windows = [w for w in await store.namespaces() if w == key or w.startswith(key + "#")]
            counts["short_term"] = sum([await store.clear(w) for w in windows])
        if spec.graph is not None:
            counts["graph"] = await self.stores.graph(policy).delete(key)
        if spec.episodic is not None and spec.episodic.enabled:
            episodic = await self.stores.episodic(spec.vector.embedder if spec.vector else None)
            if episodic is not None:
                counts["episodic"] = await episodic.delete(agent=agent, tenant=namespace.tenant)
        return counts

    async def namespaces(self, policy: str) -> dict[str, dict[str, int]]:
        """Every namespace of ``policy`` with something in it: store -> count."""
        spec = self.program.policy(policy).spec
        out: dict[str, dict[str, int]] = {}
        mine = Namespace(policy=policy, tenant="", scope="agent", owner="").key.split("/")[0]

        def add(store: str, found: Mapping[str, int] | Sequence[str]) -> None:
            items = found.items() if isinstance(found, Mapping) else ((k, 1) for k in found)
            for key, count in items:
                if _policy_of(key) == mine:
                    out.setdefault(key, {})[store] = count

        if spec.vector is not None:
            add("vector", await self.stores.vector(policy).namespaces())
        if spec.graph is not None:
            add("graph", await self.stores.graph(policy).namespaces())
        if spec.short_term is not None:
            add("short_term", await self.stores.short_term(policy).namespaces())
        return out

    async def aclose(self) -> None:
        """Close every store's connections; they reopen on next use."""
        await self.stores.aclose()


def _window(ns: Namespace, who: Who) -> str:
    """The short-term store's key: the namespace, and within it the conversation. A session
    is one conversation whatever the policy's scope; without one, the namespace is."""
    if who.session is None or ns.scope == "session":
        return ns.key
    return f"{ns.key}#{Namespace(policy='', tenant='', scope='session', owner=who.session).key}"


def _policy_of(key: str) -> str:
    return key.split("/", 1)[0]


def _no_turns(ns: Namespace) -> str:
    if ns.scope == "session" and ns.owner.startswith("run-"):
        return "no session named (kiln run --session ID): this run is its own session"
    return f"empty: no earlier turns in {ns.key}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _stamped(relation: Any, agent: str, run_id: str, now: float) -> Any:
    return replace(relation, agent=agent, run_id=run_id, ts=now)


def _derived_id(run_id: str, namespace: str, write_id: str, index: int) -> str:
    """The id of a durable write's ``index``-th record: the same every time it is made."""
    key = "\x00".join((run_id, namespace, write_id, str(index)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _ends_with(window: Sequence[Turn], turns: Sequence[Turn]) -> bool:
    """Whether ``window`` already ends with ``turns`` (timestamps aside)."""
    if len(window) < len(turns):
        return False
    tail = window[len(window) - len(turns) :]
    return all(
        (a.role, a.content, a.agent) == (b.role, b.content, b.agent)
        for a, b in zip(tail, turns, strict=True)
    )
