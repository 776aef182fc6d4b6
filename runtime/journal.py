"""Durable runs: every step result a run depends on is journaled, so a run can be resumed
after its process died, replaying what was recorded instead of doing it again.

A step is a model response, a tool outcome or a memory write. Its identity never depends
on timing: the agent run's place in the run (crew task and agent; inside a delegated or
handed-out call, that call's step first) and a count within that agent run (``#m3``: its
third model call, ``#t2``: its second tool call, ``#w``: its memory write). Parallel crew
branches therefore replay the same way whatever order they finished in.

Resuming replays the journal: a recorded model response is returned without calling the
model, a recorded tool outcome without calling the tool, and the agent loops (plain code)
take the same path again, emitting the same events. The first step without a result is
where the run carries on.

A side-effecting tool call is recorded as ``started`` (durably) before it is made. A call
found ``started`` but not ``done`` on resume may or may not have had its effect: it is made
again only when the tool has no side effects or is idempotent; otherwise the run stops as
``needs_attention`` (:class:`NeedsAttention`) and a person chooses to retry or skip it.
Every tool call carries an idempotency key (:func:`idempotency_key`), the same on every
retry and resume, which tools can use to do their effect once.

Durability modes (LangGraph's): ``sync`` (a step goes on only once the previous result is
durable; concurrent runs share one commit), ``async`` (results are written with the next
batch: a crash may lose the last few, which are then done again), ``exit`` (written when
the run ends or stops: a crash loses them all).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from runtime.idempotency import IDEMPOTENCY_KEY
from runtime.llm.types import ModelResponse, ToolCall, Usage
from runtime.stops import RunStopped
from runtime.tools.box import ToolOutcome

__all__ = [
    "DURABILITY",
    "PARENT_STEP",
    "IDEMPOTENCY_KEY",
    "Durability",
    "JournalStore",
    "NeedsAttention",
    "RunJournal",
    "WaitingApproval",
    "idempotency_key",
]

Durability = Literal["sync", "async", "exit"]
DURABILITY: tuple[Durability, ...] = ("sync", "async", "exit")

#: The step of the tool call an agent run happens inside (a delegation, a crew task handed
#: out by a manager): the prefix of that run's step identities. Empty at the top.
PARENT_STEP: ContextVar[str] = ContextVar("kiln_parent_step", default="")

#: What a person decided about a call that may or may not have had its effect.
Ambiguous = Literal["stop", "retry", "skip"]


class JournalStore(Protocol):
    """Where journaled steps go (the trace store, :class:`runtime.trace.TraceStore`)."""

    def record(self, run_id: str, step: str, kind: str, state: str, data: Any) -> None: ...

    async def commit(self) -> None: ...

    def request_approval(
        self, run_id: str, step: str, *, tool: str, arguments: Any, agent: str | None
    ) -> Any: ...


class Entry(Protocol):
    kind: str
    state: str
    data: Any


class NeedsAttention(RunStopped):
    """A side-effecting call was started before the run was interrupted and its result was
    never recorded: doing it again might do its effect twice. A person decides."""

    def __init__(self, step: str, tool: str, arguments: Any, key: str) -> None:
        shown = json.dumps(arguments, ensure_ascii=False, default=str)
        super().__init__(
            f"the call of {tool} (step {step}, input {shown[:300]}, idempotency key {key}) "
            "was started before the run stopped and may have had its effect: resume with "
            "--retry-call to make it again, or --skip-call --observation TEXT to go on "
            "without it"
        )
        self.step, self.tool, self.arguments, self.key = step, tool, arguments, key


class WaitingApproval(RunStopped):
    """A call needs a person's yes and nobody here can give it: the run stops, durably,
    until the approval is decided (``kiln approvals approve|deny``) and the run resumed."""

    status = "waiting_approval"

    def __init__(self, approval_id: str, run_id: str, tool: str) -> None:
        super().__init__(
            f"tool {tool} waits for approval {approval_id}: decide it with 'kiln approvals "
            f"approve {approval_id}' or 'kiln approvals deny {approval_id} --reason TEXT', "
            f"then 'kiln runs resume {run_id}'"
        )
        self.approval_id = approval_id


def idempotency_key(run_id: str, step: str, tool: str, arguments: Any) -> str:
    """The same for a call however often it is retried or resumed: a hash of the run, the
    step's identity, the tool and its canonical input."""
    canonical = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256("\x00".join((run_id, step, tool, canonical)).encode())
    return digest.hexdigest()[:32]


@dataclass(slots=True)
class RunJournal:
    """The journal of one run, as its agent loops use it."""

    store: JournalStore
    run_id: str
    durability: Durability = "sync"
    #: what an earlier process of this run recorded, by step identity
    replay: Mapping[str, Entry] = field(default_factory=dict)
    #: for a call started but never finished: stop (the default), make it again, or skip it
    ambiguous: Ambiguous = "stop"
    #: with ``skip``: what the agent is told instead of the call's result
    observation: str = "The call was skipped by a person; its result is unknown."
    #: steps answered from the journal in this process
    replayed: int = 0
    #: tools that require approval stop the run until a person decides, from anywhere
    defer_approvals: bool = False

    def recorded(self, step: str) -> bool:
        """Whether ``step`` has a recorded result (replaying it asks nobody anything)."""
        entry = self.replay.get(step)
        return entry is not None and entry.state == "done"

    def approval(self, step: str, tool: str, arguments: Any, agent: str | None) -> Any:
        """The durable approval of ``step``: asked for now if it was not before. Its
        ``status`` is ``pending``, ``approved`` or ``denied``."""
        return self.store.request_approval(
            self.run_id, step, tool=tool, arguments=arguments, agent=agent
        )

    async def model(
        self,
        step: str,
        call: Callable[[], Awaitable[ModelResponse]],
        on_replay: Callable[[ModelResponse], None] | None = None,
    ) -> ModelResponse:
        """The response of model step ``step``: recorded, or made now and recorded."""
        entry = self.replay.get(step)
        if entry is not None and entry.state == "done":
            self.replayed += 1
            response = _response(entry.data)
            if on_replay is not None:
                on_replay(response)
            return response
        response = await call()
        self.store.record(self.run_id, step, "model", "done", _response_json(response))
        await self._settle()
        return response

    async def tool(
        self,
        step: str,
        tool: str,
        arguments: Any,
        call: Callable[[], Awaitable[ToolOutcome]],
        *,
        side_effects: bool,
        idempotent: bool = False,
    ) -> ToolOutcome:
        """The outcome of tool step ``step``: recorded, or made now and recorded. A
        side-effecting call is durably marked ``started`` first."""
        key = idempotency_key(self.run_id, step, tool, arguments)
        entry = self.replay.get(step)
        if entry is not None and entry.state == "done":
            self.replayed += 1
            return _outcome(entry.data)
        if entry is not None and entry.state == "started" and side_effects and not idempotent:
            if self.ambiguous == "stop":
                raise NeedsAttention(step, tool, arguments, key)
            if self.ambiguous == "skip":
                outcome = ToolOutcome("error", error=self.observation)
                self._done(step, outcome)
                await self._settle()
                return outcome
        if side_effects:
            self.store.record(self.run_id, step, "tool", "started", {"tool": tool, "key": key})
            if self.durability == "sync":
                await self.store.commit()
        token = IDEMPOTENCY_KEY.set(key)
        try:
            outcome = await call()
        finally:
            IDEMPOTENCY_KEY.reset(token)
        self._done(step, outcome)
        await self._settle()
        return outcome

    async def memory(
        self,
        step: str,
        write: Callable[[bool], Awaitable[dict[str, Any]]],
        on_replay: Callable[[dict[str, Any]], object],
    ) -> None:
        """The memory write of step ``step``: recorded (``on_replay`` gets what it wrote, to
        say so again), or made now and recorded. It is marked ``started`` first; a write
        found started on resume is made again with ``write(True)``, and the stores make it
        once: its records carry ids derived from the step, which replace themselves, and a
        window's turns are not appended twice."""
        entry = self.replay.get(step)
        if entry is not None and entry.state == "done":
            self.replayed += 1
            on_replay(dict(entry.data))
            return
        self.store.record(self.run_id, step, "memory", "started", {})
        if self.durability == "sync":
            await self.store.commit()
        written = await write(entry is not None)
        self.store.record(self.run_id, step, "memory", "done", written)
        await self._settle()

    def _done(self, step: str, outcome: ToolOutcome) -> None:
        self.store.record(self.run_id, step, "tool", "done", _outcome_json(outcome))

    async def _settle(self) -> None:
        if self.durability == "sync":
            await self.store.commit()


def _response_json(response: ModelResponse) -> dict[str, Any]:
    return {
        "text": response.text,
        "tool_calls": [[c.id, c.name, c.arguments] for c in response.tool_calls],
        "usage": asdict(response.usage),
        "model": response.model,
        "attempts": response.attempts,
    }


def _response(data: Mapping[str, Any]) -> ModelResponse:
    return ModelResponse(
        text=data.get("text") or "",
        tool_calls=tuple(ToolCall(i, n, a) for i, n, a in data.get("tool_calls") or ()),
        usage=Usage(**data.get("usage", {})),
        model=data.get("model") or "",
        attempts=data.get("attempts") or 1,
    )


def _outcome_json(outcome: ToolOutcome) -> dict[str, Any]:
    return asdict(outcome)


def _outcome(data: Mapping[str, Any]) -> ToolOutcome:
    return ToolOutcome(**{k: v for k, v in data.items() if k in ToolOutcome.__dataclass_fields__})
