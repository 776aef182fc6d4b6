"""Tool calls: one executor interface for every kind of tool.

The agent loop asks a :class:`ToolBox` (the tools one agent run may call) to call a tool by
the name the model used. The box validates the input against the tool's ``input_schema``
before anything runs, hands the call to the :class:`ToolExecutor` for the tool's executor
type, and validates what comes back against ``output_schema``. Every failure is a
:class:`ToolOutcome` with ``status="error"``, which the agent sees as an observation: a tool
never raises into the loop.

``builtin`` tools (trusted code shipped with kiln) run in-process. Other executor types run
isolated, through the executor registered for them (the sandbox pool plugs in here).
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from runtime.llm.types import ToolDef
from specs import Tool

ToolStatus = Literal["ok", "error", "invalid_input", "unknown_tool", "loop", "denied"]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    status: ToolStatus
    output: Any = None
    error: str | None = None
    #: A transient failure (a timeout, a 503): worth calling again later.
    retryable: bool = False
    duration_ms: float = 0.0
    #: what the tool printed (sandboxed tools), for the trace: the model sees ``output``
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class Printed:
    """An executor's result with what the tool printed beside it."""

    output: Any
    stdout: str


class ToolExecutor(Protocol):
    """Runs one call of a tool whose input is already valid. Raising is allowed: the box
    turns any exception into an error outcome."""

    async def call(self, tool: Tool, arguments: Mapping[str, Any]) -> Any: ...


class BuiltinExecutor:
    """``builtin`` tools: ``module:function`` imported once and called in-process.

    Synchronous functions are called inline (builtins are small and trusted; a thread hop
    would cost more than most of them take); coroutine functions are awaited.
    """

    def __init__(self) -> None:
        self._functions: dict[str, Callable[..., Any]] = {}

    def resolve(self, reference: str) -> Callable[..., Any]:
        function = self._functions.get(reference)
        if function is None:
            module_name, _, attr = reference.partition(":")
            if module_name != "stdlib_tools" and not module_name.startswith("stdlib_tools."):
                # the compiler refuses these (K4013); this holds for plans built elsewhere
                raise ToolError(f"{reference} is not in kiln's standard library")
            function = getattr(importlib.import_module(module_name), attr)
            if not callable(function):
                raise TypeError(f"{reference} is not callable")
            self._functions[reference] = function
        return function

    async def call(self, tool: Tool, arguments: Mapping[str, Any]) -> Any:
        assert tool.spec.executor.type == "builtin"
        result = self.resolve(tool.spec.executor.function)(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result


class NotAvailableExecutor:
    """Stands in for executor types this process cannot run (no sandbox configured)."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def call(self, tool: Tool, arguments: Mapping[str, Any]) -> Any:
        raise ToolError(self.why.format(type=tool.spec.executor.type))


class ToolError(Exception):
    """A tool call failed in a way its executor has already put into words (a sandbox
    limit, an exit code): the message is the observation, as it is."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def default_executors() -> dict[str, ToolExecutor]:
    missing = NotAvailableExecutor(
        "tools of executor type '{type}' run isolated, and no executor for that type is "
        "configured in this runtime"
    )
    return {
        "builtin": BuiltinExecutor(),
        "python": missing,
        "shell": missing,
        "http": missing,
        "mcp": missing,
    }


def delegate_tool(agent: str) -> str:
    """The tool through which an agent with ``delegate_to`` asks ``agent`` for help."""
    return f"ask_{agent}"


def task_tool(task: str) -> str:
    """The tool through which a hierarchical crew's manager hands out ``task``."""
    return f"task_{task}"


#: A tool the runtime provides itself (delegation to another agent, a crew task a manager
#: hands out): called with the validated arguments, returns the output.
VirtualCall = Callable[[Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BoundTool:
    """A tool as one agent run sees it."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    input_validator: Draft202012Validator = field(repr=False)
    output_validator: Draft202012Validator | None = field(repr=False)
    spec: Tool | None = None
    virtual: VirtualCall | None = field(default=None, repr=False)

    def definition(self) -> ToolDef:
        return ToolDef(self.name, self.description, self.input_schema)


_VALIDATORS: dict[int, tuple[Tool, Draft202012Validator, Draft202012Validator | None]] = {}


def bind(tool: Tool) -> BoundTool:
    """A spec's tool with its validators compiled once per process (keyed by the spec
    object: a compile's specs are immutable and live as long as the program)."""
    cached = _VALIDATORS.get(id(tool))
    if cached is None or cached[0] is not tool:
        out = tool.spec.output_schema
        cached = (
            tool,
            Draft202012Validator(dict(tool.spec.input_schema)),
            Draft202012Validator(dict(out)) if out is not None else None,
        )
        _VALIDATORS[id(tool)] = cached
    return BoundTool(
        name=tool.metadata.name,
        description=tool.spec.description,
        input_schema=tool.spec.input_schema,
        input_validator=cached[1],
        output_validator=cached[2],
        spec=tool,
    )


def virtual(
    name: str, description: str, input_schema: Mapping[str, Any], call: VirtualCall
) -> BoundTool:
    return BoundTool(
        name=name,
        description=description,
        input_schema=input_schema,
        input_validator=Draft202012Validator(dict(input_schema)),
        output_validator=None,
        virtual=call,
    )


def schema_error(validator: Draft202012Validator, value: Any) -> str | None:
    """The most relevant validation error as one line, or ``None`` when ``value`` is valid."""
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


#: Asked before a tool whose spec says ``requires_approval`` runs: ``None`` approves, a
#: string denies and is the reason the agent is told.
Approver = Callable[[str, Mapping[str, Any]], Awaitable[str | None]]

NO_APPROVER = (
    "{tool} requires approval, and nobody can approve it in this run "
    "(run with --approve-all to allow it)"
)


async def approve_all(tool: str, arguments: Mapping[str, Any]) -> str | None:
    return None


class ToolBox:
    """The tools of one agent run, by the name the model uses."""

    def __init__(
        self,
        tools: Mapping[str, BoundTool],
        executors: Mapping[str, ToolExecutor],
        approver: Approver | None = None,
    ) -> None:
        self.tools = dict(tools)
        self.executors = executors
        self.approver = approver

    def __bool__(self) -> bool:
        return bool(self.tools)

    def definitions(self) -> list[ToolDef]:
        return [t.definition() for t in self.tools.values()]

    async def call(self, name: str, arguments: Any) -> ToolOutcome:
        started = time.perf_counter()
        outcome = await self._call(name, arguments)
        ms = (time.perf_counter() - started) * 1000
        return replace(outcome, duration_ms=ms)

    async def _call(self, name: str, arguments: Any) -> ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return ToolOutcome("unknown_tool", error=f"no tool named {name!r} (tools: {known})")
        if not isinstance(arguments, dict):
            return ToolOutcome("invalid_input", error=f"the input of {name} must be a JSON object")
        problem = schema_error(tool.input_validator, arguments)
        if problem is not None:
            return ToolOutcome("invalid_input", error=f"invalid input for {name}: {problem}")
        if tool.spec is not None and tool.spec.spec.requires_approval:
            denied = (
                NO_APPROVER.format(tool=name)
                if self.approver is None
                else await self.approver(name, arguments)
            )
            if denied is not None:
                return ToolOutcome("denied", error=denied)
        try:
            if tool.virtual is not None:
                output = await tool.virtual(arguments)
            else:
                assert tool.spec is not None
                executor = self.executors[tool.spec.spec.executor.type]
                output = await executor.call(tool.spec, arguments)
        except ToolError as exc:
            return ToolOutcome("error", error=str(exc), retryable=exc.retryable)
        except Exception as exc:  # noqa: BLE001 - a tool's bug is an observation, not a crash
            return ToolOutcome("error", error=f"{type(exc).__name__}: {exc}")
        stdout = ""
        if isinstance(output, Printed):
            output, stdout = output.output, output.stdout
        if tool.output_validator is not None:
            problem = schema_error(tool.output_validator, output)
            if problem is not None:
                return ToolOutcome(
                    "error",
                    error=f"{name} returned output that breaks its output_schema: {problem}",
                    stdout=stdout,
                )
        return ToolOutcome("ok", output=output, stdout=stdout)
