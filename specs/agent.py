"""The ``Agent`` kind: a model, instructions, tools, memory and limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from specs._common import InputName, InputSpec, JsonSchema, Metadata, Model, Name, Template

DEFAULT_MODEL = "local/qwen2.5-coder-1.5b"


class AgentLimits(Model):
    """Bounds on one run of the agent; hitting one ends the run with ``limit_exceeded``."""

    max_iterations: int = Field(15, ge=1, le=10_000, description="model calls per run")
    timeout_s: float = Field(300, gt=0, le=86_400)
    max_tokens: int = Field(20_000, ge=1, le=100_000_000)
    max_cost_usd: float | None = Field(None, gt=0, le=1_000_000)
    max_repeated_tool_calls: int = Field(
        3,
        ge=1,
        description="the Nth identical tool call in a row is not run: the loop guard answers it; "
        "one more ends the run with loop_detected",
    )
    durability: Literal["sync", "async", "exit", "off"] | None = Field(
        None,
        description="when a run of it journals its step results, for resuming: sync (the "
        "default: before the next step), async, exit or off; kiln run --durability overrides",
    )


class ToolDiscovery(Model):
    """Let the agent search the tool registry by meaning at run time."""

    enabled: bool = True
    top_k: int = Field(5, ge=1, le=50)
    labels: dict[str, str] = Field(
        default_factory=dict, description="only tools whose labels match all of these"
    )


class TreeOfThought(Model):
    breadth: int = Field(3, ge=1, le=10)
    depth: int = Field(2, ge=1, le=10)


class AgentSpec(Model):
    model: str = Field(
        DEFAULT_MODEL,
        description="local/<name>, a litellm string (provider/model), scripted:FILE, or the "
        "name of a Model spec",
    )
    fallbacks: tuple[str, ...] = ()
    model_params: dict[str, Any] = Field(
        default_factory=dict,
        description="sent with every model request: max_tokens (the length of one reply; "
        "limits.max_tokens is the budget of the whole run), temperature, api_base, api_key "
        "(${env:NAME}), …",
    )
    temperature: float | None = Field(None, ge=0, le=2)
    description: str = ""
    instructions: Template = ""
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict)
    tools: tuple[Name, ...] = ()
    tool_discovery: ToolDiscovery | None = None
    delegate_to: tuple[Name, ...] = ()
    memory: Name | None = None
    strategy: Literal["react", "cot", "tot"] = "react"
    tot: TreeOfThought = Field(default_factory=TreeOfThought)
    limits: AgentLimits = Field(default_factory=AgentLimits)
    output_schema: JsonSchema | None = None


class Agent(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["Agent"]
    metadata: Metadata
    spec: AgentSpec = Field(default_factory=AgentSpec)
