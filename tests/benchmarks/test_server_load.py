"""benchmarks/server_load.py runs (20 streamed runs through a real `kiln serve`) and prints
its figures: every event arrives, in order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.timeout(300)  # starts a server process and runs through it and in-process
def test_the_server_load_benchmark_runs_and_loses_no_event() -> None:
    ran = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "server_load.py"), "--runs", "20"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "lost or reordered: 0 runs" in ran.stdout
    assert "added by the server: p50" in ran.stdout and "server peak RSS" in ran.stdout
