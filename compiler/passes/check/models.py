"""Model strings of agents (``model`` and ``fallbacks``) are well formed, and priced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from compiler.diagnostics import Diagnostic, error
from compiler.models import ModelProblem, parse_model, price
from compiler.symbols import Program
from specs.source import DataPath


def check_tot(program: Program) -> Iterator[Diagnostic]:
    """A tree of thought must fit in its agent's iterations, or it never answers."""
    for entry in program.agents.values():
        if entry.origin != "user" or entry.lost("spec"):
            continue
        spec = program.agent(entry.name).spec
        if spec.strategy != "tot":
            continue
        needs = spec.tot.depth * spec.tot.breadth * 2 + 1
        if needs > spec.limits.max_iterations:
            yield error(
                "K5006",
                f"agent '{entry.name}' thinks in a tree of {spec.tot.depth} levels of "
                f"{spec.tot.breadth} branches: {needs} model calls, but its max_iterations is "
                f"{spec.limits.max_iterations}",
                entry.doc.locate(("spec", "strategy")),
                f"raise limits.max_iterations to {needs}, or make the tree smaller",
            )


def check_models(program: Program) -> Iterator[Diagnostic]:
    for entry in program.agents.values():
        if entry.origin != "user":
            continue
        spec = program.agent(entry.name).spec
        sites: list[tuple[DataPath, str]] = [(("spec", "model"), spec.model)]
        sites += [(("spec", "fallbacks", i), m) for i, m in enumerate(spec.fallbacks)]
        folder = Path(entry.doc.path).parent
        for path, text in sites:
            result = parse_model(text)
            if isinstance(result, ModelProblem):
                yield error("K4007", result.message, entry.doc.locate(path), result.hint)
            elif result.kind == "scripted" and not (folder / result.name).is_file():
                yield error(
                    "K4014",
                    f"the scripted model's file {result.name!r} does not exist "
                    f"(looked for {folder / result.name})",
                    entry.doc.locate(path),
                    "a scripted model's path is relative to the spec's file",
                )
            elif price(result) is None and spec.limits.max_cost_usd is None:
                yield error(
                    "K5003",
                    f"the price of '{text}' is not known, so agent '{entry.name}' "
                    "has no cost bound",
                    entry.doc.locate(path),
                    "set spec.limits.max_cost_usd to bound it",
                )
