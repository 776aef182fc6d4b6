"""What the passes hand each other: validated specs and the resolved program."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from compiler.templates import ParsedTemplate
from specs import KINDS, Agent, Crew, MemoryPolicy, SpecModel, Tool
from specs.source import DataPath, Document

Origin = Literal["user", "stdlib"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecEntry:
    """One validated spec, with the document it came from (for locations only)."""

    kind: str
    name: str
    model: SpecModel
    doc: Document = field(compare=False, repr=False)
    origin: Origin = "user"
    #: paths dropped to make the document valid (their errors are already reported): such
    #: a spec is still resolved, and checks skip only what a dropped field could change
    dropped: tuple[DataPath, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def salvaged(self) -> bool:
        return bool(self.dropped)

    def lost(self, *prefix: str | int) -> bool:
        """Whether validation dropped ``prefix``, something inside it, or an item of a list
        on the way to it (which shifts the indices after it)."""
        for path in self.dropped:
            common = min(len(path), len(prefix))
            if path[:common] == prefix[:common]:
                return True
            if isinstance(path[-1], int) and path[:-1] == prefix[: len(path) - 1]:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Specs:
    """The output of ``validate``: every spec that passed its schema, and the keys
    (``Kind/name``) of those that did not, so references to them are not reported twice."""

    entries: tuple[SpecEntry, ...]
    invalid: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSite:
    """Where a template is written: the spec, and the path to the string in its document."""

    spec: str
    path: DataPath


@dataclass(frozen=True, slots=True)
class Templates:
    """The output of the ``templates`` pass: every template that parsed."""

    specs: Specs
    parsed: Mapping[TemplateSite, ParsedTemplate]


@dataclass(frozen=True, slots=True, kw_only=True)
class Program:
    """The output of ``resolve``: specs by name, references resolved, task dependencies known.

    ``tools`` holds the user's tools and the standard library's (a user's tool shadows a
    standard one of the same name). ``task_deps`` maps crew → task → the tasks it waits for:
    its ``depends_on`` when given, else those its prompt reads.
    """

    agents: Mapping[str, SpecEntry]
    tools: Mapping[str, SpecEntry]
    policies: Mapping[str, SpecEntry]
    crews: Mapping[str, SpecEntry]
    templates: Mapping[TemplateSite, ParsedTemplate]
    task_deps: Mapping[str, Mapping[str, tuple[str, ...]]]
    #: Model specs by name; agents that name one have it merged in by ``resolve``
    models: Mapping[str, SpecEntry] = field(default_factory=dict)

    def agent(self, name: str) -> Agent:
        model = self.agents[name].model
        assert isinstance(model, Agent)
        return model

    def tool(self, name: str) -> Tool:
        model = self.tools[name].model
        assert isinstance(model, Tool)
        return model

    def policy(self, name: str) -> MemoryPolicy:
        model = self.policies[name].model
        assert isinstance(model, MemoryPolicy)
        return model

    def crew(self, name: str) -> Crew:
        model = self.crews[name].model
        assert isinstance(model, Crew)
        return model

    def group(self, kind: str) -> Mapping[str, SpecEntry]:
        """The specs of one kind, by name."""
        return {
            "Agent": self.agents,
            "Tool": self.tools,
            "MemoryPolicy": self.policies,
            "Crew": self.crews,
            "Model": self.models,
        }[kind]

    def entry(self, key: str) -> SpecEntry | None:
        """The spec ``Kind/name``, if there is one."""
        kind, _, name = key.partition("/")
        return self.group(kind).get(name) if kind in KINDS else None

    def manager(self, crew_name: str) -> str | None:
        """The agent that hands out a hierarchical crew's tasks (``None`` for other crews)."""
        spec = self.crew(crew_name).spec
        boss = spec.manager
        return boss if spec.process == "hierarchical" and boss in self.agents else None

    def entries(self) -> list[SpecEntry]:
        """Every spec: agents, tools, memory policies, crews, models."""
        groups = (self.agents, self.tools, self.policies, self.crews, self.models)
        return [e for g in groups for e in g.values()]

    def user_entries(self) -> list[SpecEntry]:
        return [e for e in self.entries() if e.origin == "user"]
