"""The ``Crew`` kind: agents working on tasks in sequence, in parallel or under a manager."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from specs._common import InputName, InputSpec, JsonSchema, Metadata, Model, Name, Template


class TaskSpec(Model):
    name: Name
    agent: Name
    prompt: Template
    description: str = ""
    depends_on: tuple[Name, ...] | None = Field(
        None, description="omit to infer from the tasks.<name> references in the prompt"
    )
    output_schema: JsonSchema | None = Field(
        None, description="overrides the agent's output_schema for this task"
    )


class CrewLimits(Model):
    timeout_s: float | None = Field(None, gt=0, le=604_800)
    max_cost_usd: float | None = Field(None, gt=0, le=1_000_000)


class CrewSpec(Model):
    description: str = ""
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict)
    process: Literal["sequential", "parallel", "hierarchical"] = "sequential"
    manager: Name | None = Field(None, description="the agent that delegates (hierarchical)")
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)
    output: Name | None = Field(None, description="the task whose output is the crew's result")
    memory: Name | None = None
    shared_memory: bool = False
    limits: CrewLimits = Field(default_factory=CrewLimits)


class Crew(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["Crew"]
    metadata: Metadata
    spec: CrewSpec
