"""Helpers shared by the tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

#: ``write_specs(**{"a.yaml": text, "sub__b.yaml": text}) -> folder``; ``__`` is a path separator.
WriteSpecs = Callable[..., Path]
