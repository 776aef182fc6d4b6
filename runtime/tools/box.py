"""Tool calls: one executor interface for every kind of tool.

The agent loop asks a :class:`ToolBox` (the tools one agent run may call) to call a tool by
the name the model used. The box validates the input against the tool's ``input_schema``
before anything runs, hands the call to the :class:`ToolExecutor` for the tool's executor
type, and validates what comes back against ``output_schema``. Every failure is a
:class:`ToolOutcome` with ``status="error"``, which the agent sees as an observation: a tool
never raises into the loop.

``builtin`` tools (trusted code shipped with kiln) run in-process. Other executor types run
isolated, through the executor registered for them (the sandbox pool plugs in here).

Around the executor, in this order (see ``docs/tools-calls.md``):

1. approval, for a spec with ``requires_approval``: an :class:`~runtime.tools.approval.Approvals`
   broker holds the call until someone decides; with nobody to ask, the outcome is
   ``approval_required`` and the run should end;
2. the result cache, for a spec with ``cache`` and without ``side_effects``;
3. retries of failures a :class:`ToolError` marks ``retryable``, with exponential backoff
   and full jitter (:class:`ToolRetry`); a side-effecting tool only when the error also
   says the call never reached anything (``safe_to_retry``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import anyio
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from runtime.llm.types import ToolDef
from runtime.masking import mask, mask_data
from runtime.stops import RunStopped
from runtime.tools.approval import ApprovalRequest, Approvals, Decision
from runtime.tools.approval import Approver as Approver  # re-exported
from runtime.tools.approval import approve_all as approve_all  # re-exported
from runtime.tools.cache import ResultCache, cache_key
from specs import Tool

ToolStatus = Literal[
    "ok", "error", "invalid_input", "unknown_tool", "loop", "denied", "approval_required"
]


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
    #: the output came from the result cache: the tool did not run
    cached: bool = False
    #: calls made to the executor (retries included); 0 when nothing ran
    attempts: int = 0

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
    turns any exception into an error outcome.

    ``target`` names what to call inside a tool spec that imports many (an MCP server's
    tool, an OpenAPI operation); it is ``None`` for a spec that is one tool.
    """

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any: ...


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

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        assert tool.spec.executor.type == "builtin"
        result = self.resolve(tool.spec.executor.function)(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result


class NotAvailableExecutor:
    """Stands in for executor types this process cannot run (no sandbox configured)."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        raise ToolError(self.why.format(type=tool.spec.executor.type))


class ToolError(Exception):
    """A tool call failed in a way its executor has already put into words (a sandbox
    limit, an exit code): the message is the observation, as it is.

    ``retryable``: transient (a timeout, a 503, a 429), worth trying again; the box does,
    with backoff. ``retry_after``: seconds the other side asked to wait (``Retry-After``).
    ``safe_to_retry``: the call never reached anything (connection refused, a DNS
    failure), so trying again cannot do anything twice: the only failures a tool with
    ``side_effects`` is retried on. It implies ``retryable``.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        safe_to_retry: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable or safe_to_retry
        self.retry_after = retry_after
        self.safe_to_retry = safe_to_retry


Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolRetry:
    """How a retryable tool failure is tried again.

    ``attempts`` is the default number of calls in all (an executor's own ``max_attempts``,
    as http and openapi executors have, wins). Before retry ``n`` (1 for the first) the box
    waits uniformly in ``[0, min(max_s, base_s * 2 ** (n - 1))]`` ("full jitter"), or
    without jitter that ceiling. A failure with ``retry_after`` waits exactly that long if
    it is at most ``max_retry_after_s``; a longer wish is not honoured early: the failure is
    returned instead, and the agent is told.
    """

    attempts: int = 3
    base_s: float = 0.2
    max_s: float = 5.0
    max_retry_after_s: float = 30.0
    jitter: bool = True

    def delay(
        self, retry: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before retry number ``retry``; ``None``: do not retry."""
        if retry_after is not None:
            wait = max(retry_after, 0.0)
            return wait if wait <= self.max_retry_after_s else None
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(max(retry - 1, 0), 60))
        return (rng or random).uniform(0.0, ceiling) if self.jitter else ceiling

    def attempts_for(self, tool: Tool | None) -> int:
        """Calls in all for ``tool``: its executor's ``max_attempts`` or ``attempts``."""
        if tool is None:
            return 1
        own = getattr(tool.spec.executor, "max_attempts", None)
        return own if isinstance(own, int) and own >= 1 else max(self.attempts, 1)


def default_executors() -> dict[str, ToolExecutor]:
    missing = NotAvailableExecutor(
        "tools of executor type '{type}' run isolated, and no executor for that type is "
        "configured in this runtime"
    )
    return {
        "builtin": BuiltinExecutor(),
        "inprocess": NotAvailableExecutor(
            "tools of executor type 'inprocess' are functions of a program that embeds kiln "
            "and hands them to its engine (Engine(tools=[...])); none was handed to this one"
        ),
        "python": missing,
        "shell": missing,
        "http": missing,
        "openapi": missing,
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
    #: inside a spec that imports many tools: the MCP tool or OpenAPI operation to call
    target: str | None = None
    #: calling it changes something: never cached, retried only when the call cannot have
    #: landed (the spec's ``side_effects``, or what an imported tool says of itself)
    side_effects: bool = False

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
        side_effects=tool.spec.side_effects,
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


#: The error of an ``approval_required`` outcome: the tool needs a yes and this run has
#: nobody to ask.
NO_APPROVER = (
    "tool {tool} requires approval and this run cannot ask anyone (not a terminal): "
    "run with --approve-all, or from a terminal"
)

#: Told about an approval request as it is made (``decision`` ``None``) and once decided.
OnApproval = Callable[[ApprovalRequest, Decision | None], None]

#: What a cache entry says, beside the output: a shared store may hold other kilns' entries.
_CACHE_TAG = "kiln-tool-result"


class ToolBox:
    """The tools of one agent run, by the name the model uses.

    ``approver`` or ``approvals`` decide tools that require approval (neither: such calls
    end as ``approval_required``); ``cache`` keeps results of tools with a cache policy;
    ``retry`` and ``sleep`` (injectable for tests) retry transient failures. ``run_id`` and
    ``agent`` go into approval requests; ``on_approval`` hears about them.
    """

    def __init__(
        self,
        tools: Mapping[str, BoundTool],
        executors: Mapping[str, ToolExecutor],
        approver: Approver | None = None,
        *,
        approvals: Approvals | None = None,
        cache: ResultCache | None = None,
        retry: ToolRetry = ToolRetry(),  # noqa: B008 - frozen, so sharing it is safe
        sleep: Sleep = anyio.sleep,
        rng: random.Random | None = None,
        run_id: str | None = None,
        agent: str | None = None,
        on_approval: OnApproval | None = None,
    ) -> None:
        self.tools = dict(tools)
        self.executors = executors
        if approvals is None and approver is not None:
            approvals = Approvals(approver)
        self.approvals = approvals
        self.cache = cache
        self.retry = retry
        self.sleep = sleep
        self.rng = rng
        self.run_id = run_id
        self.agent = agent
        self.on_approval = on_approval

    def __bool__(self) -> bool:
        return bool(self.tools)

    def definitions(self) -> list[ToolDef]:
        return [t.definition() for t in self.tools.values()]

    async def call(
        self,
        name: str,
        arguments: Any,
        *,
        on_approval: OnApproval | None = None,
        decided: Decision | None = None,
    ) -> ToolOutcome:
        """Call a tool by its model-facing name; never raises for anything a tool does.
        ``on_approval`` replaces the box's hook for this call (to tag events with it);
        ``decided`` is the approval a person already gave or refused (nobody is asked)."""
        started = time.perf_counter()
        outcome = await self._call(name, arguments, on_approval or self.on_approval, decided)
        ms = (time.perf_counter() - started) * 1000
        # a secret the tool echoed never reaches the model, the journal or an event
        return replace(
            outcome,
            duration_ms=ms,
            output=mask_data(outcome.output),
            error=mask(outcome.error) if outcome.error else outcome.error,
            stdout=mask(outcome.stdout) if outcome.stdout else outcome.stdout,
        )

    async def _call(
        self,
        name: str,
        arguments: Any,
        on_approval: OnApproval | None,
        decided: Decision | None = None,
    ) -> ToolOutcome:
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
            if decided is not None:
                denied = ToolOutcome("denied", error=decided.denial())
                refused = None if decided.approved else denied
            else:
                refused = await self._approve(name, arguments, on_approval)
            if refused is not None:
                return refused
        key = self._cache_key(tool, arguments)
        if key is not None:
            hit = await self._cached(key)
            if hit is not None:
                return hit
        outcome = await self._run(tool, arguments)
        if key is not None and outcome.ok:
            await self._keep(tool, key, outcome.output)
        return outcome

    # -- approval -----------------------------------------------------------------------

    async def _approve(
        self, name: str, arguments: Mapping[str, Any], on_approval: OnApproval | None
    ) -> ToolOutcome | None:
        """``None`` when the call may go on, else the outcome that ends it."""
        if self.approvals is None:
            return ToolOutcome("approval_required", error=NO_APPROVER.format(tool=name))
        request = self.approvals.request(name, arguments, run_id=self.run_id, agent=self.agent)
        _tell(on_approval, request, None)
        try:
            decision = await self.approvals.wait(request.id)
        except Exception as exc:  # noqa: BLE001 - a broken approver denies, it never crashes
            decision = Decision(False, f"asking for approval failed: {_why(exc)}", "kiln")
        _tell(on_approval, request, decision)
        if decision.approved:
            return None
        return ToolOutcome("denied", error=decision.denial())

    # -- cache --------------------------------------------------------------------------

    def _cache_key(self, tool: BoundTool, arguments: Mapping[str, Any]) -> str | None:
        spec = tool.spec
        if self.cache is None or spec is None or tool.virtual is not None:
            return None
        if spec.spec.cache is None or spec.spec.cache.ttl_s <= 0 or tool.side_effects:
            return None
        return result_key(spec, tool.target, arguments)

    async def _cached(self, key: str) -> ToolOutcome | None:
        assert self.cache is not None
        try:
            text = await self.cache.get(key)
            if text is None:
                return None
            entry = json.loads(text)
        except Exception:  # noqa: BLE001 - a cache that fails or holds junk is a miss
            return None
        if not isinstance(entry, dict) or entry.get("kind") != _CACHE_TAG or "output" not in entry:
            return None
        return ToolOutcome("ok", output=entry["output"], cached=True)

    async def _keep(self, tool: BoundTool, key: str, output: Any) -> None:
        assert self.cache is not None and tool.spec is not None
        policy = tool.spec.spec.cache
        assert policy is not None
        try:
            text = json.dumps({"kind": _CACHE_TAG, "output": output}, ensure_ascii=False)
            await self.cache.set(key, text, policy.ttl_s)
        except Exception:  # noqa: BLE001 - an output JSON cannot hold, or a store that fails
            return

    # -- the call, with retries ---------------------------------------------------------

    async def _run(self, tool: BoundTool, arguments: Mapping[str, Any]) -> ToolOutcome:
        called = await self._attempts(tool, arguments)
        if isinstance(called, ToolOutcome):
            return called
        output, attempts = called
        stdout = ""
        if isinstance(output, Printed):
            output, stdout = output.output, output.stdout
        if tool.output_validator is not None:
            problem = schema_error(tool.output_validator, output)
            if problem is not None:
                return ToolOutcome(
                    "error",
                    error=f"{tool.name} returned output that breaks its output_schema: {problem}",
                    stdout=stdout,
                    attempts=attempts,
                )
        return ToolOutcome("ok", output=output, stdout=stdout, attempts=attempts)

    async def _attempts(
        self, tool: BoundTool, arguments: Mapping[str, Any]
    ) -> tuple[Any, int] | ToolOutcome:
        """The output and the calls it took, or the error outcome once retrying is over."""
        limit = 1 if tool.virtual is not None else self.retry.attempts_for(tool.spec)
        side_effects = tool.side_effects
        # an idempotent tool does its effect once per idempotency key, however often called
        idempotent = tool.spec is not None and tool.spec.spec.idempotent
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._execute(tool, arguments), attempt
            except ToolError as exc:
                retry = exc.retryable and (exc.safe_to_retry or not side_effects or idempotent)
                wait = self.retry.delay(attempt, exc.retry_after, self.rng) if retry else None
                if attempt < limit and wait is not None:
                    await self.sleep(wait)
                    continue
                return ToolOutcome(
                    "error",
                    error=_tried(str(exc), attempt, exc, self.retry, side_effects),
                    retryable=exc.retryable,
                    attempts=attempt,
                )
            except RunStopped:  # the run waits for a person: not the tool's failure
                raise
            except Exception as exc:  # noqa: BLE001 - a tool's bug is an observation, not a crash
                return ToolOutcome("error", error=f"{type(exc).__name__}: {exc}", attempts=attempt)

    async def _execute(self, tool: BoundTool, arguments: Mapping[str, Any]) -> Any:
        if tool.virtual is not None:
            return await tool.virtual(arguments)
        assert tool.spec is not None
        executor = self.executors[tool.spec.spec.executor.type]
        return await executor.call(tool.spec, arguments, tool.target)


def result_key(spec: Tool, target: str | None, arguments: Mapping[str, Any]) -> str:
    """The cache key of a call: the tool's qualified name, its version and its content (a
    changed URL, command or header makes another tool, even when nobody bumped the
    version), and the canonical input."""
    qualified = spec.metadata.name + (f".{target}" if target else "")
    return cache_key(qualified, f"{spec.spec.version}/{_digest(spec)}", arguments)


_DIGESTS: dict[int, tuple[Tool, str]] = {}


def _digest(tool: Tool) -> str:
    """A short hash of a spec's content, computed once per spec object."""
    known = _DIGESTS.get(id(tool))
    if known is None or known[0] is not tool:
        text = tool.model_dump_json(by_alias=True)
        known = (tool, hashlib.sha256(text.encode()).hexdigest()[:16])
        _DIGESTS[id(tool)] = known
    return known[1]


def _tell(hook: OnApproval | None, request: ApprovalRequest, decision: Decision | None) -> None:
    if hook is not None:
        hook(request, decision)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _tried(
    message: str, attempts: int, exc: ToolError, policy: ToolRetry, side_effects: bool
) -> str:
    """A failure's message, with what retrying did (or why it was not done)."""
    if attempts > 1:
        return f"{message} (failed {attempts} times)"
    if not exc.retryable:
        return message
    if side_effects and not exc.safe_to_retry:
        return f"{message} (not retried: the tool has side effects, and the call may have landed)"
    if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s:
        return f"{message} (the service asks to wait {exc.retry_after:g} s before trying again)"
    return message
