"""``kiln run`` asking for approval at a real terminal (a pseudo-terminal), as a person
would answer it; and the same run where nobody can answer."""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, WriteSpecs

TOOL = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: wire_money}
spec:
  description: Send money (here it only counts the words of the note).
  input_schema:
    type: object
    properties: {text: {type: string}}
    required: [text]
  executor: {type: builtin, function: "stdlib_tools.word_count:run"}
  side_effects: true
  requires_approval: true
"""

AGENT = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: payer}
spec:
  instructions: You pay bills.
  tools: [wire_money]
  strategy: react
"""

SCRIPT = """\
payer:
  - thought: I will pay.
    tool: wire_money
    input: {text: "five dollars to bob"}
  - thought: That is settled, one way or the other.
    final: done
"""

TIMEOUT_S = 60


@dataclass
class Finished:
    code: int
    screen: str
    stdout: str
    events: list[dict[str, Any]]

    def results(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["type"] == "tool.result"]


@pytest.fixture
def project(write_specs: WriteSpecs, tmp_path: Path) -> tuple[Path, Path]:
    folder = write_specs(**{"agent.yaml": AGENT, "tool.yaml": TOOL})
    script = tmp_path / "payer.script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    return folder, script


def argv(folder: Path, script: Path, events: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "runtime.cli", "run", str(folder),
        "--model", f"scripted:{script}", "--input", "pay bob",
        "--events", str(events), "--no-trace", "--color", "never", *extra,
    ]  # fmt: skip


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _take_terminal() -> None:
    """In the child, after setsid: make the pty on stdin its controlling terminal, so that
    Ctrl-C typed there interrupts it and /dev/tty is the pty, as in a real shell."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Pty:
    """``kiln run`` with stdin and stderr on a pseudo-terminal, stdout on a pipe."""

    def __init__(self, command: list[str], stderr: Any = None) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave if stderr is None else stderr,
            cwd=REPO,
            env={**os.environ, "COLUMNS": "200"},
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.screen = ""

    def expect(self, text: str) -> None:
        """Read the terminal until ``text`` has been shown."""
        deadline = time.monotonic() + TIMEOUT_S
        while text not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(
                    f"{text!r} never appeared; the terminal showed:\n{self.screen}"
                )

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> tuple[int, str]:
        deadline = time.monotonic() + TIMEOUT_S
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        if self.process.poll() is None:
            self.process.kill()
            raise AssertionError(f"kiln run did not finish; the terminal showed:\n{self.screen}")
        while self._read(0.1):
            pass
        assert self.process.stdout is not None
        stdout = self.process.stdout.read().decode()
        self.process.stdout.close()
        os.close(self.master)
        return self.process.returncode, stdout

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        self.screen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return bool(chunk)


def run_at_terminal(project: tuple[Path, Path], tmp_path: Path, *answers: str) -> Finished:
    folder, script = project
    events = tmp_path / "events.jsonl"
    term = Pty(argv(folder, script, events))
    term.expect("approve? [y]es / [n]o:")
    term.type(answers[0] + "\n")
    if len(answers) > 1:
        term.expect("reason (the agent is told):")
        term.type(answers[1] + "\n")
    code, stdout = term.finish()
    return Finished(code, term.screen, stdout, read_events(events))


def test_a_denial_and_its_reason_reach_the_agent(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    ran = run_at_terminal(project, tmp_path, "n", "not before payday")
    assert "? wire_money needs your approval" in ran.screen
    assert '"text": "five dollars to bob"' in ran.screen  # the input, as pretty JSON
    (result,) = ran.results()
    assert result["status"] == "denied"
    assert result["error"].startswith("denied by ")
    assert result["error"].endswith(" at the terminal: not before payday")
    assert ran.code == 0 and ran.stdout.strip() == "done"  # the run went on and finished
    assert ran.events[-1]["type"] == "run.complete"
    assert ran.events[-1]["data"]["status"] == "succeeded"


def test_yes_runs_the_tool(project: tuple[Path, Path], tmp_path: Path) -> None:
    ran = run_at_terminal(project, tmp_path, "y")
    (result,) = ran.results()
    assert result["status"] == "ok"
    assert result["output"] == {"words": 4, "characters": 19, "lines": 1}
    assert ran.code == 0 and ran.stdout.strip() == "done"
    assert "approved" in ran.screen


def test_a_run_that_cannot_ask_fails_clearly(project: tuple[Path, Path], tmp_path: Path) -> None:
    folder, script = project
    events = tmp_path / "events.jsonl"
    proc = subprocess.run(
        argv(folder, script, events),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=TIMEOUT_S,
    )
    message = (
        "tool wire_money requires approval and this run cannot ask anyone (not a terminal): "
        "run with --approve-all, or from a terminal"
    )
    assert proc.returncode == 1, proc.stderr
    assert f"kiln: run failed: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
    (result,) = [e["data"] for e in read_events(events) if e["type"] == "tool.result"]
    assert result["status"] == "approval_required" and result["error"] == message


def test_approve_all_needs_nobody(project: tuple[Path, Path], tmp_path: Path) -> None:
    folder, script = project
    events = tmp_path / "events.jsonl"
    proc = subprocess.run(
        argv(folder, script, events, "--approve-all"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    (result,) = [e["data"] for e in read_events(events) if e["type"] == "tool.result"]
    assert result["status"] == "ok"


def test_ctrl_c_at_the_prompt_cancels_the_run(project: tuple[Path, Path], tmp_path: Path) -> None:
    folder, script = project
    events = tmp_path / "events.jsonl"
    term = Pty(argv(folder, script, events))
    term.expect("approve? [y]es / [n]o:")
    term.type("\x03")  # Ctrl-C, through the terminal's line discipline: SIGINT
    code, _ = term.finish()
    assert code == 130, term.screen
    assert "run cancelled" in term.screen and "Traceback" not in term.screen
    kinds = [e["type"] for e in read_events(events)]
    assert "tool.result" not in kinds  # the tool never ran
    assert read_events(events)[-1]["data"]["status"] == "cancelled"


def test_with_stderr_in_a_file_the_question_goes_to_the_terminal(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, script = project
    events = tmp_path / "events.jsonl"
    with open(tmp_path / "stderr.log", "w") as log:
        term = Pty(argv(folder, script, events), stderr=log)
        term.expect("approve? [y]es / [n]o:")
        term.type("y\n")
        code, stdout = term.finish()
    assert code == 0 and stdout.strip() == "done"
    assert "→ wire_money" not in term.screen  # the live view went to the file
    assert "→ wire_money" in (tmp_path / "stderr.log").read_text(encoding="utf-8")
    (result,) = [e["data"] for e in read_events(events) if e["type"] == "tool.result"]
    assert result["status"] == "ok"
