"""``kiln import crewai PATH``: a CrewAI project's ``config/agents.yaml`` and
``config/tasks.yaml``, with what its ``crew.py`` says (process, tools, task context and
output models), as kiln Agent and Crew specs.

``crew.py`` is read with :mod:`ast` and never run. What maps: role, goal and backstory into
``instructions``; ``{name}`` placeholders into ``{{ inputs.name }}`` and crew inputs;
``description`` and ``expected_output`` into the task's prompt; ``context`` into
``depends_on``; a sequential crew's implicit context into ``context: previous``;
``output_json``/``output_pydantic`` models into ``output_schema``; ``llm`` and ``max_iter``;
CrewAI tools that have a kiln counterpart. Everything else is listed as left over.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from runtime.importers.common import Imported, document, kiln_name, template

__all__ = ["import_crewai"]

#: CrewAI tools with a kiln counterpart in the standard library.
TOOLS: Final = {
    "ScrapeWebsiteTool": "http_get",
    "FileReadTool": "file_read",
    "FileWriterTool": "file_write",
    "DirectoryReadTool": "file_list",
    "CodeInterpreterTool": "python",
    "JSONSearchTool": "json_query",
}
_AGENT_DROPPED: Final = {
    "verbose": "kiln's live view and trace show every step",
    "allow_delegation": "list the agents it may hand work to under delegate_to",
    "memory": "give the agent a MemoryPolicy (docs/memory.md)",
    "cache": "set cache on the Tool specs",
    "max_rpm": "rate limits belong to the provider; kiln retries 429s with backoff",
}
_TYPES: Final = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


@dataclass(slots=True)
class _CrewPy:
    """What ``crew.py`` says, read without running it."""

    process: str = "sequential"
    agent_tools: dict[str, list[str]] = field(default_factory=dict)
    agent_llm: dict[str, str] = field(default_factory=dict)
    task_order: list[str] = field(default_factory=list)
    task_agent: dict[str, str] = field(default_factory=dict)
    task_context: dict[str, list[str]] = field(default_factory=dict)
    task_output: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_extra: dict[str, list[str]] = field(default_factory=dict)
    #: method name -> the key of agents.yaml / tasks.yaml its config= reads (often different:
    #: ``def senior_idea_analyst_agent`` reading ``agents_config['senior_idea_analyst']``)
    config_key: dict[str, str] = field(default_factory=dict)
    found: bool = False

    def keyed(self) -> _CrewPy:
        """The same facts with every method name replaced by the config key it reads."""

        def k(name: str) -> str:
            return self.config_key.get(name, name)

        def keys(mapping: dict[str, Any]) -> dict[str, Any]:
            return {k(name): value for name, value in mapping.items()}

        return _CrewPy(
            process=self.process,
            agent_tools=keys(self.agent_tools),
            agent_llm=keys(self.agent_llm),
            task_order=list(dict.fromkeys(k(t) for t in self.task_order)),
            task_agent={k(t): k(a) for t, a in self.task_agent.items()},
            task_context={k(t): [k(c) for c in cs] for t, cs in self.task_context.items()},
            task_output=keys(self.task_output),
            task_extra=keys(self.task_extra),
            found=self.found,
        )


def import_crewai(path: Path, model: str) -> Imported:
    """The specs for every crew under ``path`` (a project, a crew folder or its config)."""
    configs = _configs(path)
    if not configs:
        raise FileNotFoundError(f"no CrewAI config/agents.yaml under {path}")
    imported = Imported()
    for config in configs:
        prefix = "" if len(configs) == 1 else f"{kiln_name(_crew_folder(config).name)}/"
        _one_crew(config, model, imported, prefix)
    return imported


def _configs(path: Path) -> list[Path]:
    if path.is_file():
        path = path.parent
    if (path / "agents.yaml").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("agents.yaml") if p.parent.name == "config")


def _crew_folder(config: Path) -> Path:
    """The package folder holding ``config/`` (its name names the crew)."""
    return config.parent


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _one_crew(config: Path, model: str, imported: Imported, prefix: str) -> None:
    folder = _crew_folder(config)
    agents = _load(config / "agents.yaml")
    tasks = _load(config / "tasks.yaml")
    crew_py = _read_crew_py(folder)
    where = f"{prefix}{config.name}" if prefix else config.name
    if not crew_py.found:
        imported.leave(str(folder), "no crew.py found", "tasks run in tasks.yaml order")
    variables: set[str] = set()
    names = {key: kiln_name(key) for key in agents}
    for key, raw in agents.items():
        agent = raw if isinstance(raw, dict) else {}
        doc = _agent(key, agent, names[key], model, crew_py, variables, imported, where)
        imported.add(f"{prefix}agents.yaml", doc)
    order = [t for t in crew_py.task_order if t in tasks] + [
        t for t in tasks if t not in crew_py.task_order
    ]
    crew_tasks = []
    for key in order:
        raw = tasks[key] if isinstance(tasks[key], dict) else {}
        crew_tasks.append(_task(key, raw, names, crew_py, variables, imported, where))
    if not crew_tasks:
        imported.leave(where, "no tasks in tasks.yaml: no Crew written")
        return
    crew_name = kiln_name(folder.name)
    spec: dict[str, Any] = {"description": f"Imported from CrewAI ({folder.name})"}
    if variables:
        spec["inputs"] = {v: {"type": "string"} for v in sorted(variables)}
    spec["process"] = crew_py.process
    if crew_py.process == "hierarchical":
        manager = "manager"
        spec["manager"] = manager
        imported.add(f"{prefix}agents.yaml", _manager(manager, model))
        imported.leave(
            f"{where}/crew.py",
            "manager_llm/manager_agent",
            "a 'manager' agent was written on the default model: adjust it",
        )
    if crew_py.process == "sequential" and len(crew_tasks) > 1:
        spec["context"] = "previous"  # CrewAI's implicit context: each task sees those before
    spec["tasks"] = crew_tasks
    spec["output"] = crew_tasks[-1]["name"]
    imported.add(
        f"{prefix}crew.yaml",
        document("Crew", crew_name, spec),
    )


def _agent(
    key: str,
    agent: dict[str, Any],
    name: str,
    model: str,
    crew_py: _CrewPy,
    variables: set[str],
    imported: Imported,
    where: str,
) -> dict[str, Any]:
    at = f"{where}/agents.yaml: {key}"
    parts = []
    if agent.get("role"):
        parts.append(f"You are {_flat(agent['role'])}.")
    if agent.get("goal"):
        parts.append(f"Your goal: {_flat(agent['goal'])}")
    if agent.get("backstory"):
        parts.append(_flat(agent["backstory"]))
    spec: dict[str, Any] = {"model": _model(agent.get("llm") or crew_py.agent_llm.get(key), model)}
    if agent.get("role"):
        spec["description"] = _flat(agent["role"])
    own: set[str] = set()  # placeholders in role/goal/backstory: the agent's inputs, bound
    spec["instructions"] = template("\n\n".join(parts) or "You help.", own)  # by name
    if own:
        spec["inputs"] = {v: {"type": "string"} for v in sorted(own)}
        variables.update(own)
    tools: list[str] = []
    for tool in crew_py.agent_tools.get(key, []):
        kiln_tool = TOOLS.get(tool)
        if kiln_tool is None:
            imported.leave(
                at,
                f"tool {tool}",
                "no kiln counterpart: write a Tool spec (http for an API, python for code) "
                "or connect an MCP server",
            )
        elif kiln_tool not in tools:
            tools.append(kiln_tool)
    if tools:
        spec["tools"] = tools
    if isinstance(agent.get("max_iter"), int) and agent["max_iter"] > 0:
        spec["limits"] = {"max_iterations": agent["max_iter"]}
    for option, hint in _AGENT_DROPPED.items():
        if option in agent:
            imported.leave(at, f"{option}: {agent[option]!r}", hint)
    for option in sorted(set(agent) - {"role", "goal", "backstory", "llm", "max_iter"}):
        if option not in _AGENT_DROPPED:
            imported.leave(at, f"{option}: {agent[option]!r}", "no kiln counterpart")
    return document("Agent", name, spec)


def _task(
    key: str,
    task: dict[str, Any],
    names: dict[str, str],
    crew_py: _CrewPy,
    variables: set[str],
    imported: Imported,
    where: str,
) -> dict[str, Any]:
    at = f"{where}/tasks.yaml: {key}"
    agent_key = task.get("agent") or crew_py.task_agent.get(key)
    if agent_key not in names:
        imported.leave(at, f"agent {agent_key!r} is not in agents.yaml", "the first agent runs it")
        agent_key = next(iter(names), "agent")
    prompt = _flat(task.get("description") or key)
    if task.get("expected_output"):
        prompt += f"\n\nExpected output: {_flat(task['expected_output'])}"
    out: dict[str, Any] = {"name": kiln_name(key), "agent": names.get(agent_key, agent_key)}
    out["prompt"] = template(prompt, variables)
    context = task.get("context") or crew_py.task_context.get(key)
    if isinstance(context, list) and context:
        out["depends_on"] = [kiln_name(str(c)) for c in context]
    schema = crew_py.task_output.get(key)
    if schema is not None:
        out["output_schema"] = schema
    for option in ("output_file", "human_input", "async_execution", "tools", "callback"):
        if option in task:
            imported.leave(at, f"{option}: {task[option]!r}", _TASK_HINTS[option])
    for option in crew_py.task_extra.get(key, []):
        imported.leave(f"{where}/crew.py: {key}", option, _TASK_HINTS.get(option, ""))
    return out


_TASK_HINTS: Final = {
    "output_file": "give the agent file_write and ask for the file in the prompt",
    "human_input": "set requires_approval on the tools a person must approve",
    "async_execution": "use process: parallel with depends_on",
    "tools": "kiln gives tools to agents, not tasks",
    "callback": "read the run's events (kiln run --events FILE)",
    "guardrail": "an output_schema checks the answer's shape",
}


def _manager(name: str, model: str) -> dict[str, Any]:
    return document(
        "Agent",
        name,
        {
            "model": model,
            "instructions": "You manage a crew: hand each task to the agent best suited to it, "
            "check what comes back, and put together the final answer.",
        },
    )


def _flat(value: Any) -> str:
    """Folded YAML text as one paragraph per blank-line-separated block."""
    text = str(value).strip()
    return "\n\n".join(" ".join(block.split()) for block in text.split("\n\n"))


def _model(llm: Any, default: str) -> str:
    if not isinstance(llm, str) or not llm.strip():
        return default
    llm = llm.strip()
    return llm if "/" in llm else f"openai/{llm}"


# --- crew.py, read with ast -------------------------------------------------------------


def _read_crew_py(folder: Path) -> _CrewPy:
    found = _CrewPy()
    for candidate in sorted(folder.glob("*.py")):
        try:
            tree = ast.parse(candidate.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        if not any(isinstance(n, ast.ClassDef) for n in tree.body):
            continue
        if "crewai" not in candidate.read_text(encoding="utf-8"):
            continue
        _read_module(tree, found)
        found.found = True
        break
    return found.keyed()


def _read_module(tree: ast.Module, found: _CrewPy) -> None:
    tool_vars = _tool_variables(tree)
    models = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "hierarchical":
            found.process = "hierarchical"
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = {_name(d) for d in node.decorator_list}
        call = _first_call(node, {"Agent", "Task"})
        key = _config_key(call) if call is not None else None
        if key is not None and decorators & {"agent", "task"}:
            found.config_key[node.name] = key
        if "agent" in decorators and call is not None:
            _read_agent(node.name, call, tool_vars, found)
        elif "task" in decorators:
            if node.name not in found.task_order:  # a redefined method keeps its place
                found.task_order.append(node.name)
            if call is not None:
                _read_task(node.name, call, models, found)


def _read_agent(name: str, call: ast.Call, tool_vars: dict[str, str], found: _CrewPy) -> None:
    for kw in call.keywords:
        if kw.arg == "tools" and isinstance(kw.value, ast.List | ast.Tuple):
            found.agent_tools[name] = [
                tool_vars.get(_name(e), _name(e)) if isinstance(e, ast.Name) else _name(e)
                for e in kw.value.elts
            ]
        elif kw.arg == "llm":
            model = _llm_model(kw.value)
            if model:
                found.agent_llm[name] = model


def _read_task(name: str, call: ast.Call, models: dict[str, ast.ClassDef], found: _CrewPy) -> None:
    for kw in call.keywords:
        if kw.arg == "agent":
            found.task_agent[name] = _name(kw.value)
        elif kw.arg == "context" and isinstance(kw.value, ast.List | ast.Tuple):
            found.task_context[name] = [_name(e) for e in kw.value.elts]
        elif kw.arg in ("output_json", "output_pydantic") and isinstance(kw.value, ast.Name):
            model = models.get(kw.value.id)
            if model is not None:
                found.task_output[name] = _schema_of(model, models)
        elif kw.arg in ("output_file", "human_input", "async_execution", "callback", "guardrail"):
            found.task_extra.setdefault(name, []).append(kw.arg)


def _config_key(call: ast.Call) -> str | None:
    """``config=self.agents_config['key']`` -> ``key``."""
    for kw in call.keywords:
        value = kw.value
        if kw.arg == "config" and isinstance(value, ast.Subscript):
            index = value.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, str):
                return index.value
    return None


def _tool_variables(tree: ast.Module) -> dict[str, str]:
    """Module-level ``x = SomeTool(...)``: the variable's name -> the tool's class."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = _name(node.value)
    return out


def _first_call(node: ast.AST, names: set[str]) -> ast.Call | None:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and _name(inner.func) in names:
            return inner
    return None


def _name(node: ast.AST) -> str:
    """``self.research_agent()`` -> research_agent; ``Tool(...)`` -> Tool; ``a.b`` -> b."""
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ast.unparse(node)


def _llm_model(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg == "model" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
        if node.args and isinstance(node.args[0], ast.Constant):
            return str(node.args[0].value)
    return None


def _schema_of(model: ast.ClassDef, models: dict[str, ast.ClassDef]) -> dict[str, Any]:
    """A JSON Schema from a pydantic model's annotated fields (nested models included)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for node in model.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        prop, optional = _annotation(node.annotation, models)
        description = _description(node.value)
        if description:
            prop = {**prop, "description": description}
        properties[name] = prop
        if not optional and not _has_default(node.value):
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _annotation(node: ast.AST, models: dict[str, ast.ClassDef]) -> tuple[dict[str, Any], bool]:
    """The schema of a type annotation, and whether it is Optional."""
    if isinstance(node, ast.Name):
        if node.id in _TYPES:
            return {"type": _TYPES[node.id]}, False
        if node.id in models:
            return _schema_of(models[node.id], models), False
        return {}, False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        left, _ = _annotation(node.left, models)
        right_none = isinstance(node.right, ast.Constant) and node.right.value is None
        return left, right_none
    if isinstance(node, ast.Subscript):
        outer = _name(node.value)
        inner = node.slice
        if outer in ("List", "list", "Sequence", "Set", "set", "Tuple", "tuple"):
            first = inner.elts[0] if isinstance(inner, ast.Tuple) else inner
            items, _ = _annotation(first, models)
            return {"type": "array", "items": items} if items else {"type": "array"}, False
        if outer == "Optional":
            schema, _ = _annotation(inner, models)
            return schema, True
        if outer in ("Dict", "dict"):
            return {"type": "object"}, False
    return {}, False


def _description(value: ast.AST | None) -> str | None:
    if isinstance(value, ast.Call) and _name(value.func) == "Field":
        for kw in value.keywords:
            if kw.arg == "description" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    return None


def _has_default(value: ast.AST | None) -> bool:
    if value is None:
        return False
    if isinstance(value, ast.Call) and _name(value.func) == "Field":
        if value.args and isinstance(value.args[0], ast.Constant) and value.args[0].value is ...:
            return False
        return any(kw.arg in ("default", "default_factory") for kw in value.keywords) or bool(
            value.args
        )
    return True
