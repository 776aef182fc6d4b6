"""The first hour at the command line: --version, completion, one spelling of --format,
plan diff exit codes, and every provider litellm knows."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.models import ModelProblem, ModelRef, parse_model, price, providers
from runtime.cli import main
from runtime.cli.app import build_parser
from runtime.cli.completion import command_tree, completion_script
from tests.helpers import EXAMPLES, WriteSpecs


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kiln ") and out.strip() != "kiln"


def test_completion_tree_follows_the_parser() -> None:
    tree = command_tree(build_parser())
    assert {"validate", "compile", "run", "runs", "memory", "completion"} <= set(tree["kiln"])
    assert "--version" in tree["kiln"]
    assert {"--agent", "--crew", "--model", "--format", "--json"} <= set(tree["kiln run"])
    assert {"list", "show"} <= set(tree["kiln runs"])
    assert "--exit-code" in tree["kiln plan diff"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert "kiln" in out and "validate" in out and "exit-code" in out


def test_bash_completion_completes_in_a_real_bash(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None, "bash is part of every machine this runs on"
    script = tmp_path / "kiln.bash"
    script.write_text(completion_script("bash", build_parser()), encoding="utf-8")

    def complete(*words: str) -> set[str]:
        line = " ".join(("kiln", *words))
        program = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; "
            '_kiln_complete; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        result = subprocess.run(
            [bash, "--norc", "-c", program],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        return set(result.stdout.split())

    assert {"validate", "compile"} <= complete("'v'") | complete("'c'") | {"validate"}
    assert complete("'va'") == {"validate"}
    assert "--exit-code" in complete("plan", "diff", "'--ex'")
    assert {"--agent", "--allow-host"} <= complete("run", "'--a'")


@pytest.mark.parametrize(
    ("argv"),
    [
        ["runs", "list", "--format", "json"],
        ["runs", "list", "--json"],
    ],
)
def test_format_json_and_json_are_one_option(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--db", str(tmp_path / "runs.db")]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []


def test_every_json_command_takes_format_json() -> None:
    tree = command_tree(build_parser())
    with_json = [path for path, words in tree.items() if "--json" in words]
    assert len(with_json) >= 7
    assert all("--format" in tree[path] for path in with_json)


def _plan(folder: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["compile", str(folder), "-o", str(out)]) == 0
    capsys.readouterr()
    return out


def test_plan_diff_exit_codes_tell_changed_from_unreadable(
    write_specs: WriteSpecs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(EXAMPLES / "quickstart", tmp_path / "a.json", capsys)
    text = (EXAMPLES / "quickstart" / "assistant.yaml").read_text(encoding="utf-8")
    changed = write_specs(**{"agent.yaml": text.replace("max_iterations: 6", "max_iterations: 7")})
    other = _plan(changed, tmp_path / "b.json", capsys)
    missing = str(tmp_path / "nope.json")
    assert main(["plan", "diff", str(plan), str(plan), "--exit-code"]) == 0
    assert main(["plan", "diff", str(plan), str(other), "--exit-code"]) == 1
    assert main(["plan", "diff", str(plan), missing, "--exit-code"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["plan", "diff", str(plan), missing]) == 1  # without --exit-code: an error


@pytest.mark.parametrize(
    "model",
    [
        "litellm_proxy/gpt-4o",
        "dashscope/qwen-max",
        "sambanova/Meta-Llama-3.1-8B-Instruct",
        "nebius/meta-llama/Llama-3.3-70B-Instruct",
        "moonshot/moonshot-v1-8k",
    ],
)
def test_providers_litellm_knows_are_accepted(model: str) -> None:
    assert isinstance(parse_model(model), ModelRef)


def test_providers_come_from_litellms_data() -> None:
    assert len(providers()) > 150
    problem = parse_model("openaii/gpt-4o")
    assert isinstance(problem, ModelProblem) and problem.hint == "did you mean 'openai/gpt-4o'?"


def test_prices_beyond_kilns_own_table_come_from_litellms_map() -> None:
    for model in ("gemini/gemini-2.5-flash", "cerebras/llama3.1-8b", "dashscope/qwen-max"):
        ref = parse_model(model)
        assert isinstance(ref, ModelRef)
        known = price(ref)
        assert known is not None and known[0] > 0 and known[1] > 0, model


def test_mermaid_draws_top_down_and_data_leaves_the_producing_task(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["graph", str(EXAMPLES / "research-crew"), "--crew", "research"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "flowchart TD" and lines[2].strip() == "direction TB"
    names = {}  # node id -> label
    for line in lines:
        if '["' in line and "-->" not in line and "subgraph" not in line:
            ident, _, rest = line.strip().partition('["')
            names[ident] = rest.split('"')[0]
    edges = [line.split() for line in lines if "|\"tasks." in line]
    for source, arrow, *_ in edges:
        label = arrow.split('"')[1]
        if "," not in label:  # a single output: drawn from the task that produced it
            task = label.split(".")[1]
            assert names.get(source, "").startswith(f"{task}:"), (source, label)
