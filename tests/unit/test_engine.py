"""The engine as a program embedding kiln uses it: compile errors as data, targets, runs
sharing one engine, resuming a recorded run without calling the model again."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import anyio
import pytest

from runtime.engine import CompileFailed, Engine, RunSetupError, Settings
from tests.helpers import EXAMPLES, WriteSpecs
from tests.unit.test_journal import CountingGateway

SCRIPT = EXAMPLES / "scripted" / "quickstart.yaml"


def quickstart(tmp_path: Path) -> Path:
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLES / "quickstart", folder)
    return folder


def test_a_compile_error_is_data_with_every_diagnostic(write_specs: WriteSpecs) -> None:
    agent = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec: {tools: [nope]}\n"
    folder = write_specs(**{"a.yaml": agent})
    with pytest.raises(CompileFailed) as caught:
        Engine([folder], runs_db=None)
    codes = {d.code for d in caught.value.compilation.diagnostics}
    assert codes == {"K3002"}  # the unknown tool, with its place


def test_targets_and_their_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with Engine([quickstart(tmp_path)], runs_db=None) as engine:
            assert engine.targets == ["Agent/assistant"]
            with pytest.raises(RunSetupError, match="unknown|no agent"):
                await engine.run("nobody", input="x")
            with pytest.raises(RunSetupError, match="Agent/<name> or Crew/<name>"):
                await engine.run("Tool/calculator", input="x")

    anyio.run(main)


def test_a_recorded_run_resumes_from_its_journal_without_the_model(tmp_path: Path) -> None:
    folder = quickstart(tmp_path)
    db = tmp_path / "runs.db"

    async def first() -> str:
        settings = Settings(model=f"scripted:{SCRIPT}")
        async with Engine([folder], settings, runs_db=db) as engine:
            result = await engine.run(inputs={"question": "9 words times 7?"})
            assert result.ok
            return result.run_id

    run_id = anyio.run(first)
    with sqlite3.connect(db) as conn:  # as if its process had been stopped at the end
        conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ?", (run_id,))

    async def again() -> None:
        gateway = CountingGateway()
        settings = Settings(model=f"scripted:{SCRIPT}", gateway=gateway)
        async with Engine([folder], settings, runs_db=db) as engine:
            resumed = await engine.resume(run_id[:8])
            assert resumed.ok and resumed.run_id == run_id
            assert resumed.output == {"answer": "The sentence has 9 words, and 9 times 7 is 63."}
            assert gateway.asked == 0
            assert engine.runs()[0].state == "succeeded"
        spec = folder / "assistant.yaml"
        spec.write_text(spec.read_text().replace("careful assistant", "careless assistant"))
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ?", (run_id,))
        async with Engine([folder], settings, runs_db=db) as engine:
            with pytest.raises(RunSetupError, match="changed since it started"):
                await engine.resume(run_id)
            assert (await engine.resume(run_id, force=True)).ok

    anyio.run(again)
