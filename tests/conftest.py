"""Shared fixtures."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.helpers import WriteSpecs

# llama.cpp's results depend on its thread count, which kiln picks from the load: tests that
# compare two local runs pin it (and one thread is what a loaded CI machine gets anyway).
os.environ.setdefault("KILN_LOCAL_THREADS", "1")


@pytest.fixture(autouse=True)
def _memory_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs keep their memory stores in a folder of the test's own, never the checkout's
    ``.kiln/memory`` (subprocesses inherit the variable)."""
    monkeypatch.setenv("KILN_MEMORY_DIR", str(tmp_path_factory.mktemp("memory")))


@pytest.fixture
def write_specs(tmp_path: Path) -> WriteSpecs:
    """Write ``name=text`` pairs as files under a fresh folder and return the folder."""
    counter = iter(range(1_000))

    def write(**files: str) -> Path:
        root = tmp_path / f"project{next(counter)}"
        root.mkdir()
        for name, text in files.items():
            path = root / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return root

    return write
