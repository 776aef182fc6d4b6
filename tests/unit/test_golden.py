"""Golden files: the exact rendered diagnostics of small spec folders, one folder per case.

``tests/golden/<pass>/<case>/`` holds one or more spec files and ``expected.txt``, what
``kiln validate`` prints for them (paths relative to the case folder). A change to a
message, a location or a hint shows up here as a diff to review, not as a silent drift.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGEN = "run .venv/bin/python tools/regen_golden.py and review the diff (git diff tests/golden)"
PASSES = ("load", "validate", "resolve", "check", "analyze")


def _load_regen() -> ModuleType:
    path = ROOT / "tools" / "regen_golden.py"
    spec = importlib.util.spec_from_file_location("regen_golden", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regen = _load_regen()
GOLDEN: Path = regen.GOLDEN
CASES: list[Path] = regen.cases()


def _id(case: Path) -> str:
    return case.relative_to(GOLDEN).as_posix()


def test_every_pass_has_cases() -> None:
    folders = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    assert folders == sorted(PASSES), f"golden folders should be one per pass: {PASSES}"
    for name in PASSES:
        assert len([c for c in CASES if c.parent.name == name]) >= 3, f"few cases for {name}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_golden(case: Path) -> None:
    specs = sorted(p.name for p in case.iterdir() if p.suffix in (".yaml", ".yml"))
    assert specs, f"{_id(case)} holds no spec file"
    expected_file = case / regen.EXPECTED
    assert expected_file.is_file(), f"{_id(case)} has no {regen.EXPECTED}: {REGEN}"
    expected = expected_file.read_text("utf-8")
    actual: str = regen.render_case(case)
    assert "Traceback" not in actual
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"{_id(case)}/{regen.EXPECTED}",
                "now",
            )
        )
        pytest.fail(f"the diagnostics of {_id(case)} changed: {REGEN}\n{diff}", pytrace=False)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_golden_paths_are_relative(case: Path) -> None:
    expected_file = case / regen.EXPECTED
    assert expected_file.is_file(), f"{_id(case)} has no {regen.EXPECTED}: {REGEN}"
    text = expected_file.read_text("utf-8")
    assert str(ROOT) not in text and "/tmp/" not in text, "absolute paths in a golden file"
