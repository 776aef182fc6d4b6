"""OpenTelemetry traces of served runs, received by a real local OTLP receiver (a gRPC
server speaking OpenTelemetry's trace service): a span per run, task, model call and tool
call, with the GenAI semantic conventions' names and attributes, parented as they ran."""

from __future__ import annotations

import shutil
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from runtime.otel import Tracing
from tests.helpers import EXAMPLES
from tests.server_kit import free_port, serve

SCRIPT = """\
assistant:
  - thought: Count the words first.
    tool: word_count
    input: {text: "the quick brown fox"}
  - thought: 4 words.
    final: {answer: "4 words."}
writer:
  - {thought: Draft it., final: "a draft"}
"""

CREW = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: writer}
spec: {instructions: Write.}
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: desk}
spec:
  process: sequential
  inputs: {topic: {type: string}}
  tasks:
    - {name: draft, agent: writer, prompt: "Draft on {{ inputs.topic }}"}
"""


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the service's name
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_runs_are_traced_to_an_otlp_receiver(tmp_path: Path) -> None:
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        receiver, server
    )
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        folder = tmp_path / "agents"
        shutil.copytree(EXAMPLES / "quickstart", folder)
        (folder / "crew.yaml").write_text(CREW, encoding="utf-8")
        script = tmp_path / "script.yaml"
        script.write_text(SCRIPT, encoding="utf-8")
        tracing = Tracing(f"http://127.0.0.1:{port}")
        with serve([folder], tmp_path, model=f"scripted:{script}", tracing=tracing) as served:
            with served.client(served.key()) as http:
                agent = http.post("/v1/agents/assistant/execute",
                                  json={"inputs": {"question": "?"}}).json()  # fmt: skip
                crew = http.post("/v1/crews/desk/execute", json={"inputs": {"topic": "x"}})
                assert agent["status"] == crew.json()["status"] == "succeeded"
        deadline = time.monotonic() + 30  # the server's shutdown flushed them
        while len(receiver.spans) < 7:
            assert time.monotonic() < deadline, [s.name for s in receiver.spans]
            time.sleep(0.05)
    finally:
        server.stop(grace=None)
    by_name = {s.name: s for s in receiver.spans}
    run = by_name["invoke_agent assistant"]
    assert attributes(run)["gen_ai.operation.name"] == "invoke_agent"
    assert attributes(run)["kiln.run_id"] == agent["run_id"]
    chats = [s for s in receiver.spans if s.name.startswith("chat ")]
    assert len(chats) == 3 and all(c.parent_span_id for c in chats)
    chat = next(c for c in chats if c.trace_id == run.trace_id)
    assert chat.parent_span_id == run.span_id
    assert attributes(chat)["gen_ai.usage.input_tokens"] > 0
    tool = by_name["execute_tool word_count"]
    assert tool.parent_span_id == run.span_id
    assert attributes(tool)["gen_ai.tool.name"] == "word_count"
    assert tool.start_time_unix_nano <= tool.end_time_unix_nano <= run.end_time_unix_nano
    workflow = by_name["invoke_workflow desk"]
    task = by_name["task draft"]
    assert task.parent_span_id == workflow.span_id
    crew_chat = next(c for c in chats if c.trace_id == workflow.trace_id)
    assert crew_chat.parent_span_id == task.span_id
