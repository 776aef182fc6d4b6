"""Prometheus metrics of a server (``GET /metrics``, the text exposition format), counted
from the events of the runs it serves and from its requests."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Mapping

from runtime.events import Event

__all__ = ["Metrics"]

#: step latency buckets, in seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Labels = tuple[tuple[str, str], ...]


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.sum += value


class Metrics:
    """Counters, gauges and histograms, by name and labels."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[Labels, Histogram]] = defaultdict(dict)
        #: gauges read when scraped
        self.gauges: dict[str, Callable[[], float]] = {}

    def count(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        found = self.histograms[name].get(key)
        if found is None:
            found = self.histograms[name][key] = Histogram()
        found.observe(value)

    def event(self, event: Event) -> None:
        """Count what one run event says."""
        data = event.data
        if event.type == "agent.thought":
            usage = data.get("usage") or {}
            model = str(data.get("model") or "unknown")
            self.count("kiln_model_calls_total", model=model)
            self.count("kiln_model_tokens_total", float(usage.get("prompt_tokens") or 0),
                       model=model, kind="prompt")  # fmt: skip
            self.count("kiln_model_tokens_total", float(usage.get("completion_tokens") or 0),
                       model=model, kind="completion")  # fmt: skip
            self.count("kiln_model_cost_usd_total", float(usage.get("cost_usd") or 0),
                       model=model)  # fmt: skip
            if event.duration_ms is not None:
                self.observe("kiln_step_seconds", event.duration_ms / 1000, kind="model")
        elif event.type == "tool.result":
            self.count("kiln_tool_calls_total", tool=str(data.get("tool")),
                       status=str(data.get("status")))  # fmt: skip
            if event.duration_ms is not None:
                self.observe("kiln_step_seconds", event.duration_ms / 1000, kind="tool")
        elif event.type == "run.complete":
            self.count("kiln_runs_total", status=str(data.get("status")))
            if event.duration_ms is not None:
                self.observe("kiln_run_seconds", event.duration_ms / 1000)

    def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines.append(f"# TYPE {name} counter")
            lines.extend(f"{name}{_labels(k)} {v:g}" for k, v in sorted(series.items()))
        for name, gauge in sorted(self.gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {gauge():g}")
        for name, hists in sorted(self.histograms.items()):
            lines.append(f"# TYPE {name} histogram")
            for key, hist in sorted(hists.items()):
                running = 0
                for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f"{name}_bucket{_labels(key, le=le)} {running}")
                lines.append(f"{name}_sum{_labels(key)} {hist.sum:g}")
                lines.append(f"{name}_count{_labels(key)} {running}")
        return "\n".join(lines) + "\n"


def _labels(key: Labels, **more: str) -> str:
    items: Mapping[str, str] = {**dict(key), **more}
    if not items:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in items.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
