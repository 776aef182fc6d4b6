"""Pass 4, resolve: names to specs; duplicates and dangling references are errors."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from compiler.diagnostics import Diagnostic, did_you_mean, error
from compiler.symbols import Program, SpecEntry, Templates, TemplateSite
from compiler.templates import ParsedTemplate
from specs import Agent, Crew, ModelDef

_GROUP = {
    "Agent": "agents",
    "Tool": "tools",
    "MemoryPolicy": "policies",
    "Crew": "crews",
    "Model": "models",
}


def resolve(tpl: Templates) -> tuple[Program, tuple[Diagnostic, ...]]:
    diags: list[Diagnostic] = []
    groups: dict[str, dict[str, SpecEntry]] = {g: {} for g in _GROUP.values()}
    for entry in tpl.specs.entries:
        group = groups[_GROUP[entry.kind]]
        seen = group.get(entry.name)
        if seen is None or seen.origin == "stdlib":  # a user's spec shadows a standard one
            group[entry.name] = entry
        elif entry.origin == "user":
            first = seen.doc.locate(("metadata", "name"))
            diags.append(
                error(
                    "K3001",
                    f"duplicate {entry.kind} name '{entry.name}' (first defined at {first})",
                    entry.doc.locate(("metadata", "name")),
                    "names must be unique per kind across all files",
                )
            )
    names = {
        kind: set(groups[group])
        | {k.split("/", 1)[1] for k in tpl.specs.invalid if k.startswith(kind + "/")}
        for kind, group in _GROUP.items()
    }
    for name, entry in list(groups["agents"].items()):
        groups["agents"][name] = _with_model(entry, groups["models"])
    for entry in groups["agents"].values():
        diags.extend(_agent_refs(entry, names))
    task_deps: dict[str, dict[str, tuple[str, ...]]] = {}
    for entry in groups["crews"].values():
        diags.extend(_crew_refs(entry, names))
        task_deps[entry.name] = _task_deps(entry, tpl.parsed)
    program = Program(
        agents=groups["agents"],
        tools=groups["tools"],
        policies=groups["policies"],
        crews=groups["crews"],
        templates=tpl.parsed,
        task_deps=task_deps,
        models=groups["models"],
    )
    return program, tuple(diags)


def _with_model(entry: SpecEntry, models: Mapping[str, SpecEntry]) -> SpecEntry:
    """An agent whose ``model`` names a Model spec, with that spec merged in: its model
    string, its fallbacks before the agent's own, its params under the agent's model_params.
    Every later pass (checks, bounds, the runtime) then sees a plain model string."""
    agent = entry.model
    assert isinstance(agent, Agent)
    named = models.get(agent.spec.model)
    if named is None or "/" in agent.spec.model or ":" in agent.spec.model:
        return entry
    shared = named.model
    assert isinstance(shared, ModelDef)
    here, there = Path(entry.doc.path).parent, Path(named.doc.path).parent

    def moved(model: str) -> str:  # a scripted file stays relative to the Model's file
        if not model.startswith("scripted:") or here == there:
            return model
        path = model.removeprefix("scripted:")
        if Path(path).is_absolute():
            return model
        return f"scripted:{os.path.relpath(there / path, here)}"

    spec = agent.spec.model_copy(
        update={
            "model": moved(shared.spec.model),
            "fallbacks": (*map(moved, shared.spec.fallbacks), *agent.spec.fallbacks),
            "model_params": {**shared.spec.params, **agent.spec.model_params},
        }
    )
    return replace(entry, model=agent.model_copy(update={"spec": spec}))


def _missing(
    entry: SpecEntry,
    path: tuple[str | int, ...],
    name: str,
    pool: Collection[str],
    code: str,
    what: str,
) -> Iterable[Diagnostic]:
    """A dangling reference; ``pool`` holds every name of the kind, valid or not."""
    if name not in pool:
        yield error(
            code,
            f"{entry.kind} '{entry.name}' refers to unknown {what} '{name}'",
            entry.doc.locate(path),
            # never suggest the spec itself (an agent delegating to itself is a cycle)
            did_you_mean(name, set(pool) - {entry.name} if entry.kind == "Agent" else pool)
            or f"define {_article(what)} {what} named '{name}'",
        )


def _agent_refs(entry: SpecEntry, names: Mapping[str, set[str]]) -> Iterable[Diagnostic]:
    tools, policies = names["Tool"], names["MemoryPolicy"]
    agents = names["Agent"]  # delegating to itself is a cycle, reported by check
    agent = entry.model
    assert isinstance(agent, Agent)
    spec = agent.spec
    for i, tool in enumerate(spec.tools):
        yield from _missing(entry, ("spec", "tools", i), tool, tools, "K3002", "tool")
    if spec.memory is not None:
        yield from _missing(
            entry, ("spec", "memory"), spec.memory, policies, "K3003", "memory policy"
        )
    for i, other in enumerate(spec.delegate_to):
        yield from _missing(entry, ("spec", "delegate_to", i), other, agents, "K3004", "agent")


def _crew_refs(entry: SpecEntry, names: Mapping[str, set[str]]) -> Iterable[Diagnostic]:
    agents, policies = names["Agent"], names["MemoryPolicy"]
    crew = entry.model
    assert isinstance(crew, Crew)
    spec = crew.spec
    if spec.manager is not None:
        yield from _missing(entry, ("spec", "manager"), spec.manager, agents, "K3004", "agent")
    if spec.memory is not None:
        yield from _missing(
            entry, ("spec", "memory"), spec.memory, policies, "K3003", "memory policy"
        )
    tasks: dict[str, int] = {}
    for i, task in enumerate(spec.tasks):
        if task.name in tasks:
            yield error(
                "K3001",
                f"duplicate task name '{task.name}' in crew '{crew.metadata.name}'",
                entry.doc.locate(("spec", "tasks", i, "name")),
                f"the first task with this name is at line "
                f"{entry.doc.locate(('spec', 'tasks', tasks[task.name], 'name')).line}",
            )
        tasks.setdefault(task.name, i)
        yield from _missing(
            entry, ("spec", "tasks", i, "agent"), task.agent, agents, "K3004", "agent"
        )
    for i, task in enumerate(spec.tasks):
        for j, dep in enumerate(task.depends_on or ()):
            if dep not in tasks:
                yield error(
                    "K3005",
                    f"task '{task.name}' depends on unknown task '{dep}'",
                    entry.doc.locate(("spec", "tasks", i, "depends_on", j)),
                    did_you_mean(dep, tasks) or "depends_on lists task names of the same crew",
                )
    if spec.output is not None and spec.output not in tasks:
        yield error(
            "K3005",
            f"crew output names unknown task '{spec.output}'",
            entry.doc.locate(("spec", "output")),
            did_you_mean(spec.output, tasks),
        )


def _task_deps(
    entry: SpecEntry, parsed: Mapping[TemplateSite, ParsedTemplate]
) -> dict[str, tuple[str, ...]]:
    """Each task's dependencies: ``depends_on`` as written, else the tasks its prompt reads.

    In a sequential crew every earlier task has finished anyway, so the tasks a prompt
    reads are dependencies even when ``depends_on`` leaves them out (and reading a later
    task is then the ordering error K4010 reports).
    """
    crew = entry.model
    assert isinstance(crew, Crew)
    names = {t.name for t in crew.spec.tasks}
    sequential = crew.spec.process == "sequential"
    deps: dict[str, tuple[str, ...]] = {}
    for i, task in enumerate(crew.spec.tasks):
        written = [d for d in task.depends_on or () if d in names]
        if task.depends_on is not None and not sequential:
            deps[task.name] = tuple(written)
            continue
        template = parsed.get(TemplateSite(spec=entry.key, path=("spec", "tasks", i, "prompt")))
        read = {
            str(ref.path[1])
            for ref in (template.references if template is not None else ())
            if ref.path[0] == "tasks" and len(ref.path) > 1 and ref.path[1] in names
        }
        read.discard(task.name)
        deps[task.name] = tuple(dict.fromkeys([*written, *sorted(read - set(written))]))
    return deps


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
