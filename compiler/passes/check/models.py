"""Model strings of agents (``model`` and ``fallbacks``) are well formed, and priced."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic, error
from compiler.models import ModelProblem, parse_model, price
from compiler.symbols import Program
from specs.source import DataPath


def check_models(program: Program) -> Iterator[Diagnostic]:
    for entry in program.agents.values():
        if entry.origin != "user":
            continue
        spec = program.agent(entry.name).spec
        sites: list[tuple[DataPath, str]] = [(("spec", "model"), spec.model)]
        sites += [(("spec", "fallbacks", i), m) for i, m in enumerate(spec.fallbacks)]
        for path, text in sites:
            result = parse_model(text)
            if isinstance(result, ModelProblem):
                yield error("K4007", result.message, entry.doc.locate(path), result.hint)
            elif price(result) is None and spec.limits.max_cost_usd is None:
                yield error(
                    "K5003",
                    f"the price of '{text}' is not known, so agent '{entry.name}' "
                    "has no cost bound",
                    entry.doc.locate(path),
                    "set spec.limits.max_cost_usd to bound it",
                )
