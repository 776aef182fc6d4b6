"""Hypothesis strategies for valid kiln projects, as plain data.

``projects()`` draws a list of spec documents that must compile with no error: tools,
memory policies, agents that use them (delegating only to agents drawn before them), and
crews whose tasks depend on earlier tasks and whose prompts read the crew's inputs and the
fields of ``tasks.<dep>.output`` that the dependency's output schema declares.
``leaves()`` lists the values whose change must change a spec's hash.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from hypothesis import strategies as st

from compiler.passes.load import stdlib_dir
from compiler.secrets import literal_secret

Spec = dict[str, Any]

STDLIB_TOOLS = frozenset(
    yaml.safe_load(p.read_text(encoding="utf-8"))["metadata"]["name"]
    for p in stdlib_dir().glob("*.yaml")
)
#: A user's tool may shadow a standard one of the same name (see
#: test_user_tool_shadowing_a_standard_one_compiles).
SHADOW_STDLIB = True
# Words Jinja reads as operators or constants: fields named so are read with brackets.
JINJA_WORDS = frozenset(
    "and or not in is if else elif for endfor endif true false none True False None".split()
)
MODELS = (
    "local/smollm2-135m",
    "local/models/tiny.gguf",
    "openai/gpt-4o-mini",
    "openai/gpt-4.1",
    "anthropic/claude-3-5-haiku-latest",
    "gemini/gemini-2.0-flash",
    "ollama/llama3.1:8b",
    "groq/llama-3.1-8b-instant",
    # (no scripted:FILE: a generated project has no script file beside it, K4014)
)
_CHARS = "abcdefgxyzABCXYZ0123456789 .,;:!?#&*|>'\"%-_/\\[]()=+~^\t"
_UNICODE = "éßøñ日本語Ωλ🙂🚀\u00a0"

# -- scalars -----------------------------------------------------------------------------


def _safe_text(text: str) -> bool:
    return literal_secret(None, text) is None


_ALPHABETS = {
    braces: st.sampled_from(_CHARS + _UNICODE + ("{}" if braces else ""))
    | st.characters(categories=("L", "N"))
    for braces in (False, True)
}


@functools.cache
def texts(min_size: int = 0, max_size: int = 12, braces: bool = True) -> st.SearchStrategy[str]:
    """Single-line text that is not a secret; without braces when it goes into a template."""
    alphabet = _ALPHABETS[braces]
    return st.text(alphabet, min_size=min_size, max_size=max_size).filter(_safe_text)


def _lines(parts: tuple[list[str], str]) -> str:
    return "\n".join(parts[0]) + parts[1]


@functools.cache
def paragraphs(braces: bool = True) -> st.SearchStrategy[str]:
    """Text of one or more lines, sometimes ending with a newline."""
    lines = st.lists(texts(max_size=12, braces=braces), min_size=1, max_size=3)
    return st.tuples(lines, st.sampled_from(("", "\n"))).map(_lines)


names = st.from_regex(r"[a-z][a-z0-9]{0,6}([-_][a-z0-9]{1,4}){0,2}", fullmatch=True)
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in JINJA_WORDS
)
label_keys = identifiers.filter(lambda k: literal_secret(k, "v") is None)


def _ref(root: str, *parts: str) -> str:
    """A Jinja expression reading ``root.part...``, with brackets where a dot cannot go."""
    out = root
    for part in parts:
        plain = re.fullmatch(r"[A-Za-z_]\w*", part) and part not in JINJA_WORDS
        out += f".{part}" if plain else f"[{part!r}]"
    return out


# -- pieces of specs ---------------------------------------------------------------------


@st.composite
def field_schemas(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("string", "integer", "number", "boolean", "array", "object")))
    schema: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        schema["description"] = draw(texts())
    if kind == "array":
        schema["items"] = {"type": draw(st.sampled_from(("string", "number")))}
    elif kind in ("integer", "number") and draw(st.booleans()):
        low = draw(st.integers(-1000, 1000))
        schema.update(minimum=low, maximum=low + draw(st.integers(0, 10**6)))
    elif kind == "string" and draw(st.booleans()):
        schema["enum"] = draw(st.lists(texts(max_size=8), min_size=1, max_size=3, unique=True))
    return schema


@st.composite
def object_schemas(draw: st.DrawFn, min_props: int = 0) -> dict[str, Any]:
    props = draw(st.dictionaries(identifiers, field_schemas(), min_size=min_props, max_size=3))
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if draw(st.booleans()) and props:
        schema["required"] = draw(st.lists(st.sampled_from(sorted(props)), unique=True))
    if draw(st.booleans()):
        schema["additionalProperties"] = draw(st.booleans())
    return schema


labels = st.dictionaries(label_keys, texts(max_size=12), max_size=3)


@st.composite
def metadata(draw: st.DrawFn, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        meta["labels"] = draw(labels)
    if draw(st.booleans()):
        meta["description"] = draw(texts())
    return meta


def _doc(kind: str, meta: dict[str, Any], spec: dict[str, Any]) -> Spec:
    return {"apiVersion": "kiln/v1", "kind": kind, "metadata": meta, "spec": spec}


@st.composite
def executors(draw: st.DrawFn, props: list[str]) -> dict[str, Any]:
    kind = draw(st.sampled_from(("python", "python", "builtin", "http", "shell", "mcp")))
    use = f"{{{{ {_ref('input', draw(st.sampled_from(props)))} }}}}" if props else "x"
    if kind == "python":
        if draw(st.booleans()):
            return {"type": "python", "code": "def run(**kw):\n    return {'ok': True}\n"}
        return {"type": "python", "entrypoint": "pkg.tools:run", "paths": ["."]}
    if kind == "builtin":
        return {"type": "builtin", "function": "stdlib_tools.calculator:run"}
    if kind == "http":
        executor: dict[str, Any] = {
            "type": "http",
            "method": draw(st.sampled_from(("GET", "POST", "DELETE"))),
            "url": f"https://api.example.com/v1/{use}",
            "allow_hosts": ["api.example.com"],
        }
        if draw(st.booleans()):
            executor["headers"] = {"Accept": "application/json"}
        if draw(st.booleans()):
            executor["body"] = f'{{"q": "{use}"}}'
        return executor
    if kind == "shell":
        return {"type": "shell", "argv": ["echo", draw(texts(min_size=1, braces=False)), use]}
    if draw(st.booleans()):
        return {"type": "mcp", "server": {"command": ["mcp-server-time"]}, "tool": "now"}
    return {"type": "mcp", "server": {"transport": "http", "url": "http://127.0.0.1:9/mcp"}}


@st.composite
def tools(draw: st.DrawFn, name: str) -> Spec:
    inputs = draw(object_schemas())
    spec: dict[str, Any] = {
        "description": draw(texts(min_size=1)),
        "input_schema": inputs,
        "executor": draw(executors(sorted(inputs["properties"]))),
    }
    if draw(st.booleans()):
        spec["output_schema"] = draw(object_schemas())
    if draw(st.booleans()):
        spec["sandbox"] = {
            "memory_mb": draw(st.integers(16, 65_536)),
            "cpu_s": draw(st.integers(1, 3600)),
            "timeout_s": draw(st.floats(0.5, 3600)),
            "network": draw(st.booleans()),
        }
    if draw(st.booleans()):
        spec["cache"] = {"ttl_s": draw(st.integers(0, 10**6))}
    if draw(st.booleans()):
        spec["requires_approval"] = draw(st.booleans())
        spec["side_effects"] = draw(st.booleans())
    return _doc("Tool", draw(metadata(name)), spec)


@st.composite
def policies(draw: st.DrawFn, name: str) -> Spec:
    spec: dict[str, Any] = {"scope": draw(st.sampled_from(("agent", "user", "session", "crew")))}
    if draw(st.booleans()):
        spec["short_term"] = {
            "backend": draw(st.sampled_from(("inprocess", "redis"))),
            "max_messages": draw(st.integers(1, 500)),
        }
    if draw(st.booleans()):
        spec["vector"] = {"backend": "chroma", "path": f".kiln/{name}", "embedder": "default"}
    if draw(st.booleans()):
        spec["graph"] = {
            "backend": "neo4j",
            "uri": "bolt://localhost:7687",
            "user": "neo4j",
            "password": "${env:NEO4J_PASSWORD}",
        }
    if draw(st.booleans()):
        spec["episodic"] = {"top_k": draw(st.integers(1, 100))}
    if draw(st.booleans()):
        remember = ("final_answers", "tool_observations", "user_facts")
        spec["remember"] = draw(st.lists(st.sampled_from(remember), unique=True))
    if draw(st.booleans()):
        spec["retrieval"] = {
            "top_k": draw(st.integers(1, 200)),
            "min_score": draw(st.floats(0, 1)),
            "weights": {"relevance": draw(st.floats(0, 10)), "recency": 0.25},
        }
    if draw(st.booleans()):
        spec["inject"] = {
            "position": draw(st.sampled_from(("system", "before_input"))),
            "template": "For {{ query }}:\n{% for m in memories %}- {{ m }}\n{% endfor %}",
        }
    return _doc("MemoryPolicy", draw(metadata(name)), spec)


input_specs = st.fixed_dictionaries(
    {"type": st.sampled_from(("string", "number", "integer", "boolean", "object", "array"))},
    optional={"description": texts()},
) | st.fixed_dictionaries(
    {"type": st.just("string"), "required": st.just(False)},
    optional={"default": texts(max_size=10)},
)
_SHAPES = st.sampled_from(
    (
        "{{ %s }}",
        "{{ %s | string | upper }}",
        "{%% if %s %%}yes{%% endif %%}",
        "{%% for x in %s %%}{{ x }}{%% endfor %%}",
    )
)


@st.composite
def template(draw: st.DrawFn, refs: list[str]) -> str:
    """A Jinja template reading each of ``refs`` (expressions), between literal text."""
    parts = [draw(paragraphs(braces=False))]
    for ref in refs:
        parts.append(draw(_SHAPES) % ref)
        parts.append(draw(texts(max_size=6, braces=False)))
    return draw(st.sampled_from((" ", "\n"))).join(parts)


@st.composite
def models(draw: st.DrawFn, name: str) -> Spec:
    """A Model spec: a model string shared by agents, with fallbacks and parameters."""
    spec: dict[str, Any] = {"model": draw(st.sampled_from(MODELS))}
    if draw(st.booleans()):
        spec["fallbacks"] = draw(st.lists(st.sampled_from(MODELS), max_size=2))
    if draw(st.booleans()):
        spec["params"] = {"max_tokens": draw(st.integers(1, 4096))}
    return _doc("Model", draw(metadata(name)), spec)


@st.composite
def agents(
    draw: st.DrawFn,
    name: str,
    earlier: list[str],
    tool_names: list[str],
    policy_names: list[str],
    model_names: tuple[str, ...] = (),
) -> Spec:
    inputs = draw(st.dictionaries(identifiers, input_specs, max_size=3))
    read = draw(st.lists(st.sampled_from(sorted(inputs)), max_size=3)) if inputs else []
    spec: dict[str, Any] = {
        "model": draw(st.sampled_from((*MODELS, *model_names))),
        "instructions": draw(template([_ref("inputs", i) for i in read])),
        "inputs": inputs,
        "limits": {
            "max_iterations": draw(st.integers(1, 10_000)),
            "timeout_s": draw(st.integers(1, 86_400)),
            "max_tokens": draw(st.integers(1, 10**7)),
        },
    }
    if draw(st.booleans()):
        spec["limits"]["max_cost_usd"] = draw(st.floats(0.01, 100))
    if tool_names:
        spec["tools"] = draw(st.lists(st.sampled_from(tool_names), unique=True, max_size=4))
    if draw(st.booleans()) and policy_names:
        spec["memory"] = draw(st.sampled_from(policy_names))
    if draw(st.booleans()) and earlier:
        spec["delegate_to"] = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2))
    if draw(st.booleans()):
        spec["fallbacks"] = draw(st.lists(st.sampled_from(MODELS), max_size=2))
    if draw(st.booleans()):
        spec["description"] = draw(texts())
    if draw(st.booleans()):
        spec["strategy"] = draw(st.sampled_from(("react", "cot", "tot")))
        spec["temperature"] = draw(st.floats(0, 2))
    if draw(st.booleans()):
        spec["tool_discovery"] = {"top_k": draw(st.integers(1, 50)), "labels": draw(labels)}
    if draw(st.booleans()):
        spec["output_schema"] = draw(object_schemas(min_props=1))
    return _doc("Agent", draw(metadata(name)), spec)


def _closure(deps: dict[str, list[str]], task: str) -> list[str]:
    seen: list[str] = []
    stack = list(deps[task])
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.append(dep)
            stack.extend(deps[dep])
    return sorted(seen)


@st.composite
def crews(draw: st.DrawFn, name: str, agent_docs: list[Spec], policy_names: list[str]) -> Spec:
    by_name = {a["metadata"]["name"]: a for a in agent_docs}
    task_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    process = draw(st.sampled_from(("sequential", "parallel", "hierarchical")))
    members = [draw(st.sampled_from(sorted(by_name))) for _ in task_names]
    manager = draw(st.sampled_from(sorted(by_name))) if process == "hierarchical" else None
    inputs: dict[str, Any] = {}
    for member in [*members, *([manager] if manager else [])]:
        for key, value in by_name[member]["spec"]["inputs"].items():
            inputs.setdefault(key, value)
    inputs.update(draw(st.dictionaries(identifiers, input_specs, max_size=2)))
    deps: dict[str, list[str]] = {}
    outputs: dict[str, Any] = {}
    tasks: list[dict[str, Any]] = []
    for i, (task_name, member) in enumerate(zip(task_names, members, strict=True)):
        explicit = draw(st.booleans())
        chosen = draw(st.lists(st.sampled_from(task_names[:i]), unique=True)) if i else []
        deps[task_name] = chosen
        visible = _closure(deps, task_name) if explicit else chosen
        refs = (
            [_ref("inputs", k) for k in draw(st.lists(st.sampled_from(sorted(inputs))))]
            if (inputs)
            else []
        )
        for dep in visible if explicit else chosen:
            props = sorted((outputs[dep] or {}).get("properties", {}))
            field = draw(st.sampled_from(props)) if draw(st.booleans()) and props else None
            refs.append(_ref("tasks", dep, "output", *([field] if field else [])))
        task: dict[str, Any] = {"name": task_name, "agent": member, "prompt": draw(template(refs))}
        if explicit:
            task["depends_on"] = chosen
        if draw(st.booleans()):
            task["description"] = draw(texts())
        if draw(st.booleans()):
            task["output_schema"] = draw(object_schemas(min_props=1))
        outputs[task_name] = task.get("output_schema") or by_name[member]["spec"].get(
            "output_schema"
        )
        tasks.append(task)
    spec: dict[str, Any] = {"process": process, "tasks": tasks, "inputs": inputs}
    if manager:
        spec["manager"] = manager
    if draw(st.booleans()):
        spec["output"] = draw(st.sampled_from(task_names))
    if draw(st.booleans()) and policy_names:
        spec["memory"] = draw(st.sampled_from(policy_names))
        spec["shared_memory"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["limits"] = {"timeout_s": draw(st.integers(1, 10**5)), "max_cost_usd": 2.5}
    if draw(st.booleans()):
        spec["description"] = draw(paragraphs())
    return _doc("Crew", draw(metadata(name)), spec)


def _unique_names(low: int, high: int, avoid: frozenset[str] = frozenset()) -> Any:
    return st.lists(
        names.filter(lambda n: n not in avoid), min_size=low, max_size=high, unique=True
    )


@st.composite
def projects(draw: st.DrawFn) -> list[Spec]:
    """The documents of a project that compiles with no error."""
    tool_names = draw(_unique_names(0, 3, STDLIB_TOOLS))
    if SHADOW_STDLIB and draw(st.booleans()):
        tool_names.append(draw(st.sampled_from(sorted(STDLIB_TOOLS))))
    policy_names = draw(_unique_names(0, 2))
    model_names = tuple(draw(_unique_names(0, 2)))
    agent_names = draw(_unique_names(1, 3))
    crew_names = draw(_unique_names(0, 2))
    docs = [draw(tools(n)) for n in tool_names]
    docs += [draw(policies(n)) for n in policy_names]
    docs += [draw(models(n)) for n in model_names]
    agent_docs: list[Spec] = []
    for i, name in enumerate(agent_names):
        usable = sorted({*tool_names, *STDLIB_TOOLS})
        agent_docs.append(
            draw(agents(name, agent_names[:i], usable, policy_names, model_names))
        )
    docs += agent_docs
    docs += [draw(crews(n, agent_docs, policy_names)) for n in crew_names]
    return docs


def _bump(high: int) -> Callable[[Any], Any]:
    """A change of an integer that stays within ``[1, high]``."""
    return lambda v: v + 1 if v < high else v - 1


def leaves(docs: list[Spec]) -> Iterator[tuple[int, tuple[str | int, ...], Callable[[Any], Any]]]:
    """(document, path, change) for leaves whose change gives a different, valid spec."""
    for i, doc in enumerate(docs):
        spec = doc["spec"]
        yield i, ("metadata", "description"), lambda v: (v or "") + " (v2)"
        if doc["kind"] not in ("MemoryPolicy", "Model"):  # their specs have no description
            yield i, ("spec", "description"), lambda v: (v or "") + " (v2)"
        if doc["kind"] == "Agent":
            yield i, ("spec", "model"), lambda v: next(m for m in MODELS if m != v)
            for key, high in (("max_iterations", 10_000), ("max_tokens", 10**8)):
                yield i, ("spec", "limits", key), _bump(high)
        elif doc["kind"] == "Tool":
            yield i, ("spec", "sandbox", "memory_mb"), lambda v: 64 if v != 64 else 128
        elif doc["kind"] == "MemoryPolicy":
            yield i, ("spec", "retrieval", "top_k"), lambda v: 7 if v != 7 else 8
        elif doc["kind"] == "Crew":
            for t in range(len(spec["tasks"])):
                yield i, ("spec", "tasks", t, "description"), lambda v: (v or "") + " (v2)"


def changed(docs: list[Spec], index: int, path: tuple[str | int, ...], change: Any) -> list[Spec]:
    out = copy.deepcopy(docs)
    node: Any = out[index]
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = change(node.get(path[-1]))
    return out
