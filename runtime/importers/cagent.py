"""``kiln import cagent FILE``: a cagent (Docker Agent) YAML file as kiln specs.

What maps: every agent (``instruction`` → ``instructions``, ``description``,
``sub_agents`` → ``delegate_to``, ``structured_output.schema`` → ``output_schema``,
``max_iterations``); named ``models`` (provider, model, ``max_tokens``, ``temperature``,
``base_url``) into each agent's model string and ``model_params``; toolsets with a kiln
counterpart: ``filesystem`` (file tools), ``fetch`` (``http_get``), ``shell`` (a sandboxed
``sh -c`` Tool spec), and ``mcp`` servers started by a command or reached by URL (a Tool
spec each). The rest (``think``, ``todo``, ``memory``, catalogue references such as
``ref: docker:…``, hooks, commands) is listed as left over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from runtime.importers.common import Imported, document, kiln_name

__all__ = ["import_cagent"]

#: cagent provider names that litellm spells differently.
_PROVIDERS: Final = {
    "google": "gemini",
    "dmr": "docker_model_runner",
    "amazon-bedrock": "bedrock",
    "bedrock": "bedrock",
}
_GUESS: Final = (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                 ("claude", "anthropic"), ("gemini", "gemini"), ("mistral", "mistral"),
                 ("grok", "xai"))  # fmt: skip
_MODEL_PARAMS: Final = ("max_tokens", "temperature", "top_p")
_LEFT: Final = {
    "think": "kiln's ReAct steps already carry a thought",
    "todo": "no kiln counterpart yet",
    "memory": "give the agent a MemoryPolicy (docs/memory.md)",
    "user_prompt": "ask with an approval (requires_approval on a tool)",
    "script": "write a Tool spec with executor: {type: shell, argv: [...]}",
}
_AGENT_KEYS: Final = {"model", "description", "instruction", "sub_agents", "toolsets",
                      "structured_output", "max_iterations", "name"}  # fmt: skip

SHELL_TOOL: Final[dict[str, Any]] = document(
    "Tool",
    "shell",
    {
        "description": "Run a shell command in a sandbox and return its output.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "the command line"}},
            "required": ["command"],
            "additionalProperties": False,
        },
        "executor": {"type": "shell", "argv": ["sh", "-c", "{{ input.command }}"]},
    },
)


def import_cagent(path: Path, model: str) -> Imported:
    """The specs for the agents of one cagent file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
        raise ValueError("not a cagent file: it has no 'agents' mapping")
    models: dict[str, Any] = data["models"] if isinstance(data.get("models"), dict) else {}
    providers: dict[str, Any] = data["providers"] if isinstance(data.get("providers"), dict) else {}
    imported = Imported()
    names = {key: kiln_name(str(key)) for key in data["agents"]}
    tools_written: set[str] = set()
    shared: set[str] = set()
    for key, raw in data["agents"].items():
        agent = raw if isinstance(raw, dict) else {}
        at = f"{path.name}: agents.{key}"
        spec: dict[str, Any] = {}
        spec.update(
            _agent_model(agent.get("model"), models, providers, model, imported, at, shared)
        )
        if agent.get("description"):
            spec["description"] = " ".join(str(agent["description"]).split())
        spec["instructions"] = str(agent.get("instruction") or "You help.").strip()
        tools = _toolsets(agent.get("toolsets"), imported, at, tools_written)
        if tools:
            spec["tools"] = tools
        subs = []
        for sub in agent.get("sub_agents") or []:
            if sub in names:
                subs.append(names[sub])
            else:
                imported.leave(at, f"sub-agent {sub!r}", "not in this file: import it too")
        if subs:
            spec["delegate_to"] = subs
        output = agent.get("structured_output")
        if isinstance(output, dict) and isinstance(output.get("schema"), dict):
            spec["output_schema"] = output["schema"]
        if isinstance(agent.get("max_iterations"), int) and agent["max_iterations"] > 0:
            spec["limits"] = {"max_iterations": agent["max_iterations"]}
        for option in sorted(set(agent) - _AGENT_KEYS):
            imported.leave(at, option, "no kiln counterpart")
        imported.add(
            "agents.yaml",
            document("Agent", names[key], spec),
        )  # fmt: skip
    return imported


def _agent_model(
    ref: Any,
    models: dict[str, Any],
    providers: dict[str, Any],
    default: str,
    imported: Imported,
    at: str,
    shared: set[str],
) -> dict[str, Any]:
    """An agent's model, model_params and fallbacks; a model named in the file's ``models``
    becomes one Model spec that every agent naming it shares."""
    spec: dict[str, Any] = {}
    refs = [r.strip() for r in str(ref or "").split(",") if r.strip()]
    model_name, params = _model(ref, models, providers, default, imported, at)
    if refs and isinstance(models.get(refs[0]), dict):
        name = kiln_name(refs[0])
        if name not in shared:
            shared.add(name)
            model_spec: dict[str, Any] = {"model": model_name}
            if params:
                model_spec["params"] = params
            imported.add(
                "models.yaml",
                document("Model", name, model_spec),
            )  # fmt: skip
        spec["model"] = name
    else:
        spec["model"] = model_name
        if params:
            spec["model_params"] = params
    # cagent's "a,b": try b when a fails
    fallbacks = [_model(r, models, providers, default, imported, at)[0] for r in refs[1:]]
    if fallbacks:
        spec["fallbacks"] = fallbacks
    return spec


def _model(
    ref: Any,
    models: dict[str, Any],
    providers: dict[str, Any],
    default: str,
    imported: Imported,
    at: str,
) -> tuple[str, dict[str, Any]]:
    """A kiln model string and model_params for a cagent ``model:`` value."""
    if not isinstance(ref, str) or ref.strip() in ("", "auto"):
        return default, {}
    first = ref.split(",")[0].strip()  # "a,b" is a cagent fallback list
    named = models.get(first)
    if isinstance(named, dict):
        provider = _PROVIDERS.get(str(named.get("provider", "")), str(named.get("provider", "")))
        name = str(named.get("model", first))
        params = {k: named[k] for k in _MODEL_PARAMS if k in named}
        if named.get("base_url"):
            params["api_base"] = named["base_url"]
        provider = _custom(provider, providers, params)
        for option in sorted(set(named) - {"provider", "model", "base_url", *_MODEL_PARAMS}):
            imported.leave(f"{at}: models.{first}", option, "no kiln counterpart")
        return (f"{provider}/{name}" if provider else _guess(name, default)), params
    if "/" in first:
        provider, _, name = first.partition("/")
        extra: dict[str, Any] = {}
        provider = _custom(_PROVIDERS.get(provider, provider), providers, extra)
        return f"{provider}/{name}", extra
    return _guess(first, default), {}


def _custom(provider: str, providers: dict[str, Any], params: dict[str, Any]) -> str:
    """A provider the file defines itself (an OpenAI-compatible gateway) as ``openai`` with
    its base URL and key; any other provider as it is."""
    custom = providers.get(provider)
    if not isinstance(custom, dict):
        return provider
    if custom.get("base_url"):
        params["api_base"] = custom["base_url"]
    if custom.get("token_key"):
        params["api_key"] = f"${{env:{custom['token_key']}}}"
    return "openai"


_CAGENT_ENV = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _env_refs(text: str) -> str:
    """cagent's ``${env.NAME}`` as kiln's ``${env:NAME}``."""
    return _CAGENT_ENV.sub(r"${env:\1}", text)


def _guess(name: str, default: str) -> str:
    for prefix, provider in _GUESS:
        if name.lower().startswith(prefix):
            return f"{provider}/{name}"
    return default


def _toolsets(raw: Any, imported: Imported, at: str, written: set[str]) -> list[str]:
    tools: list[str] = []
    for index, toolset in enumerate(raw or []):
        if not isinstance(toolset, dict):
            continue
        kind = str(toolset.get("type", ""))
        if kind == "filesystem":
            tools += ["file_read", "file_write", "file_list"]
        elif kind == "fetch":
            tools.append("http_get")
        elif kind == "shell":
            if "shell" not in written:
                imported.add("tools.yaml", SHELL_TOOL)
                written.add("shell")
            tools.append("shell")
        elif kind == "mcp":
            name = _mcp(toolset, imported, f"{at}.toolsets[{index}]", written)
            if name is not None:
                tools.append(name)
        else:
            imported.leave(f"{at}.toolsets[{index}]", f"toolset {kind!r}", _LEFT.get(kind, ""))
    return list(dict.fromkeys(tools))


def _mcp(toolset: dict[str, Any], imported: Imported, at: str, written: set[str]) -> str | None:
    """A Tool spec for an MCP toolset started by a command or reached by URL."""
    command = toolset.get("command")
    remote: dict[str, Any] = toolset["remote"] if isinstance(toolset.get("remote"), dict) else {}
    url = remote.get("url") or toolset.get("url")
    if isinstance(command, str) and command:
        args = [str(a) for a in toolset.get("args") or []]
        server: dict[str, Any] = {"command": [command, *args]}
        env = toolset.get("env")
        if isinstance(env, dict) and env:
            server["env"] = {str(k): _env_refs(str(v)) for k, v in env.items()}
        label = " ".join([command, *args[:2]])
        stem = Path(args[-1] if args else command).name.split("@")[0]
    elif isinstance(url, str) and url:
        server = {"transport": "http", "url": url}
        headers = remote.get("headers")
        if isinstance(headers, dict) and headers:
            server["headers"] = {str(k): _env_refs(str(v)) for k, v in headers.items()}
        label = url
        parsed = urlsplit(url)
        host = parsed.hostname or "mcp"
        stem = f"{host}-{parsed.port}" if parsed.port else host
    else:
        imported.leave(at, f"MCP server {toolset.get('ref', '?')!r}",
                       "a catalogue reference: name its command or URL in a Tool spec")  # fmt: skip
        return None
    name = kiln_name(str(toolset.get("name") or stem or "mcp"))[:40]
    key = f"mcp:{label}"
    known = next((n for n in written if n.startswith(key + "\x00")), None)
    if known is not None:
        return known.split("\x00", 1)[1]
    taken = {n.split("\x00", 1)[-1] for n in written}
    base, number = name, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    written.add(f"{key}\x00{name}")
    spec: dict[str, Any] = {
        "description": f"Tools of the MCP server {label}",
        "executor": {"type": "mcp", "server": server},
    }
    if toolset.get("tools"):
        imported.leave(at, "tools: a subset of the server's tools", "kiln lists every tool")
    imported.add(
        "tools.yaml",
        document("Tool", name, spec),
    )
    return name
