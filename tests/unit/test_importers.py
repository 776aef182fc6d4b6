"""kiln import: CrewAI projects, cagent files and ADK configs become specs that validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.pipeline import compile_paths
from runtime.cli import main
from runtime.importers import write_specs as write_imported
from runtime.importers.adk import import_adk
from runtime.importers.cagent import import_cagent
from runtime.importers.crewai import import_crewai
from tests.helpers import WriteSpecs

AGENTS = """
researcher:
  role: >
    {topic} Senior Data Researcher
  goal: >
    Uncover cutting-edge developments in {topic}
  backstory: >
    You're a seasoned researcher.
  verbose: true
reporting_analyst:
  role: Reporting Analyst
  goal: Create detailed reports
  backstory: You turn data into reports.
  llm: anthropic/claude-3-5-haiku-latest
"""
TASKS = """
research_task:
  description: >
    Conduct a thorough research about {topic}. It is {current_year}.
  expected_output: >
    A list with 10 bullet points of the most relevant information about {topic}
  agent: researcher
reporting_task:
  description: Review the context you got and expand each topic into a full section.
  expected_output: A fully fledged report, formatted as markdown.
  agent: reporting_analyst
  output_file: report.md
"""
CREW_PY = """
raise SystemExit("crew.py must never be run by kiln import")
from typing import List
from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task
from crewai_tools import SerperDevTool, FileReadTool
from pydantic import BaseModel, Field

search = SerperDevTool()
reader = FileReadTool()

class Report(BaseModel):
    title: str = Field(..., description="the report's title")
    sections: List[str]
    score: float | None = None

@CrewBase
class LatestAiDevelopment():
    @agent
    def researcher(self) -> Agent:
        return Agent(config=self.agents_config['researcher'], tools=[search, reader])

    @agent
    def reporting_analyst(self) -> Agent:
        return Agent(config=self.agents_config['reporting_analyst'])

    @task
    def research_task(self) -> Task:
        return Task(config=self.tasks_config['research_task'])

    @task
    def reporting_task(self) -> Task:
        return Task(config=self.tasks_config['reporting_task'], output_pydantic=Report)

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential)
"""


def _valid(folder: Path) -> dict[str, list[dict[str, object]]]:
    result = compile_paths([folder])
    assert result.ok, [d.message for d in result.diagnostics]
    return {
        p.name: list(yaml.safe_load_all(p.read_text(encoding="utf-8")))
        for p in sorted(folder.glob("*.yaml"))
    }


def test_a_crewai_project_becomes_valid_specs(write_specs: WriteSpecs, tmp_path: Path) -> None:
    project = write_specs(
        **{
            "src__latest__config__agents.yaml": AGENTS,
            "src__latest__config__tasks.yaml": TASKS,
            "src__latest__crew.py": CREW_PY,
        }
    )
    imported = import_crewai(project, "openai/gpt-4o-mini")
    out = tmp_path / "out"
    written = write_imported(imported, out)
    assert {p.name for p in written} == {"agents.yaml", "crew.yaml"}
    docs = _valid(out)
    researcher, analyst = docs["agents.yaml"]
    assert researcher["spec"]["instructions"].startswith(  # type: ignore[index]
        "You are {{ inputs.topic }} Senior Data Researcher."
    )
    assert researcher["spec"]["tools"] == ["file_read"]  # type: ignore[index]
    assert researcher["spec"]["inputs"] == {"topic": {"type": "string"}}  # type: ignore[index]
    assert analyst["spec"]["model"] == "anthropic/claude-3-5-haiku-latest"  # type: ignore[index]
    (crew,) = docs["crew.yaml"]
    spec = crew["spec"]
    assert spec["context"] == "previous" and spec["process"] == "sequential"  # type: ignore[index]
    assert set(spec["inputs"]) == {"topic", "current_year"}  # type: ignore[index]
    first, second = spec["tasks"]  # type: ignore[index]
    assert "Expected output: A list with 10 bullet points" in first["prompt"]
    assert second["output_schema"] == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "the report's title"},
            "sections": {"type": "array", "items": {"type": "string"}},
            "score": {"type": "number"},
        },
        "required": ["title", "sections"],
    }
    left = [f"{x.where} {x.what}" for x in imported.leftovers]
    assert any("SerperDevTool" in x for x in left)
    assert any("verbose" in x for x in left)
    assert any("output_file" in x for x in left)


def test_crewai_hierarchical_gets_a_manager(write_specs: WriteSpecs, tmp_path: Path) -> None:
    crew_py = CREW_PY.replace("Process.sequential", "Process.hierarchical")
    project = write_specs(
        **{"config__agents.yaml": AGENTS, "config__tasks.yaml": TASKS, "crew.py": crew_py}
    )
    write_imported(import_crewai(project / "config", "openai/gpt-4o-mini"), tmp_path / "h")
    docs = _valid(tmp_path / "h")
    assert docs["crew.yaml"][0]["spec"]["manager"] == "manager"  # type: ignore[index]
    assert "context" not in docs["crew.yaml"][0]["spec"]  # type: ignore[operator]


CAGENT = """
models:
  model:
    provider: anthropic
    model: claude-sonnet-4-0
    max_tokens: 64000
agents:
  root:
    model: model
    description: Leads the team
    instruction: You lead. Hand work to the engineer.
    sub_agents: [engineer]
    toolsets:
      - type: filesystem
      - type: think
      - type: mcp
        command: uvx
        args: [mcp-server-time]
  engineer:
    model: openai/gpt-4o
    instruction: You write code.
    toolsets:
      - type: shell
      - type: mcp
        remote:
          url: http://localhost:8080/
          headers: {Authorization: "Bearer ${env.TOKEN}"}
    structured_output:
      name: result
      schema: {type: object, properties: {done: {type: boolean}}, required: [done]}
"""


def test_a_cagent_file_becomes_valid_specs(write_specs: WriteSpecs, tmp_path: Path) -> None:
    source = write_specs(**{"team.yaml": CAGENT}) / "team.yaml"
    imported = import_cagent(source, "openai/gpt-4o-mini")
    write_imported(imported, tmp_path / "c")
    docs = _valid(tmp_path / "c")
    root, engineer = docs["agents.yaml"]
    (shared,) = docs["models.yaml"]
    assert root["spec"]["model"] == shared["metadata"]["name"] == "model"  # type: ignore[index]
    assert shared["spec"] == {
        "model": "anthropic/claude-sonnet-4-0",
        "params": {"max_tokens": 64000},
    }
    assert root["spec"]["delegate_to"] == ["engineer"]  # type: ignore[index]
    assert {"file_read", "file_write", "mcp-server-time"} <= set(root["spec"]["tools"])  # type: ignore[index]
    assert engineer["spec"]["output_schema"]["required"] == ["done"]  # type: ignore[index]
    tools = {t["metadata"]["name"]: t for t in docs["tools.yaml"]}  # type: ignore[index]
    remote = tools["localhost-8080"]["spec"]["executor"]["server"]  # type: ignore[index]
    assert remote["headers"] == {"Authorization": "Bearer ${env:TOKEN}"}
    assert any("think" in x.what for x in imported.leftovers)


def test_an_adk_config_tree_becomes_valid_specs(write_specs: WriteSpecs, tmp_path: Path) -> None:
    folder = write_specs(
        **{
            "root.yaml": """
                agent_class: SequentialAgent
                name: pipeline
                description: Draft, then review.
                sub_agents: [{config_path: drafter.yaml}, {config_path: reviewer.yaml}]
            """,
            "drafter.yaml": """
                name: drafter
                model: gemini-2.5-flash
                instruction: Draft an answer.
                tools: [{name: google_search}]
            """,
            "reviewer.yaml": """
                name: reviewer
                instruction: Review the draft in {draft}.
            """,
        }
    )
    imported = import_adk(folder / "root.yaml", "openai/gpt-4o-mini")
    write_imported(imported, tmp_path / "a")
    docs = _valid(tmp_path / "a")
    assert [a["metadata"]["name"] for a in docs["agents.yaml"]] == ["drafter", "reviewer"]  # type: ignore[index]
    assert docs["agents.yaml"][0]["spec"]["model"] == "gemini/gemini-2.5-flash"  # type: ignore[index]
    (crew,) = docs["crews.yaml"]
    assert crew["spec"]["process"] == "sequential"  # type: ignore[index]
    assert [t["agent"] for t in crew["spec"]["tasks"]] == ["drafter", "reviewer"]  # type: ignore[index]
    left = " ".join(x.what for x in imported.leftovers)
    assert "google_search" in left and "{state}" in left


def test_kiln_import_writes_reports_and_never_overwrites(
    write_specs: WriteSpecs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_specs(**{"team.yaml": CAGENT}) / "team.yaml"
    out = tmp_path / "team"
    assert main(["import", "cagent", str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 6 specs" in printed and "toolset 'think'" in printed and "ok:" in printed
    assert main(["import", "cagent", str(source), "-o", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["import", "cagent", str(source), "-o", str(out), "--force"]) == 0
    assert main(["import", "crewai", str(tmp_path / "missing"), "-o", str(out)]) == 2
    not_cagent = write_specs(**{"x.yaml": "just: text\n"}) / "x.yaml"
    assert main(["import", "cagent", str(not_cagent), "-o", str(tmp_path / "x")]) == 1
    assert "no 'agents' mapping" in capsys.readouterr().err


def test_crewai_methods_named_apart_from_their_config_keys(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    crew_py = (
        CREW_PY.replace("def researcher(self)", "def researcher_agent(self)")
        .replace("def reporting_analyst(self)", "def analyst_agent(self)")
        .replace("def research_task(self)", "def research(self)")
        .replace("def reporting_task(self)", "def report(self)")
        .replace(
            "Task(config=self.tasks_config['research_task'])",
            "Task(config=self.tasks_config['research_task'], agent=self.analyst_agent())",
        )
    )
    tasks = TASKS.replace("  agent: researcher\n", "")
    project = write_specs(
        **{"config__agents.yaml": AGENTS, "config__tasks.yaml": tasks, "crew.py": crew_py}
    )
    imported = import_crewai(project, "openai/gpt-4o-mini")
    write_imported(imported, tmp_path / "k")
    docs = _valid(tmp_path / "k")
    tasks_out: Any = docs["crew.yaml"][0]["spec"]["tasks"]  # type: ignore[index]
    assert [t["agent"] for t in tasks_out] == ["reporting_analyst", "reporting_analyst"]
    assert "output_schema" in tasks_out[1]  # output_pydantic found through the method
    researcher: Any = docs["agents.yaml"][0]["spec"]
    assert researcher["tools"] == ["file_read"]  # tools found through the method
    assert not [x for x in imported.leftovers if "is not in agents.yaml" in x.what]
