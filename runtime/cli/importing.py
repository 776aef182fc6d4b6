"""``kiln import crewai|cagent|adk``: write kiln specs from another framework's files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TypeVar

__all__ = ["add_import_parser", "import_command"]

P = TypeVar("P", bound=argparse.ArgumentParser)
DEFAULT_MODEL = "openai/gpt-4o-mini"


def add_import_parser(commands: argparse._SubParsersAction[P], parser_class: type[P]) -> None:
    """Add ``import crewai|cagent|adk`` to the ``kiln`` sub-commands."""
    imp = commands.add_parser("import", help="write kiln specs from CrewAI, cagent or ADK files")
    sub = imp.add_subparsers(dest="framework", required=True, parser_class=parser_class)
    for name, what in (
        ("crewai", "a CrewAI project (config/agents.yaml, config/tasks.yaml, crew.py)"),
        ("cagent", "a cagent agent file (YAML)"),
        ("adk", "a Google ADK agent config file (YAML)"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("path", metavar="PATH", help=what)
        p.add_argument(
            "-o", "--output", metavar="DIR", default=None,
            help="where to write the specs (default: kiln-<name of PATH>)",
        )  # fmt: skip
        p.add_argument(
            "--model", default=DEFAULT_MODEL,
            help=f"the model of agents that name none (default: {DEFAULT_MODEL})",
        )  # fmt: skip
        p.add_argument("--force", action="store_true", help="overwrite files that exist")


def import_command(args: argparse.Namespace) -> int:
    """Write the specs, print what was left out, then validate what was written."""
    from compiler.diagnostics import render_text, summary
    from compiler.pipeline import compile_paths
    from runtime.importers import write_specs
    from runtime.importers.adk import import_adk
    from runtime.importers.cagent import import_cagent
    from runtime.importers.crewai import import_crewai

    source = Path(args.path)
    if not source.exists():
        print(f"kiln: error: {source} does not exist", file=sys.stderr)
        return 2
    importer = {"crewai": import_crewai, "cagent": import_cagent, "adk": import_adk}
    try:
        imported = importer[args.framework](source, args.model)
    except (OSError, ValueError) as exc:  # unreadable files, YAML that is not the framework's
        print(f"kiln: error: cannot import {source}: {exc}", file=sys.stderr)
        return 1
    stem = source.resolve().stem if source.is_file() else source.resolve().name
    out = Path(args.output or f"kiln-{stem}")
    try:
        written = write_specs(imported, out, force=args.force)
    except (FileExistsError, OSError) as exc:
        print(f"kiln: error: {exc}", file=sys.stderr)
        return 1
    documents = sum(len(docs) for docs in imported.files.values())
    print(f"wrote {documents} spec{'s' * (documents != 1)} in {len(written)} file(s) to {out}")
    if imported.leftovers:
        print(f"not carried over ({len(imported.leftovers)}):")
        for leftover in imported.leftovers:
            print(leftover.render())
    result = compile_paths([out])
    if result.diagnostics:
        print(render_text(result.diagnostics, result.files, color=False), file=sys.stderr)
    if not result.ok:
        print(f"kiln: {summary(result.diagnostics)} in the imported specs", file=sys.stderr)
        return 1
    print(f"ok: the imported specs are valid ('kiln validate {out}')")
    return 0
