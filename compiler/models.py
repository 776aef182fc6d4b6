"""Model strings: what ``spec.model`` and ``spec.fallbacks`` may name, and known prices.

Kept free of litellm (importing it costs seconds). Providers and prices come first from a
small table of the commonest ones (no file read at all), then from litellm's bundled model
data read as JSON (:mod:`compiler.litellm_data`): every provider and price litellm knows.
Prices are USD per million tokens, for worst-case cost bounds only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from compiler.litellm_data import litellm_providers, model_data

LOCAL_MODELS: Final = frozenset({"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"})

#: The commonest providers, known without reading litellm's data; see :func:`providers`.
PROVIDERS: Final = frozenset(
    {
        "ai21", "anthropic", "anyscale", "azure", "azure_ai", "bedrock", "cerebras",
        "cloudflare", "codestral", "cohere", "databricks", "deepinfra", "deepseek",
        "fireworks_ai", "friendliai", "gemini", "github", "groq", "huggingface",
        "hosted_vllm", "lm_studio", "mistral", "nvidia_nim", "ollama", "ollama_chat",
        "openai", "openrouter", "perplexity", "replicate", "sagemaker", "together_ai",
        "vertex_ai", "vllm", "watsonx", "xai",
    }
)  # fmt: skip

#: (input, output) USD per million tokens: the commonest models, and aliases litellm's map
#: lacks; every other price comes from litellm's bundled map.
PRICES: Final[dict[str, tuple[float, float]]] = {
    "openai/gpt-4o": (2.5, 10.0),
    "openai/gpt-4o-mini": (0.15, 0.6),
    "openai/gpt-4.1": (2.0, 8.0),
    "openai/gpt-4.1-mini": (0.4, 1.6),
    "openai/gpt-4.1-nano": (0.1, 0.4),
    "openai/o3-mini": (1.1, 4.4),
    "anthropic/claude-3-5-haiku-latest": (0.8, 4.0),
    "anthropic/claude-3-5-sonnet-latest": (3.0, 15.0),
    "anthropic/claude-3-7-sonnet-latest": (3.0, 15.0),
    "anthropic/claude-sonnet-4-0": (3.0, 15.0),
    "anthropic/claude-opus-4-0": (15.0, 75.0),
    "gemini/gemini-1.5-flash": (0.075, 0.3),
    "gemini/gemini-2.0-flash": (0.1, 0.4),
    "groq/llama-3.1-8b-instant": (0.05, 0.08),
    "mistral/mistral-small-latest": (0.1, 0.3),
    "deepseek/deepseek-chat": (0.27, 1.1),
}

#: Servers people run themselves: their calls cost nothing per token.
_FREE_PROVIDERS: Final = frozenset(
    {
        "ollama", "ollama_chat", "lm_studio", "hosted_vllm", "vllm", "llamafile",
        "xinference", "oobabooga", "docker_model_runner", "lemonade",
    }
)  # fmt: skip
_MODEL_PART = re.compile(r"^[A-Za-z0-9][\w.:@/+-]*$")

ModelKind = Literal["local", "scripted", "hosted"]


@dataclass(frozen=True, slots=True)
class ModelRef:
    kind: ModelKind
    provider: str
    name: str


@dataclass(frozen=True, slots=True)
class ModelProblem:
    message: str
    hint: str | None


def parse_model(text: str) -> ModelRef | ModelProblem:
    """Split a model string, or say what is wrong with it."""
    if text != text.strip() or not text:
        return ModelProblem(f"model {text!r} is empty or has surrounding spaces", None)
    if text.startswith("scripted:"):
        path = text.removeprefix("scripted:")
        if not path:
            return ModelProblem("'scripted:' needs a file of turns", "write scripted:turns.yaml")
        return ModelRef("scripted", "scripted", path)
    provider, sep, name = text.partition("/")
    if not sep:
        guess = _guess_provider(text)
        hint = (
            f"write '{guess}/{text}'"
            if guess
            else "write <provider>/<model>, e.g. openai/gpt-4o-mini"
        )
        return ModelProblem(f"model '{text}' has no provider", hint)
    if not name or not _MODEL_PART.match(name):
        return ModelProblem(f"model '{text}' has no valid model name after '{provider}/'", None)
    if provider == "local":
        if name in LOCAL_MODELS or name.endswith(".gguf"):
            return ModelRef("local", "local", name)
        known = ", ".join(sorted(LOCAL_MODELS))
        return ModelProblem(
            f"unknown local model '{name}'", f"embedded models: {known}; or a path to a .gguf file"
        )
    if provider not in PROVIDERS and provider not in litellm_providers():
        from compiler.diagnostics import closest

        near = closest(provider, providers() | {"local"})
        hint = f"did you mean '{near}/{name}'?" if near else "see litellm's list of providers"
        return ModelProblem(f"unknown model provider '{provider}' in '{text}'", hint)
    return ModelRef("hosted", provider, name)


def providers() -> frozenset[str]:
    """Every provider prefix a hosted model string may start with."""
    return PROVIDERS | litellm_providers()


def price(ref: ModelRef) -> tuple[float, float] | None:
    """USD per million (input, output) tokens, or None when unknown."""
    if ref.kind != "hosted" or ref.provider in _FREE_PROVIDERS:
        return (0.0, 0.0)
    known = PRICES.get(f"{ref.provider}/{ref.name}")
    if known is not None:
        return known
    data = model_data(ref.provider, ref.name)
    if data is None or data.input_per_million is None or data.output_per_million is None:
        return None
    return (data.input_per_million, data.output_per_million)


def context_window(ref: ModelRef) -> int | None:
    """The most input tokens a hosted model takes, as litellm's data says; None if unknown."""
    if ref.kind != "hosted":
        return None
    data = model_data(ref.provider, ref.name)
    return data.max_input_tokens if data is not None else None


def _guess_provider(name: str) -> str | None:
    lowered = name.lower()
    for prefix, provider in (
        ("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("claude", "anthropic"),
        ("gemini", "gemini"), ("mistral", "mistral"), ("llama", "ollama"), ("deepseek", "deepseek"),
        ("smollm", "local"),
    ):  # fmt: skip
        if lowered.startswith(prefix):
            return provider
    return None
