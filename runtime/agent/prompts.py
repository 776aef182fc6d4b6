"""What the strategies tell the model, and the JSON shapes they ask for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.tools import BoundTool

#: Thoughts are notes, not essays: bounded so a small model cannot ramble until its reply is
#: cut off (constrained decoding enforces it; 300 costs the grammar nothing measurable).
THOUGHT = {"type": "string", "maxLength": 300}


def answer_schema(output_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(output_schema) if output_schema is not None else {"type": "string"}


def final_branch(output_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"thought": THOUGHT, "final": answer_schema(output_schema)},
        "required": ["thought", "final"],
        "additionalProperties": False,
    }


def action_schema(
    tools: Sequence[BoundTool], output_schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One JSON object per step: a call of one of ``tools``, or the final answer."""
    branches: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "thought": THOUGHT,
                "tool": {"const": t.name},
                "input": _no_empty_strings(t.input_schema),
            },
            "required": ["thought", "tool", "input"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    branches.append(final_branch(output_schema))
    return {"anyOf": branches} if len(branches) > 1 else branches[0]


def _no_empty_strings(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with ``minLength: 1`` on its required string properties that set none.

    Under constrained decoding a small model otherwise "calls" a tool with an empty
    expression or text, and learns nothing from the error that comes back.
    """
    out = dict(schema)
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        return out
    fixed = dict(properties)
    for name in required:
        prop = properties.get(name)
        if isinstance(prop, Mapping) and prop.get("type") == "string" and "minLength" not in prop:
            fixed[name] = {**prop, "minLength": 1}
    out["properties"] = fixed
    return out


def _answer_rule(output_schema: Mapping[str, Any] | None) -> str:
    if output_schema is None:
        return "Your final answer is plain text."
    return "Your final answer must be JSON matching this schema:\n" + json.dumps(
        output_schema, separators=(",", ":")
    )


def _arguments(schema: Mapping[str, Any]) -> str:
    """A tool's arguments as ``name (type, required): description`` items, without examples.

    Small models copy sample values into every call (the calculator's ``(2 + 3) *
    sqrt(16)`` was sent for "12 times 7"), so only the names, types and descriptions go in.
    """
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return "no arguments"
    required = set(schema.get("required") or ())
    parts = []
    for name, prop in properties.items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = prop.get("type", "any")
        flags = ", required" if name in required else ""
        described = str(prop.get("description") or "").strip()
        parts.append(f'"{name}" ({kind}{flags})' + (f": {described}" if described else ""))
    return "; ".join(parts)


def react_json(instructions: str, tools: Sequence[BoundTool], output_schema: Any) -> str:
    """The system prompt of a JSON ReAct agent, built from its own tools and output schema.

    Measured on the newcomer suite (benchmarks/local_model_suite.py): tools first, their
    arguments without sample values, and three plain rules (the question's own values go
    into the input; answer as soon as an observation answers; no tool for questions that
    need none) are what small local models need.
    """
    lines: list[str] = []
    if tools:
        lines.append("You have these tools:")
        for t in tools:
            lines.append(f"- {t.name}: {' '.join(t.description.split())}")
            lines.append(f"  input: {_arguments(t.input_schema)}")
        lines.append("")
    if instructions.strip():
        lines += [instructions.strip(), ""]
    lines += [
        "Reply to every message with exactly one JSON object and nothing else:",
        '- to call a tool: {"thought": "<short reason>", "tool": "<tool name>", '
        '"input": {<arguments>}}',
        '- to finish: {"thought": "<short reason>", "final": <your final answer>}',
        "Rules:",
        "- Put the values from the question itself into the tool input.",
        "- Each tool call is answered with an observation. As soon as an observation "
        "answers the question, finish, using the observation's values.",
        "- If the question needs no tool, finish at once.",
        "- Never make up an observation.",
        _answer_rule(output_schema),
    ]
    return "\n".join(lines)


def react_native(instructions: str, output_schema: Any) -> str:
    lines = [instructions.strip(), ""] if instructions.strip() else []
    lines += [
        "Use the tools when they help. When you are done, reply without calling a tool:",
        "that reply is your final answer. " + _answer_rule(output_schema),
    ]
    return "\n".join(lines)


def cot(instructions: str, output_schema: Any) -> str:
    lines = [instructions.strip(), ""] if instructions.strip() else []
    lines += [
        "Reason step by step before answering. Reply with exactly one JSON object:",
        '{"thought": "<your reasoning, step by step>", "final": <your final answer>}',
        _answer_rule(output_schema),
    ]
    return "\n".join(lines)


LAST_STEP = (
    "This is your last step: give your final answer now, as "
    '{"thought": "...", "final": ...}, without calling a tool.'
)


def malformed(error: str) -> str:
    return (
        f"Error: your reply is not a valid step ({error}). Reply with exactly one JSON "
        'object: {"thought": ..., "tool": ..., "input": {...}} or {"thought": ..., "final": ...}.'
    )


def rejected_answer(error: str, output_schema: Any) -> str:
    return (
        f"Your final answer does not match the required output schema: {error}. "
        "Give your final answer again, matching: "
        + json.dumps(output_schema, separators=(",", ":"))
    )


def repeated(tool: str, times: int) -> str:
    return (
        f"You have called {tool} with this same input {times} times in a row; the result "
        "will not change. Use what you already know, try something different, or give your "
        "final answer."
    )


def tot_propose(problem: str, path: Sequence[str], siblings: Sequence[str]) -> str:
    lines = [f"Problem:\n{problem}", ""]
    if path:
        lines += ["Reasoning so far:", *(f"{i + 1}. {t}" for i, t in enumerate(path)), ""]
    if siblings:
        lines += ["Other ideas already proposed for this step:", *(f"- {s}" for s in siblings)]
        lines += ["Propose a different one.", ""]
    lines.append(
        'Propose the next reasoning step. Reply with one JSON object: {"thought": "<the step>"}'
    )
    return "\n".join(lines)


def tot_score(problem: str, path: Sequence[str], candidate: str) -> str:
    steps = "\n".join(f"{i + 1}. {t}" for i, t in enumerate([*path, candidate]))
    return (
        f"Problem:\n{problem}\n\nProposed reasoning:\n{steps}\n\n"
        "How promising is the last step for solving the problem, from 0 (useless) to 1 "
        '(certainly right)? Reply with one JSON object: {"score": <number>}'
    )


def tot_final(problem: str, path: Sequence[str], output_schema: Any) -> str:
    steps = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(path))
    return (
        f"Problem:\n{problem}\n\nBest reasoning found:\n{steps}\n\n"
        'Now answer. Reply with one JSON object: {"thought": "...", "final": <answer>}\n'
        + _answer_rule(output_schema)
    )


SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["score"],
    "additionalProperties": False,
}
THOUGHT_SCHEMA = {
    "type": "object",
    "properties": {"thought": THOUGHT},
    "required": ["thought"],
    "additionalProperties": False,
}
SUMMARISE = (
    "Summarise the conversation below in a few short bullet points: what was tried, what "
    "was learned (keep numbers and names exact), and what is still open."
)
