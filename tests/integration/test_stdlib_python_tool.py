"""The standard library's ``python`` tool, run in a real sandbox (the default backend: the
first of nsjail and bwrap that works here), directly and by an agent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator

from compiler.pipeline import compile_paths
from runtime.sandboxed import SandboxExecutor
from runtime.tools import ToolError
from sandbox.pool import Pool
from specs import Tool
from tests.helpers import WriteSpecs
from tests.runtime_kit import agent, run_specs


def _tool() -> Tool:
    program = compile_paths([]).program
    assert program is not None
    return program.tool("python")


def _call(code: str) -> Any:
    """One call of the python tool in a fresh pool; its output, checked against the spec's
    output_schema, or the ToolError it failed with."""
    tool = _tool()

    async def call() -> Any:
        async with Pool() as pool:
            try:
                return await SandboxExecutor(pool).call(tool, {"code": code})
            except ToolError as exc:
                return exc

    output = anyio.run(call)
    if not isinstance(output, ToolError):
        assert tool.spec.output_schema is not None
        Draft202012Validator(tool.spec.output_schema).validate(output)
    return output


def test_stdout_and_the_result_come_back() -> None:
    output = _call(
        "import statistics\n"
        "values = [2, 4, 9]\n"
        "print('mean of', len(values))\n"
        "statistics.mean(values)\n"
    )
    assert output == {"stdout": "mean of 3\n", "stderr": "", "result": 5}


def test_a_result_variable_and_values_json_cannot_hold() -> None:
    assert _call("result = {'squares': [n * n for n in range(4)]}")["result"] == {
        "squares": [0, 1, 4, 9]
    }
    assert _call("import decimal\ndecimal.Decimal('1.10')")["result"] == "Decimal('1.10')"


def test_an_exception_is_an_error_naming_the_line() -> None:
    error = _call("print('step 1')\ntotal = 0\nratio = 1 / total\n")
    assert isinstance(error, ToolError)
    assert str(error).startswith("ZeroDivisionError: division by zero")
    assert "step 1" in str(error)
    assert "line 3: ratio = 1 / total" in str(error)
    assert error.retryable is False
    syntax = _call("def broken(:\n    pass\n")
    assert isinstance(syntax, ToolError)
    assert str(syntax).startswith("SyntaxError: invalid syntax")


@pytest.mark.parametrize(
    "code",
    [
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)",
        "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=3)",
    ],
)
def test_there_is_no_network_inside(code: str) -> None:
    error = _call(code)
    assert isinstance(error, ToolError)
    assert any(
        words in str(error)
        for words in ("Network is unreachable", "name resolution", "Name or service not known")
    ), str(error)


def test_the_host_files_are_not_there() -> None:
    output = _call("import os\nsorted(os.listdir('.')), os.path.exists('/work/main')")
    assert output["result"] == [[], False]


def _results(events: list[Any]) -> list[Mapping[str, Any]]:
    return [e.data for e in events if e.type == "tool.result"]


def test_an_agent_calls_the_python_tool(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[python]")})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: compute it, tool: python, input: {code: "print('ok')\\nsum(range(101))"}}
          - {thought: and a bug, tool: python, input: {code: "[][1]"}}
          - {thought: "the sum is 5050", final: "5050"}
        """,
    )
    assert ran.result.ok, ran.result.error
    first, second = _results(ran.events)
    assert (first["status"], first["output"]) == (
        "ok",
        {"stdout": "ok\n", "stderr": "", "result": 5050},
    )
    assert second["status"] == "error"
    assert second["error"].startswith("IndexError: list index out of range")
