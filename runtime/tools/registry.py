"""Every tool a program can call, as one table under names model APIs accept.

Tool specs come in two sorts. Most are one tool each: the spec's name is the tool's name.
An ``openapi`` spec imports an operation per tool from its document, and an ``mcp`` spec
imports a server's tools (or one of them): their tools are ``<spec>.<remote name>``, offered
to models under :func:`specs.toolnames.api_name`.

OpenAPI documents are local files, read when the registry is made (the compiler has
checked them). MCP servers have to be asked: :meth:`Registry.load` lists the servers of
the specs a run needs, through a live :class:`~runtime.tools.mcp.McpHub`. Until then, an MCP
spec's tools are unknown (:meth:`Registry.names_of` says ``None``).

Names are checked when tools are added: an API name claimed twice is a
:class:`RegistryProblem` naming both, never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from runtime.tools.box import BoundTool
from specs import Tool
from specs.toolnames import api_name, qualify

if TYPE_CHECKING:
    import anyio

    from compiler.symbols import Program
    from runtime.tools.mcp import McpHub

Origin = Literal["spec", "openapi", "mcp"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One callable tool."""

    #: what models call it
    name: str
    #: ``spec`` or ``spec.remote``
    qualified: str
    #: the Tool spec it comes from
    spec: str
    #: the MCP tool or OpenAPI operation inside the spec (``None``: the spec is the tool)
    target: str | None
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None
    labels: Mapping[str, str]
    tool: Tool = field(repr=False)
    origin: Origin = "spec"
    #: calling it changes something (never cached; retried only when it cannot have landed)
    side_effects: bool = False

    def search_text(self) -> str:
        """What tool discovery embeds: the name in words, then the description."""
        from runtime.tools.discovery import search_text

        return search_text(self.qualified, self.description)


@dataclass(frozen=True, slots=True)
class RegistryProblem:
    spec: str
    message: str
    #: ``path:line:col`` of the spec's executor
    where: str = ""

    def __str__(self) -> str:
        head = f"{self.where}: " if self.where else ""
        return f"{head}tool '{self.spec}': {self.message}"


class Registry:
    """The tools of one compiled program. Built once per run (or CLI command)."""

    def __init__(self, program: Program, *, folders: Mapping[str, Path] | None = None) -> None:
        self.program = program
        self.folders = dict(folders) if folders is not None else _folders(program)
        self._entries: dict[str, Entry] = {}
        self._by_spec: dict[str, list[str]] = {}
        self._bound: dict[str, BoundTool] = {}
        self.problems: list[RegistryProblem] = []
        self._loading: anyio.Lock | None = None
        for name in sorted(program.tools):
            tool = program.tool(name)
            kind = tool.spec.executor.type
            if kind == "mcp":
                continue  # listed by load()
            if kind == "openapi":
                self._add_operations(name, tool)
            elif (problem := self._add(_own(name, tool))) is not None:
                self.problems.append(problem)

    # -- reading ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def names_of(self, spec: str) -> frozenset[str] | None:
        """The API names of a spec's tools; ``None`` for an MCP spec not listed yet."""
        names = self._by_spec.get(spec)
        if names is None and spec in self.program.tools:
            if self.program.tool(spec).spec.executor.type == "mcp":
                return None
            return frozenset()
        return frozenset(names or ())

    def unlisted(self, specs: Iterable[str] | None = None) -> list[str]:
        """MCP specs (of ``specs``, or all) whose servers have not been listed yet."""
        names = self.program.tools if specs is None else specs
        return sorted(
            n
            for n in names
            if n in self.program.tools
            and self.program.tool(n).spec.executor.type == "mcp"
            and n not in self._by_spec
        )

    def bound(self, spec: str) -> dict[str, BoundTool]:
        """A spec's tools, bound for an agent run, by API name."""
        return {name: self.bind(name) for name in sorted(self._by_spec.get(spec, ()))}

    def bind(self, name: str) -> BoundTool:
        bound = self._bound.get(name)
        if bound is None:
            entry = self._entries[name]
            out = entry.output_schema
            bound = BoundTool(
                name=entry.name,
                description=entry.description,
                input_schema=entry.input_schema,
                input_validator=Draft202012Validator(dict(entry.input_schema)),
                output_validator=Draft202012Validator(dict(out)) if out is not None else None,
                spec=entry.tool,
                target=entry.target,
                side_effects=entry.side_effects,
            )
            self._bound[name] = bound
        return bound

    # -- MCP servers ----------------------------------------------------------------------------

    async def load(self, hub: McpHub, specs: Iterable[str] | None = None) -> list[RegistryProblem]:
        """List the servers of the MCP specs among ``specs`` (default: all) not listed yet,
        and add their tools. Returns the problems found (also kept in ``problems``)."""
        import anyio

        if self._loading is None:
            self._loading = anyio.Lock()
        async with self._loading:  # runs that start together list each server once
            return await self._load(hub, specs)

    async def _load(self, hub: McpHub, specs: Iterable[str] | None) -> list[RegistryProblem]:
        import anyio

        from runtime.tools.box import ToolError

        found: list[RegistryProblem] = []
        listings: dict[str, list[Any]] = {}

        async def list_one(name: str) -> None:
            executor = self.program.tool(name).spec.executor
            assert executor.type == "mcp"
            try:
                listings[name] = await hub.list_tools(
                    name, executor.server, folder=self.folders.get(name)
                )
            except ToolError as exc:
                found.append(self._problem(name, str(exc)))
                self._by_spec.setdefault(name, [])  # listed, with its problem: not again

        async with anyio.create_task_group() as group:
            for name in self.unlisted(specs):
                group.start_soon(list_one, name)
        for name in sorted(listings):
            found += self._add_remote(name, self.program.tool(name), listings[name])
        self.problems += found
        return found

    # -- building -------------------------------------------------------------------------------

    def _problem(self, spec: str, message: str) -> RegistryProblem:
        entry = self.program.tools.get(spec)
        where = str(entry.doc.locate(("spec", "executor"))) if entry is not None else ""
        return RegistryProblem(spec, message, where)

    def _add(self, entry: Entry) -> RegistryProblem | None:
        other = self._entries.get(entry.name)
        if other is not None:
            return self._problem(
                entry.spec,
                f"its tool {entry.qualified!r} would be offered to models as {entry.name!r}, "
                f"the name of {other.qualified!r} (from tool '{other.spec}'): rename one of them",
            )
        self._entries[entry.name] = entry
        self._by_spec.setdefault(entry.spec, []).append(entry.name)
        return None

    def _add_operations(self, name: str, tool: Tool) -> None:
        from specs.openapi import OpenApiError, load_document, operations

        executor = tool.spec.executor
        assert executor.type == "openapi"
        self._by_spec.setdefault(name, [])
        folder = self.folders.get(name, Path.cwd())
        try:
            ops = operations(load_document(folder / executor.document), executor.operations)
        except OpenApiError as exc:  # the compiler reports it first (K4017-K4019)
            self.problems.append(self._problem(name, str(exc)))
            return
        for op in ops:
            qualified = qualify(name, op.id)
            description = op.description or f"{op.method.upper()} {op.path}"
            if tool.spec.description:
                description = f"{description} ({tool.spec.description})"
            problem = self._add(
                _entry(
                    tool,
                    qualified,
                    target=op.id,
                    description=description,
                    input_schema=op.input_schema,
                    output_schema=op.output_schema,
                    origin="openapi",
                    side_effects=_side_effects(tool, op.method.upper() not in _SAFE_METHODS),
                )
            )
            if problem is not None:
                self.problems.append(problem)

    def _add_remote(self, name: str, tool: Tool, remote: list[Any]) -> list[RegistryProblem]:
        executor = tool.spec.executor
        assert executor.type == "mcp"
        self._by_spec.setdefault(name, [])
        problems: list[RegistryProblem] = []
        if executor.tool is not None:
            chosen = [r for r in remote if r.name == executor.tool]
            if not chosen:
                known = ", ".join(sorted(r.name for r in remote)) or "none"
                return [
                    self._problem(
                        name, f"the MCP server has no tool {executor.tool!r} (it has: {known})"
                    )
                ]
            remote = chosen
        elif executor.tools is not None:
            missing = sorted(set(executor.tools) - {r.name for r in remote})
            if missing:
                known = ", ".join(sorted(r.name for r in remote)) or "none"
                return [
                    self._problem(
                        name,
                        f"the MCP server has no tool {', '.join(map(repr, missing))} "
                        f"(it has: {known})",
                    )
                ]
            wanted = set(executor.tools)
            remote = [r for r in remote if r.name in wanted]
        for item in remote:
            single = executor.tool is not None
            qualified = name if single else qualify(name, item.name)
            schema = (
                tool.spec.input_schema
                if "input_schema" in tool.spec.model_fields_set
                else _object_schema(item.input_schema)
            )
            try:
                Draft202012Validator.check_schema(dict(schema))
            except SchemaError as exc:
                problems.append(
                    self._problem(
                        name,
                        f"the MCP tool {item.name!r} has an invalid input schema: {exc.message}",
                    )
                )
                continue
            output = (
                tool.spec.output_schema
                if single and tool.spec.output_schema is not None
                else item.output_schema
            )
            description = item.description or tool.spec.description or item.name
            if single and tool.spec.description:
                description = tool.spec.description
            problem = self._add(
                _entry(
                    tool,
                    qualified,
                    target=item.name,
                    description=description,
                    input_schema=schema,
                    output_schema=output,
                    origin="mcp",
                    side_effects=_side_effects(
                        tool, getattr(item, "annotations", {}).get("readOnlyHint") is not True
                    ),
                )
            )
            if problem is not None:
                problems.append(problem)
        return problems


#: HTTP methods that change nothing on the server
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _side_effects(tool: Tool, imported: bool) -> bool:
    """The spec's ``side_effects`` when it says so; else what the imported tool implies (an
    OpenAPI operation that is not GET, an MCP tool not marked ``readOnlyHint``)."""
    if "side_effects" in tool.spec.model_fields_set:
        return tool.spec.side_effects
    return imported


def _own(name: str, tool: Tool) -> Entry:
    spec = tool.spec
    return _entry(
        tool,
        name,
        target=None,
        description=spec.description,
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        origin="spec",
        side_effects=spec.side_effects,
    )


def _entry(
    tool: Tool,
    qualified: str,
    *,
    target: str | None,
    description: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None,
    origin: Origin,
    side_effects: bool,
) -> Entry:
    return Entry(
        name=api_name(qualified),
        qualified=qualified,
        spec=tool.metadata.name,
        target=target,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        labels=tool.metadata.labels,
        tool=tool,
        origin=origin,
        side_effects=side_effects,
    )


def _object_schema(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """MCP input schemas are objects; a server that sends none takes an empty object."""
    if not schema:
        return {"type": "object"}
    return schema


def _folders(program: Program) -> dict[str, Path]:
    return {name: Path(entry.doc.path).parent for name, entry in program.tools.items()}
