"""Model strings of agents (``model`` and ``fallbacks``) are well formed, and priced."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from compiler.diagnostics import Diagnostic, closest, error
from compiler.models import ModelProblem, ModelRef, parse_model, price
from compiler.symbols import Program, SpecEntry
from specs import ModelDef
from specs.source import DataPath
from specs.source.paths import outside, path_problem


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
    for entry in program.models.values():
        if entry.origin != "user" or entry.lost("spec"):
            continue
        shared = entry.model
        assert isinstance(shared, ModelDef)
        sites: list[tuple[DataPath, str]] = [(("spec", "model"), shared.spec.model)]
        sites += [(("spec", "fallbacks", i), m) for i, m in enumerate(shared.spec.fallbacks)]
        for path, text in sites:
            yield from _site(entry, path, text, priced=True)
    for entry in program.agents.values():
        if entry.origin != "user":
            continue
        spec = program.agent(entry.name).spec
        named = _named_model(program, entry)
        # A Model spec's own strings were checked at the Model; what stays for the agent is
        # the price of what it runs, and its own fallbacks (after the Model's).
        own = spec.fallbacks[len(named.spec.fallbacks) :] if named is not None else spec.fallbacks
        sites = [(("spec", "model"), spec.model)]
        sites += [(("spec", "fallbacks", i), m) for i, m in enumerate(own)]
        for path, text in sites:
            if named is not None and path == ("spec", "model"):
                ref = parse_model(text)
                if isinstance(ref, ModelRef):
                    yield from _unpriced(entry, path, text, ref, spec.limits.max_cost_usd)
                continue
            yield from _site(
                entry, path, text, priced=spec.limits.max_cost_usd is None, models=program.models
            )


def _named_model(program: Program, entry: SpecEntry) -> ModelDef | None:
    """The Model spec an agent's document names in ``model``, if it names one."""
    data = entry.doc.data
    raw = data.get("spec", {}).get("model") if isinstance(data, dict) else None
    if not isinstance(raw, str) or "/" in raw or ":" in raw:
        return None
    named = program.models.get(raw)
    shared = named.model if named is not None else None
    return shared if isinstance(shared, ModelDef) else None


def _site(
    entry: SpecEntry,
    path: DataPath,
    text: str,
    *,
    priced: bool,
    models: Collection[str] = (),
) -> Iterator[Diagnostic]:
    folder = Path(entry.doc.path).parent
    result = parse_model(text)
    if isinstance(result, ModelProblem):
        hint = result.hint
        near = closest(text, models) if "/" not in text and ":" not in text else None
        if near is not None:  # a Model spec's name, misspelt
            hint = f"did you mean '{near}'?"
        yield error("K4007", result.message, entry.doc.locate(path), hint)
    elif result.kind == "scripted" and (problem := _unusable(folder / result.name)):
        yield error(
            "K4014",
            f"the scripted model's file {result.name[:100]!r} cannot be used: {problem}",
            entry.doc.locate(path),
            "a scripted model's path is relative to the spec's file",
        )
    elif result.kind == "scripted" and not _is_file(folder / result.name):
        yield error(
            "K4014",
            f"the scripted model's file {result.name!r} does not exist "
            f"(looked for {folder / result.name})",
            entry.doc.locate(path),
            "a scripted model's path is relative to the spec's file",
        )
    elif priced and entry.kind == "Agent":
        yield from _unpriced(entry, path, text, result, None)


def _unpriced(
    entry: SpecEntry, path: DataPath, text: str, ref: ModelRef, bound: float | None
) -> Iterator[Diagnostic]:
    if price(ref) is None and bound is None:
        yield error(
            "K5003",
            f"the price of '{text}' is not known, so agent '{entry.name}' has no cost bound",
            entry.doc.locate(path),
            "set spec.limits.max_cost_usd to bound it",
        )


def _unusable(path: Path) -> str | None:
    problem = path_problem(str(path))
    if problem is not None:
        return problem
    root = outside(path)
    return f"it is outside the folder being compiled ({root})" if root is not None else None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False
