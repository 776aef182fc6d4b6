"""Template variables against what is in scope where each template is rendered.

- an agent's ``instructions`` see ``inputs.<name>`` for the agent's declared inputs;
- a crew task's ``prompt`` sees ``inputs.<name>`` for the crew's inputs and
  ``tasks.<name>.output`` of the tasks it depends on (transitively), with fields only where
  that task's ``output_schema`` declares them;
- a tool's HTTP or shell templates see ``input.<name>`` from its ``input_schema``;
- a memory policy's ``inject.template`` sees ``memories`` and ``query``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compiler.diagnostics import Diagnostic, closest, did_you_mean, error
from compiler.graphs import descendants
from compiler.locate import inside
from compiler.symbols import Program, SpecEntry
from compiler.templates import Reference
from specs import Agent, Crew, InputSpec, Tool

MEMORY_SCOPE = ("memories", "query")


@dataclass(frozen=True, slots=True)
class _Site:
    entry: SpecEntry
    path: tuple[str | int, ...]


_SINGLE_BRACE = re.compile(r"(?<!\{)\{\s*([A-Za-z_]\w*)\s*\}(?!\})")


#: problems of one template located exactly (each costs a look at its lines); the compile
#: shows only so many of one kind per file anyway (compiler.pipeline.MAX_PER_KIND)
_LOCATED = 60


def check_placeholders(program: Program, files: Mapping[str, str]) -> Iterator[Diagnostic]:
    """CrewAI writes ``{topic}``; in Jinja2 that is plain text, so the input never arrives."""
    for site, parsed in program.templates.items():
        entry = program.entry(site.spec)
        if entry is None or entry.origin != "user" or "{" not in parsed.source:
            continue
        model = entry.model
        inputs = model.spec.inputs if isinstance(model, Agent | Crew) else {}
        found = 0
        for match in _SINGLE_BRACE.finditer(parsed.source):
            name = match.group(1)
            if name not in inputs:
                continue
            found += 1
            line = parsed.source.count("\n", 0, match.start()) + 1
            yield error(
                "K5005",
                f"'{match.group(0)}' is plain text in a template, not the input '{name}'",
                inside(entry.doc, files, site.path, line, (match.group(0),))
                if found <= _LOCATED
                else entry.doc.locate(site.path),
                f"write {{{{ inputs.{name} }}}}",
            )


def check_scope(program: Program, files: Mapping[str, str]) -> Iterator[Diagnostic]:
    closures = {name: descendants(deps) for name, deps in program.task_deps.items()}
    for site, parsed in program.templates.items():
        entry = program.entry(site.spec)
        if entry is None or entry.origin != "user" or _unsure(entry, site.path):
            continue
        here = _Site(entry, site.path)
        found = 0
        dashed = _dashed_task_names(entry, parsed.source)
        for ref in parsed.references:
            if dashed and str(ref.path[0]) in dashed.parts:
                continue  # the tail of a dashed name, already explained at its head
            problem = _dashed(ref, dashed.names) if dashed else None
            problem = problem or _judge(program, closures, here, ref)
            if problem is None:
                continue
            code, message, hint = problem
            found += 1
            if found <= _LOCATED:
                needles = (ref.dotted, *(str(p) for p in reversed(ref.path)))
                span = inside(entry.doc, files, site.path, ref.lineno, needles)
            else:  # only so many are shown: the rest need no exact place (see pipeline)
                span = entry.doc.locate(site.path)
            yield error(code, message, span, hint)


@dataclass(frozen=True, slots=True)
class _Dashed:
    """Task names with '-' written as ``tasks.a-b``, which Jinja reads as ``tasks.a - b``."""

    names: frozenset[str]
    parts: frozenset[str]  # the words after each '-'

    def __bool__(self) -> bool:
        return bool(self.names)


def _dashed_task_names(entry: SpecEntry, source: str) -> _Dashed:
    crew = entry.model
    if not isinstance(crew, Crew) or "-" not in source:
        return _Dashed(frozenset(), frozenset())
    names = frozenset(
        t.name for t in crew.spec.tasks if "-" in t.name and f"tasks.{t.name}" in source
    )
    parts = frozenset(p for n in names for p in n.split("-")[1:])
    return _Dashed(names, parts)


def _dashed(ref: Reference, names: frozenset[str]) -> _Problem:
    if ref.path[0] != "tasks" or len(ref.path) < 2:
        return None
    head = str(ref.path[1])
    name = next((n for n in sorted(names) if n.startswith(head + "-")), None)
    if name is None:
        return None
    return (
        "K4004",
        f"'tasks.{name}' reads as 'tasks.{head}' minus '{name[len(head) + 1 :]}': "
        "in a template '-' is subtraction",
        f"write tasks['{name}'].output for a task whose name has a '-'",
    )


def _unsure(entry: SpecEntry, path: tuple[str | int, ...]) -> bool:
    """Whether a template's scope may be wrong because validation dropped part of its spec."""
    if not entry.salvaged:
        return False
    if entry.lost(*path) or entry.lost("spec", "inputs"):
        return True
    if entry.kind == "Tool":
        return entry.lost("spec", "input_schema")
    if entry.kind == "Crew":  # dropped tasks or dependencies change what a prompt may read
        return any(p[:2] == ("spec", "tasks") and len(p) <= 3 for p in entry.dropped) or any(
            len(p) > 3 and p[:2] == ("spec", "tasks") and p[3] in ("depends_on", "output_schema")
            for p in entry.dropped
        )
    return False


_Problem = tuple[str, str, str | None] | None


def _judge(
    program: Program, closures: Mapping[str, Mapping[str, set[str]]], site: _Site, ref: Reference
) -> _Problem:
    model = site.entry.model
    root = str(ref.path[0])
    if isinstance(model, Agent):
        if root != "inputs":
            return _unknown_root(ref, ("inputs",), model.spec.inputs)
        return _input(ref, model.spec.inputs, f"agent '{model.metadata.name}'")
    if isinstance(model, Crew):
        if root == "inputs":
            return _input(ref, model.spec.inputs, f"crew '{model.metadata.name}'")
        if root != "tasks":
            return _unknown_root(ref, ("inputs", "tasks"), model.spec.inputs)
        task_name = str(model.spec.tasks[int(site.path[2])].name)
        reach = closures.get(model.metadata.name, {}).get(task_name, set())
        return _task_ref(program, model, task_name, reach, ref)
    if isinstance(model, Tool):
        if root != "input":
            return _unknown_root(ref, ("input",))
        return _field(ref, 1, model.spec.input_schema, "the tool's input_schema", "K4004")
    if root not in MEMORY_SCOPE:
        return _unknown_root(ref, MEMORY_SCOPE)
    return None


def _unknown_root(
    ref: Reference, scope: tuple[str, ...], inputs: Mapping[str, InputSpec] | None = None
) -> _Problem:
    name = str(ref.path[0])
    if inputs and name in inputs:
        hint: str | None = f"did you mean 'inputs.{name}'?"
    elif inputs and (near := closest(name, inputs)):
        hint = f"did you mean 'inputs.{near}'?"
    else:
        hint = did_you_mean(name, scope)
    return (
        "K4004",
        f"'{name}' is undefined here: this template can read {', '.join(scope)}",
        hint,
    )


def _input(ref: Reference, inputs: Mapping[str, InputSpec], owner: str) -> _Problem:
    if len(ref.path) < 2:
        return None  # the whole mapping, e.g. {{ inputs | tojson }}
    name = str(ref.path[1])
    if name in inputs:
        return None
    hint = did_you_mean(name, inputs) or f"declare it in the spec.inputs of {owner}"
    return "K4004", f"'inputs.{name}' is not an input of {owner}", hint


def _task_ref(
    program: Program, crew: Crew, task_name: str, reach: set[str], ref: Reference
) -> _Problem:
    if len(ref.path) < 2:
        return "K4004", "'tasks' must name a task: tasks.<name>.output", None
    tasks = {t.name: t for t in crew.spec.tasks}
    other = str(ref.path[1])
    if other not in tasks:
        near = closest(other, tasks)
        hint = did_you_mean(other, tasks)
        if near is not None and "-" in near:
            hint = f"did you mean tasks['{near}']? (a name with '-' needs brackets)"
        return "K4004", f"crew '{crew.metadata.name}' has no task '{other}'", hint
    if other == task_name:
        return "K4004", f"task '{task_name}' reads its own output", None
    if other not in reach:
        return (
            "K4005",
            f"task '{task_name}' reads tasks.{other}.output but does not depend on '{other}'",
            f"add '{other}' to depends_on of task '{task_name}' so it runs first",
        )
    if len(ref.path) < 3:
        return None
    if ref.path[2] != "output":
        return "K4004", f"a task has only 'output': write tasks.{other}.output", None
    if len(ref.path) < 4:
        return None
    task = tasks[other]
    schema = task.output_schema
    if schema is None:
        agent = program.agents.get(task.agent)
        if agent is None or agent.lost("spec", "output_schema"):
            return None  # an unknown agent (reported), or its output_schema was dropped
        schema = program.agent(task.agent).spec.output_schema
    if schema is None:
        return (
            "K4006",
            f"tasks.{other}.output is text (task '{other}' has no output_schema), "
            f"so it has no field '{ref.path[3]}'",
            f"give task '{other}' (or its agent) an output_schema with '{ref.path[3]}', "
            f"or use tasks.{other}.output as a whole",
        )
    return _field(ref, 3, schema, f"the output_schema of task '{other}'", "K4006")


def _field(ref: Reference, start: int, schema: Any, what: str, code: str) -> _Problem:
    """Walk ``ref.path[start:]`` through object properties and array items of ``schema``."""
    node = schema
    for i in range(start, len(ref.path)):
        part = ref.path[i]
        if not isinstance(node, dict):
            return None
        if isinstance(part, int):
            items = node.get("items")
            if not isinstance(items, dict):
                return None
            node = items
            continue
        if _open_ended(node):
            return None
        props = node.get("properties")
        props = props if isinstance(props, dict) else {}
        if part not in props:
            return _no_field(ref, i, props, what, code)
        node = props[part]
    return None


_COMPOSED = ("allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "patternProperties")


def _open_ended(schema: dict[str, Any]) -> bool:
    """Whether fields beyond the declared ``properties`` can be known to exist.

    Declared properties are taken as the whole truth (that is what catches typos), unless
    the schema says otherwise: a schema for extra properties, composition, or no
    ``properties`` at all on something that may be an object.
    """
    if any(key in schema for key in _COMPOSED):
        return True
    extra = schema.get("additionalProperties")
    if extra is True or (isinstance(extra, dict) and extra):
        return True
    if "properties" in schema or extra is False:
        return False
    kind = schema.get("type")
    return kind is None or kind == "object" or (isinstance(kind, list) and "object" in kind)


def _no_field(ref: Reference, i: int, props: Mapping[str, Any], what: str, code: str) -> _Problem:
    part = str(ref.path[i])
    known = ", ".join(sorted(props)) or "none"
    return (
        code,
        f"'{ref.dotted}': {what} has no field '{part}' (it has: {known})",
        did_you_mean(part, props),
    )
