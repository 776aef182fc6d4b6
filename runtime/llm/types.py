"""What the runtime says to a model and what it gets back, whatever the model is.

Messages are plain dicts in the OpenAI chat format (``role``, ``content``, and for native
tool calling ``tool_calls`` / ``tool_call_id``): litellm takes them as they are, and building
a dict is the cheapest thing Python does, which matters at ten thousand concurrent runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, Any]

#: What a call is for: the scripted model and the accounting use it, real models ignore it.
#: ``act``: a ReAct step (an action or a final answer); ``final``: a final answer only;
#: ``think``: one thought (CoT reasoning, a ToT branch); ``score``: rate a thought 0..1;
#: ``summarize``: compress earlier turns to fit the context window.
Purpose = Literal["act", "final", "think", "score", "summarize", "extract"]


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool as a model sees it (``name`` already mapped to what providers accept)."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    def as_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    #: Parsed JSON when the provider sent valid JSON, else the raw text (reported back to
    #: the model as a malformed call, never raised).
    arguments: Mapping[str, Any] | str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    #: False when a model's price is unknown: the cost is then a lower bound.
    cost_known: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
            self.cost_known and other.cost_known,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "cost_known": self.cost_known,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    messages: Sequence[Message]
    purpose: Purpose = "act"
    #: Native tool calling: offered only to backends whose ``native_tools`` is true.
    tools: Sequence[ToolDef] = ()
    #: Constrain the reply to JSON matching this schema (backends that can), else the
    #: prompt asks for it and the strategy parses and validates the reply.
    response_schema: Mapping[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The caller's estimate of the prompt's tokens (0: not estimated).
    estimated_tokens: int = 0
    # Who asks: the scripted model picks its turns by these; traces record them.
    run_id: str = ""
    agent: str = ""
    task: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    #: The model that answered: a fallback's name when the primary failed.
    model: str = ""
    attempts: int = 1


ErrorKind = Literal[
    "rate_limit", "server", "timeout", "auth", "bad_request", "context_window", "unavailable"
]


class ModelError(Exception):
    """A model call failed. ``retryable`` errors are retried with backoff, then the next
    fallback is tried; others go to the next fallback at once (they would fail again)."""

    kind: ErrorKind = "server"
    retryable: bool = True

    def __init__(self, message: str, *, model: str = "", retry_after_s: float | None = None):
        super().__init__(message)
        self.model = model
        self.retry_after_s = retry_after_s


class RateLimited(ModelError):
    kind = "rate_limit"


class ServerError(ModelError):
    kind = "server"


class ModelTimeout(ModelError):
    kind = "timeout"


class AuthError(ModelError):
    kind = "auth"
    retryable = False


class BadRequest(ModelError):
    kind = "bad_request"
    retryable = False


class ContextWindowExceeded(ModelError):
    kind = "context_window"
    retryable = False


class ModelUnavailable(ModelError):
    """The model cannot be used at all here: not installed, unknown, circuit open."""

    kind = "unavailable"
    retryable = False


class ModelBackend(Protocol):
    """One model. Backends raise :class:`ModelError` subclasses, never provider types."""

    @property
    def name(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def native_tools(self) -> bool:
        """True when the model takes ``tools`` and answers with ``tool_calls``."""
        ...

    @property
    def constrained(self) -> bool:
        """True when ``response_schema`` is enforced while decoding (every reply parses)."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens the model reads at most (prompt and reply together)."""
        ...

    async def complete(self, request: ModelRequest) -> ModelResponse: ...


def estimate_tokens(text: str) -> int:
    """A cheap, provider-neutral token estimate: about four characters a token in English,
    rounded up. Context trimming uses it with a safety margin; accounting prefers the
    provider's own counts where it reports them."""
    return (len(text) + 3) // 4


def message_tokens(messages: Sequence[Message]) -> int:
    total = 0
    for m in messages:
        total += 4 + estimate_tokens(str(m.get("content") or ""))
        for call in m.get("tool_calls") or ():
            total += estimate_tokens(str(call))
    return total
