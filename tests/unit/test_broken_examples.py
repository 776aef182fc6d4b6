"""Every diagnostic code is triggered by a file in ``examples/broken/`` or by a test here.

Each file there names on its first line the one diagnostic it must produce::

    # expect: K2003 at 8:3 — 'tool' instead of 'tools' in an agent's spec

Compiled alone, the file yields exactly that diagnostic (code, line and column) and nothing
else; compiled together, the folder yields all the errors in one run. Codes that no single
file in a folder can produce are listed in ``NOT_A_FILE`` with the test that covers them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.diagnostics import CODES, Diagnostic, render_text
from compiler.pipeline import Compilation, compile_paths
from runtime.cli import main
from specs.source import Limits

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BROKEN = EXAMPLES / "broken"

_EXPECT = re.compile(r"^# expect: (K\d{4}) at (\d+):(\d+) — (\S.*)$")

#: Codes no file in a folder can produce, with why, and the test below that covers each.
NOT_A_FILE: dict[str, tuple[str, str]] = {
    "K1001": ("a path that does not exist is not a file", "test_k1001_missing_path"),
    "K1002": ("a 4 MiB file does not belong in the repository", "test_k1002_file_too_large"),
    "K1004": ("1,001 documents do not belong in the repository", "test_k1004_too_many_documents"),
    "K1010": ("it is about a folder with no spec file in it", "test_k1010_folder_without_specs"),
}

#: The renderer shows the source line and a caret only for a file it could read as text.
NO_SOURCE_LINE = frozenset({"K1011"})


@dataclass(frozen=True, slots=True)
class Expected:
    path: Path
    code: str
    line: int
    col: int
    what: str

    def matches(self, diag: Diagnostic) -> bool:
        return (diag.code, diag.span.line, diag.span.col) == (self.code, self.line, self.col)

    def __str__(self) -> str:
        return f"{self.path.name}: {self.code} at {self.line}:{self.col} ({self.what})"


def _expected(path: Path) -> Expected | None:
    # The first line is ASCII even in the file that is deliberately not UTF-8 (K1011).
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", errors="replace")
    match = _EXPECT.match(first)
    if match is None:
        return None
    code, line, col, what = match.groups()
    return Expected(path, code, int(line), int(col), what)


BROKEN_FILES = sorted(BROKEN.glob("*.yaml"))
EXPECTED = [e for e in map(_expected, BROKEN_FILES) if e is not None]
#: ``broken`` holds bad specs on purpose; ``scripted`` holds scripted-model turns, not specs.
NOT_SPECS = {"broken", "scripted"}
VALID_FOLDERS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name not in NOT_SPECS)


def _ids(expected: Expected) -> str:
    return expected.path.stem


def _show(result: Compilation) -> str:
    return render_text(result.diagnostics, result.files) or "(no diagnostics)"


# -- each file on its own ----------------------------------------------------------------------


def test_broken_folder_holds_only_yaml_files() -> None:
    assert BROKEN_FILES, "examples/broken/ has no *.yaml file"
    others = sorted(p.name for p in BROKEN.iterdir() if p.suffix != ".yaml")
    assert not others, f"examples/broken/ holds files that are not *.yaml: {others}"


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.stem)
def test_first_line_names_the_expected_diagnostic(path: Path) -> None:
    assert _expected(path) is not None, (
        f"{path.name}: the first line must be '# expect: KNNNN at LINE:COL — what is wrong'"
    )


@pytest.mark.parametrize("expected", EXPECTED, ids=_ids)
def test_file_name_starts_with_its_code(expected: Expected) -> None:
    assert expected.code in CODES, f"{expected}: no such code in compiler/diagnostics/codes.py"
    assert re.fullmatch(rf"{expected.code}-[a-z0-9]+(-[a-z0-9]+)*\.yaml", expected.path.name), (
        f"name it {expected.code}-<what-is-wrong>.yaml"
    )


@pytest.mark.parametrize("expected", EXPECTED, ids=_ids)
def test_file_yields_exactly_its_diagnostic(expected: Expected) -> None:
    result = compile_paths([expected.path])
    shown = _show(result)
    assert "Traceback" not in shown
    assert len(result.diagnostics) == 1 and expected.matches(result.diagnostics[0]), (
        f"expected only {expected}, got:\n{shown}"
    )
    diag = result.diagnostics[0]
    assert diag.severity == CODES[expected.code].severity
    assert result.ok == (diag.severity == "warning")
    assert diag.message.strip(), f"{expected}: empty message"


# -- codes without a file ----------------------------------------------------------------------


def _only(result: Compilation, code: str) -> Diagnostic:
    codes = [d.code for d in result.diagnostics]
    assert codes == [code], f"expected only {code}, got:\n{_show(result)}"
    return result.diagnostics[0]


def test_k1001_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-specs"
    diag = _only(compile_paths([missing]), "K1001")
    assert diag.span.path == str(missing)
    assert str(missing) in diag.message


def test_k1002_file_too_large() -> None:
    path = EXAMPLES / "quickstart" / "assistant.yaml"
    diag = _only(compile_paths([path], limits=Limits(max_file_bytes=100)), "K1002")
    assert (diag.span.path, diag.span.line, diag.span.col) == (str(path), 1, 1)
    assert f"{path.stat().st_size:,} bytes" in diag.message
    assert "4 MiB" in CODES["K1002"].description  # the default, which is too big to commit
    assert Limits().max_file_bytes == 4 * 1024 * 1024


def test_k1004_too_many_documents(tmp_path: Path) -> None:
    limit = Limits().max_documents
    docs = [
        f"apiVersion: kiln/v1\nkind: Agent\nmetadata:\n  name: agent-{i}\n"
        for i in range(limit + 1)
    ]
    path = tmp_path / "agents.yaml"
    path.write_text("---\n".join(docs), encoding="utf-8")
    diag = _only(compile_paths([path]), "K1004")
    # Each document is 4 lines and a '---': the first one past the limit starts at its '---'.
    assert (diag.span.line, diag.span.col) == (5 * limit, 1)
    assert f"more than {limit:,}" in diag.message or f"more than {limit}" in diag.message


def test_k1010_folder_without_specs(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("specs go here\n", encoding="utf-8")
    (tmp_path / "agent.json").write_text("{}\n", encoding="utf-8")
    diag = _only(compile_paths([tmp_path]), "K1010")
    assert diag.span.path == str(tmp_path)
    assert diag.hint


def test_every_code_is_covered() -> None:
    by_file = {e.code for e in EXPECTED}
    uncovered = sorted(set(CODES) - by_file - set(NOT_A_FILE))
    assert not uncovered, (
        f"no file in examples/broken/ triggers {uncovered}: add one named <code>-<what>.yaml "
        "(or, if no file can, list the code in NOT_A_FILE with a test)"
    )
    unknown = sorted((by_file | set(NOT_A_FILE)) - set(CODES))
    assert not unknown, f"codes not in compiler/diagnostics/codes.py: {unknown}"
    needless = sorted(set(NOT_A_FILE) & by_file)
    assert not needless, f"{needless} have a file now: remove them from NOT_A_FILE"
    missing_tests = [t for _, t in NOT_A_FILE.values() if not callable(globals().get(t))]
    assert not missing_tests, f"NOT_A_FILE names tests that do not exist: {missing_tests}"


# -- the whole folder at once ------------------------------------------------------------------


def _key(path: Path | str, code: str, line: int, col: int) -> tuple[Path, str, int, int]:
    return Path(path).resolve(), code, line, col


def _found(result: Compilation) -> set[tuple[Path, str, int, int]]:
    return {_key(d.span.path, d.code, d.span.line, d.span.col) for d in result.diagnostics}


def test_whole_folder_reports_every_error_in_one_run() -> None:
    """Warnings may be held back when there are errors: K5003 comes from the analyze pass,
    which runs only on an error-free program, and K5001/K5002 are not reported while a spec
    is only partly valid (its dropped fields may be what used them). Errors never are."""
    result = compile_paths([BROKEN])
    shown = _show(result)
    assert "Traceback" not in shown
    got = _found(result)
    errors = [e for e in EXPECTED if CODES[e.code].severity == "error"]
    missing = [str(e) for e in errors if _key(e.path, e.code, e.line, e.col) not in got]
    assert not missing, "not reported when the folder is compiled at once:\n" + "\n".join(missing)
    extra = sorted(got - {_key(e.path, e.code, e.line, e.col) for e in EXPECTED})
    assert not extra, f"reported beyond what the files expect (do names clash?): {extra}\n{shown}"


def test_warning_files_together_report_every_warning() -> None:
    warnings = [e for e in EXPECTED if CODES[e.code].severity == "warning"]
    assert warnings
    result = compile_paths([e.path for e in warnings])
    assert result.ok, _show(result)
    assert _found(result) == {_key(e.path, e.code, e.line, e.col) for e in warnings}, _show(result)


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("expected", EXPECTED, ids=_ids)
def test_kiln_validate_reports_it(expected: Expected, capsys: pytest.CaptureFixture[str]) -> None:
    severity = CODES[expected.code].severity
    code = main(["validate", "--color", "never", str(expected.path)])
    err = capsys.readouterr().err
    assert code == (1 if severity == "error" else 0), err
    header = f"{expected.path}:{expected.line}:{expected.col}: {severity}[{expected.code}]: "
    lines = err.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert at, f"no line starting with {header!r} in:\n{err}"
    if expected.code in NO_SOURCE_LINE:
        return
    source, caret = lines[at[0] + 1], lines[at[0] + 2]
    assert source.startswith(f" {expected.line} | "), err
    gutter, _, marks = caret.partition(" | ")
    assert not gutter.strip() and marks.strip() and set(marks.strip()) == {"^"}, err
    assert len(marks) - len(marks.lstrip()) + 1 == expected.col, f"caret not at column:\n{err}"


def test_kiln_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    expected = next(e for e in EXPECTED if e.code == "K2003")
    code = main(["validate", "--format", "json", str(expected.path)])
    out = capsys.readouterr().out
    assert code == 1
    [diag] = json.loads(out)
    assert (diag["code"], diag["line"], diag["col"], diag["severity"]) == (
        expected.code,
        expected.line,
        expected.col,
        "error",
    )
    assert diag["path"] == str(expected.path)


# -- the examples that must stay valid ---------------------------------------------------------


def test_there_are_valid_examples() -> None:
    names = {p.name for p in VALID_FOLDERS}
    assert {"quickstart", "research-crew"} <= names


@pytest.mark.parametrize("folder", VALID_FOLDERS, ids=lambda p: p.name)
def test_example_is_clean(folder: Path) -> None:
    result = compile_paths([folder])
    assert not result.diagnostics, f"examples/{folder.name} should have no diagnostics:\n" + (
        _show(result)
    )
    assert result.plan is not None
