"""The ``Model`` kind: a model many agents share, named once with its parameters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from specs._common import Metadata, Model


class ModelSpec(Model):
    model: str = Field(
        description="local/<name>, a litellm string (provider/model) or scripted:FILE"
    )
    fallbacks: tuple[str, ...] = Field(
        (), description="models tried in order when the model keeps failing"
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="sent with every request, as an agent's model_params: max_tokens (the "
        "length of one reply), temperature, api_base, api_key (${env:NAME}), …; an agent's "
        "own model_params win",
    )


class ModelDef(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["Model"]
    metadata: Metadata
    spec: ModelSpec
