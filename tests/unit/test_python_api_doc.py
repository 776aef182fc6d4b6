"""Every example in docs/python-api.md runs, from the repository's root, and prints what
its comments say it prints (a ``# value`` comment after a print is the expected output;
``...`` in it matches anything)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

DOC = REPO / "docs" / "python-api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def expected_lines(code: str) -> list[str]:
    """The output the comments promise: ``print(...)  # shown`` and the ``# shown`` lines
    right after a print (one per line it prints)."""
    found = []
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if "print(" in line and "#" in line.split("print(", 1)[1]:
            found.append(line.rsplit("#", 1)[1].strip())
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("# ") and "print(" not in lines[j]:
                found.append(lines[j].strip()[2:])
                j += 1
    return found


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.timeout(300)  # each example starts a Python process and compiles the specs
@pytest.mark.parametrize("code", BLOCKS, ids=[f"example{i + 1}" for i in range(len(BLOCKS))])
def test_an_example_runs_and_prints_what_it_says(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ran = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    printed = ran.stdout.splitlines()
    for want in expected_lines(code):
        pattern = re.escape(want).replace(re.escape("..."), ".*")
        assert any(re.fullmatch(pattern, line) for line in printed), (want, printed)
