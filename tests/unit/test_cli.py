"""The kiln command line: exit codes, streams and formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli import main
from tests.helpers import EXAMPLES, REPO, WriteSpecs

BROKEN = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: helper}
spec:
  modle: local/smollm2-135m
  tools: [calculater]
"""


def test_validate_a_clean_folder_prints_one_success_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(EXAMPLES / "quickstart")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: 1 spec in 1 file valid")
    assert captured.out.count("\n") == 1
    assert captured.err == ""


def test_validate_reports_every_error_with_source_and_caret(
    write_specs: WriteSpecs, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_specs(**{"agent.yaml": BROKEN})
    assert main(["validate", str(root), "--color", "never"]) == 1
    err = capsys.readouterr().err
    path = root / "agent.yaml"
    assert f"{path}:5:3: error[K2003]: unknown key 'modle' in Agent spec" in err
    assert " 5 |   modle: local/smollm2-135m\n   |   ^^^^^\nhint: did you mean 'model'?" in err
    # the document with the typo is still resolved: its dangling tool is reported too
    assert f"{path}:6:11: error[K3002]: Agent 'helper' refers to unknown tool 'calculater'" in err
    assert "hint: did you mean 'calculator'?" in err
    assert "kiln: 2 errors: specs are not valid" in err


def test_validate_json_format(write_specs: WriteSpecs, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_specs(**{"agent.yaml": BROKEN})
    assert main(["validate", str(root), "--format", "json"]) == 1
    diag, dangling = json.loads(capsys.readouterr().out)
    assert (dangling["code"], dangling["line"], dangling["col"]) == ("K3002", 6, 11)
    assert diag == {
        "path": str(root / "agent.yaml"),
        "line": 5,
        "col": 3,
        "code": "K2003",
        "severity": "error",
        "message": "unknown key 'modle' in Agent spec",
        "hint": "did you mean 'model'?",
    }


@pytest.mark.parametrize(
    "argv",
    [[], ["validate"], ["frobnicate", "x"], ["validate", "x", "--format", "yaml"], ["plan"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: kiln" in capsys.readouterr().err


def test_missing_path_is_an_error_with_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "no/such/folder"]) == 1
    assert "no/such/folder:1:1: error[K1001]: no such file or folder" in capsys.readouterr().err


def test_compile_writes_the_plan_atomically_and_refuses_bad_specs(
    write_specs: WriteSpecs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert main(["compile", str(EXAMPLES / "quickstart"), "-o", str(out)]) == 0
    good = out.read_text()
    assert json.loads(good)["plan_hash"].startswith("sha256:")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's private 0600
    broken = write_specs(**{"agent.yaml": BROKEN})
    assert main(["compile", str(broken), "-o", str(out)]) == 1
    assert "no plan written" in capsys.readouterr().err
    assert out.read_text() == good  # a failed compile never touches the old plan
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plan")] == []


def test_compile_to_an_unwritable_place_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(EXAMPLES / "quickstart"), "-o", "/proc/nope/plan.json"]) == 1
    assert "cannot write /proc/nope/plan.json" in capsys.readouterr().err


@pytest.mark.parametrize("fmt, start", [("mermaid", "flowchart TD"), ("dot", "digraph kiln {")])
def test_graph_formats(fmt: str, start: str, capsys: pytest.CaptureFixture[str]) -> None:
    crew = str(EXAMPLES / "research-crew")
    assert main(["graph", crew, "--crew", "research", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.startswith(start)
    assert "Crew/research" in out and "Agent/writer" not in out
    assert "check_sources: researcher ∥" in out


def test_graph_of_an_unknown_crew_suggests_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(EXAMPLES / "research-crew"), "--crew", "reserch"]) == 2
    assert "did you mean 'research'?" in capsys.readouterr().err


def test_internal_errors_are_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr("runtime.cli.app.compile_paths", boom)
    monkeypatch.delenv("KILN_DEBUG", raising=False)
    assert main(["validate", str(EXAMPLES / "quickstart")]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaput" in err and "Traceback" not in err


def test_console_script_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "validate", "examples/quickstart"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok:")
