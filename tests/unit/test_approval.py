"""Approvals: the broker, approvers, the terminal prompt (on a pipe), and the ToolBox gate."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import pytest
from rich.console import Console

from runtime.events import Event
from runtime.live import LiveView
from runtime.tools.approval import (
    ApprovalError,
    ApprovalRequest,
    Approvals,
    Decision,
    TerminalApprover,
    approve_all,
    show_input,
)
from runtime.tools.box import NO_APPROVER, ToolBox, ToolOutcome, bind
from specs import Tool

WIRE = Tool.model_validate(
    {
        "apiVersion": "kiln/v1",
        "kind": "Tool",
        "metadata": {"name": "wire_money"},
        "spec": {
            "description": "Send money.",
            "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
            "executor": {"type": "builtin", "function": "stdlib_tools.word_count:run"},
            "requires_approval": True,
        },
    }
)


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        self.calls += 1
        return {"sent": arguments.get("text")}


# -- the broker -----------------------------------------------------------------------------


def test_a_request_waits_until_someone_resolves_it_from_elsewhere() -> None:
    approvals = Approvals()

    async def go() -> tuple[Decision, list[ApprovalRequest], list[ApprovalRequest]]:
        request = approvals.request("wire_money", {"amount": 5}, run_id="r1", agent="payer")
        before = approvals.pending()
        got: list[Decision] = []

        async def waiter() -> None:
            got.append(await approvals.wait(request.id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            assert got == []  # still waiting
            approvals.resolve(request.id, False, "too much", by="alice")
        return got[0], before, approvals.pending()

    decision, before, after = anyio.run(go)
    assert decision == Decision(approved=False, reason="too much", by="alice")
    assert [(r.tool, r.run_id, r.agent, dict(r.arguments)) for r in before] == [
        ("wire_money", "r1", "payer", {"amount": 5})
    ]
    assert after == []


def test_a_request_resolved_before_anyone_waits_is_answered_at_once() -> None:
    approvals = Approvals()

    async def go() -> Decision:
        request = approvals.request("t", {})
        approvals.resolve(request.id, True, by="bob")
        return await approvals.wait(request.id)

    assert anyio.run(go) == Decision(True, None, "bob")


def test_resolving_twice_or_an_unknown_request_is_an_error() -> None:
    approvals = Approvals()

    async def go() -> None:
        request = approvals.request("t", {})
        approvals.resolve(request.id, True, by="bob")
        with pytest.raises(ApprovalError, match="already approved by bob"):
            approvals.resolve(request.id, False, by="eve")
        with pytest.raises(ApprovalError, match="no pending approval request 'nope'"):
            approvals.resolve("nope", True, by="bob")
        with pytest.raises(ApprovalError, match="no pending approval request"):
            await approvals.wait("nope")

    anyio.run(go)


def test_an_approver_that_passes_leaves_the_request_to_resolve() -> None:
    asked: list[str] = []

    async def undecided(request: ApprovalRequest) -> Decision | None:
        asked.append(request.tool)
        return None

    approvals = Approvals(undecided)

    async def go() -> Decision:
        request = approvals.request("deploy", {})
        got: list[Decision] = []

        async def waiter() -> None:
            got.append(await approvals.wait(request.id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            (pending,) = approvals.pending()
            approvals.resolve(pending.id, True, by="ops")
        return got[0]

    assert anyio.run(go) == Decision(True, None, "ops") and asked == ["deploy"]


def test_a_cancelled_wait_forgets_the_request() -> None:
    approvals = Approvals()

    async def go() -> int:
        approvals.request("t", {})
        (request,) = approvals.pending()
        with anyio.move_on_after(0.01):
            await approvals.wait(request.id)
        return len(approvals.pending())

    assert anyio.run(go) == 0


def test_approve_all_and_denials_in_words() -> None:
    request = ApprovalRequest("1", "t", {}, 0.0)
    assert anyio.run(approve_all, request) == Decision(True, None, "--approve-all")
    assert Decision(False, "too risky", "alice").denial() == "denied by alice: too risky"
    assert Decision(False, None, "alice").denial() == "denied by alice"
    assert request.as_json()["tool"] == "t"


# -- the box --------------------------------------------------------------------------------


def call(box: ToolBox, arguments: Any) -> ToolOutcome:
    return anyio.run(box.call, "wire_money", arguments)


def test_with_nobody_to_ask_the_call_needs_approval_and_nothing_runs() -> None:
    executor = Counting()
    outcome = call(ToolBox({"wire_money": bind(WIRE)}, {"builtin": executor}), {"text": "5"})
    assert outcome.status == "approval_required"
    assert outcome.error == (
        "tool wire_money requires approval and this run cannot ask anyone (not a terminal): "
        "run with --approve-all, or from a terminal"
    )
    assert outcome.error == NO_APPROVER.format(tool="wire_money")
    assert executor.calls == 0


def test_approved_calls_run_and_the_hook_hears_both_halves() -> None:
    executor = Counting()
    heard: list[tuple[str, Decision | None]] = []
    box = ToolBox(
        {"wire_money": bind(WIRE)},
        {"builtin": executor},
        approve_all,
        run_id="run-1",
        agent="payer",
        on_approval=lambda request, decision: heard.append((request.tool, decision)),
    )
    outcome = call(box, {"text": "5"})
    assert outcome.ok and outcome.output == {"sent": "5"} and executor.calls == 1
    assert heard == [("wire_money", None), ("wire_money", Decision(True, None, "--approve-all"))]


def test_a_denial_is_the_observation_and_nothing_runs() -> None:
    async def no(request: ApprovalRequest) -> Decision:
        return Decision(False, f"not {request.arguments['text']}", "alice")

    executor = Counting()
    box = ToolBox({"wire_money": bind(WIRE)}, {"builtin": executor}, no)
    outcome = call(box, {"text": "today"})
    assert outcome.status == "denied" and outcome.error == "denied by alice: not today"
    assert executor.calls == 0


def test_a_per_call_hook_replaces_the_box_hook_and_sees_run_and_agent() -> None:
    requests: list[ApprovalRequest] = []
    box = ToolBox(
        {"wire_money": bind(WIRE)},
        {"builtin": Counting()},
        approve_all,
        run_id="run-9",
        agent="payer",
        on_approval=lambda request, decision: pytest.fail("the box hook was called"),
    )

    async def go() -> ToolOutcome:
        return await box.call(
            "wire_money", {"text": "1"}, on_approval=lambda r, d: requests.append(r)
        )

    assert anyio.run(go).ok
    assert [(r.run_id, r.agent) for r in requests] == [("run-9", "payer")] * 2


def test_a_broken_approver_denies() -> None:
    async def broken(request: ApprovalRequest) -> Decision:
        raise OSError("terminal vanished")

    executor = Counting()
    box = ToolBox({"wire_money": bind(WIRE)}, {"builtin": executor}, broken)
    outcome = call(box, {"text": "5"})
    assert outcome.status == "denied"
    assert outcome.error == "denied by kiln: asking for approval failed: terminal vanished"
    assert executor.calls == 0


def test_a_shared_broker_lets_another_party_decide() -> None:
    approvals = Approvals()

    async def go() -> ToolOutcome:
        asked = anyio.Event()
        box = ToolBox(
            {"wire_money": bind(WIRE)},
            {"builtin": Counting()},
            approvals=approvals,
            on_approval=lambda request, decision: asked.set(),
        )
        got: list[ToolOutcome] = []

        async def caller() -> None:
            got.append(await box.call("wire_money", {"text": "5"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await asked.wait()
            (request,) = approvals.pending()
            approvals.resolve(request.id, False, "ask finance", by="server user carol")
        return got[0]

    outcome = anyio.run(go)
    assert outcome.status == "denied"
    assert outcome.error == "denied by server user carol: ask finance"


def test_invalid_input_is_refused_before_anyone_is_asked() -> None:
    asked: list[str] = []

    async def approver(request: ApprovalRequest) -> Decision:
        asked.append(request.tool)
        return Decision(True, by="x")

    box = ToolBox({"wire_money": bind(WIRE)}, {"builtin": Counting()}, approver)
    assert call(box, {"text": 5}).status == "invalid_input" and asked == []


# -- the terminal prompt (on a pipe) --------------------------------------------------------


class Terminal:
    """A pipe standing in for the keyboard and a StringIO for the screen."""

    def __init__(self, typed: str, *, close: bool = False) -> None:
        self.read_fd, write_fd = os.pipe()
        os.write(write_fd, typed.encode())
        if close:
            os.close(write_fd)
            self.write_fd: int | None = None
        else:
            self.write_fd = write_fd
        self.screen = io.StringIO()

    def close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd is not None:
            os.close(self.write_fd)


@pytest.fixture
def terminal() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for t in made:
        t.close()


def ask(
    made: list[Terminal],
    typed: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    close: bool = False,
    view: LiveView | None = None,
) -> tuple[Decision, str]:
    term = Terminal(typed, close=close)
    made.append(term)
    approver = TerminalApprover(
        term.read_fd, term.screen, who="alice", pause=view.paused if view else None
    )
    request = ApprovalRequest("r1", "wire_money", arguments or {"amount": 5}, 0.0, agent="payer")
    decision = anyio.run(approver, request)
    return decision, term.screen.getvalue()


def test_y_approves(terminal: list[Terminal]) -> None:
    decision, screen = ask(terminal, "y\n")
    assert decision == Decision(True, None, "alice")
    assert "? wire_money needs your approval (agent payer)" in screen
    assert '"amount": 5' in screen  # pretty JSON, one key a line
    assert "approve? [y]es / [n]o:" in screen


def test_n_asks_for_a_reason_that_the_agent_will_see(terminal: list[Terminal]) -> None:
    decision, screen = ask(terminal, "maybe\nN\n  too much money  \n")
    assert decision == Decision(False, "too much money", "alice")
    assert "please answer y or n" in screen and "reason (the agent is told):" in screen


def test_a_denial_without_a_reason(terminal: list[Terminal]) -> None:
    decision, _ = ask(terminal, "no\n\n")
    assert decision == Decision(False, None, "alice")


def test_end_of_input_denies(terminal: list[Terminal]) -> None:
    decision, _ = ask(terminal, "", close=True)
    assert decision == Decision(False, "nobody answered (end of input)", "alice")
    decision, _ = ask(terminal, "y", close=True)  # a last line without a newline still counts
    assert decision.approved


def test_the_input_shown_is_escaped_and_cut(terminal: list[Terminal]) -> None:
    arguments = {"long": "x" * 500, "note": "\x1b[31mred\x1b[0m", "rows": list(range(100))}
    _, screen = ask(terminal, "y\n", arguments)
    assert "\x1b" not in screen and "\\u001b[31mred" in screen
    assert "… 76 more lines" in screen
    assert max(len(line) for line in screen.splitlines()) < 220 and "xxx…" in screen
    lines = show_input({"a": list(range(50))}, lines=5)
    assert len(lines) == 6 and lines[-1] == "… 49 more lines"


def test_the_live_view_holds_its_lines_while_asking(terminal: list[Terminal]) -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=120, color_system=None))
    order: list[str] = []

    class Recording(TerminalApprover):
        def _write(self, text: str) -> None:
            super()._write(text)
            view(Event("agent.thought", "r", 1, 1, 0.0, data={"text": "meanwhile"}))
            order.append(out.getvalue())

    term = Terminal("y\n")
    terminal.append(term)
    approver = Recording(term.read_fd, term.screen, who="alice", pause=view.paused)
    anyio.run(approver, ApprovalRequest("r1", "wire_money", {}, 0.0))
    assert all(seen == "" for seen in order)  # nothing printed while the question was up
    assert out.getvalue().count("meanwhile") == len(order) > 0


def test_questions_from_parallel_calls_come_one_at_a_time(terminal: list[Terminal]) -> None:
    term = Terminal("y\nn\nnot this one\n")
    terminal.append(term)
    approver = TerminalApprover(term.read_fd, term.screen, who="alice")

    async def go() -> dict[str, Decision]:
        got: dict[str, Decision] = {}

        async def one(tool: str) -> None:
            got[tool] = await approver(ApprovalRequest(tool, tool, {}, 0.0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "first")
            await anyio.sleep(0.01)
            tg.start_soon(one, "second")
        return got

    got = anyio.run(go)
    assert got == {
        "first": Decision(True, None, "alice"),
        "second": Decision(False, "not this one", "alice"),
    }
    screen = term.screen.getvalue()
    assert screen.index("first needs") < screen.index("approved") < screen.index("second needs")


def test_a_cancelled_question_stops_waiting_for_the_keyboard(terminal: list[Terminal]) -> None:
    term = Terminal("")  # nothing typed, and the pipe stays open
    terminal.append(term)
    approver = TerminalApprover(term.read_fd, term.screen, who="alice")

    async def go() -> bool:
        with anyio.move_on_after(0.05) as scope:
            await approver(ApprovalRequest("r", "t", {}, 0.0))
        return scope.cancelled_caught

    assert anyio.run(go)


def test_a_resolve_from_elsewhere_wins_while_the_approver_is_still_asking() -> None:
    asked = anyio.Event()

    async def slow_person(request: ApprovalRequest) -> Decision | None:
        asked.set()
        await anyio.sleep_forever()  # a person who never answers at the terminal
        raise AssertionError("unreachable")

    approvals = Approvals(slow_person)

    async def go() -> Decision:
        request = approvals.request("wire_money", {"amount": 5})
        got: list[Decision] = []

        async def waiter() -> None:
            got.append(await approvals.wait(request.id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await asked.wait()
            approvals.resolve(request.id, True, by="server")
        return got[0]

    assert anyio.run(go) == Decision(approved=True, reason=None, by="server")
    assert approvals.pending() == []
