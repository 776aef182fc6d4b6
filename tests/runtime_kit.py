"""Running specs on the scripted model in tests: small specs, a fast gateway, all events."""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from runtime.events import Event
from runtime.executor import RunResult
from runtime.llm.gateway import Gateway, RetryPolicy
from runtime.run import execute, prepare

_SCRIPTS = Path(tempfile.mkdtemp(prefix="kiln-scripts-"))

#: Retries without the waiting: the backoff itself is tested in test_gateway.
FAST = RetryPolicy(max_retries=3, base_s=0.0001, max_s=0.001)


def agent(
    name: str = "solver",
    *,
    tools: str = "[calculator, word_count]",
    strategy: str = "react",
    limits: str = "{}",
    output_schema: str | None = None,
    extra: str = "",
) -> str:
    lines = [
        "apiVersion: kiln/v1",
        "kind: Agent",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  instructions: You solve problems.",
        f"  tools: {tools}",
        f"  strategy: {strategy}",
        f"  limits: {limits}",
    ]
    if output_schema:
        lines.append(f"  output_schema: {output_schema}")
    return "\n".join(lines) + "\n" + textwrap.indent(textwrap.dedent(extra), "  ")


@dataclass
class Ran:
    result: RunResult
    events: list[Event]

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type: str) -> list[Event]:
        return [e for e in self.events if e.type == type]


def run_specs(
    folder: Path,
    script: str,
    *,
    agent: str | None = None,
    crew: str | None = None,
    text: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    gateway: Gateway | None = None,
    models: bool = False,
) -> Ran:
    """Run with ``script`` (YAML text) as every agent's model, unless ``models`` is true:
    then the specs' own model strings are used."""
    # Not beside the specs: that would be inside the repository for the examples.
    path = _SCRIPTS / f"{folder.parent.name}-{folder.name}.script.yaml"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    prepared = prepare(
        [folder],
        agent=agent,
        crew=crew,
        text=text,
        inputs=inputs,
        model=None if models else f"scripted:{path}",
        gateway=gateway or Gateway(retry=FAST),
    )
    events: list[Event] = []
    result = anyio.run(lambda: execute(prepared, sinks=[events.append]))
    return Ran(result, events)


def normalised(events: list[Event]) -> list[dict[str, Any]]:
    """Events without what differs between identical runs: ids, times, durations."""
    out = []
    for e in events:
        obj = e.as_json()
        for key in ("run_id", "ts", "duration_ms"):
            obj.pop(key)
        obj["data"] = {k: v for k, v in obj["data"].items() if k != "duration_ms"}
        out.append(obj)
    return out
