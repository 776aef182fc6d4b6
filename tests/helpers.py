"""Helpers shared by the tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

#: ``write_specs(**{"a.yaml": text, "sub__b.yaml": text}) -> folder``; ``__`` is a path separator.
WriteSpecs = Callable[..., Path]


def readable_by_all(folder: Path) -> Path:
    """pytest's folders are private (0700); a sandbox's uid must read (search) the folders
    it is given, and every folder above them."""
    for path in [folder, *folder.parents]:
        if path == Path("/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o005)
    for path in folder.rglob("*"):
        path.chmod(path.stat().st_mode | 0o005)
    return folder
