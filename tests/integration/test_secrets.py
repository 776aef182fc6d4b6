"""Secrets masked everywhere (#24 item 1), with real components: an ``http`` tool sends
``${env:…}`` to a local server that echoes it back (plain, and URL-encoded in a query
that comes back decoded), an in-process tool prints a credential base64- and URL-encoded,
a run fails with the secret in its error. The value is in no event, no trace or journal
row (the SQLite file's bytes), no prompt the model was given, and not in the result."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from runtime.engine import Engine, Settings, tool
from runtime.events import Event
from runtime.llm.gateway import Gateway, default_backend
from runtime.llm.types import ModelRequest
from tests.fixtures.petstore_app import serve
from tests.integration.test_memory_runs import Recording
from tests.runtime_kit import FAST

SECRET = "s3cr3t/+value=tok"  # characters that URL- and base64-encoding change
CREDENTIAL = "cred-Zq81xT4vNp"

SPECS = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: echo}
spec:
  description: Echo what is sent.
  input_schema: {type: object}
  executor:
    type: http
    url: "BASE/echo?t={{ 'x' }}"
    headers: {X-Token: "Bearer ${env:KILN_LEAK_SECRET}"}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: leaky}
spec:
  instructions: Call the tools.
  tools: [echo, encoded]
"""

SCRIPT = """\
leaky:
  - {thought: echo, tool: echo, input: {}}
  - {thought: encoded, tool: encoded, input: {}}
  - {thought: done, final: "FINAL"}
"""


@tool
def encoded() -> dict[str, str]:
    """Show the credential, encoded."""
    raw = CREDENTIAL.encode()
    return {"b64": base64.b64encode(raw).decode(), "url": quote(CREDENTIAL, safe="")}


def test_a_secret_a_tool_echoes_is_masked_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_LEAK_SECRET", SECRET)
    monkeypatch.setenv("KILN_LEAK_API_KEY", CREDENTIAL)  # a credential by its name
    folder = tmp_path / "agents"
    folder.mkdir()
    script = tmp_path / "script.yaml"
    seen: list[ModelRequest] = []
    events: list[Event] = []
    with serve() as base:
        (folder / "leaky.yaml").write_text(SPECS.replace("BASE", base), encoding="utf-8")
        final = f"the token is {SECRET} and {CREDENTIAL}"
        script.write_text(textwrap.dedent(SCRIPT).replace("FINAL", final), encoding="utf-8")
        gateway = Gateway(retry=FAST, factory=lambda m: Recording(default_backend(m), seen))
        db = tmp_path / "runs.db"
        settings = Settings(model=f"scripted:{script}", gateway=gateway, allow_hosts=["*"])


        async def main() -> Any:
            async with Engine([folder], settings, runs_db=db, tools=[encoded]) as engine:
                return await engine.run("leaky", input="go", sinks=[events.append])

        result = anyio.run(main)
    results = [e.data for e in events if e.type == "tool.result"]
    assert results[0]["status"] == "ok", results
    echoed = results[0]["output"]["json"]["headers"]["x-token"]
    assert echoed == "Bearer ***KILN_LEAK_SECRET***"  # it did come back, masked
    assert results[1]["output"] == {"b64": "***KILN_LEAK_API_KEY***",
                                    "url": "***KILN_LEAK_API_KEY***"}  # fmt: skip
    forms = [SECRET, quote(SECRET, safe=""), CREDENTIAL, base64.b64encode(CREDENTIAL.encode())
             .decode()]  # fmt: skip
    everything = repr([e.as_json() for e in events]) + repr(result.as_json())
    everything += repr([r.messages for r in seen])  # what the model was given
    for form in forms:
        assert form not in everything, form
    import sqlite3

    with sqlite3.connect(tmp_path / "runs.db") as conn:
        for table in ("runs", "events", "journal", "approvals"):
            rows = repr(conn.execute(f"SELECT * FROM {table}").fetchall())
            assert SECRET not in rows and CREDENTIAL not in rows, table
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("runs.db*"))
    for form in forms:
        assert form.encode() not in stored, form
    assert "***KILN_LEAK_SECRET***" in str(result.output)


def test_traces_journals_and_memories_are_their_owners_alone(tmp_path: Path) -> None:
    """#24 item 4: 0600 files (and -wal, -shm), 0700 folders, whatever the umask."""
    import os
    import stat

    from runtime.memory.graph.nx import NetworkxGraph
    from runtime.memory.records import Turn
    from runtime.memory.short_term.sqlite import SqliteShortTerm
    from runtime.trace import TraceStore

    old = os.umask(0o000)  # the loosest umask: nothing is taken away
    try:
        with TraceStore(tmp_path / "kiln" / "runs.db") as store:
            store.start_run("r", target="Agent/a", kind="agent", inputs={}, started=0.0)
        short = SqliteShortTerm(tmp_path / "memory" / "short.db")
        graph = NetworkxGraph(tmp_path / "memory" / "graph.db")

        async def use() -> None:
            await short.append("ns", [Turn(role="user", content="hi", agent="a", ts=1.0)])
            await short.window("ns")
            await graph.counts("ns")
            await graph.close()
            await short.close()

        anyio.run(use)
    finally:
        os.umask(old)
    made = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in made} >= {"runs.db", "short.db", "graph.db"}
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
