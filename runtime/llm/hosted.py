"""Hosted models through litellm: any ``provider/model`` string litellm knows.

litellm is imported on first use, never at module import: it costs seconds and ~170 MB,
and ``kiln validate`` must not pay that. Its exceptions are translated here, in one place,
into :class:`ModelError` subclasses; no litellm type leaves this module.

``params`` (the agent's ``model_params``) and ``request.params`` go to
``litellm.acompletion`` as they are, so litellm's own test doubles work through the whole
runtime: ``mock_response="text"``, ``mock_response="litellm.RateLimitError"``,
``mock_tool_calls=[...]``, ``mock_timeout=True`` with ``timeout=…``.

kiln owns retries (the gateway's backoff, ``Retry-After``, circuit breakers, and the
attempt count it reports): litellm's own retries (``num_retries``) and the provider SDK's
(``max_retries``, two by default in the OpenAI SDK) are always turned off, so one kiln
attempt is one request at the provider. A 429 used to become 12 requests for 4 attempts.
"""

from __future__ import annotations

import email.utils
import functools
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import anyio

from compiler.models import ModelRef, parse_model, price
from runtime.llm.types import (
    AuthError,
    BadRequest,
    ContextWindowExceeded,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelTimeout,
    ModelUnavailable,
    RateLimited,
    ServerError,
    ToolCall,
    Usage,
)

__all__ = ["HostedModel"]

_NO_PARAMS: Final[Mapping[str, Any]] = MappingProxyType({})
_NO_HIDDEN_RETRIES: Final[Mapping[str, Any]] = MappingProxyType(
    {"num_retries": 0, "max_retries": 0}
)
_DEFAULT_CONTEXT: Final = 8192
_DETAIL_CHARS: Final = 300
_INSTALL_HINT: Final = "install it with: pip install 'agentkiln[hosted]'"


@dataclass(frozen=True, slots=True)
class _Capabilities:
    native_tools: bool
    response_schema: bool
    json_mode: bool
    context_window: int


class HostedModel:
    """A model served by a provider's API, called through ``litellm.acompletion``."""

    def __init__(self, name: str, params: Mapping[str, Any] = _NO_PARAMS) -> None:
        self._name = name
        self._params = dict(params)

    @property
    def name(self) -> str:
        return self._name

    @property
    def provider(self) -> str:
        return self._name.partition("/")[0]

    @property
    def native_tools(self) -> bool:
        return _capabilities(self._name).native_tools

    @property
    def constrained(self) -> bool:
        return _capabilities(self._name).response_schema

    @property
    def context_window(self) -> int:
        return _capabilities(self._name).context_window

    async def complete(self, request: ModelRequest) -> ModelResponse:
        litellm = await _litellm_async()
        kwargs = self._arguments(request)
        try:
            raw = await litellm.acompletion(**kwargs)
        except Exception as exc:  # the one place litellm's exceptions are translated
            raise _translate(exc, self._name, kwargs.get("timeout")) from None
        try:
            return _response(raw, self._name)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise ServerError(
                f"unexpected reply from {self._name}: {type(exc).__name__}: {exc}",
                model=self._name,
            ) from None

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self._name, "messages": list(request.messages)}
        if request.tools:
            kwargs["tools"] = [tool.as_openai() for tool in request.tools]
        if request.response_schema is not None:
            response_format = self._response_format(request.response_schema)
            if response_format is not None:
                kwargs["response_format"] = response_format
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        kwargs.update(self._params)
        kwargs.update(request.params)
        kwargs.update(_NO_HIDDEN_RETRIES)  # after the params: the gateway counts every request
        return kwargs

    def _response_format(self, schema: Mapping[str, Any]) -> dict[str, Any] | None:
        caps = _capabilities(self._name)
        if caps.response_schema:
            return {"type": "json_schema", "json_schema": {"name": "reply", "schema": dict(schema)}}
        if caps.json_mode:
            return {"type": "json_object"}
        return None


# --- litellm, loaded once ---------------------------------------------------------------


def _litellm() -> Any:  # litellm's own annotations are partial: treat it as untyped here
    """Import litellm and make it quiet and offline at import."""
    # Without this, importing litellm fetches its price list from GitHub (and retries for
    # seconds when offline). The bundled copy is enough for cost accounting; a user who
    # wants the live list sets LITELLM_LOCAL_MODEL_COST_MAP=False.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        raise ModelUnavailable(f"hosted models need litellm; {_INSTALL_HINT}") from None
    # Stops "Give Feedback / Get Help" and "Provider List" banners on stdout.
    litellm.suppress_debug_info = True
    # litellm's provider modules build pydantic adapters over TypedDicts with ReadOnly items,
    # and pydantic warns about each on first use: noise on a user's terminal, not theirs to fix.
    warnings.filterwarnings("ignore", message=r".* on TypedDict class", category=UserWarning)
    return litellm


async def _litellm_async() -> Any:
    """The first import takes seconds: do it in a worker thread, not on the event loop."""
    if "litellm" in sys.modules:
        return _litellm()  # imported (or being imported: the import lock waits for it)
    from runtime import progress

    progress.say("importing litellm (first hosted model call: a few seconds)…", 0.0)
    module = await anyio.to_thread.run_sync(_litellm)
    progress.say("imported litellm", 1.0)
    return module


@functools.lru_cache(maxsize=256)
def _capabilities(model: str) -> _Capabilities:
    """What litellm's model map says about ``model``; safe defaults for unknown models."""
    litellm = _litellm()
    schema = _ask(litellm.supports_response_schema, model)
    supported = _ask(litellm.get_supported_openai_params, model) or ()
    info = _ask(litellm.get_model_info, model) or {}
    window = info.get("max_input_tokens") if isinstance(info, Mapping) else None
    return _Capabilities(
        native_tools=bool(_ask(litellm.supports_function_calling, model)),
        response_schema=bool(schema),
        json_mode=bool(schema) or "response_format" in supported,
        context_window=window if isinstance(window, int) and window > 0 else _DEFAULT_CONTEXT,
    )


def _ask(lookup: Any, model: str) -> Any:
    try:
        return lookup(model=model)
    except Exception:  # unknown models raise assorted types: the answer is then "no"
        return None


# --- replies ----------------------------------------------------------------------------


def _response(raw: Any, model: str) -> ModelResponse:
    message = raw.choices[0].message
    calls = tuple(_tool_call(call) for call in (getattr(message, "tool_calls", None) or ()))
    return ModelResponse(
        text=message.content or "", tool_calls=calls, usage=_usage(raw, model), model=model
    )


def _tool_call(call: Any) -> ToolCall:
    function = call.function
    return ToolCall(
        id=str(call.id or ""),
        name=str(function.name or ""),
        arguments=_arguments(function.arguments),
    )


def _arguments(raw: Any) -> Mapping[str, Any] | str:
    """A JSON object as a dict; anything else as the text the model sent."""
    if isinstance(raw, Mapping):
        return dict(raw)
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
    if not text.strip():
        return {}  # some providers send "" for a call without arguments
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, dict) else text


def _usage(raw: Any, model: str) -> Usage:
    usage = getattr(raw, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    cost = _litellm_cost(raw, model)
    if cost is None:
        cost = _table_cost(model, prompt, completion)
    if cost is None:
        return Usage(prompt, completion, 0.0, cost_known=False)
    return Usage(prompt, completion, cost)


def _litellm_cost(raw: Any, model: str) -> float | None:
    try:
        cost = _litellm().completion_cost(completion_response=raw, model=model)
    except Exception:  # litellm raises for models missing from its price map
        return None
    return float(cost) if isinstance(cost, int | float) else None


def _table_cost(model: str, prompt: int, completion: int) -> float | None:
    ref = parse_model(model)
    prices = price(ref) if isinstance(ref, ModelRef) else None
    if prices is None:
        return None
    return (prompt * prices[0] + completion * prices[1]) / 1_000_000


# --- errors -----------------------------------------------------------------------------

# Most specific first: ContextWindowExceededError is a BadRequestError, Timeout is an
# APIConnectionError. Names, not classes, so the table is built without importing litellm.
_BY_CLASS: Final[tuple[tuple[str, type[ModelError]], ...]] = (
    ("ContextWindowExceededError", ContextWindowExceeded),
    ("RateLimitError", RateLimited),
    ("Timeout", ModelTimeout),
    ("APITimeoutError", ModelTimeout),
    ("AuthenticationError", AuthError),
    ("PermissionDeniedError", AuthError),
    ("InternalServerError", ServerError),
    ("ServiceUnavailableError", ServerError),
    ("BadGatewayError", ServerError),
    ("APIConnectionError", ServerError),
    ("UnsupportedParamsError", BadRequest),
    ("ContentPolicyViolationError", BadRequest),
    ("NotFoundError", BadRequest),
    ("UnprocessableEntityError", BadRequest),
    ("BadRequestError", BadRequest),
)
_LABELS: Final[Mapping[type[ModelError], str]] = {
    RateLimited: "rate limited",
    ServerError: "server error",
    AuthError: "not authorised",
    BadRequest: "bad request",
    ContextWindowExceeded: "context window exceeded",
}
_MISSING_KEY = re.compile(
    r"Missing credentials|api_key client option must be set|API key (?:is )?(?:not set|missing)"
    r"|No API key|(?:OPENAI|ANTHROPIC|GEMINI|GROQ|MISTRAL)_API_KEY",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+Exception -\s*|\w+Error:\s*)+")
# aiohttp names the TLS context it would have used ("ssl:<ssl.SSLContext object at 0x…>"):
# noise to a user, and an address that changes on every run.
_SSL_REPR = re.compile(r"\s*ssl:<[\w.]+ object at 0x[0-9a-fA-F]+>")
_OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def _translate(exc: Exception, model: str, timeout: Any) -> ModelError:
    """The :class:`ModelError` for an exception raised by ``litellm.acompletion``."""
    kind = _kind(exc)
    status = getattr(exc, "status_code", None)
    text = str(exc)
    if _MISSING_KEY.search(text):  # litellm reports a missing key as a 500: it is not one
        return AuthError(f"no API key: {_detail(exc)}", model=model)
    if kind is ModelTimeout:
        after = f" after {timeout:g} s" if isinstance(timeout, int | float) else ""
        return ModelTimeout(f"timeout{after}: {_detail(exc)}", model=model)
    if "APIConnectionError" in {c.__name__ for c in type(exc).__mro__} or (
        "Connection error" in text
    ):
        return ServerError(f"cannot connect to the provider: {_detail(exc)}", model=model)
    if kind is None:
        message = f"{type(exc).__name__}: {_detail(exc)}"
        return ServerError(message, model=model)
    code = f" ({status})" if isinstance(status, int) else ""
    message = f"{_LABELS[kind]}{code}: {_detail(exc)}"
    retry_after = _retry_after(exc) if kind is RateLimited else None
    return kind(message, model=model, retry_after_s=retry_after)


def _kind(exc: Exception) -> type[ModelError] | None:
    names = {cls.__name__ for cls in type(exc).__mro__}
    for name, kind in _BY_CLASS:
        if name in names:
            return kind
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        return None
    if status == 429:
        return RateLimited
    if status == 408:
        return ModelTimeout
    if status in (401, 403):
        return AuthError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequest
    return None


def _detail(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    text = _PREFIX.sub("", text) or type(exc).__name__
    text = _OBJECT_REPR.sub(r"\1", _SSL_REPR.sub("", text))
    if len(text) > _DETAIL_CHARS:
        text = text[: _DETAIL_CHARS - 1] + "…"
    return text


def _retry_after(exc: Exception) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(float(millis) / 1000.0, 0.0)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    return _seconds(value) if value is not None else None


def _seconds(value: Any) -> float | None:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
