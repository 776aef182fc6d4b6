"""Python functions of the program that embeds kiln, offered to its agents as tools::

    from runtime.engine import Engine, tool

    @tool(side_effects=True)
    def refund(order_id: str, cents: int) -> dict:
        "Refund part of an order."
        ...

    engine = Engine(["agents/"], tools=[refund])

The input schema comes from the type hints (pydantic), the description from the docstring.
Each becomes a Tool spec compiled with the folder's specs (executor ``inprocess``, with a
hash of the function's code): agents name it like any tool, the plan shows it and where it
runs, and its hash changes when its code does. A call runs in the program's process, not
in a sandbox: a synchronous function in a worker thread, a coroutine function on the loop.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from specs.tool import InprocessExecutor, Tool

__all__ = ["InprocessToolExecutor", "PythonTool", "tool"]

_NAME = re.compile(r"^[a-z0-9]([_a-z0-9]*[a-z0-9])?$")  # a spec name that is an identifier


@dataclass(frozen=True, slots=True)
class PythonTool:
    """A function with what the compiler needs to know of it as a tool."""

    function: Callable[..., Any]
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    side_effects: bool = False
    idempotent: bool = False
    requires_approval: bool = False
    arguments: type[BaseModel] = field(default=BaseModel, repr=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Still the function: call it as before."""
        return self.function(*args, **kwargs)

    @property
    def source_sha256(self) -> str:
        """A hash of the function's code (its source, or its bytecode when there is none)."""
        try:
            code = inspect.getsource(self.function).encode()
        except (OSError, TypeError):
            inner = getattr(self.function, "__code__", None)
            code = inner.co_code if inner is not None else repr(self.function).encode()
        return hashlib.sha256(code).hexdigest()

    def spec(self) -> str:
        """Its Tool spec, as the compiler reads it (JSON is YAML)."""
        spec: dict[str, Any] = {
            "description": self.description,
            "input_schema": self.input_schema,
            "executor": {
                "type": "inprocess",
                "function": self.name,
                "source_sha256": self.source_sha256,
            },
            "side_effects": self.side_effects,
            "idempotent": self.idempotent,
            "requires_approval": self.requires_approval,
        }
        if self.output_schema is not None:
            spec["output_schema"] = self.output_schema
        document = {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": self.name},
            "spec": spec,
        }
        return json.dumps(document, indent=2, sort_keys=False) + "\n"

    def source_name(self) -> str:
        """Where its spec comes from, as diagnostics and the plan name it."""
        module = getattr(self.function, "__module__", "?")
        qualname = getattr(self.function, "__qualname__", self.name)
        return f"<python {module}.{qualname}>"


@overload
def tool(
    function: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    idempotent: bool = False,
    requires_approval: bool = False,
) -> PythonTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    idempotent: bool = False,
    requires_approval: bool = False,
) -> Callable[[Callable[..., Any]], PythonTool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    idempotent: bool = False,
    requires_approval: bool = False,
) -> PythonTool | Callable[[Callable[..., Any]], PythonTool]:
    """Make ``function`` a tool (use as ``@tool`` or ``@tool(side_effects=True, ...)``).

    Its parameters are the tool's input, typed by their hints (``Annotated[int,
    Field(ge=1, description=...)]`` works); its return hint, when given, the output
    schema. ``description`` defaults to the docstring. Raises :class:`TypeError` for a
    function that cannot be a tool (``*args``, positional-only parameters, no
    description, a bad name)."""

    def make(fn: Callable[..., Any]) -> PythonTool:
        tool_name = str(name or getattr(fn, "__name__", ""))
        if len(tool_name) > 63 or not _NAME.match(tool_name):
            raise TypeError(
                f"{tool_name!r} cannot name a tool: use lower-case letters, digits and _ "
                "(at most 63, not starting or ending with _), or give name=..."
            )
        told = description or inspect.getdoc(fn) or ""
        if not told.strip():
            raise TypeError(
                f"tool {tool_name}: give it a docstring or description=..., the model "
                "chooses tools by it"
            )
        model = _arguments(fn, tool_name)
        schema = model.model_json_schema()
        schema.pop("title", None)
        output = _output_schema(fn)
        return PythonTool(
            function=fn,
            name=tool_name,
            description=told.strip(),
            input_schema=schema,
            output_schema=output,
            side_effects=side_effects,
            idempotent=idempotent,
            requires_approval=requires_approval,
            arguments=model,
        )

    return make(function) if function is not None else make


def _arguments(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    try:
        signature = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, ValueError) as exc:
        raise TypeError(f"tool {name}: its signature cannot be read ({exc})") from None
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(
                f"tool {name}: parameter {param.name!r} must be a plain or keyword parameter "
                "(a tool is called with named arguments)"
            )
        hint = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hint, default)
    try:
        return create_model(
            f"{name}_input",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
    except Exception as exc:  # pydantic: a hint it cannot make a schema of
        raise TypeError(f"tool {name}: {exc}") from None


def _output_schema(fn: Callable[..., Any]) -> dict[str, Any] | None:
    hint = inspect.signature(fn, eval_str=True).return_annotation
    if hint is inspect.Signature.empty or hint is None or hint is Any:
        return None
    try:
        schema = TypeAdapter(hint).json_schema()
    except Exception:  # not every hint has a schema: then the output is not checked
        return None
    schema.pop("title", None)
    return schema


class InprocessToolExecutor:
    """Calls the ``inprocess`` tools of an engine: the functions it was handed."""

    def __init__(self, tools: Mapping[str, PythonTool]) -> None:
        self.tools = dict(tools)

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        from runtime.tools.box import ToolError

        executor = tool.spec.executor
        assert isinstance(executor, InprocessExecutor)
        found = self.tools.get(executor.function)
        if found is None:
            raise ToolError(
                f"tool {tool.metadata.name} runs the in-process function {executor.function!r}, "
                "which this program did not register: hand it to Engine(tools=[...])"
            )
        try:
            bound = found.arguments.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolError(f"tool {tool.metadata.name}: {exc}") from None
        kwargs = {key: getattr(bound, key) for key in type(bound).model_fields}
        if inspect.iscoroutinefunction(found.function):
            result = await found.function(**kwargs)
        else:
            result = await anyio.to_thread.run_sync(lambda: found.function(**kwargs))
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        return result
