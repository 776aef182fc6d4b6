"""One agent run: what it needs (:class:`AgentJob`), what it ends with (:class:`AgentOutcome`),
and the model-call plumbing every strategy shares."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jsonschema import Draft202012Validator

from runtime.agent import context, prompts
from runtime.agent.budget import Budget, LimitExceeded
from runtime.events import EventBus
from runtime.journal import PARENT_STEP, RunJournal, WaitingApproval
from runtime.llm.types import (
    ContextWindowExceeded,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    Purpose,
    ToolDef,
    message_tokens,
)
from runtime.tools import ToolBox, schema_error
from runtime.tools.approval import ApprovalRequest, Decision
from runtime.tools.box import OnApproval, ToolOutcome

if TYPE_CHECKING:
    from runtime.llm.gateway import Gateway

Status = Literal[
    "succeeded",
    "failed",
    "limit_exceeded",
    "loop_detected",
    "cancelled",
    "needs_attention",
    "waiting_approval",
]


@dataclass(slots=True, kw_only=True)
class AgentJob:
    run_id: str
    agent: str
    task: str | None
    strategy: Literal["react", "cot", "tot"]
    models: tuple[str, ...]
    system: str
    prompt: str
    output_schema: Mapping[str, Any] | None
    tools: ToolBox
    gateway: Gateway
    bus: EventBus
    budget: Budget
    temperature: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    max_repeats: int = 3
    tot_breadth: int = 3
    tot_depth: int = 2
    #: earlier turns of the conversation (short-term memory), between system and prompt
    history: Sequence[Message] = ()
    step: int = 0
    last_call_ms: float = 0.0
    #: the run's journal (``None``: the run is not durable); see runtime/journal.py
    journal: RunJournal | None = None
    #: this agent run's place in the run: the prefix of its steps' identities
    scope: str = ""
    model_calls: int = 0
    tool_calls: int = 0
    #: id(message) -> (message, tokens): each message is estimated once (the message is
    #: kept so its id cannot be reused by another).
    _counted: dict[int, tuple[Message, int]] = field(default_factory=dict)

    def count(self, messages: Sequence[Message]) -> int:
        total = 0
        counted = self._counted
        for m in messages:
            entry = counted.get(id(m))
            if entry is None or entry[0] is not m:
                entry = counted[id(m)] = (m, message_tokens((m,)))
            total += entry[1]
        return total

    def emit(self, type: Any, *, duration_ms: float | None = None, **data: Any) -> None:
        self.bus.emit(
            type,
            step=self.step,
            duration_ms=duration_ms,
            agent=self.agent,
            task=self.task,
            **data,
        )

    def thought(self, response: ModelResponse, text: str, **extra: Any) -> None:
        """The ``agent.thought`` event of the model call just made: what it said and cost."""
        self.emit(
            "agent.thought",
            duration_ms=self.last_call_ms,
            text=text,
            usage=response.usage.as_json(),
            model=response.model,
            **extra,
        )

    @property
    def backend_window(self) -> int:
        return self.gateway.backend(self.models[0]).context_window

    async def ask(
        self,
        messages: list[Message],
        purpose: Purpose,
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[ToolDef] = (),
    ) -> tuple[ModelResponse, list[Message]]:
        """One model call within the budget, with the conversation fitted to the window.
        Returns the reply and the (possibly trimmed) conversation it was made with."""
        self.budget.begin_call()
        self.step += 1
        window = self.backend_window
        reply_tokens = min(1024, max(128, window // 8))
        for shrink in (1.0, 0.75, 0.5):
            budget = int((window - reply_tokens) * shrink)
            messages = await context.fit(messages, budget, self._summarise, self.count)
            request = ModelRequest(
                messages=tuple(messages),  # a snapshot: the loop goes on appending
                purpose=purpose,
                tools=tools,
                response_schema=schema,
                max_tokens=reply_tokens,
                temperature=self.temperature,
                params=self.params,
                run_id=self.run_id,
                agent=self.agent,
                task=self.task,
                estimated_tokens=self.count(messages),
            )
            started = time.perf_counter()
            try:
                response = await self.complete(request)
            except ContextWindowExceeded:
                if shrink == 0.5:
                    raise
                continue
            self.last_call_ms = (time.perf_counter() - started) * 1000
            try:
                self.budget.charge(response.usage)
            except LimitExceeded:  # the call happened: its event still says what it cost
                self.thought(response, response.text, over_limit=True)
                raise
            return response, messages
        raise AssertionError("unreachable")

    async def _summarise(self, messages: Sequence[Message]) -> str:
        transcript = "\n".join(f"{m.get('role')}: {m.get('content') or ''}" for m in messages)
        request = ModelRequest(
            messages=[
                {"role": "system", "content": prompts.SUMMARISE},
                {"role": "user", "content": transcript[-24_000:]},
            ],
            purpose="summarize",
            max_tokens=256,
            run_id=self.run_id,
            agent=self.agent,
            task=self.task,
        )
        response = await self.complete(request)
        self.budget.charge(response.usage)
        return response.text.strip() or "(no summary)"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One model call through the gateway, journaled when the run is durable: a resumed
        run gets the recorded response and the model is not called."""
        if self.journal is None:
            return await self.gateway.complete(self.models, request)
        self.model_calls += 1
        step = f"{self.scope}#m{self.model_calls}"
        gateway = self.gateway

        def replayed(response: ModelResponse) -> None:
            # a backend that keeps a place per run (the scripted model) moves past it
            try:
                backend = gateway.backend(response.model or self.models[0])
            except ModelError:
                return
            follow = getattr(backend, "replayed", None)
            if follow is not None:
                follow(request)

        return await self.journal.model(
            step, lambda: gateway.complete(self.models, request), replayed
        )

    async def call_tool(
        self, name: str, arguments: Any, on_approval: OnApproval | None
    ) -> ToolOutcome:
        """One tool call, journaled when the run is durable. Calls of tools the runtime
        provides (a delegation, a handed-out crew task) are not: the agent run inside them
        journals its own steps under this call's identity, and replays them."""
        if self.journal is None:
            return await self.tools.call(name, arguments, on_approval=on_approval)
        self.tool_calls += 1
        step = f"{self.scope}#t{self.tool_calls}"
        bound = self.tools.tools.get(name)
        if bound is not None and bound.virtual is not None:
            token = PARENT_STEP.set(step)
            try:
                return await self.tools.call(name, arguments, on_approval=on_approval)
            finally:
                PARENT_STEP.reset(token)
        spec = bound.spec.spec if bound is not None and bound.spec is not None else None
        decision = None
        if (
            spec is not None
            and spec.requires_approval
            and self.journal.defer_approvals
            and not self.journal.recorded(step)
            and isinstance(arguments, dict)
        ):
            decision = self._deferred(step, name, arguments, on_approval)
        return await self.journal.tool(
            step,
            name,
            arguments,
            lambda: self.tools.call(name, arguments, on_approval=on_approval, decided=decision),
            side_effects=bound is not None and bound.side_effects,
            idempotent=spec is not None and spec.idempotent,
        )

    def _deferred(
        self, step: str, name: str, arguments: dict[str, Any], on_approval: OnApproval | None
    ) -> Decision:
        """The decision on a call that needs approval in a run that defers them: made by a
        person since the run stopped for it, or the run stops now (``waiting_approval``)."""
        assert self.journal is not None
        row = self.journal.approval(step, name, arguments, self.agent)
        request = ApprovalRequest(
            id=row.id,
            tool=name,
            arguments=arguments,
            created=row.created,
            run_id=self.run_id,
            agent=self.agent,
        )
        if on_approval is not None:
            on_approval(request, None)
        if row.status == "pending":
            raise WaitingApproval(row.id, self.run_id, name)
        decision = Decision(row.status == "approved", row.reason, row.decided_by or "unknown")
        if on_approval is not None:
            on_approval(request, decision)
        return decision


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOutcome:
    status: Status
    output: Any = None
    error: str | None = None
    limit: str | None = None
    iterations: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


class AnswerRejected(Exception):
    """The final answer broke the output schema even after one correction."""


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_reply(text: str) -> dict[str, Any] | str:
    """The JSON object in a reply, or why there is none (the model is told)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            return f"not JSON: {exc.msg} at character {exc.pos}" if body else "empty reply"
        try:
            value = json.loads(body[start : end + 1])
        except json.JSONDecodeError as inner:
            return f"not JSON: {inner.msg} at character {inner.pos + start}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    return value


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}


def check_answer(value: Any, output_schema: Mapping[str, Any] | None) -> tuple[Any, str | None]:
    """The final answer (decoded from JSON text when a schema expects structure) and the
    schema problem, if any."""
    if output_schema is None:
        return value, None
    if isinstance(value, str) and output_schema.get("type") != "string":
        decoded = parse_json_reply(value)
        if isinstance(decoded, dict):
            value = decoded
    cached = _VALIDATORS.get(id(output_schema))
    if cached is None or cached[0] is not output_schema:  # schemas live as long as the specs
        cached = _VALIDATORS[id(output_schema)] = (
            output_schema,
            Draft202012Validator(dict(output_schema)),
        )
    return value, schema_error(cached[1], value)


def observation_text(value: Any, limit: int = 8_000) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit:,} more characters]"
    return text
