"""``kiln import adk FILE``: a Google ADK Agent Config (YAML) and the sub-agent configs it
names, as kiln specs.

``LlmAgent`` configs become Agents (``instruction``, ``description``, ``model``, inherited
from the parent when absent, as in ADK; ``sub_agents`` → ``delegate_to``).
``SequentialAgent`` and ``ParallelAgent`` become Crews with one task per sub-agent, each
given the request (``inputs.request``); a sequential crew passes each result on
(``context: previous``). ``LoopAgent``, code references (``code:``, callbacks, schemas) and
tools without a kiln counterpart are listed as left over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import yaml

from runtime.importers.common import Imported, document, escape_jinja, kiln_name

__all__ = ["import_adk"]

_TOOLS: Final = {"load_web_page": "http_get", "url_context": "http_get"}
_STATE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_:]*\??\}")
_KNOWN: Final = {"agent_class", "name", "model", "description", "instruction", "sub_agents",
                 "tools"}  # fmt: skip


def import_adk(path: Path, model: str) -> Imported:
    """The specs for an ADK agent config and every sub-agent config it reaches."""
    imported = Imported()
    _agent(path.resolve(), model, imported, seen={})
    return imported


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError(f"{path.name} is not an ADK agent config: it has no 'name'")
    return data


def _agent(path: Path, model: str, imported: Imported, seen: dict[Path, str]) -> str:
    """Write the spec of the config at ``path`` (once) and return its kiln name."""
    if path in seen:
        return seen[path]
    data = _read(path)
    name = kiln_name(data["name"])
    seen[path] = name
    at = f"{path.name}: {data['name']}"
    own_model = _model(data.get("model"), model)
    subs = [
        _agent((path.parent / ref["config_path"]).resolve(), own_model, imported, seen)
        for ref in data.get("sub_agents") or []
        if isinstance(ref, dict) and isinstance(ref.get("config_path"), str)
    ]
    for ref in data.get("sub_agents") or []:
        if not (isinstance(ref, dict) and isinstance(ref.get("config_path"), str)):
            imported.leave(at, f"sub-agent {ref!r}", "only config_path references are read")
    for option in sorted(set(data) - _KNOWN):
        imported.leave(at, option, "no kiln counterpart")
    kind = str(data.get("agent_class") or "LlmAgent")
    if kind in ("SequentialAgent", "ParallelAgent", "LoopAgent"):
        _crew(name, kind, data, subs, imported, at)
        return name
    spec: dict[str, Any] = {"model": own_model}
    if data.get("description"):
        spec["description"] = " ".join(str(data["description"]).split())
    instruction = str(data.get("instruction") or "You help.").strip()
    if _STATE.search(instruction):
        imported.leave(at, "{state} placeholders in instruction", "kept as text: kiln has no "
                       "session state; pass values as inputs ({{ inputs.name }})")  # fmt: skip
    spec["instructions"] = escape_jinja(instruction)
    tools = []
    for tool in data.get("tools") or []:
        tool_name = tool.get("name") if isinstance(tool, dict) else None
        kiln_tool = _TOOLS.get(str(tool_name))
        if kiln_tool is None:
            imported.leave(at, f"tool {tool_name or tool!r}", "no kiln counterpart: write a "
                           "Tool spec or connect an MCP server")  # fmt: skip
        elif kiln_tool not in tools:
            tools.append(kiln_tool)
    if tools:
        spec["tools"] = tools
    if subs:
        spec["delegate_to"] = subs
    imported.add(
        "agents.yaml",
        document("Agent", name, spec),
    )
    return name


def _crew(
    name: str, kind: str, data: dict[str, Any], subs: list[str], imported: Imported, at: str
) -> None:
    if not subs:
        imported.leave(at, f"{kind} without sub-agents", "no Crew written")
        return
    if kind == "LoopAgent":
        imported.leave(at, "LoopAgent", "written as a sequential crew run once: kiln has no loops")
    process = "parallel" if kind == "ParallelAgent" else "sequential"
    tasks = [
        {"name": f"{sub}-task" if sub == name else sub, "agent": sub,
         "prompt": "{{ inputs.request }}"}
        for sub in subs
    ]  # fmt: skip
    spec: dict[str, Any] = {
        "description": " ".join(str(data.get("description") or f"Imported ADK {kind}").split()),
        "inputs": {"request": {"type": "string", "description": "what the user asks"}},
        "process": process,
    }
    if process == "sequential" and len(tasks) > 1:
        spec["context"] = "previous"
    spec["tasks"] = tasks
    spec["output"] = tasks[-1]["name"]
    imported.add(
        "crews.yaml",
        document("Crew", name, spec),
    )


def _model(value: Any, inherited: str) -> str:
    if not isinstance(value, str) or not value.strip():
        return inherited
    text = value.strip()
    if "/" in text:
        return text
    return f"gemini/{text}" if text.startswith("gemini") else text
