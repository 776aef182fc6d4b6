"""The registry of spec kinds."""

from __future__ import annotations

from typing import Final

from specs.agent import Agent
from specs.crew import Crew
from specs.memory_policy import MemoryPolicy
from specs.model import ModelDef
from specs.tool import Tool

SpecModel = Agent | Tool | MemoryPolicy | Crew | ModelDef

KINDS: Final[dict[str, type[SpecModel]]] = {
    "Agent": Agent,
    "Tool": Tool,
    "MemoryPolicy": MemoryPolicy,
    "Crew": Crew,
    "Model": ModelDef,
}
