"""Compile benchmarks on a generated project of 100 specs (``benchmarks/generate.py``).

Under a plain ``pytest`` (``--benchmark-disable``) each body runs once, as a test. For
figures: ``pytest tests/benchmarks --benchmark-enable``. ``benchmarks/compile_bench.py``
runs the 1,000-spec version and prints the ratio to bare YAML parsing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.generate import generate_project
from compiler.passes.emit import dumps
from compiler.pipeline import Compilation, compile_paths

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("bench-project")
    files = generate_project(root, tools=40, agents=30, policies=20, crews=10, seed=1, files=10)
    return root, files


def test_generated_project_is_deterministic(tmp_path: Path) -> None:
    first = generate_project(tmp_path / "a", tools=8, agents=6, policies=4, crews=2, files=3)
    second = generate_project(tmp_path / "b", tools=8, agents=6, policies=4, crews=2, files=3)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_bare_yaml(benchmark: Any, project: tuple[Path, list[Path]]) -> None:
    _, files = project

    def load_all() -> int:
        return sum(len(list(yaml.load_all(p.read_text("utf-8"), Loader=_LOADER))) for p in files)

    assert benchmark(load_all) == 100


def test_compile(benchmark: Any, project: tuple[Path, list[Path]]) -> None:
    root, _ = project
    result: Compilation = benchmark(compile_paths, [root])
    assert result.ok, [str(d) for d in result.errors]
    assert result.plan is not None
    user = [s for s in result.plan["specs"].values() if s["origin"] == "user"]
    assert len(user) == 100


def test_emit_bytes(benchmark: Any, project: tuple[Path, list[Path]]) -> None:
    root, _ = project
    result = compile_paths([root])
    assert result.plan is not None
    text: str = benchmark(dumps, result.plan)
    assert text == dumps(compile_paths([root]).plan or {})
