"""Tool discovery over a :class:`~runtime.tools.registry.Registry`: the ``find_tools`` action
agents with ``tool_discovery`` get, and ``kiln tools search``.

The index (:mod:`runtime.tools.discovery`) embeds each tool's name and description with the
project's embedder and is cached on disk, keyed by the embedder and the tools' texts: it is
rebuilt only when a tool spec (or an MCP server's listing) changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.tools.box import BoundTool, virtual
from runtime.tools.registry import Registry

if TYPE_CHECKING:
    from runtime.embed import Embedder
    from runtime.tools.discovery import Hit, ToolIndex

FIND_TOOLS = "find_tools"

FIND_TOOLS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "description": "what the tool should do"},
    },
    "required": ["query"],
    "additionalProperties": False,
}


class ToolFinder:
    """Searches a registry's tools by meaning. The index is built on first use."""

    def __init__(
        self,
        registry: Registry,
        *,
        embedder: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.registry = registry
        self.embedder_name = embedder
        self.cache_dir = cache_dir
        self._index: ToolIndex | None = None
        self._size = -1
        self._embedder: Embedder | None = None

    def index(self) -> ToolIndex:
        """The index of the registry's tools as they are now (MCP listings included)."""
        from runtime import progress
        from runtime.embed import get_embedder
        from runtime.tools.discovery import Candidate, ToolIndex

        if self._index is None or self._size != len(self.registry):
            progress.say(f"indexing {len(self.registry)} tools for find_tools…", 0.0)
            if self._embedder is None:
                self._embedder = get_embedder(self.embedder_name)
            candidates = [
                Candidate(
                    name=e.name, description=e.description, labels=e.labels, text=e.search_text()
                )
                for e in self.registry
            ]
            self._index = ToolIndex.load_or_build(candidates, self._embedder, self.cache_dir)
            self._size = len(self.registry)
            progress.say(f"indexed {len(self.registry)} tools", 1.0)
        return self._index

    def search(
        self,
        query: str,
        top_k: int,
        *,
        labels: Mapping[str, str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        hits = self.index().search(query, top_k + len(exclude), labels=labels or None)
        return [h for h in hits if h.name not in exclude][:top_k]

    async def asearch(
        self,
        query: str,
        top_k: int,
        *,
        labels: Mapping[str, str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """:meth:`search` off the event loop (building the index or embedding with a sentence
        model takes a while)."""
        import anyio

        def run() -> list[Hit]:
            return self.search(query, top_k, labels=labels, exclude=exclude)

        return await anyio.to_thread.run_sync(run)


def find_tools_tool(
    finder: ToolFinder,
    tools: MutableMapping[str, BoundTool],
    *,
    top_k: int,
    labels: Mapping[str, str],
    on_found: Callable[[list[str]], None] | None = None,
) -> BoundTool:
    """The ``find_tools`` action: searches the registry, and the tools it finds join
    ``tools`` (the agent's tool box) so the agent can call them on its next step."""

    async def call(arguments: Mapping[str, Any]) -> Any:
        hits = await finder.asearch(
            str(arguments["query"]), top_k, labels=labels, exclude=(FIND_TOOLS,)
        )
        found: list[dict[str, Any]] = []
        for hit in hits:
            bound = finder.registry.bind(hit.name)
            tools.setdefault(hit.name, bound)
            found.append(
                {
                    "name": hit.name,
                    "score": round(float(hit.score), 3),
                    "description": bound.description,
                    "input_schema": dict(bound.input_schema),
                }
            )
        if on_found is not None:
            on_found([f["name"] for f in found])
        return {"tools": found}

    return virtual(
        FIND_TOOLS,
        "Search every tool available by what it does; the tools found can be called on the "
        f"next step. Returns at most {top_k}, best first, with their input schemas.",
        FIND_TOOLS_SCHEMA,
        call,
    )
