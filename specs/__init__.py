"""The kiln spec language: one pydantic model per kind, and the source loader."""

from specs._common import API_VERSION as API_VERSION
from specs._common import InputSpec as InputSpec
from specs._common import Metadata as Metadata
from specs.agent import Agent as Agent
from specs.agent import AgentSpec as AgentSpec
from specs.crew import Crew as Crew
from specs.crew import CrewSpec as CrewSpec
from specs.crew import TaskSpec as TaskSpec
from specs.kinds import KINDS as KINDS
from specs.kinds import SpecModel as SpecModel
from specs.memory_policy import MemoryPolicy as MemoryPolicy
from specs.memory_policy import MemoryPolicySpec as MemoryPolicySpec
from specs.model import ModelDef as ModelDef
from specs.model import ModelSpec as ModelSpec
from specs.tool import Tool as Tool
from specs.tool import ToolSpec as ToolSpec

__all__ = [
    "API_VERSION",
    "KINDS",
    "Agent",
    "AgentSpec",
    "Crew",
    "CrewSpec",
    "InputSpec",
    "MemoryPolicy",
    "MemoryPolicySpec",
    "Metadata",
    "ModelDef",
    "ModelSpec",
    "SpecModel",
    "TaskSpec",
    "Tool",
    "ToolSpec",
]
