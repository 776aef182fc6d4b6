"""The live terminal view of a run: an event sink that prints one readable line per event.

The same code renders stored runs (``kiln runs show``): feed it the events of a trace.
Lines are built as :class:`rich.text.Text`, never as markup, so model output such as
``[bold]`` or ``:smile:`` prints as written; control characters (a model can emit terminal
escape sequences) are shown escaped. When several tasks of a crew are running at once,
every line starts with its task's name in a colour of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, Final, Literal

from rich.console import Console
from rich.text import Text

from runtime.events import Event

__all__ = [
    "LiveView",
    "format_cost",
    "format_duration",
    "format_tokens",
    "format_value",
    "make_console",
    "usage_summary",
]

#: Values longer than this are cut to one line of this many characters unless verbose.
SHORT: Final = 160
#: Task colours, in order of first appearance (red is kept for errors).
_PALETTE: Final = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "bright_yellow",
    "bright_blue",
)
_LABEL_MAX: Final = 20
_OK: Final = frozenset({"ok", "success", "succeeded", "completed", "complete", "done"})
_GLYPHS: Final = {"start": "▶", "ok": "✓", "fail": "✗", "end": "■", "to": "→", "from": "←"}
_ASCII_GLYPHS: Final = {"start": ">", "ok": "+", "fail": "x", "end": "#", "to": "->", "from": "<-"}
# C0 and C1 controls but newline and tab, and DEL: shown as \xNN, never sent to the terminal.
_CONTROLS: Final = {
    code: f"\\x{code:02x}"
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))
    if code not in (0x09, 0x0A)
}


def make_console(stream: IO[str], *, color: Literal["auto", "always", "never"] = "auto") -> Console:
    """A console on ``stream``: colours only on a terminal (or ``always``), never with
    ``NO_COLOR``; on a pipe or file, plain lines and no cursor movement."""
    return Console(
        file=stream,
        force_terminal=True if color == "always" else None,
        # None: rich decides from NO_COLOR; "always" beats NO_COLOR, as --color does elsewhere
        no_color={"auto": None, "always": False, "never": True}[color],
        highlight=False,
        emoji=False,
        markup=False,
    )


def format_duration(seconds: float | None) -> str:
    """``350 ms``, ``12.3 s``, ``2m05s``, ``1h04m``; ``-`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_tokens(tokens: int | None) -> str:
    return "-" if tokens is None else f"{tokens:,}"


def format_cost(cost_usd: float | None, *, known: bool = True) -> str:
    """``$0``, ``$0.0012``, ``$3.20``; ``≥`` in front when some price was unknown."""
    if cost_usd is None:
        return "-"
    text = "$0" if cost_usd == 0 else f"${cost_usd:.4f}" if cost_usd < 1 else f"${cost_usd:.2f}"
    return text if known else f"≥{text}"


def format_value(value: Any, *, verbose: bool = False, limit: int = SHORT) -> str:
    """Any value as text: strings as they are, the rest as compact JSON (or its repr).

    Unless verbose, whitespace runs become one space and the text is cut to ``limit``.
    Control characters are always escaped.
    """
    text = _as_text(value).translate(_CONTROLS)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no stream could write it
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if verbose:
        return text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=_repr)
    except (TypeError, ValueError, RecursionError):
        return _repr(value)


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the view
        return f"<{type(value).__name__}>"


def usage_summary(usage: Any) -> str:
    """``1,234 tokens · $0.0012`` from a usage mapping; empty when there is none."""
    if not isinstance(usage, Mapping):
        return ""
    total = usage.get("total_tokens")
    if not isinstance(total, int):
        parts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
        total = sum(p for p in parts if isinstance(p, int))
    cost = usage.get("cost_usd")
    text = f"{format_tokens(total)} tokens"
    if isinstance(cost, int | float):
        text += f" · {format_cost(float(cost), known=usage.get('cost_known') is not False)}"
    return text


_Render = Callable[["LiveView", Event, Mapping[str, Any]], list[Text]]


class LiveView:
    """An event sink printing a run as it goes; see the module docstring.

    It never raises: an event it cannot make sense of is printed as its type.
    """

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        encoding = (getattr(console, "encoding", "") or "").lower()
        self._glyph = _GLYPHS if encoding.startswith("utf") else _ASCII_GLYPHS
        self._colours: dict[str, str] = {}
        self._open: list[str] = []  # tasks started and not yet complete
        self._parallel = False
        self._answered = False
        #: lines held back while something else has the terminal (an approval prompt)
        self._held: list[Text] | None = None
        self._pauses = 0

    def __call__(self, event: Event) -> None:
        try:
            lines = self._lines(event)
        except Exception:  # noqa: BLE001 - a viewer must not break the run it shows
            lines = [Text(f"  {_repr(getattr(event, 'type', '?'))} (unreadable event)", "dim")]
        if self._held is not None:
            self._held.extend(lines)
            return
        self._print(lines)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold every line back while the block runs (a question is on the terminal), then
        print them in order. Pauses nest."""
        self._pauses += 1
        if self._held is None:
            self._held = []
        try:
            yield
        finally:
            self._pauses -= 1
            if self._pauses == 0:
                held, self._held = self._held, None
                self._print(held or [])

    def _print(self, lines: list[Text]) -> None:
        try:
            for line in lines:
                self.console.print(line, soft_wrap=not self.console.is_terminal)
        except Exception:  # noqa: BLE001 - e.g. a closed pipe: the run goes on unseen
            pass

    # -- layout -------------------------------------------------------------------------

    def _lines(self, event: Event) -> list[Text]:
        data = event.data if isinstance(event.data, Mapping) else {"value": event.data}
        task = event.task if isinstance(event.task, str) else None
        if event.type == "task.start" and task is not None:
            self._task_started(task)
        render = _RENDERERS.get(event.type, LiveView._other)
        lines = render(self, event, data)
        if task is not None and self._parallel:
            prefix = self._prefix(task)
            lines = [Text.assemble(prefix, line) for line in lines]
        if event.type == "task.complete" and task in self._open:
            self._open.remove(task)
            self._parallel = self._parallel and bool(self._open)
        return lines

    def _task_started(self, task: str) -> None:
        self._colours.setdefault(task, _PALETTE[len(self._colours) % len(_PALETTE)])
        if task not in self._open:
            self._open.append(task)
        self._parallel = self._parallel or len(self._open) > 1

    def _prefix(self, task: str) -> Text:
        width = min(_LABEL_MAX, max(len(name) for name in (*self._colours, task)))
        label = task if len(task) <= width else task[: width - 1] + "…"
        return Text(f"{label:<{width}} │ ", style=self._colours.get(task, "bold"))

    def _value(self, value: Any) -> str:
        return format_value(value, verbose=self.verbose)

    def _block(self, head: Text, value: Any, style: str = "") -> list[Text]:
        """``head`` then the value; verbose values keep their lines, each indented."""
        first, *rest = self._value(value).split("\n")
        lines = [Text.assemble(head, Text(first, style))]
        lines.extend(Text("    " + line, style) for line in rest)
        return lines

    # -- one renderer per event type ----------------------------------------------------

    def _run_start(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        self._answered = False
        head = Text.assemble((f"{self._glyph['start']} run ", "bold"))
        head.append(self._value(data.get("target", "?")), "bold")
        if data.get("kind"):
            head.append(f" ({self._value(data['kind'])})")
        models = _names(data.get("models", data.get("model")))
        if models:
            head.append(" · model " + ", ".join(self._value(m) for m in models), "dim")
        lines = [head]
        if data.get("inputs"):
            lines += self._block(Text("  inputs: ", "dim"), data["inputs"], "dim")
        return lines

    def _task_start(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        head = Text.assemble((f"{self._glyph['start']} task ", "bold"))
        head.append(self._value(event.task or "?"), "bold")
        if event.agent:
            head.append(f" · agent {self._value(event.agent)}", "dim")
        lines = [head]
        if self.verbose and data.get("prompt"):
            lines += self._block(Text("  prompt: ", "dim"), data["prompt"], "dim")
        return lines

    def _thought(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        tot = [
            f"{key} {self._value(data[key])}"
            for key in ("branch", "level", "score")
            if data.get(key) is not None
        ]
        if data.get("chosen"):
            tot.append("chosen")
        text, malformed = data.get("text"), data.get("malformed")
        if not text and not tot and not malformed:
            return []  # a native tool-calling turn says nothing before its actions
        lines = self._block(Text("  "), text or "", "dim italic")
        if tot:
            lines[-1].append(f"  [{', '.join(tot)}]", "dim")
        if malformed:
            lines.append(Text(f"  malformed reply: {self._value(malformed)}", "red"))
        return lines

    def _action(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        head = Text.assemble((f"  {self._glyph['to']} ", "cyan"))
        head.append(self._value(data.get("tool", "?")), "cyan")
        call = self._value(data.get("input", ""))
        return [Text.assemble(head, f"({call})")]

    def _result(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        status = data.get("status", "ok")
        arrow = Text.assemble((f"  {self._glyph['from']} ", "green" if status == "ok" else "red"))
        if status == "ok":
            lines = self._block(arrow, data.get("output", ""))
        else:
            problem = data.get("error", data.get("output", ""))
            lines = self._block(arrow.append(f"{self._value(status)}: ", "red"), problem, "red")
        facts = []
        if data.get("cached"):
            facts.append("cached")
        attempts = data.get("attempts")
        if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 1:
            facts.append(f"{attempts} attempts")
        seconds = _seconds(event.duration_ms)
        if seconds is not None:
            facts.append(format_duration(seconds))
        if facts:
            lines[-1].append(f"  ({', '.join(facts)})", "dim")
        return lines

    def _approval_request(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        line = Text("  ? ", "yellow")
        line.append(self._value(data.get("tool", "?")), "yellow")
        line.append(" waits for approval", "yellow")
        return [line]

    def _approval_decision(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        approved = data.get("approved") is True
        verdict = "approved" if approved else "denied"
        line = Text(
            f"  {self._glyph['ok' if approved else 'fail']} ", "green" if approved else "red"
        )
        line.append(f"{self._value(data.get('tool', '?'))} {verdict}")
        if data.get("by"):
            line.append(f" by {self._value(data['by'])}", "dim")
        if not approved and data.get("reason"):
            line.append(f": {self._value(data['reason'])}", "red")
        return [line]

    def _memory(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        """One line saying how much each store gave or took, or why nothing; then, verbose,
        one line per item with its score."""
        verb = "recalled" if event.type == "memory.read" else "remembered"
        line = Text.assemble((f"  memory {self._value(data.get('policy', '?'))}: ", "blue"))
        if data.get("error"):
            line.append(self._value(data["error"]), "red")
            return [line]
        items = data.get("items") or []
        turns = data.get("turns") if isinstance(data.get("turns"), int) else 0
        if not items and not turns:
            reason = data.get("reason")
            line.append(f"{verb} nothing" + (f" ({self._value(reason)})" if reason else ""), "dim")
            return [line]
        counts: dict[str, int] = {}
        for item in items if isinstance(items, list | tuple) else ():
            store = str(item.get("store", "?")) if isinstance(item, Mapping) else "item"
            counts[store] = counts.get(store, 0) + 1
        parts = [f"{store} {n}" for store, n in counts.items()]
        if turns:
            parts.insert(0, _count(turns, "earlier turn"))
        line.append(f"{verb} {', '.join(parts)}", "dim")
        lines = [line]
        if self.verbose and isinstance(items, list | tuple):
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                score = item.get("score")
                head = f"    {score:.2f} " if isinstance(score, float) else "    "
                flat = " ".join(str(item.get("text", "")).split())  # one line per item
                text = f"[{item.get('store')}] {self._value(flat)}"
                lines.append(Text(head + text, "dim"))
        return lines

    def _answer(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        if data.get("accepted") is False:  # the model will be asked to correct it
            head = Text("  answer rejected: ", "yellow")
            lines = self._block(head, data.get("error", ""), "yellow")
            lines += self._block(Text("    was: ", "dim"), data.get("output"), "dim")
            return lines
        self._answered = True
        head = Text(f"  {self._glyph['ok']} ", "bold green")
        lines = self._block(head, data.get("output"), "bold")
        summary = usage_summary(data.get("usage"))
        if summary:
            lines[-1].append(f"  ({summary})", "dim")
        return lines

    def _task_complete(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        status = self._value(data.get("status", "?"))
        ok = status in _OK
        head = Text.assemble(
            (f"{self._glyph['ok' if ok else 'fail']} task ", "green" if ok else "red")
        )
        head.append(f"{self._value(event.task or '?')} {status}", "green" if ok else "red")
        seconds = _seconds(event.duration_ms)
        if seconds is not None:
            head.append(f" in {format_duration(seconds)}", "dim")
        if ok or data.get("error") is None:
            return [head]
        return self._block(head.append(": ", "red"), data["error"], "red")

    def _run_error(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        head = Text(f"{self._glyph['fail']} run {self._value(data.get('status', 'error'))}: ")
        head.stylize("bold red")
        lines = self._block(head, data.get("error", ""), "red")
        if data.get("limit") is not None:
            lines[-1].append(f" (limit: {self._value(data['limit'])})", "red")
        return lines

    def _run_complete(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        lines: list[Text] = []
        if not self._answered and data.get("output") is not None:
            lines += self._block(Text("  output: ", "bold"), data["output"], "bold")
        status = self._value(data.get("status", "?"))
        style = "bold green" if status in _OK else "bold red"
        line = Text.assemble((f"{self._glyph['end']} run {status}", style))
        seconds = _seconds(data.get("duration_ms", event.duration_ms))
        facts = [f"in {format_duration(seconds)}"] if seconds is not None else []
        summary = usage_summary(data.get("usage"))
        if summary:
            facts.append(summary)
        if facts:
            line.append(" " + " · ".join(facts), "dim")
        return [*lines, line]

    def _other(self, event: Event, data: Mapping[str, Any]) -> list[Text]:
        return [Text(f"  {self._value(event.type)}: {self._value(dict(data))}", "dim")]


def _names(models: Any) -> list[Any]:
    """Model names from a string, a list, or a mapping of agent to model."""
    if not models:
        return []
    if isinstance(models, Mapping):
        return sorted({_as_text(m) for m in models.values()})
    return list(models) if isinstance(models, list | tuple) else [models]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _seconds(millis: Any) -> float | None:
    is_number = isinstance(millis, int | float) and not isinstance(millis, bool)
    return millis / 1000 if is_number else None


_RENDERERS: Final[Mapping[str, _Render]] = {
    "run.start": LiveView._run_start,
    "task.start": LiveView._task_start,
    "agent.thought": LiveView._thought,
    "agent.action": LiveView._action,
    "tool.result": LiveView._result,
    "approval.request": LiveView._approval_request,
    "approval.decision": LiveView._approval_decision,
    "memory.read": LiveView._memory,
    "memory.write": LiveView._memory,
    "agent.answer": LiveView._answer,
    "task.complete": LiveView._task_complete,
    "run.error": LiveView._run_error,
    "run.complete": LiveView._run_complete,
}
