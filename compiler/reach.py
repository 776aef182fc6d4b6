"""Which tools an agent can call: the ones it lists, and the ones its discovery can find."""

from __future__ import annotations

from collections.abc import Mapping

from compiler.symbols import Program
from specs import Tool


def discoverable(labels: Mapping[str, str], tool: Tool) -> bool:
    """Whether an agent whose discovery filters on ``labels`` can find ``tool``."""
    return all(tool.metadata.labels.get(k) == v for k, v in labels.items())


def tools_of(program: Program, agent_name: str) -> list[tuple[str, str]]:
    """(tool, how) for each tool the agent may call: ``listed`` ones, then by ``discovery``."""
    spec = program.agent(agent_name).spec
    found = [(t, "listed") for t in spec.tools if t in program.tools]
    discovery = spec.tool_discovery
    if discovery is not None and discovery.enabled:
        listed = set(spec.tools)
        for name in sorted(program.tools):
            if name not in listed and discoverable(discovery.labels, program.tool(name)):
                found.append((name, "discovery"))
    return found
