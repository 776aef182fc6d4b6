"""Episodes of past runs, built from their trace events.

One episode is one agent's part in one run: an agent run gives one, a crew run one per agent
that took part. :class:`runtime.memory.episodic.EpisodicStore` keeps them, searchable.

An episode holds what the run was asked (its inputs, and the task prompts a crew gave the
agent), the agent's tool calls as short lines (``called calculator({"expression": "12*7"})
→ {"result": 84}``), its outcome (the answer, or the error), and ``text``: those three in a
few hundred characters, which is what gets embedded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from runtime.events import Event
from runtime.memory.records import DEFAULT_TENANT
from runtime.trace import RunRow

__all__ = ["MAX_STEPS", "Episode", "episodes_from_events", "storable"]

#: Tool calls kept per episode; more are summed up in one last line.
MAX_STEPS: Final = 8
_STEP_PART: Final = 120
_INPUTS_CHARS: Final = 400
_OUTCOME_CHARS: Final = 400
_TEXT_CHARS: Final = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """One agent's part in one run, as episodic memory keeps it.

    ``status`` is the run's (a crew agent whose own task went well shares its run's
    failure); ``started`` and ``ended`` are the run's, in Unix seconds. ``inputs`` are the
    run's inputs; ``prompt`` the task prompts a crew gave this agent, or for an agent run
    the message its memory was queried with ("" when it has no memory: the trace keeps the
    ``--input`` text nowhere else). What memory recalled is never part of an episode.
    ``steps`` are its tool calls, at most :data:`MAX_STEPS` lines; ``outcome`` its answer
    or the error; ``text`` what was embedded.
    """

    run_id: str
    agent: str
    target: str
    tenant: str
    session: str | None
    status: str
    started: float
    ended: float | None
    inputs: Any
    prompt: str
    steps: tuple[str, ...]
    outcome: str
    text: str

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "target": self.target,
            "tenant": self.tenant,
            "session": self.session,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "inputs": self.inputs,
            "prompt": self.prompt,
            "steps": list(self.steps),
            "outcome": self.outcome,
            "text": self.text,
        }


# -- from the trace to episodes ---------------------------------------------------------------


def episodes_from_events(run: RunRow, events: Sequence[Event]) -> list[Episode]:
    """The episodes of ``run``: one per agent that took part, in order of first appearance.

    An agent run always gives one (named by its target ``Agent/<name>``), even when it
    ended before the agent did anything; a crew run gives none until an agent starts.
    """
    start = next((e for e in events if e.type == "run.start"), None)
    head = start.data if start is not None else {}
    tenant = _name(head.get("user")) or DEFAULT_TENANT
    session = _name(head.get("session")) or None
    kind, _, name = run.target.partition("/")
    agents = [name] if kind == "Agent" and name else []
    for event in events:
        if event.agent and event.agent not in agents:
            agents.append(event.agent)
    run_error = run.error or _last(events, "run.error", "error")
    request = _compact(head.get("text")) if kind == "Agent" else ""
    return [
        _episode(
            run, [e for e in events if e.agent == agent], agent, tenant, session, run_error,
            request,
        )
        for agent in agents
    ]


def _episode(
    run: RunRow,
    own: Sequence[Event],
    agent: str,
    tenant: str,
    session: str | None,
    run_error: str | None,
    request: str = "",
) -> Episode:
    prompts = [_compact(e.data.get("prompt")) for e in own if e.type == "task.start"]
    if not prompts and request:  # an agent run: the request run.start carries
        prompts = [request]
    if not prompts:  # traces from before run.start carried it: the memory's query
        queries = (_compact(e.data.get("query")) for e in own if e.type == "memory.read")
        prompts = list(dict.fromkeys(q for q in queries if q))
    prompt = _clip(" | ".join(prompts), _TEXT_CHARS)
    answers = [
        _compact(e.data.get("output"))
        for e in own
        if e.type == "agent.answer" and e.data.get("accepted", True)
    ]
    if not answers and run.status == "succeeded" and run.output is not None:
        answers = [_compact(run.output)]
    if run.status not in ("succeeded", "running"):
        failed = [e for e in own if e.type == "task.complete" and e.data.get("error")]
        error = str(failed[-1].data["error"]) if failed else run_error
        answers.append(f"error: {error or run.status}")
    inputs_text = _clip(_describe(run.inputs), _INPUTS_CHARS)
    steps = _steps(own)
    outcome = _clip("; ".join(answers), _OUTCOME_CHARS)
    lines = [line for line in (inputs_text, _clip(prompt, _INPUTS_CHARS)) if line]
    lines.append(f"steps: {'; '.join(steps)}" if steps else "")
    lines.append(f"outcome ({run.status}): {outcome}" if outcome else f"status: {run.status}")
    return Episode(
        run_id=run.id,
        agent=_name(agent),
        target=run.target,
        tenant=tenant,
        session=session,
        status=run.status,
        started=run.started,
        ended=run.ended,
        inputs=run.inputs,
        prompt=prompt,
        steps=steps,
        outcome=outcome,
        text=_clip("\n".join(line for line in lines if line), _TEXT_CHARS, flat=False),
    )


def _steps(own: Sequence[Event]) -> tuple[str, ...]:
    """One line per tool call, its result paired by call id (within the task)."""
    calls: list[list[str]] = []
    open_calls: dict[tuple[str | None, object], int] = {}
    for event in own:
        key = (event.task, event.data.get("call_id"))
        if event.type == "agent.action":
            open_calls[key] = len(calls)
            arguments = _clip(_compact(event.data.get("input")), _STEP_PART)
            tool = _clip(_compact(event.data.get("tool", "?")), _STEP_PART)
            calls.append([f"called {tool}({arguments})", ""])
        elif event.type == "tool.result" and key in open_calls:
            calls[open_calls.pop(key)][1] = _result(event.data)
    lines = [f"{call} → {result}" if result else call for call, result in calls]
    if len(lines) > MAX_STEPS:
        more = len(lines) - MAX_STEPS + 1
        lines = [*lines[: MAX_STEPS - 1], f"… and {more} more calls"]
    return tuple(lines)


def _result(data: Mapping[str, Any]) -> str:
    status = data.get("status", "ok")
    if status == "ok":
        return _clip(_compact(data.get("output")), _STEP_PART)
    return _clip(f"{status}: {_compact(data.get('error'))}", _STEP_PART)


def _describe(inputs: Any) -> str:
    """Inputs as ``name: value`` pairs, strings unquoted: words the embedder can match."""
    if isinstance(inputs, Mapping):
        return "; ".join(f"{key}: {_compact(value)}" for key, value in inputs.items())
    return "" if inputs is None else _compact(inputs)


def _compact(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _clip(text: str, limit: int, *, flat: bool = True) -> str:
    """At most ``limit`` characters, storable, runs of whitespace made one space unless
    not ``flat``."""
    if flat:
        text = " ".join(text.split())
    return storable(text if len(text) <= limit else text[: limit - 1].rstrip() + "…")


def storable(text: str) -> str:
    """``text`` with lone surrogates escaped (the trace keeps what a model wrote, and SQLite
    cannot encode them), as the trace store does: a name or text as it is stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _name(value: object) -> str:
    """A user, session or agent name as stored; "" for none or a blank one."""
    text = "" if value is None else storable(str(value))
    return text if text.strip() else ""


def _last(events: Sequence[Event], type_: str, key: str) -> str | None:
    for event in reversed(events):
        if event.type == type_ and event.data.get(key):
            return str(event.data[key])
    return None
