"""A deterministic generator of large, valid spec projects, for benchmarks.

``generate_project(root)`` writes 1,000 specs (400 tools, 300 agents, 200 memory policies,
100 crews) of realistic size over ~100 multi-document YAML files in folders by kind: tools
with input and output schemas and inline code, agents with templated instructions, 1-4
tools and a memory policy, crews of 3-6 tasks whose prompts read the crew's inputs and
fields of the tasks they depend on. The same arguments always give the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

Spec = dict[str, Any]

_WORDS = (
    "alpha beta gamma delta report search index fetch parse summary ledger invoice order "
    "customer ticket region market trend forecast signal metric budget audit review draft "
    "policy archive catalog profile route schedule quota notice digest"
).split()
_TEAMS = ("research", "support", "finance", "ops", "sales", "legal")
_FIELD_TYPES = ("string", "string", "integer", "number", "boolean", "array")
_MODELS = (
    "local/smollm2-135m",
    "openai/gpt-4o-mini",
    "openai/gpt-4.1-mini",
    "anthropic/claude-3-5-haiku-latest",
    "gemini/gemini-2.0-flash",
    "ollama/llama3.1",
)
_INPUTS = ("topic", "audience", "question", "language", "region", "deadline", "account")


class _Dumper(yaml.SafeDumper):
    """Block style with flow leaves and ``|`` for multi-line text, as people write specs."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def _field_schema(rng: random.Random, kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, "description": _words(rng, 2, 6)}
    if kind == "array":
        schema["items"] = {"type": "string"}
    elif kind == "integer":
        schema.update(minimum=0, maximum=rng.choice((10, 100, 1000)))
    elif kind == "string" and rng.random() < 0.3:
        schema["maxLength"] = rng.choice((64, 256, 4096))
    return schema


def _object_schema(rng: random.Random, low: int, high: int) -> dict[str, Any]:
    names = rng.sample(_WORDS, rng.randint(low, high))
    props = {n: _field_schema(rng, rng.choice(_FIELD_TYPES)) for n in names}
    required = sorted(rng.sample(names, rng.randint(1, len(names))))
    return {"type": "object", "properties": props, "required": required}


def _header(kind: str, name: str, rng: random.Random) -> Spec:
    return {
        "apiVersion": "kiln/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": {"team": rng.choice(_TEAMS)}},
    }


def _tool(rng: random.Random, name: str) -> Spec:
    inputs = _object_schema(rng, 2, 5)
    inputs["additionalProperties"] = False
    output = _object_schema(rng, 1, 4)
    first = next(iter(inputs["properties"]))
    roll = rng.random()
    executor: dict[str, Any]
    if roll < 0.75:
        body = "\n".join(f"    {k} = input.get({k!r})" for k in inputs["properties"])
        fields = ", ".join(f"{k!r}: None" for k in output["properties"])
        code = f"def run(**input):\n{body}\n    return {{{fields}}}\n"
        executor = {"type": "python", "code": code}
    elif roll < 0.9:
        executor = {
            "type": "http",
            "method": rng.choice(("GET", "POST")),
            "url": f"https://api.example.com/{rng.choice(_WORDS)}?q={{{{ input.{first} }}}}",
            "headers": {"Accept": "application/json"},
            "allow_hosts": ["api.example.com"],
        }
    else:
        executor = {"type": "shell", "argv": ["wc", "-w", f"{{{{ input.{first} }}}}"]}
    spec: dict[str, Any] = {
        "description": _words(rng, 6, 14).capitalize() + ".",
        "input_schema": inputs,
        "output_schema": output,
        "executor": executor,
        "sandbox": {
            "memory_mb": rng.choice((64, 128, 256)),
            "cpu_s": rng.choice((1, 2, 5)),
            "timeout_s": rng.choice((5, 10, 30)),
        },
    }
    if rng.random() < 0.3:
        spec["cache"] = {"ttl_s": rng.choice((60, 600, 3600))}
    return {**_header("Tool", name, rng), "spec": spec}


def _policy(rng: random.Random, name: str) -> Spec:
    spec: dict[str, Any] = {
        "scope": rng.choice(("agent", "user", "session", "crew")),
        "short_term": {"backend": "inprocess", "max_messages": rng.choice((20, 40, 80))},
        "episodic": {"top_k": rng.randint(1, 5)},
        "remember": ["final_answers", "tool_observations"][: rng.randint(1, 2)],
        "retrieval": {"top_k": rng.randint(3, 10), "min_score": round(rng.random() / 2, 2)},
    }
    if rng.random() < 0.5:
        spec["vector"] = {"backend": "chroma", "path": f".kiln/{name}"}
    if rng.random() < 0.3:
        spec["inject"] = {
            "position": "system",
            "template": "Relevant memories for {{ query }}:\n"
            "{% for m in memories %}- {{ m }}\n{% endfor %}",
        }
    return {**_header("MemoryPolicy", name, rng), "spec": spec}


def _agent(rng: random.Random, name: str, tools: Sequence[str], policy: str, own_tool: str) -> Spec:
    inputs = rng.sample(_INPUTS, rng.randint(1, 3))
    lines = [f"You are {name}, who works on {_words(rng, 3, 6)}."]
    lines += [f"The {i} is {{{{ inputs.{i} }}}}." for i in inputs]
    lines += [_words(rng, 8, 16).capitalize() + "." for _ in range(rng.randint(1, 3))]
    picked = [own_tool, *rng.sample(list(tools), rng.randint(0, 3))]
    spec: dict[str, Any] = {
        "model": rng.choice(_MODELS),
        "description": _words(rng, 5, 10).capitalize() + ".",
        "inputs": {
            i: {"type": "string", "description": _words(rng, 2, 5)}
            | ({} if k == 0 else {"required": False, "default": rng.choice(_WORDS)})
            for k, i in enumerate(inputs)
        },
        "instructions": "\n".join(lines) + "\n",
        "tools": list(dict.fromkeys(picked)),
        "memory": policy,
        "strategy": rng.choice(("react", "react", "cot", "tot")),
        "limits": {
            "max_iterations": rng.randint(3, 20),
            "timeout_s": rng.choice((60, 120, 300)),
            "max_tokens": rng.choice((4000, 8000, 20000)),
            "max_cost_usd": rng.choice((0.1, 0.5, 1.0)),
        },
    }
    if rng.random() < 0.3:
        spec["fallbacks"] = [rng.choice(_MODELS)]
    if rng.random() < 0.85:
        spec["output_schema"] = _object_schema(rng, 2, 4)
    return {**_header("Agent", name, rng), "spec": spec}


def _crew(rng: random.Random, name: str, agents: Sequence[Spec]) -> Spec:
    count = rng.randint(3, 6)
    members = [rng.choice(agents) for _ in range(count)]
    inputs: dict[str, Any] = {}
    for agent in members:
        for key, value in agent["spec"]["inputs"].items():
            inputs.setdefault(key, {"type": "string", "description": value["description"]})
    tasks: list[dict[str, Any]] = []
    outputs: dict[str, dict[str, Any] | None] = {}
    for i, agent in enumerate(members):
        task_name = f"step{i}-{rng.choice(_WORDS)}"
        deps = [tasks[i - 1]["name"]] if i else []
        if i > 1 and rng.random() < 0.4:
            deps.append(rng.choice(tasks[: i - 1])["name"])
        lines = [f"{_words(rng, 4, 9).capitalize()} about {{{{ inputs.{next(iter(inputs))} }}}}."]
        for dep in deps:
            schema = outputs[dep]
            if schema is None:
                lines.append(f"Earlier work:\n{{{{ tasks[{dep!r}].output }}}}")
                continue
            for field in rng.sample(
                sorted(schema["properties"]), min(2, len(schema["properties"]))
            ):
                lines.append(f"{field.capitalize()}: {{{{ tasks[{dep!r}].output.{field} }}}}")
        task: dict[str, Any] = {
            "name": task_name,
            "agent": agent["metadata"]["name"],
            "prompt": "\n".join(lines) + "\n",
        }
        if deps:
            task["depends_on"] = deps
        outputs[task_name] = agent["spec"].get("output_schema")
        tasks.append(task)
    process = rng.choice(("sequential", "parallel", "parallel", "hierarchical"))
    spec: dict[str, Any] = {
        "description": _words(rng, 6, 12).capitalize() + ".",
        "inputs": inputs,
        "process": process,
        "tasks": tasks,
        "output": tasks[-1]["name"],
        "limits": {"timeout_s": rng.choice((600, 900, 1800)), "max_cost_usd": 5.0},
    }
    if process == "hierarchical":
        manager = rng.choice(agents)
        for key in manager["spec"]["inputs"]:
            inputs.setdefault(key, {"type": "string"})
        spec["manager"] = manager["metadata"]["name"]
    return {**_header("Crew", name, rng), "spec": spec}


def project_specs(
    tools: int = 400, agents: int = 300, policies: int = 200, crews: int = 100, seed: int = 0
) -> list[Spec]:
    """The specs of a valid project, as plain data: tools, policies, agents, then crews."""
    rng = random.Random(seed)
    tool_names = [f"tool-{i:04d}-{rng.choice(_WORDS)}" for i in range(tools)]
    policy_names = [f"memory-{i:04d}" for i in range(policies)]
    out: list[Spec] = [_tool(rng, n) for n in tool_names]
    out += [_policy(rng, n) for n in policy_names]
    agent_specs: list[Spec] = []
    for i in range(agents):
        own_tools = tool_names[i::agents] or [rng.choice(tool_names)]
        policy = policy_names[i % len(policy_names)]
        agent = _agent(rng, f"agent-{i:04d}", tool_names, policy, own_tools[0])
        agent["spec"]["tools"] = list(dict.fromkeys([*own_tools, *agent["spec"]["tools"]]))[:4]
        agent_specs.append(agent)
    out += agent_specs
    out += [_crew(rng, f"crew-{i:04d}", agent_specs) for i in range(crews)]
    return out


def render(docs: Sequence[Spec]) -> str:
    """One multi-document YAML file, written the way people write specs."""
    parts = [
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True)
        for doc in docs
    ]
    return "# generated by benchmarks/generate.py\n" + "---\n".join(parts)


def generate_project(
    root: Path,
    tools: int = 400,
    agents: int = 300,
    policies: int = 200,
    crews: int = 100,
    seed: int = 0,
    files: int = 100,
) -> list[Path]:
    """Write a valid project under ``root`` in about ``files`` files; returns their paths."""
    specs = project_specs(tools, agents, policies, crews, seed)
    by_kind: dict[str, list[Spec]] = {}
    for spec in specs:
        by_kind.setdefault(spec["kind"], []).append(spec)
    per_file = max(1, -(-len(specs) // max(1, files)))
    written: list[Path] = []
    for kind, docs in by_kind.items():
        folder = root / f"{kind.lower()}s"
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(docs), per_file):
            path = folder / f"{kind.lower()}-{start // per_file:03d}.yaml"
            path.write_text(render(docs[start : start + per_file]), encoding="utf-8")
            written.append(path)
    return written
