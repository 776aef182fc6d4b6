"""Warnings for specs that nothing uses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.diagnostics import Diagnostic, error
from compiler.reach import discoverable
from compiler.symbols import Program


def check_usage(program: Program) -> Iterator[Diagnostic]:
    users = [e for g in (program.agents, program.crews) for e in g.values()]
    if any(e.lost("spec", f) for e in users for f in ("tools", "tool_discovery", "memory")):
        return  # a dropped field may have been the one that used them
    used_tools: set[str] = set()
    used_policies: set[str] = set()
    filters: list[Mapping[str, str]] = []
    for name in program.agents:
        spec = program.agent(name).spec
        used_tools.update(spec.tools)
        if spec.memory is not None:
            used_policies.add(spec.memory)
        if spec.tool_discovery is not None and spec.tool_discovery.enabled:
            filters.append(spec.tool_discovery.labels)
    for name in program.crews:
        memory = program.crew(name).spec.memory
        if memory is not None:
            used_policies.add(memory)
    for name, entry in program.tools.items():
        tool = program.tool(name)
        if entry.origin != "user" or name in used_tools or entry.doc.ambiguous:
            continue
        if any(discoverable(labels, tool) for labels in filters):
            continue
        yield error(
            "K5001",
            f"tool '{name}' is not used by any agent",
            entry.doc.locate(("metadata", "name")),
            "list it in an agent's spec.tools, enable tool_discovery, or delete it",
        )
    for name, entry in program.policies.items():
        if entry.origin == "user" and name not in used_policies and not entry.doc.ambiguous:
            yield error(
                "K5002",
                f"memory policy '{name}' is not used by any agent or crew",
                entry.doc.locate(("metadata", "name")),
                "set an agent's or crew's spec.memory to it, or delete it",
            )
