"""``kiln runs list|show``: outputs, JSON, exit codes and where the store is looked for."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from runtime.cli.runs import add_runs_parser, runs_command
from runtime.events import EventBus
from runtime.trace import TraceStore
from tests.helpers import REPO

STARTED = 1_700_000_000.0
USAGE = {"prompt_tokens": 1000, "completion_tokens": 234, "cost_usd": 0.0012, "cost_known": True}
DONE = "3f2a9c10d2e84b6f9a0c1d2e3f4a5b6c"
RUNNING = "77aa0000111122223333444455556666"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"kiln: error: {message}\n")


def kiln_runs(*argv: str) -> int:
    parser = _Parser(prog="kiln")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_runs_parser(commands, _Parser)
    try:
        args = parser.parse_args(["runs", *argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return runs_command(args)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with TraceStore(path) as store:
        store.start_run(
            DONE, target="Crew/bees", kind="crew", inputs={"topic": "bees"}, started=STARTED
        )
        bus = EventBus(DONE, [store.sink(DONE)])
        bus.emit("run.start", target="Crew/bees", kind="crew", inputs={"topic": "bees"})
        bus.emit("task.start", task="find", agent="finder")
        bus.emit("agent.thought", task="find", step=1, text="[bold]look[/bold] around")
        bus.emit("agent.answer", task="find", output={"summary": "bees"}, usage=USAGE)
        bus.emit("run.complete", status="succeeded", usage=USAGE, duration_ms=3456.0)
        store.finish_run(
            DONE, status="succeeded", ended=STARTED + 3.456, output={"summary": "bees"}, usage=USAGE
        )
        store.start_run(
            RUNNING, target="Agent/helper", kind="agent", inputs={}, started=STARTED + 60
        )
    return path


def out_err(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_list_prints_aligned_columns_newest_first(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kiln_runs("list", "--db", str(db)) == 0
    out, err = out_err(capsys)
    header, newest, oldest = out.splitlines()
    assert header.split() == ["ID", "TARGET", "STATUS", "STARTED", "DURATION", "TOKENS", "COST"]
    assert newest.split()[:3] == [RUNNING[:12], "Agent/helper", "running"]
    assert oldest.split()[:3] == [DONE[:12], "Crew/bees", "succeeded"]
    assert oldest.endswith("3.5 s   1,234  $0.0012")
    assert header.index("STATUS") == newest.index("running") == oldest.index("succeeded")
    assert err == ""


def test_list_filters_and_limits(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln_runs("list", "--db", str(db), "--status", "running") == 0
    assert RUNNING[:12] in out_err(capsys)[0]
    assert kiln_runs("list", "--db", str(db), "--limit", "1") == 0
    out = out_err(capsys)[0]
    assert RUNNING[:12] in out and DONE[:12] not in out
    assert kiln_runs("list", "--db", str(db), "--target", "Agent/nobody") == 0
    assert out_err(capsys)[0] == "no runs match\n"


def test_list_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln_runs("list", "--db", str(db), "--json") == 0
    data = json.loads(out_err(capsys)[0])
    assert [run["id"] for run in data["runs"]] == [RUNNING, DONE]
    assert data["runs"][1]["usage"] == USAGE and data["runs"][1]["duration_s"] == pytest.approx(
        3.456
    )


def test_list_without_a_store_says_there_are_no_runs_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KILN_RUNS_DB", raising=False)
    assert kiln_runs("list") == 0
    assert out_err(capsys) == ("no runs yet (.kiln/runs.db does not exist)\n", "")
    assert not (tmp_path / ".kiln").exists()  # looking did not create it
    assert kiln_runs("list", "--json") == 0
    assert json.loads(out_err(capsys)[0]) == {"db": ".kiln/runs.db", "runs": []}


def test_the_store_comes_from_kiln_runs_db_then_the_working_folder(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KILN_RUNS_DB", str(db))
    assert kiln_runs("list") == 0
    assert DONE[:12] in out_err(capsys)[0]
    monkeypatch.delenv("KILN_RUNS_DB")
    (tmp_path / ".kiln").mkdir()
    db.rename(tmp_path / ".kiln" / "runs.db")
    monkeypatch.chdir(tmp_path)
    assert kiln_runs("show", DONE[:6]) == 0
    assert f"run       {DONE}" in out_err(capsys)[0]


def test_show_prints_the_run_then_its_events(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln_runs("show", DONE[:8], "--db", str(db)) == 0
    out, err = out_err(capsys)
    lines = out.splitlines()
    assert lines[:3] == [f"run       {DONE}", "target    Crew/bees (crew)", "status    succeeded"]
    assert 'inputs    {"topic": "bees"}' in lines
    assert 'output    {"summary": "bees"}' in lines
    assert "usage     1,234 tokens · $0.0012" in lines
    assert "duration  3.5 s" in lines
    events = lines[lines.index("") + 1 :]
    assert events == [
        "▶ run Crew/bees (crew)",
        '  inputs: {"topic": "bees"}',
        "▶ task find · agent finder",
        "  [bold]look[/bold] around",
        '  ✓ {"summary": "bees"}  (1,234 tokens · $0.0012)',
        "■ run succeeded in 3.5 s · 1,234 tokens · $0.0012",
    ]
    assert err == ""


def test_show_a_running_run_without_events(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln_runs("show", RUNNING, "--db", str(db), "--no-events") == 0
    out = out_err(capsys)[0]
    assert "status    running" in out and "duration" not in out
    assert "▶" not in out


def test_show_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln_runs("show", DONE, "--db", str(db), "--json") == 0
    data = json.loads(out_err(capsys)[0])
    assert data["run"]["id"] == DONE and data["run"]["output"] == {"summary": "bees"}
    assert [e["type"] for e in data["events"]] == [
        "run.start",
        "task.start",
        "agent.thought",
        "agent.answer",
        "run.complete",
    ]
    assert data["events"][2]["data"] == {"text": "[bold]look[/bold] around"}
    assert kiln_runs("show", DONE, "--db", str(db), "--json", "--no-events") == 0
    assert "events" not in json.loads(out_err(capsys)[0])


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("ffff", "no run 'ffff'"),
        ("3f", "at least 4"),
    ],
)
def test_show_an_unknown_run_is_an_error(
    db: Path, run_id: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kiln_runs("show", run_id, "--db", str(db)) == 1
    out, err = out_err(capsys)
    assert out == "" and err.startswith("kiln: error: ") and message in err


def test_show_an_ambiguous_prefix_lists_the_runs(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with TraceStore(db) as store:
        store.start_run(DONE[:4] + "ffff", target="Agent/x", kind="agent", inputs={}, started=1.0)
    assert kiln_runs("show", DONE[:4], "--db", str(db)) == 1
    err = out_err(capsys)[1]
    assert "ambiguous" in err and DONE in err and DONE[:4] + "ffff" in err


def test_show_without_a_store_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.db"
    assert kiln_runs("show", "abcd", "--db", str(missing)) == 1
    assert out_err(capsys) == (
        "",
        f"kiln: error: {missing}: no trace store there (the file does not exist)\n",
    )
    assert not missing.exists()


@pytest.mark.parametrize("command", [["list"], ["show", "abcd"]])
def test_a_corrupt_store_is_an_error_not_a_traceback(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "runs.db"
    bad.write_bytes(b"\x00garbage" * 512)
    assert kiln_runs(*command, "--db", str(bad)) == 1
    assert (
        out_err(capsys)[1]
        == f"kiln: error: {bad}: not a kiln trace store (file is not a database)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [["list", "--limit", "0"], ["list", "--limit", "many"], ["show"], [], ["list", "--bogus"]],
)
def test_bad_usage_exits_2(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln_runs(*argv) == 2
    assert "kiln: error:" in out_err(capsys)[1]


def test_runs_command_without_a_sub_command_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert runs_command(argparse.Namespace(command="runs")) == 2
    assert "kiln runs list" in out_err(capsys)[1]


def test_importing_the_runs_cli_loads_neither_rich_nor_sqlite() -> None:
    code = (
        "import sys, runtime.cli.runs\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'rich', 'sqlite3'}"
        " or m in {'runtime.trace', 'runtime.live'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
