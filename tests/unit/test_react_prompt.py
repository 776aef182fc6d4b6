"""The JSON ReAct prompt and step schema, built from each agent's own tools and schema."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from compiler.pipeline import compile_paths
from runtime.agent import prompts
from runtime.tools import BoundTool
from runtime.tools.registry import Registry

STDLIB = Path(__file__).resolve().parents[2] / "stdlib_tools"
ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _tools(*names: str) -> list[BoundTool]:
    """The standard library's tools, as a compiled program binds them."""
    compilation = compile_paths([STDLIB.parent / "examples" / "quickstart"])
    assert compilation.program is not None
    registry = Registry(compilation.program)
    return [tool for n in names for tool in registry.bound(n).values()]


def test_prompt_lists_the_agents_own_tools_first_without_sample_values() -> None:
    tools = _tools("calculator", "word_count")
    text = prompts.react_json("Be careful.\nQuestion: 12 times 7", tools, ANSWER)
    assert text.index("- calculator:") < text.index("Be careful.")
    assert '"expression" (string, required)' in text and '"text" (string, required)' in text
    assert "sqrt(16)" not in text and "for example" not in text and "e.g." not in text
    assert "Put the values from the question itself into the tool input." in text
    assert json.dumps(ANSWER, separators=(",", ":")) in text


def test_no_tools_no_tool_section() -> None:
    text = prompts.react_json("Answer.", [], None)
    assert "You have these tools" not in text and "plain text" in text


def test_required_strings_cannot_be_empty_in_a_step() -> None:
    (calculator,) = _tools("calculator")
    schema = prompts.action_schema([calculator], ANSWER)
    call = schema["anyOf"][0]["properties"]["input"]
    assert call["properties"]["expression"]["minLength"] == 1
    assert "minLength" not in calculator.input_schema["properties"]["expression"]


def test_stdlib_argument_descriptions_hold_no_sample_values() -> None:
    # Syntax examples stay where the syntax is the point (globs, JSONPath, python source).
    for name in ("calculator", "word_count", "current_time", "file_read", "file_write"):
        path = STDLIB / f"{name}.yaml"
        spec = yaml.safe_load(path.read_text())
        for arg, prop in spec["spec"]["input_schema"].get("properties", {}).items():
            described = str(prop.get("description", ""))
            assert "e.g." not in described and "for example" not in described, (name, arg)
