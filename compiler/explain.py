"""``kiln compile --explain``: reach and worst-case bounds, for a reviewer to read."""

from __future__ import annotations

from collections.abc import Mapping

from compiler.passes.analyze import Reach


def render_explain(reach: Mapping[str, Reach]) -> str:
    out: list[str] = []
    for subject, r in reach.items():
        b = r.bounds
        cost = (
            "unknown (a model's price is not known)"
            if b.cost_usd is None
            else f"${b.cost_usd:,.4f}"
        )
        out.append(subject)
        tools = ", ".join(f"{t} ({how})" for t, how in sorted(r.tools.items())) or "none"
        out.append(f"  tools:    {tools}")
        if r.agents:
            out.append(f"  agents:   {', '.join(r.agents)}")
        secrets = ", ".join(f"${{env:{s}}}" for s in r.secrets) or "none"
        out.append(f"  secrets:  {secrets}")
        out.append(
            f"  at most:  {b.model_calls:,} model calls, {b.tool_calls:,} tool calls, "
            f"{b.tokens:,} tokens, cost {cost}"
        )
    return "\n".join(out) + "\n"
