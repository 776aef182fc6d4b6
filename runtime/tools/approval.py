"""Approvals: a person says yes or no before a tool with ``requires_approval`` runs.

The pause is a request held by an :class:`Approvals` broker until someone resolves it::

    request = approvals.request("wire_money", {"amount": 5}, run_id=..., agent=...)
    decision = await approvals.wait(request.id)     # the tool call waits here

Who answers is pluggable. An :data:`Approver` is asked first, if the broker has one:
:func:`approve_all` (``--approve-all``) says yes at once, :class:`TerminalApprover` asks at
the terminal. An approver may also return ``None`` ("not mine to decide"); the request then
stays pending until :meth:`Approvals.resolve` is called from elsewhere — a server handler
listing :meth:`Approvals.pending`, say. A broker with no approver leaves every request to
``resolve``.

``resolve`` and ``request`` are called on the event loop's thread (from another thread, go
through ``anyio.from_thread.run_sync``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Final

import anyio

__all__ = [
    "ApprovalError",
    "ApprovalRequest",
    "Approvals",
    "Approver",
    "Decision",
    "TerminalApprover",
    "approve_all",
]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One tool call waiting for a yes or a no."""

    id: str
    tool: str
    arguments: Mapping[str, Any]
    #: Unix seconds
    created: float
    run_id: str | None = None
    agent: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "arguments": dict(self.arguments),
            "created": self.created,
            "run_id": self.run_id,
            "agent": self.agent,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    #: why (a denial's reason is what the agent is told)
    reason: str | None = None
    #: who decided: a person, ``--approve-all``, a server user
    by: str = "unknown"

    def as_json(self) -> dict[str, Any]:
        return {"approved": self.approved, "reason": self.reason, "by": self.by}

    def denial(self) -> str:
        """The observation a denied call gives the agent."""
        return f"denied by {self.by}" + (f": {self.reason}" if self.reason else "")


#: Asked about each request: a :class:`Decision`, or ``None`` to leave it pending for
#: :meth:`Approvals.resolve`.
Approver = Callable[[ApprovalRequest], Awaitable[Decision | None]]


async def approve_all(request: ApprovalRequest) -> Decision:
    """Yes to everything (``kiln run --approve-all``)."""
    return Decision(approved=True, by="--approve-all")


class ApprovalError(Exception):
    """``resolve`` of a request that is unknown or already decided."""


@dataclass(slots=True)
class _Pending:
    request: ApprovalRequest
    done: anyio.Event = field(default_factory=anyio.Event)
    decision: Decision | None = None


class Approvals:
    """Pending approval requests, each resolved once, by its approver or from elsewhere."""

    def __init__(
        self, approver: Approver | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.approver = approver
        self._clock = clock
        self._pending: dict[str, _Pending] = {}

    def request(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        run_id: str | None = None,
        agent: str | None = None,
    ) -> ApprovalRequest:
        """Hold a new request (call from async code: it makes an ``anyio.Event``)."""
        request = ApprovalRequest(
            id=uuid.uuid4().hex,
            tool=tool,
            arguments=dict(arguments),
            created=self._clock(),
            run_id=run_id,
            agent=agent,
        )
        self._pending[request.id] = _Pending(request)
        return request

    def pending(self) -> list[ApprovalRequest]:
        """Requests not decided yet, oldest first."""
        return [p.request for p in self._pending.values() if p.decision is None]

    def get(self, request_id: str) -> ApprovalRequest | None:
        entry = self._pending.get(request_id)
        return None if entry is None else entry.request

    def resolve(
        self, request_id: str, approved: bool, reason: str | None = None, *, by: str
    ) -> Decision:
        """Decide a pending request; the call waiting on it goes on."""
        entry = self._pending.get(request_id)
        if entry is None:
            raise ApprovalError(f"no pending approval request {request_id!r}")
        if entry.decision is not None:
            verdict = "approved" if entry.decision.approved else "denied"
            raise ApprovalError(
                f"approval request {request_id} was already {verdict} by {entry.decision.by}"
            )
        decision = Decision(approved=approved, reason=reason or None, by=by)
        self._settle(entry, decision)
        return decision

    async def wait(self, request_id: str) -> Decision:
        """The decision on a request: its approver's, or a :meth:`resolve` call's, whichever
        comes first. The request is forgotten once this returns or is cancelled."""
        entry = self._pending.get(request_id)
        if entry is None:
            raise ApprovalError(f"no pending approval request {request_id!r}")
        try:
            if self.approver is not None and entry.decision is None:
                failed: list[Exception] = []
                async with anyio.create_task_group() as group:

                    async def ask() -> None:
                        assert self.approver is not None
                        try:
                            decision = await self.approver(entry.request)
                        except Exception as exc:  # noqa: BLE001 - raised below, unwrapped
                            failed.append(exc)
                            group.cancel_scope.cancel()
                            return
                        if decision is not None and entry.decision is None:
                            self._settle(entry, decision)

                    async def settled() -> None:
                        await entry.done.wait()
                        group.cancel_scope.cancel()  # a resolve() from elsewhere came first

                    group.start_soon(ask)
                    group.start_soon(settled)
                if failed and entry.decision is None:
                    raise failed[0]
            await entry.done.wait()
            assert entry.decision is not None
            return entry.decision
        finally:
            self._pending.pop(request_id, None)

    @staticmethod
    def _settle(entry: _Pending, decision: Decision) -> None:
        entry.decision = decision
        entry.done.set()


# -- the terminal -------------------------------------------------------------------------

#: The input shown in a prompt: at most this many lines of pretty JSON, each cut this wide.
SHOW_LINES: Final = 30
SHOW_WIDTH: Final = 200

Pause = Callable[[], AbstractContextManager[None]]


@contextmanager
def _no_pause() -> Iterator[None]:
    yield


def _who() -> str:
    import getpass

    try:
        return f"{getpass.getuser()} at the terminal"
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "the terminal"


def show_input(arguments: Any, *, lines: int = SHOW_LINES, width: int = SHOW_WIDTH) -> list[str]:
    """A tool's input as pretty JSON lines, control characters escaped, long input cut."""
    from runtime.live import format_value

    try:
        text = json.dumps(arguments, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(arguments)
    out = []
    rows = format_value(text, verbose=True).split("\n")
    for row in rows[:lines]:
        out.append(row if len(row) <= width else row[: width - 1] + "…")
    if len(rows) > lines:
        out.append(f"… {len(rows) - lines} more lines")
    return out


class TerminalApprover:
    """Asks at the terminal: shows the tool and its input, then approve [y] or deny [n]; a
    denial asks for a reason, which the agent is told.

    Reads lines from the file descriptor ``input_fd`` (a terminal) without a thread, so a
    cancelled run (Ctrl-C) stops asking at once; writes to ``output``. One question at a
    time: concurrent requests (parallel crew tasks) wait their turn. ``pause`` holds the
    live view's lines while a question is on screen. End of input denies.
    """

    def __init__(
        self,
        input_fd: int,
        output: IO[str],
        *,
        pause: Pause | None = None,
        who: str | None = None,
    ) -> None:
        self.input_fd = input_fd
        self.output = output
        self.pause = pause or _no_pause
        self.who = who or _who()
        self._lock: anyio.Lock | None = None
        self._buffer = b""
        self._eof = False

    async def __call__(self, request: ApprovalRequest) -> Decision:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            with self.pause():
                return await self._ask(request)

    async def _ask(self, request: ApprovalRequest) -> Decision:
        who = f" (agent {request.agent})" if request.agent else ""
        self._write(f"\n? {request.tool} needs your approval{who}\n")
        self._write("  input:\n")
        for line in show_input(request.arguments):
            self._write(f"    {line}\n")
        while True:
            answer = await self._line("  approve? [y]es / [n]o: ")
            if answer is None:
                self._write("\n")
                return Decision(False, "nobody answered (end of input)", self.who)
            choice = answer.strip().lower()
            if choice in ("y", "yes"):
                self._write("  approved\n")
                return Decision(True, None, self.who)
            if choice in ("n", "no"):
                reason = await self._line("  reason (the agent is told): ")
                self._write("  denied\n")
                return Decision(False, (reason or "").strip() or None, self.who)
            self._write("  please answer y or n\n")

    def _write(self, text: str) -> None:
        try:
            self.output.write(text)
            self.output.flush()
        except (OSError, ValueError):
            pass  # a closed terminal: the answer (or end of input) still decides

    async def _line(self, prompt: str) -> str | None:
        """One line typed at the terminal, or ``None`` at end of input."""
        self._write(prompt)
        while b"\n" not in self._buffer and not self._eof:
            await anyio.wait_readable(self.input_fd)
            try:
                chunk = os.read(self.input_fd, 4096)
            except BlockingIOError:
                continue
            except OSError:  # the terminal went away (EIO when a pty's other end closes)
                chunk = b""
            if not chunk:
                self._eof = True
            self._buffer += chunk
        if b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
        elif self._buffer:
            line, self._buffer = self._buffer, b""
        else:
            return None
        return line.decode("utf-8", "replace").rstrip("\r")
