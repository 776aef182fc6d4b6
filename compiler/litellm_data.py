"""litellm's bundled model data, read as JSON: providers, prices and context windows.

litellm ships its price map (``model_prices_and_context_window_backup.json``) and its
provider list (``provider_endpoints_support_backup.json``) inside the package. Reading them
as files costs tens of milliseconds, where ``import litellm`` costs seconds, so the compiler
can know every provider and price litellm knows while ``kiln validate`` stays fast. The
files are found with :func:`importlib.util.find_spec`, which locates the package without
importing it, and read at most once per process, only when a model is not in kiln's own
small table. Without litellm installed every lookup answers "unknown".
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["ModelData", "litellm_providers", "model_data"]

_PRICES_FILE: Final = "model_prices_and_context_window_backup.json"
_PROVIDERS_FILE: Final = "provider_endpoints_support_backup.json"


@dataclass(frozen=True, slots=True)
class ModelData:
    """What litellm's price map says of one model: USD per million tokens, and its window."""

    input_per_million: float | None
    output_per_million: float | None
    max_input_tokens: int | None


def model_data(provider: str, name: str) -> ModelData | None:
    """The entry for ``provider/name`` in litellm's price map, or None when it has none."""
    entries = _price_map()
    entry = entries.get(f"{provider}/{name}")
    if entry is None:
        candidate = entries.get(name)  # many entries are keyed by the bare model name
        if candidate is not None and candidate.get("litellm_provider") == provider:
            entry = candidate
    if entry is None:
        return None
    return ModelData(
        input_per_million=_per_million(entry.get("input_cost_per_token")),
        output_per_million=_per_million(entry.get("output_cost_per_token")),
        max_input_tokens=_positive_int(entry.get("max_input_tokens")),
    )


@functools.cache
def litellm_providers() -> frozenset[str]:
    """Every provider prefix litellm lists (its provider table and its price map).

    The table's per-endpoint flags are not used: they say ``false`` for providers that
    serve chat (``litellm_proxy``, ``ollama_chat``, ``openrouter``), and refusing a
    provider litellm can call is worse than letting litellm name one it cannot.
    """
    providers: set[str] = set()
    table = _read(_PROVIDERS_FILE)
    listed = table.get("providers") if isinstance(table, Mapping) else None
    if isinstance(listed, Mapping):
        providers.update(k for k in listed if isinstance(k, str))
    for entry in _price_map().values():
        provider = entry.get("litellm_provider")
        if entry.get("mode") == "chat" and isinstance(provider, str):
            providers.add(provider)
    return frozenset(p for p in providers if p and "/" not in p and " " not in p)


@functools.cache
def _price_map() -> dict[str, Mapping[str, Any]]:
    data = _read(_PRICES_FILE)
    if not isinstance(data, Mapping):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, Mapping)}


def _read(filename: str) -> Any:
    folder = _litellm_folder()
    if folder is None:
        return None
    try:
        return json.loads((folder / filename).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # an older litellm without the file, or a damaged one
        return None


@functools.cache
def _litellm_folder() -> Path | None:
    try:
        spec = importlib.util.find_spec("litellm")  # locates the package, imports nothing
    except (ImportError, ValueError):
        return None
    locations = spec.submodule_search_locations if spec is not None else None
    return Path(next(iter(locations))) if locations else None


def _per_million(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(float(value) * 1_000_000, 9)
    return None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
