"""``scripted:<file>``: a model that replays turns from a YAML file, for tests, demos and
benchmarks. Deterministic, offline, and as fast as the runtime around it.

The file maps an agent name (or a crew task's name, where one agent serves several tasks)
to the list of its turns, one per model call, in order::

    assistant:
      - thought: I need the word count.
        tool: word_count
        input: {text: "one two three"}
      - thought: The tool said 3.
        final: {answer: "three words"}

A turn is one of

- an action, ``{thought, tool, input}``, or a final answer, ``{thought, final}`` (react, cot);
- a bare ``{thought}`` (a tree-of-thought branch) or ``{score}`` (its rating, 0 to 1);
- ``{raw: TEXT}``: the reply verbatim, to test malformed replies;
- ``{error: 429 | 500 | 503 | 401 | timeout}``: the call fails the way a provider's would.

Any turn may add ``delay_ms`` (the call waits that long) and ``usage`` (``prompt_tokens``,
``completion_tokens``, ``cost_usd``) to replace the estimated counts. Each run replays the
file from the start: concurrent runs never share a position. Requests to summarise earlier
turns (context trimming, short-term memory) and to extract facts and entities for memory do
not consume turns: they get deterministic answers (an extract of the turns; the rules of
:func:`runtime.memory.rules.rule_extract`).

With ``native_tools=True`` (set in code, for tests of that path) actions come back as
native ``tool_calls`` and final answers as plain text, as OpenAI-style models send them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio

from runtime.llm.types import (
    AuthError,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelTimeout,
    RateLimited,
    ServerError,
    ToolCall,
    Usage,
    estimate_tokens,
    message_tokens,
)
from specs.source import Span, load_text

_KEYS: Final = frozenset(
    {"thought", "tool", "input", "final", "score", "raw", "error", "delay_ms", "usage"}
)
_ERRORS: Final[Mapping[str, type[ModelError]]] = {
    "429": RateLimited,
    "500": ServerError,
    "502": ServerError,
    "503": ServerError,
    "401": AuthError,
    "timeout": ModelTimeout,
}
#: What each purpose accepts: a ``think`` call wants a bare thought, and so on.
_FITS: Final[Mapping[str, frozenset[str]]] = {
    "act": frozenset({"action", "final", "raw"}),
    "final": frozenset({"action", "final", "raw"}),
    "think": frozenset({"thought", "raw"}),
    "score": frozenset({"score", "raw"}),
}


class ScriptError(ModelError):
    """The script and the run disagree: no turn left, or a turn of the wrong shape."""

    kind = "bad_request"
    retryable = False
    #: its message is the whole story: not "all models failed"
    speaks_for_itself = True


@dataclass(frozen=True, slots=True)
class Turn:
    index: int  # 1-based, as people count
    span: Span
    data: Mapping[str, Any]

    @property
    def shape(self) -> str:
        if "error" in self.data:
            return "error"
        if "raw" in self.data:
            return "raw"
        if "tool" in self.data:
            return "action"
        if "final" in self.data:
            return "final"
        if "score" in self.data:
            return "score"
        return "thought"

    def where(self, key: str) -> str:
        return f"turn {self.index} of {key!r} ({self.span.path}:{self.span.line}:{self.span.col})"


@dataclass(frozen=True, slots=True)
class ScriptProblem:
    span: Span
    message: str

    def __str__(self) -> str:
        return f"{self.span}: {self.message}"


@dataclass(slots=True)
class ScriptedModel:
    """Implements :class:`runtime.llm.types.ModelBackend` by replaying a script."""

    path: str
    turns: Mapping[str, tuple[Turn, ...]]
    key_spans: Mapping[str, Span] = field(default_factory=dict)
    #: run id -> script key -> turns used
    _cursor: dict[str, dict[str, int]] = field(default_factory=dict)

    name: str = ""
    provider: str = "scripted"
    native_tools: bool = False
    constrained: bool = False
    context_window: int = 128_000

    def __post_init__(self) -> None:
        self.name = f"scripted:{self.path}"

    def key_for(self, agent: str, task: str | None) -> str:
        return task if task is not None and task in self.turns else agent

    def check(self, tools: Mapping[str, frozenset[str] | None]) -> list[ScriptProblem]:
        """Turns that cannot fit: ``tools`` maps every agent and task name the script may
        use to the tools its agent has (``None``: not known yet, so not checked). Unknown
        names and foreign tools are problems."""
        problems: list[ScriptProblem] = []
        for key, turns in self.turns.items():
            if key not in tools:
                known = ", ".join(sorted(tools)) or "none"
                problems.append(
                    ScriptProblem(
                        self.key_spans.get(key, Span.point(self.path)),
                        f"{key!r} is not an agent or task of this run (known: {known})",
                    )
                )
                continue
            has_tools = tools[key]
            if has_tools is None:
                continue
            for turn in turns:
                tool = turn.data.get("tool")
                if tool is not None and tool not in has_tools:
                    has = ", ".join(sorted(has_tools)) or "no tools"
                    problems.append(
                        ScriptProblem(
                            turn.span,
                            f"turn {turn.index} of {key!r} calls tool {tool!r}, which the "
                            f"agent does not have (it has {has})",
                        )
                    )
        return problems

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if request.purpose == "summarize":
            return _summary(request)
        if request.purpose == "extract":
            return _extraction(request)
        key = self.key_for(request.agent, request.task)
        turns = self.turns.get(key)
        if turns is None:
            raise ScriptError(f"no turns for {key!r}", model=self.name)
        cursors = self._cursor.get(request.run_id)
        if cursors is None:
            cursors = self._cursor[request.run_id] = {}
        position = cursors.get(key, 0)
        if position >= len(turns):
            raise ScriptError(
                f"the script ran out of turns: {key!r} has {len(turns)} "
                f"turn{'s' * (len(turns) != 1)} and the run asked for turn {position + 1}",
                model=self.name,
            )
        cursors[key] = position + 1
        turn = turns[position]
        delay = turn.data.get("delay_ms")
        if delay:
            await anyio.sleep(delay / 1000)
        return self._reply(turn, key, request)

    def replayed(self, request: ModelRequest) -> None:
        """A resumed run got this call's answer from its journal: move past the turn it
        took, so the next call gets the next turn."""
        if request.purpose in ("summarize", "extract"):
            return
        key = self.key_for(request.agent, request.task)
        cursors = self._cursor.setdefault(request.run_id, {})
        cursors[key] = cursors.get(key, 0) + 1

    def forget(self, run_id: str) -> None:
        """Drop a finished run's positions (long-lived processes run many)."""
        self._cursor.pop(run_id, None)

    def _reply(self, turn: Turn, key: str, request: ModelRequest) -> ModelResponse:
        shape = turn.shape
        if shape == "error":
            code = str(turn.data["error"])
            raise _ERRORS[code](f"{turn.where(key)}: scripted error {code}", model=self.name)
        if shape not in _FITS.get(request.purpose, frozenset()):
            raise ScriptError(
                f"{turn.where(key)} is {_article(shape)} turn, but the agent asked for "
                f"{_article(_WANTS[request.purpose])}",
                model=self.name,
            )
        if self.native_tools and shape in ("action", "final"):
            return self._native(turn, request)
        if shape == "raw":
            text = str(turn.data["raw"])
        else:
            reply = {k: v for k, v in turn.data.items() if k not in ("delay_ms", "usage")}
            text = json.dumps(reply, ensure_ascii=False)
        return ModelResponse(text=text, usage=_usage(turn, request, text), model=self.name)

    def _native(self, turn: Turn, request: ModelRequest) -> ModelResponse:
        """The turn as a model with native tool calling would send it."""
        data = turn.data
        if "tool" in data:
            call = ToolCall(f"call_{turn.index}", str(data["tool"]), dict(data.get("input") or {}))
            text = str(data.get("thought") or "")
            return ModelResponse(
                text=text, tool_calls=(call,), usage=_usage(turn, request, text), model=self.name
            )
        final = data["final"]
        text = final if isinstance(final, str) else json.dumps(final, ensure_ascii=False)
        return ModelResponse(text=text, usage=_usage(turn, request, text), model=self.name)


_WANTS: Final = {"act": "action", "final": "final", "think": "thought", "score": "score"}


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _usage(turn: Turn, request: ModelRequest, text: str) -> Usage:
    given = turn.data.get("usage") or {}
    return Usage(
        prompt_tokens=int(
            given["prompt_tokens"]
            if "prompt_tokens" in given
            else request.estimated_tokens or message_tokens(request.messages)
        ),
        completion_tokens=int(given.get("completion_tokens", estimate_tokens(text))),
        cost_usd=float(given.get("cost_usd", 0.0)),
    )


def _summary(request: ModelRequest) -> ModelResponse:
    """A deterministic extract: the first line of every message after the first two."""
    lines = []
    for m in request.messages[2:]:
        content = str(m.get("content") or "").strip()
        if content:
            lines.append(f"- {m.get('role')}: {content.splitlines()[0][:120]}")
    text = "\n".join(lines) or "(nothing to summarise)"
    return ModelResponse(text=text, usage=Usage(message_tokens(request.messages), 0))


def _extraction(request: ModelRequest) -> ModelResponse:
    """Memory extraction (facts, entities, relations) answered by the deterministic rules of
    :func:`runtime.memory.rules.rule_extract` over the request's last message."""
    from runtime.memory.rules import rule_extract

    text = str(request.messages[-1].get("content") or "") if request.messages else ""
    found = rule_extract(text)
    schema = request.response_schema or {}
    asked = schema.get("properties")
    if isinstance(asked, Mapping):  # answer exactly the kinds asked for, as a model must
        found = found.only(frozenset(asked))
    reply = json.dumps(found.as_json(), ensure_ascii=False)
    return ModelResponse(text=reply, usage=Usage(message_tokens(request.messages), 0))


def load_script(path: str | Path) -> ScriptedModel:
    """Read and check the shape of a script file; raises :class:`ScriptError` listing every
    problem with its ``file:line:col``."""
    text = _read(Path(path))
    docs, issues = load_text(text, str(path))
    problems = [ScriptProblem(i.span, i.message) for i in issues]
    if not problems and len(docs) != 1:
        problems.append(ScriptProblem(Span.point(str(path)), "expected exactly one document"))
    if problems:
        raise ScriptError(_joined(problems))
    doc = docs[0]
    if not isinstance(doc.data, dict):
        raise ScriptError(f"{doc.span}: a script maps agent (or task) names to lists of turns")
    turns: dict[str, tuple[Turn, ...]] = {}
    for key, items in doc.data.items():
        turns[str(key)] = _turns(str(key), items, doc.spans, problems, doc.span)
    if problems:
        raise ScriptError(_joined(problems))
    key_spans = {str(k): doc.key_spans.get((k,), doc.span) for k in doc.data}
    return ScriptedModel(str(path), turns, key_spans)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"{path}: scripted model file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{path}: cannot read the scripted model file ({exc})") from None


def _joined(problems: Sequence[ScriptProblem]) -> str:
    return "\n".join(str(p) for p in problems)


def _turns(
    key: str,
    items: Any,
    spans: Mapping[tuple[Any, ...], Span],
    problems: list[ScriptProblem],
    fallback: Span,
) -> tuple[Turn, ...]:
    if not isinstance(items, list):
        problems.append(ScriptProblem(spans.get((key,), fallback), f"{key!r}: expected a list"))
        return ()
    out = []
    for i, item in enumerate(items):
        span = spans.get((key, i), fallback)
        turn = Turn(i + 1, span, item if isinstance(item, dict) else {})
        problem = _turn_problem(item)
        if problem is not None:
            problems.append(ScriptProblem(span, f"turn {turn.index} of {key!r}: {problem}"))
        out.append(turn)
    return tuple(out)


def _turn_problem(item: Any) -> str | None:  # noqa: C901 - one flat list of shape rules
    if not isinstance(item, dict):
        return "a turn is a mapping such as {thought: ..., final: ...}"
    unknown = sorted(set(map(str, item)) - _KEYS)
    if unknown:
        return f"unknown key {unknown[0]!r} (a turn has {', '.join(sorted(_KEYS))})"
    kinds = [k for k in ("tool", "final", "score", "raw", "error") if k in item]
    if len(kinds) > 1:
        return f"give only one of {', '.join(kinds)}"
    if "tool" in item and not isinstance(item.get("input", {}), dict):
        return "'input' must be a mapping of the tool's arguments"
    if "input" in item and "tool" not in item:
        return "'input' needs 'tool'"
    if "error" in item and str(item["error"]) not in _ERRORS:
        return f"'error' is one of {', '.join(_ERRORS)}"
    if "score" in item and not (isinstance(item["score"], int | float) and 0 <= item["score"] <= 1):
        return "'score' is a number from 0 to 1"
    delay = item.get("delay_ms", 0)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        return "'delay_ms' is a number of milliseconds, 0 or more"
    if not kinds and "thought" not in item:
        return "a turn needs 'thought', 'tool', 'final', 'score', 'raw' or 'error'"
    return _usage_problem(item.get("usage", {}))


def _usage_problem(usage: Any) -> str | None:
    if not isinstance(usage, dict) or set(usage) - {
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
    }:
        return "'usage' has prompt_tokens, completion_tokens and cost_usd"
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"'usage.{key}' is a whole number, 0 or more"
    cost = usage.get("cost_usd", 0)
    if not isinstance(cost, int | float) or isinstance(cost, bool) or cost < 0:
        return "'usage.cost_usd' is a number of dollars, 0 or more"
    return None
