"""Pass 7, analyze: what each agent and crew can reach, and worst-case bounds on a run.

Reach is what a reviewer needs before merging a spec change: the tools an agent can call
(listed, found through discovery, or through an agent it delegates to) and the
``${env:NAME}`` secrets those specs read. Bounds follow from the limits: an agent run makes
at most ``max_iterations`` model calls and as many tool calls, spends at most
``max_tokens``, and a delegation is a tool call that runs the delegate's whole budget. A crew
adds up its tasks; under a manager (hierarchical), each of the manager's own tool calls may
run the dearest task or delegate once.
Cost is tokens at the dearest known price among the model and its fallbacks, capped by
``max_cost_usd``; it is ``None`` when a price is unknown (the check pass warns, K5003).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from compiler.models import ModelRef, parse_model, price
from compiler.reach import tools_of
from compiler.secrets import env_names
from compiler.symbols import Program


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    model_calls: int
    tool_calls: int
    tokens: int
    cost_usd: float | None

    def __add__(self, other: Bounds) -> Bounds:
        cost = (
            None
            if self.cost_usd is None or other.cost_usd is None
            else self.cost_usd + other.cost_usd
        )
        return Bounds(
            model_calls=self.model_calls + other.model_calls,
            tool_calls=self.tool_calls + other.tool_calls,
            tokens=self.tokens + other.tokens,
            cost_usd=cost,
        )

    def times(self, n: int) -> Bounds:
        return Bounds(
            model_calls=self.model_calls * n,
            tool_calls=self.tool_calls * n,
            tokens=self.tokens * n,
            cost_usd=None if self.cost_usd is None else self.cost_usd * n,
        )

    def capped(self, max_cost: float | None) -> Bounds:
        if max_cost is None:
            return self
        cost = max_cost if self.cost_usd is None else min(self.cost_usd, max_cost)
        return Bounds(
            model_calls=self.model_calls,
            tool_calls=self.tool_calls,
            tokens=self.tokens,
            cost_usd=cost,
        )

    def as_json(self) -> dict[str, Any]:
        cost = None if self.cost_usd is None else round(self.cost_usd, 6)
        return {
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "tokens": self.tokens,
            "cost_usd": cost,
        }


_ZERO = Bounds(model_calls=0, tool_calls=0, tokens=0, cost_usd=0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reach:
    """What one agent or crew can reach, and its worst-case bounds."""

    tools: dict[str, str]  # tool name -> how: "listed", "discovery" or "via <agent>"
    agents: tuple[str, ...]  # agents it may run (delegates, crew members)
    secrets: tuple[str, ...]
    bounds: Bounds

    def as_json(self) -> dict[str, Any]:
        return {
            "tools": dict(sorted(self.tools.items())),
            "agents": list(self.agents),
            "secrets": list(self.secrets),
            "bounds": self.bounds.as_json(),
        }


def analyze(program: Program) -> dict[str, Reach]:
    """Reach and bounds for every agent (``Agent/<name>``) and crew (``Crew/<name>``)."""
    an = _Analyzer(program)
    result = {f"Agent/{n}": an.agent(n) for n in sorted(program.agents)}
    result.update({f"Crew/{n}": an.crew(n) for n in sorted(program.crews)})
    return result


class _Analyzer:
    def __init__(self, program: Program) -> None:
        self.program = program
        self._secrets: dict[str, set[str]] = {}
        self.agent = functools.cache(self._agent)

    def _secrets_of(self, kind: str, name: str) -> set[str]:
        """The secrets one spec reads itself (cached: tools are shared by many agents)."""
        key = f"{kind}/{name}"
        if key not in self._secrets:
            entry = self.program.entry(key)
            self._secrets[key] = env_names(entry.doc.data) if entry is not None else set()
        return set(self._secrets[key])

    def _agent(self, name: str) -> Reach:
        spec = self.program.agent(name).spec
        tools = {t: how for t, how in tools_of(self.program, name)}
        secrets = self._secrets_of("Agent", name)
        for tool in tools:
            secrets |= self._secrets_of("Tool", tool)
        if spec.memory is not None:
            secrets |= self._secrets_of("MemoryPolicy", spec.memory)
        agents: set[str] = set()
        worst_delegate = _ZERO
        for other in spec.delegate_to:
            if other not in self.program.agents:
                continue
            sub = self.agent(other)
            agents |= {other, *sub.agents}
            secrets |= set(sub.secrets)
            for tool, how in sub.tools.items():
                tools.setdefault(tool, f"via {other}" if not how.startswith("via") else how)
            worst_delegate = _dearer(worst_delegate, sub.bounds)
        own = _own_bounds(self.program, name)
        bounds = (own + worst_delegate.times(own.tool_calls)) if spec.delegate_to else own
        return Reach(
            tools=tools,
            agents=tuple(sorted(agents)),
            secrets=tuple(sorted(secrets)),
            bounds=bounds.capped(spec.limits.max_cost_usd),
        )

    def crew(self, name: str) -> Reach:
        spec = self.program.crew(name).spec
        members = [t.agent for t in spec.tasks if t.agent in self.program.agents]
        tools: dict[str, str] = {}
        agents: set[str] = set()
        secrets = self._secrets_of("Crew", name)
        if spec.memory is not None:
            secrets |= self._secrets_of("MemoryPolicy", spec.memory)
        total = _ZERO
        for member in members:
            sub = self.agent(member)
            total = total + sub.bounds
        boss = self.program.manager(name)
        if boss is not None:
            # each tool call of the manager's own hands out a task or delegates: at worst
            # the dearest of those, once per call
            own = _own_bounds(self.program, boss)
            helpers = [*members, *self.program.agent(boss).spec.delegate_to]
            worst = functools.reduce(
                _dearer,
                (self.agent(m).bounds for m in helpers if m in self.program.agents),
                _ZERO,
            )
            total = own + worst.times(own.tool_calls)
            members.append(boss)
        for member in members:
            sub = self.agent(member)
            agents |= {member, *sub.agents}
            secrets |= set(sub.secrets)
            for tool in sub.tools:
                tools.setdefault(tool, f"via {member}")
        return Reach(
            tools=tools,
            agents=tuple(sorted(agents)),
            secrets=tuple(sorted(secrets)),
            bounds=total.capped(spec.limits.max_cost_usd),
        )


def _dearer(a: Bounds, b: Bounds) -> Bounds:
    """The componentwise worst of two bounds."""
    cost = None if a.cost_usd is None or b.cost_usd is None else max(a.cost_usd, b.cost_usd)
    return Bounds(
        model_calls=max(a.model_calls, b.model_calls),
        tool_calls=max(a.tool_calls, b.tool_calls),
        tokens=max(a.tokens, b.tokens),
        cost_usd=cost,
    )


def _own_bounds(program: Program, name: str) -> Bounds:
    spec = program.agent(name).spec
    limits = spec.limits
    per_million: float | None = 0.0
    for text in (spec.model, *spec.fallbacks):
        ref = parse_model(text)
        known = price(ref) if isinstance(ref, ModelRef) else None
        per_million = None if known is None or per_million is None else max(per_million, *known)
    cost = None if per_million is None else limits.max_tokens * per_million / 1_000_000
    return Bounds(
        model_calls=limits.max_iterations,
        tool_calls=limits.max_iterations,
        tokens=limits.max_tokens,
        cost_usd=cost,
    )
