"""Python functions as tools of an engine (``@tool``, ``Engine(tools=[...])``) and model
backend objects handed in (``Engine(backends={...})``): the schema from type hints, calls
in-process (sync in a thread, async on the loop), arguments validated and converted, the
plan naming where they run and changing with their code, and clear errors."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest
from pydantic import BaseModel, Field

from runtime.engine import CompileFailed, Engine, Settings, tool
from runtime.events import Event
from runtime.llm.types import ModelRequest, ModelResponse, Usage
from tests.helpers import WriteSpecs

CLERK = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: clerk}
spec:
  instructions: Look orders up and refund them.
  tools: [TOOLS]
"""


class Order(BaseModel):
    id: str
    cents: int


@tool(side_effects=True)
def refund(order_id: str, cents: Annotated[int, Field(ge=1, description="in cents")]) -> Order:
    """Refund part of an order."""
    return Order(id=order_id, cents=cents)


called_in: list[str] = []


@tool
async def lookup(order_id: str, detailed: bool = False) -> dict[str, Any]:
    """Look an order up."""
    called_in.append(threading.current_thread().name)
    return {"id": order_id, "detailed": detailed}


def clerk(write_specs: WriteSpecs, tmp_path: Path, tools: str, script: str) -> tuple[Path, str]:
    folder = write_specs(**{"clerk.yaml": CLERK.replace("TOOLS", tools)})
    path = tmp_path / "script.yaml"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    return folder, f"scripted:{path}"


def run(engine: Engine, events: list[Event]) -> Any:
    return anyio.run(lambda: engine.run("clerk", input="go", sinks=[events.append]))


def test_the_schema_comes_from_the_type_hints_and_the_description_from_the_docstring() -> None:
    schema = refund.input_schema
    assert schema["required"] == ["order_id", "cents"]
    assert schema["properties"]["cents"] == {
        "description": "in cents", "minimum": 1, "title": "Cents", "type": "integer"
    }  # fmt: skip
    assert schema["additionalProperties"] is False
    assert refund.description == "Refund part of an order." and refund.side_effects
    assert refund.output_schema is not None and refund.output_schema["required"] == ["id", "cents"]
    assert lookup.input_schema["required"] == ["order_id"]  # detailed has a default
    assert refund("A1", cents=5) == Order(id="A1", cents=5)  # still the function


def test_python_tools_run_in_process_with_validated_arguments(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder, model = clerk(write_specs, tmp_path, "refund, lookup", """
        clerk:
          - {tool: lookup, input: {order_id: A1}}
          - {tool: refund, input: {order_id: A1, cents: 0}}
          - {tool: refund, input: {order_id: A1, cents: 250}}
          - {final: refunded}
    """)  # fmt: skip
    events: list[Event] = []
    called_in.clear()
    engine = Engine([folder], Settings(model=model), runs_db=None, tools=[refund, lookup])
    try:
        result = run(engine, events)
    finally:
        anyio.run(engine.aclose)
    assert result.status == "succeeded" and result.output == "refunded"
    results = [e.data for e in events if e.type == "tool.result"]
    assert results[0]["output"] == {"id": "A1", "detailed": False}
    assert results[1]["status"] == "invalid_input" and "cents" in results[1]["error"]  # ge=1
    assert results[2]["output"] == {"id": "A1", "cents": 250}  # a pydantic model, as JSON
    assert called_in == [threading.current_thread().name]  # a coroutine: on the loop


def test_a_sync_function_runs_in_a_worker_thread(write_specs: WriteSpecs, tmp_path: Path) -> None:
    seen: list[str] = []

    @tool
    def where() -> str:
        """Say which thread this is."""
        seen.append(threading.current_thread().name)
        return "here"

    folder, model = clerk(write_specs, tmp_path, "where", """
        clerk:
          - {tool: where, input: {}}
          - {final: ok}
    """)  # fmt: skip
    engine = Engine([folder], Settings(model=model), runs_db=None, tools=[where])
    loop_thread = threading.current_thread().name
    try:
        assert run(engine, []).ok
    finally:
        anyio.run(engine.aclose)
    assert seen and seen[0] != loop_thread  # the loop never waits on it


def test_the_plan_says_where_it_runs_and_changes_with_its_code(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"clerk.yaml": CLERK.replace("TOOLS", "greet")})

    def greet_v1(name: str) -> str:
        """Greet someone."""
        return f"hello {name}"

    def greet_v2(name: str) -> str:
        """Greet someone."""
        return f"hello {name}, and send them our newsletter"

    plans: list[Any] = []
    for function in (greet_v1, greet_v2):
        engine = Engine([folder], runs_db=None, tools=[tool(function, name="greet")])
        plans.append(engine.compilation.plan)
        anyio.run(engine.aclose)
    assert plans[0]["specs"]["Tool/greet"]["spec"]["spec"]["executor"]["type"] == "inprocess"
    assert plans[0]["plan_hash"] != plans[1]["plan_hash"]


def test_an_unknown_python_tool_is_a_compile_error(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"clerk.yaml": CLERK.replace("TOOLS", "refund")})
    with pytest.raises(CompileFailed) as caught:
        Engine([folder], runs_db=None)  # refund was not handed in
    assert "refund" in str(caught.value)


def test_an_inprocess_spec_without_its_function_fails_the_call_and_says_why(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder, model = clerk(write_specs, tmp_path, "refund", """
        clerk:
          - {tool: refund, input: {order_id: A1, cents: 5}}
          - {final: could not}
    """)  # fmt: skip
    (folder / "refund.yaml").write_text(refund.spec(), encoding="utf-8")  # declared in YAML
    events: list[Event] = []
    engine = Engine([folder], Settings(model=model), runs_db=None)
    try:
        assert run(engine, events).ok
    finally:
        anyio.run(engine.aclose)
    (result,) = [e.data for e in events if e.type == "tool.result"]
    assert result["status"] == "error" and "Engine(tools=[...])" in result["error"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: tool(lambda x: x), "cannot name a tool"),
        (lambda: tool(_undocumented, name="undocumented"), "docstring"),
        (lambda: tool(_star, name="star"), "plain or keyword parameter"),
        (lambda: tool(name="Bad Name", description="x")(_undocumented), "cannot name"),
    ],
)
def test_a_function_that_cannot_be_a_tool_is_refused(make: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()


def _undocumented(x: int) -> int:
    return x


def _star(*items: str) -> str:
    """Join."""
    return "".join(items)


def test_two_tools_of_one_name_are_refused(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"clerk.yaml": CLERK.replace("TOOLS", "refund")})
    other = tool(_undocumented, name="refund", description="Another refund.")
    with pytest.raises(Exception, match="same name"):
        Engine([folder], runs_db=None, tools=[refund, other])


class Echo:
    """A model backend object of the embedding program's own (a faithful stand-in for a
    client it already has): answers every request with what it was asked."""

    name = "house-model"
    provider = "house"
    native_tools = True
    constrained = False
    context_window = 8192

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        said = f"you said: {request.messages[-1]['content']}"
        if request.response_schema is not None:  # the answer's shape: the loop asks for JSON
            said = json.dumps({"thought": "echo it", "final": said})
        return ModelResponse(text=said, usage=Usage(3, 4), model=self.name)


def test_a_model_backend_object_answers_for_its_name(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"clerk.yaml": CLERK.replace("TOOLS", "")})
    echo = Echo()
    engine = Engine(
        [folder], Settings(model="house-model"), runs_db=None, backends={"house-model": echo}
    )
    try:
        result = anyio.run(lambda: engine.run("clerk", input="hello"))
    finally:
        anyio.run(engine.aclose)
    assert result.ok and result.output == "you said: hello"
    assert len(echo.requests) == 1 and echo.requests[0].agent == "clerk"


def test_importing_the_engine_leaves_out_what_a_program_may_not_use() -> None:
    """The MCP SDK, memory backends, model clients and HTTP are imported when a run needs
    them, not by ``import runtime.engine``."""
    import subprocess
    import sys

    heavy = ("mcp", "chromadb", "redis", "neo4j", "litellm", "httpx", "numpy", "torch")
    code = (
        "import sys, runtime.engine; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert ran.stdout.strip() == "[]", ran.stdout
