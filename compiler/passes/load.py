"""Pass 1, load: files and folders to documents with locations, plus the standard library."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, error
from specs.source import DEFAULT_LIMITS, Document, Limits, load_paths, load_text


@dataclass(frozen=True, slots=True)
class Sources:
    """Every document loaded, and the text of every file (for rendering diagnostics)."""

    files: Mapping[str, str]
    documents: tuple[Document, ...]
    stdlib: tuple[Document, ...]


def stdlib_dir() -> Path:
    """The folder of the standard tool library's specs (found without importing its code)."""
    import importlib.util

    spec = importlib.util.find_spec("stdlib_tools")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _stdlib_documents() -> tuple[tuple[Document, ...], tuple[tuple[str, str], ...]]:
    result = load_paths([stdlib_dir()])
    if result.issues:  # the standard library is ours: a broken spec there is a bug
        raise RuntimeError(f"standard library specs do not load: {result.issues}")
    return result.documents, tuple((f.path, f.text) for f in result.files)


def load(
    paths: Sequence[str | Path],
    limits: Limits = DEFAULT_LIMITS,
    *,
    stdlib: bool = True,
    extra: Sequence[tuple[str, str]] = (),
) -> tuple[Sources, tuple[Diagnostic, ...]]:
    """Load ``paths`` and the ``extra`` (name, text) specs; with ``stdlib``, the standard
    library's too."""
    result = load_paths(paths, limits)
    files = {f.path: f.text for f in result.files}
    documents = list(result.documents)
    issues = list(result.issues)
    for name, text in extra:
        files[name] = text
        docs, found = load_text(text, name, limits)
        documents.extend(docs)
        issues.extend(found)
    std_docs: tuple[Document, ...] = ()
    if stdlib:
        std_docs, std_files = _stdlib_documents()
        files.update(std_files)
    diags = tuple(error(i.code, i.message, i.span, i.hint) for i in issues)
    return Sources(files, tuple(documents), std_docs), diags
