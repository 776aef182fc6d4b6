"""No two tools are offered to models under one name.

A spec's own tool is named by the spec; an OpenAPI spec's operations are named
``<spec>__<operation>`` (:func:`specs.toolnames.api_name`). A spec literally named like an
imported operation would take its name. MCP servers' tools are only known when a run lists
them: the runtime's registry refuses their collisions the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from compiler.diagnostics import Diagnostic, error
from compiler.symbols import Program
from specs.openapi import OpenApiError, load_document, survey
from specs.toolnames import api_name, qualify


def check_tool_names(program: Program) -> Iterator[Diagnostic]:
    claimed: dict[str, str] = {}  # API name -> qualified name
    imported: list[tuple[str, str, str]] = []  # (API name, qualified, spec)
    for name, entry in sorted(program.tools.items()):
        if entry.lost("spec", "executor"):
            continue
        executor = program.tool(name).spec.executor
        if executor.type == "openapi":
            path = Path(os.path.normpath(Path(entry.doc.path).parent / executor.document))
            try:
                ops, _ = survey(load_document(path), executor.operations)
            except OpenApiError:
                continue  # K4017 says why; an unknown or broken operation is K4018/K4019
            for op in ops:
                qualified = qualify(name, op.id)
                imported.append((api_name(qualified), qualified, name))
        elif executor.type != "mcp" or executor.tool is not None:
            claimed[api_name(name)] = name  # an MCP spec naming one tool is that tool
    yield from _reserved(program)
    for api, qualified, spec in imported:
        other = claimed.get(api)
        if other is None:
            claimed[api] = qualified
            continue
        clash = program.tools.get(other) or program.tools[spec]
        yield error(
            "K4020",
            f"tool '{other}' and operation '{qualified}' of tool '{spec}' would both be "
            f"offered to models as '{api}'",
            clash.doc.locate(("metadata", "name")),
            f"rename the tool '{other}', or import fewer operations from '{spec}'",
        )


def _reserved(program: Program) -> Iterator[Diagnostic]:
    """``ask_<agent>`` (for an agent some agent delegates to) and ``task_<task>`` (for a
    task of a hierarchical crew) are the runtime's own tools: a spec of that name would be
    replaced by them without a word."""
    taken: dict[str, str] = {}
    for name in program.agents:
        for other in program.agent(name).spec.delegate_to or ():
            taken[f"ask_{other}"] = f"agent '{name}' delegates to '{other}' through it"
    for name in program.crews:
        crew = program.crew(name).spec
        if crew.process == "hierarchical":
            for task in crew.tasks:
                taken[f"task_{task.name}"] = (
                    f"the manager of crew '{name}' hands out task '{task.name}' through it"
                )
    for name, entry in sorted(program.tools.items()):
        why = taken.get(name)
        if why is None or entry.origin != "user":
            continue
        yield error(
            "K4020",
            f"tool '{name}' has a name kiln keeps for itself: {why}",
            entry.doc.locate(("metadata", "name")),
            "rename the tool: ask_<agent> and task_<task> are the runtime's delegation and "
            "task tools",
        )
