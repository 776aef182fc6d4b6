"""benchmarks/journal_bench.py runs (a small crew) and prints its figures: the journal holds
every step, and the resume replays them all."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_the_journal_benchmark_runs_and_prints_its_figures() -> None:
    ran = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "journal_bench.py"), "--tasks", "3",
         "--steps", "10"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "crew of 3 tasks, 27 journal entries" in ran.stdout  # 3 x (5 model + 4 tool)
    assert "resume: replay every step" in ran.stdout
