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
    durability: Literal["sync", "async", "exit", "off"] | None = Field(
        None,
        description="when a run of it journals its step results, for resuming: sync (the "
        "default: before the next step), async, exit or off; kiln run --durability overrides",
    )


class CrewSpec(Model):
    description: str = ""
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict)
    process: Literal["sequential", "parallel", "hierarchical"] = "sequential"
    manager: Name | None = Field(None, description="the agent that delegates (hierarchical)")
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)
    output: Name | None = Field(None, description="the task whose output is the crew's result")
    memory: Name | None = None
    shared_memory: bool = False
    context: Literal["none", "previous"] = Field(
        "none",
        description="previous: every task's prompt also gets the outputs of the tasks listed "
        "before it (CrewAI's implicit context), as if its prompt read them itself",
    )
    limits: CrewLimits = Field(default_factory=CrewLimits)

    def prompt_of(self, index: int) -> str:
        """The prompt template task ``index`` runs with: its own, plus, with ``context:
        previous``, a block reading the outputs of every task listed before it. The
        compiler checks and lowers this text, so the block is checked like any template and
        its reads become dependencies."""
        task = self.tasks[index]
        if self.context == "none" or index == 0:
            return task.prompt
        blocks = [f"### {t.name}\n{{{{ tasks.{t.name}.output }}}}" for t in self.tasks[:index]]
        earlier = "\n\n".join(blocks)
        return f"{task.prompt.rstrip()}\n\nResults of the earlier tasks:\n\n{earlier}"


class Crew(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["Crew"]
    metadata: Metadata
    spec: CrewSpec
