"""OpenTelemetry traces of runs, following the GenAI semantic conventions: a span per run
(``invoke_agent``, or ``invoke_workflow`` for a crew), per crew task, per model call
(``chat``) and per tool call (``execute_tool``), built from the run's events and exported
over OTLP (gRPC) when an endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``).

OpenTelemetry is imported only when tracing is on.
"""

from __future__ import annotations

import os
from typing import Any

from runtime.events import Event

__all__ = ["Tracing", "tracing_from_env"]


def tracing_from_env(service: str = "kiln") -> Tracing | None:
    """Tracing to ``$OTEL_EXPORTER_OTLP_ENDPOINT`` (e.g. ``http://collector:4317``), or
    ``None`` when it is not set."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return Tracing(endpoint, service=service) if endpoint else None


class Tracing:
    """Spans of runs from their events, batched to an OTLP endpoint."""

    def __init__(self, endpoint: str, *, service: str = "kiln") -> None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        insecure = endpoint.startswith("http://")
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=insecure))
        )
        self.tracer = self.provider.get_tracer("kiln")
        #: open spans by run, then by task ("" for the run's own)
        self._open: dict[str, dict[str, Any]] = {}

    def sink(self, event: Event) -> None:
        """An event sink: call it with every event of every run."""
        from opentelemetry import trace

        spans = self._open.setdefault(event.run_id, {})
        data = event.data
        start = _ns(event.ts)
        end = _ns(event.ts + (event.duration_ms or 0) / 1000)
        if event.type == "run.start":
            kind = data.get("kind")
            name = str(data.get("target", "")).partition("/")[2]
            operation = "invoke_agent" if kind == "agent" else "invoke_workflow"
            spans[""] = self.tracer.start_span(
                f"{operation} {name}", start_time=start,
                attributes={"gen_ai.operation.name": operation, "gen_ai.agent.name": name,
                            "kiln.run_id": event.run_id, "kiln.target": str(data.get("target")),
                            "kiln.plan_hash": str(data.get("plan_hash") or "")},
            )  # fmt: skip
            return
        parent = spans.get(event.task or "") or spans.get("")
        context = trace.set_span_in_context(parent) if parent is not None else None
        if event.type == "task.start" and event.task:
            spans[event.task] = self.tracer.start_span(
                f"task {event.task}", context=context, start_time=start,
                attributes={"kiln.task": event.task, "gen_ai.agent.name": event.agent or ""},
            )  # fmt: skip
        elif event.type == "agent.thought":
            usage = data.get("usage") or {}
            model = str(data.get("model") or "")
            span = self.tracer.start_span(
                f"chat {model}", context=context, start_time=start,
                attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                    "gen_ai.response.model": model, "gen_ai.agent.name": event.agent or "",
                    "gen_ai.usage.input_tokens": int(usage.get("prompt_tokens") or 0),
                    "gen_ai.usage.output_tokens": int(usage.get("completion_tokens") or 0),
                    "kiln.cost_usd": float(usage.get("cost_usd") or 0),
                },
            )  # fmt: skip
            span.end(end_time=end)
        elif event.type == "tool.result":
            tool = str(data.get("tool"))
            span = self.tracer.start_span(
                f"execute_tool {tool}", context=context, start_time=start,
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                            "gen_ai.tool.call.id": str(data.get("call_id") or ""),
                            "kiln.status": str(data.get("status"))},
            )  # fmt: skip
            if data.get("status") != "ok":
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(data.get("error"))))
            span.end(end_time=end)
        elif event.type == "task.complete" and event.task in spans:
            span = spans.pop(event.task)
            span.set_attribute("kiln.status", str(data.get("status")))
            span.end(end_time=end)
        elif event.type == "run.complete":
            for task, span in list(spans.items()):
                if task:
                    span.end(end_time=end)
            run = spans.get("")
            if run is not None:
                status = str(data.get("status"))
                run.set_attribute("kiln.status", status)
                if status != "succeeded":
                    run.set_status(trace.Status(trace.StatusCode.ERROR, status))
                run.end(end_time=end)
            self._open.pop(event.run_id, None)

    def flush(self, timeout_s: float = 10) -> None:
        self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
