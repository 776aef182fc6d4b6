"""``kiln run`` and ``kiln runs`` as a user types them (scripted model, real trace store)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli import main
from tests.helpers import EXAMPLES, REPO, WriteSpecs
from tests.runtime_kit import agent

QUICK = str(EXAMPLES / "quickstart")
SCRIPT = f"scripted:{EXAMPLES / 'scripted' / 'quickstart.yaml'}"
QUESTION = "How many words are in 'the quick brown fox jumps over the lazy dog', times 7?"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


def test_run_streams_steps_prints_the_answer_and_records_the_run(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    code = main(
        ["run", QUICK, "--model", SCRIPT, "--input", QUESTION, "--runs-db", db,
         "--events", str(events), "--color", "never"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "The sentence has 9 words, and 9 times 7 is 63.\n"
    assert "→ word_count(" in err and '← {"result": 63}' in err
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["type"] for e in lines][0] == "run.start"
    assert lines[-1]["type"] == "run.complete" and lines[-1]["data"]["status"] == "succeeded"
    assert all({"run_id", "seq", "step", "ts", "duration_ms"} <= set(e) for e in lines)
    run_id = lines[0]["run_id"]

    assert main(["runs", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert run_id[:12] in listing and "succeeded" in listing and "Agent/assistant" in listing

    assert main(["runs", "show", run_id[:8], "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    stored = [e["type"] for e in shown["events"]]
    assert stored == [e["type"] for e in lines]


def test_run_json_prints_the_result_object(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", QUICK, "--model", SCRIPT, "--input", QUESTION, "--runs-db", db,
                 "--json", "--quiet"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["status"] == "succeeded"
    assert result["output"] == {"answer": "The sentence has 9 words, and 9 times 7 is 63."}
    assert result["usage"]["prompt_tokens"] > 0


def test_a_failed_run_exits_1_and_says_why(
    write_specs: WriteSpecs, tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_specs(**{"a.yaml": agent(limits="{max_iterations: 1}")})
    script = tmp_path / "s.yaml"
    script.write_text("solver:\n  - {thought: t, tool: calculator, input: {expression: '1'}}\n")
    code = main(["run", str(folder), "--model", f"scripted:{script}", "--runs-db", db, "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "kiln: run limit_exceeded: max_iterations exceeded" in err
    assert main(["runs", "list", "--db", db, "--status", "limit_exceeded"]) == 0
    assert "limit_exceeded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inputs", "{oops"], "--inputs is not JSON"),
        (["--inputs", "[1]"], "--inputs must be a JSON object"),
        (["--agent", "nobody"], "no agent named 'nobody' (known: assistant)"),
        (["--inputs", '{"question": 3}'], "input 'question' of agent 'assistant' must be a string"),
        (["--model", "gpt4"], "--model gpt4:"),
    ],
)
def test_bad_run_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", QUICK, "--runs-db", db, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err


def test_a_missing_required_input_is_named(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", QUICK, "--model", SCRIPT, "--runs-db", db])
    err = capsys.readouterr().err
    assert code == 2
    assert "agent 'assistant' needs input 'question' (what the user asks)" in err


def test_specs_with_errors_are_reported_and_nothing_runs(
    write_specs: WriteSpecs, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[calculater]")})
    code = main(["run", str(folder), "--runs-db", db, "--color", "never"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error[K3" in err and "nothing was run" in err
    assert not Path(db).exists()


def test_a_script_that_does_not_fit_is_reported_with_its_location(
    write_specs: WriteSpecs, tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[calculator]")})
    script = tmp_path / "s.yaml"
    script.write_text("solver:\n  - {thought: t, tool: http_get, input: {}}\nghost: []\n")
    code = main(["run", str(folder), "--model", f"scripted:{script}", "--runs-db", db])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{script}:2:5: turn 1 of 'solver'" in err
    assert f"{script}:3:1: 'ghost' is not an agent or task of this run" in err


def test_the_kiln_process_runs_the_research_crew_offline(tmp_path: Path) -> None:
    script = EXAMPLES / "scripted" / "research-crew.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "run", str(EXAMPLES / "research-crew"),
         "--model", f"scripted:{script}", "--input", "tides", "--runs-db",
         str(tmp_path / "r.db"), "--color", "never"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["title"] == "Tides in one minute"
    for task in ("research", "analyze", "check_sources", "write"):
        assert task in proc.stderr
    assert "Traceback" not in proc.stderr
