"""The run journal on a real SQLite trace store: group commit, replay with stable step
identities (parallel branches, a manager's handed-out tasks, delegation), and the
upgrade of a store written by the previous schema."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime.events import Event
from runtime.journal import RunJournal, idempotency_key
from runtime.llm.gateway import Gateway
from runtime.llm.types import ModelResponse, Usage
from runtime.run import Resume, execute, prepare
from runtime.trace import SCHEMA_VERSION, TraceStore
from tests.helpers import WriteSpecs
from tests.runtime_kit import FAST, agent, normalised
from tests.unit.test_crews import DIAMOND, DIAMOND_SCRIPT, REPORT, _crew


def test_concurrent_runs_share_one_commit(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs.db")
    for i in range(200):
        store.start_run(f"r{i}", target="Agent/a", kind="agent", inputs={}, started=0.0)
    commits: list[int] = []
    flush = store.flush

    def counted() -> None:
        commits.append(1)
        flush()

    store.flush = counted  # type: ignore[method-assign]

    async def one(i: int) -> None:
        journal = RunJournal(store, f"r{i}")
        reply = ModelResponse(text="hi", usage=Usage(1, 1))
        for turn in range(3):

            async def call() -> ModelResponse:
                return reply

            await journal.model(f"/-:a#m{turn + 1}", call)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)

    anyio.run(main)
    assert len(commits) == 3  # 600 durable steps, one transaction per turn of the loop
    store.close()
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("SELECT count(*) FROM journal").fetchone() == (600,)
    with TraceStore(tmp_path / "runs.db") as again:
        steps = again.journal("r7")
    assert sorted(steps) == ["/-:a#m1", "/-:a#m2", "/-:a#m3"]
    assert steps["/-:a#m2"].data["text"] == "hi"


def test_the_idempotency_key_depends_on_the_call_not_on_when_it_is_made() -> None:
    key = idempotency_key("run", "/-:a#t1", "ledger", {"b": 1, "a": 2})
    assert key == idempotency_key("run", "/-:a#t1", "ledger", {"a": 2, "b": 1})
    assert key != idempotency_key("run", "/-:a#t2", "ledger", {"a": 2, "b": 1})
    assert key != idempotency_key("other", "/-:a#t1", "ledger", {"a": 2, "b": 1})
    assert len(key) == 32 and key.isalnum()


class CountingGateway(Gateway):
    def __init__(self) -> None:
        super().__init__(retry=FAST)
        self.asked = 0

    async def complete(self, models: Any, request: Any) -> ModelResponse:
        self.asked += 1
        return await super().complete(models, request)


def run_twice(folder: Path, script: str, tmp_path: Path, **target: Any) -> tuple[Any, ...]:
    """Run to the end, journaled; then resume the same run from its whole journal in a
    fresh preparation (as another process would). Both runs' results and events, and how
    often the second asked a model."""
    path = tmp_path / "script.yaml"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    store = TraceStore(tmp_path / "runs.db")

    def once(resume: Resume | None) -> tuple[Any, list[Event], int]:
        gateway = CountingGateway()
        prepared = prepare([folder], model=f"scripted:{path}", gateway=gateway, **target)
        events: list[Event] = []
        result = anyio.run(
            lambda: execute(
                prepared,
                sinks=[events.append],
                store=store,
                run_id="the-run",
                resume=resume,
            )
        )
        return result, events, gateway.asked

    first = once(None)
    with sqlite3.connect(tmp_path / "runs.db") as conn:  # as if the process died at the end
        conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = 'the-run'")
    second = once(Resume())
    store.close()
    return first, second


def test_a_parallel_crew_replays_whatever_order_its_branches_ended_in(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(
        **{"a.yaml": agent(tools="[]", output_schema=REPORT), "c.yaml": _crew("parallel", DIAMOND)}
    )
    script = DIAMOND_SCRIPT.replace("delay_ms: 150", "delay_ms: 20")
    (result, events, asked), (again, replayed, asked_again) = run_twice(
        folder, script, tmp_path, crew="team", inputs={"topic": "tides"}
    )
    assert asked == 4 and asked_again == 0  # every reply came from the journal
    assert result.output == again.output == {"n": 5}
    # the branches interleave as they will: the same events, numbered without a gap
    def unnumbered(found: list[Event]) -> list[str]:
        return sorted(str({**e, "seq": None}) for e in normalised(found))

    assert unnumbered(events) == unnumbered(replayed)
    assert sorted(e.seq for e in replayed) == list(range(1, len(events) + 1))


def test_a_managers_handed_out_tasks_and_a_delegation_replay(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", extra="delegate_to: [helper]\n"),
            "h.yaml": agent("helper", tools="[calculator]"),
            "boss.yaml": agent("boss", tools="[]"),
            "c.yaml": _crew(
                "hierarchical",
                '    - {name: draft, agent: solver, prompt: "Draft on {{ inputs.topic }}"}\n',
                extra="  manager: boss\n",
            ),
        }
    )
    script = """
    boss:
      - {thought: go, tool: task_draft, input: {}}
      - {thought: done, final: all good}
    draft:
      - {thought: ask, tool: ask_helper, input: {request: "6*7?"}}
      - {thought: got it, final: "42"}
    helper:
      - {thought: compute, tool: calculator, input: {expression: "6*7"}}
      - {thought: done, final: "42"}
    """
    (result, events, asked), (again, replayed, asked_again) = run_twice(
        folder, script, tmp_path, crew="team", inputs={"topic": "tides"}
    )
    assert result.ok and again.ok and again.output == "all good"
    assert asked == 6 and asked_again == 0
    assert normalised(events) == normalised(replayed)


def test_a_store_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with TraceStore(path) as store:
        store.start_run("old", target="Agent/a", kind="agent", inputs={}, started=1.0)
    with sqlite3.connect(path) as conn:  # back to version 1, as an older kiln wrote it
        conn.execute("DROP TABLE journal")
        conn.execute("DROP TABLE approvals")
        conn.execute("ALTER TABLE runs DROP COLUMN request")
        conn.execute("ALTER TABLE runs DROP COLUMN owner")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with TraceStore(path) as store:
        (run,) = store.list_runs()
        assert (run.id, run.request, run.owner, run.state) == ("old", None, None, "running")
        assert store.journal("old") == {}
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


@pytest.mark.parametrize("status", ["succeeded"])
def test_a_finished_run_is_not_taken_over(tmp_path: Path, status: str) -> None:
    with TraceStore(tmp_path / "runs.db") as store:
        store.start_run("done", target="Agent/a", kind="agent", inputs={}, started=1.0)
        store.finish_run("done", status=status, ended=2.0)
        with pytest.raises(Exception, match="nothing to resume"):
            store.resume_run("done")
        store.start_run("alive", target="Agent/a", kind="agent", inputs={}, started=1.0)
        with pytest.raises(Exception, match="is still running"):  # this very process
            store.resume_run("alive")
