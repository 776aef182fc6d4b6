"""Which of an agent's ``model_params`` still apply when ``--model`` replaces its model.

Parameters about the reply (``max_tokens``, ``temperature``, ``stop``, ``top_p``, …) belong
to the agent and are kept whatever model answers: dropping them silently changed replies
(a per-reply ``max_tokens`` vanished). Parameters that address one provider's endpoint
(``api_base``, ``api_key``, ``api_version``, headers, …) are kept only while the provider
stays the same: sending another provider's key or base URL would be wrong, or a leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ENDPOINT_PARAMS", "params_for"]

#: Parameters that name or authenticate one provider's endpoint.
ENDPOINT_PARAMS: Final = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "organization", "project",
        "custom_llm_provider", "extra_headers", "headers", "aws_region_name",
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "vertex_project",
        "vertex_location", "vertex_credentials", "deployment_id", "azure_ad_token",
    }
)  # fmt: skip


def params_for(params: Mapping[str, Any], spec_model: str, override: str | None) -> dict[str, Any]:
    """The parameters to send when ``override`` (``--model``) replaces ``spec_model``."""
    if override is None or _provider(override) == _provider(spec_model):
        return dict(params)
    return {key: value for key, value in params.items() if key not in ENDPOINT_PARAMS}


def _provider(model: str) -> str:
    if model.startswith("scripted:"):
        return "scripted"
    return model.partition("/")[0]
