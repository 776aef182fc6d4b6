"""``kiln tools list`` and ``kiln tools search``: the tool registry from the command line.

Both compile the given spec folders (the standard library is always there), list the MCP
servers they use (``--no-servers`` skips that) and then print the tools, or the tools that
best match a query, found by meaning with the same index agents use (``find_tools``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runtime.cli.options import add_format_option

if TYPE_CHECKING:
    from runtime.tools.registry import Registry

__all__ = ["add_tools_parser", "tools_command"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: where the discovery index is cached, below the working directory
INDEX_DIR = Path(".kiln", "cache", "tool-index")

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


def add_tools_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    tools = commands.add_parser("tools", help="list the tools specs provide, or search them")
    sub = tools.add_subparsers(dest="tools_command", required=True, parser_class=parser_class)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "paths",
            nargs="*",
            metavar="PATH",
            help="spec files or folders (default: none, the standard library only)",
        )
        add_format_option(p, "print JSON")
        p.add_argument(
            "--no-servers",
            action="store_true",
            help="do not start MCP servers to list their tools",
        )

    listing = sub.add_parser("list", help="every tool, as models see it")
    common(listing)
    search = sub.add_parser("search", help="the tools that best match a query, by meaning")
    search.add_argument("query", metavar="QUERY")
    common(search)
    search.add_argument("-k", "--top-k", type=int, default=5, help="how many (default 5)")
    search.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only tools with this label (repeatable)",
    )
    search.add_argument(
        "--embedder",
        default=None,
        help="default (fast, lexical, offline), sentence (all-MiniLM-L6-v2), or "
        "litellm/<model>; default: $KILN_EMBEDDER or default",
    )


def tools_command(args: argparse.Namespace) -> int:
    from compiler.diagnostics import render_text
    from compiler.pipeline import compile_paths

    for path in args.paths:
        if not Path(path).exists():
            print(f"kiln tools: {path}: no such file or folder", file=sys.stderr)
            return EXIT_USAGE
    labels = {}
    for item in getattr(args, "label", []):
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"kiln tools: --label {item!r}: give KEY=VALUE", file=sys.stderr)
            return EXIT_USAGE
        labels[key] = value
    if getattr(args, "top_k", 1) < 1:
        print("kiln tools: --top-k must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    compilation = compile_paths(args.paths)
    if not compilation.ok or compilation.program is None:
        color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        sys.stderr.write(render_text(compilation.errors, compilation.files, color=color))
        return EXIT_FAILED
    registry = _registry(compilation.program, servers=not args.no_servers)
    if args.tools_command == "list":
        return _list(registry, args.json)
    return _search(registry, args.query, args.top_k, labels, args.embedder, args.json)


def _registry(program: Any, *, servers: bool) -> Registry:
    import anyio

    from runtime.tools.registry import Registry

    registry = Registry(program)
    if servers and registry.unlisted():

        async def load() -> None:
            from runtime.tools.mcp import McpHub

            async with McpHub() as hub:
                await registry.load(hub)

        anyio.run(load)
    for problem in registry.problems:
        print(f"kiln tools: warning: {problem}", file=sys.stderr)
    for spec in registry.unlisted():
        print(
            f"kiln tools: tool '{spec}' imports an MCP server's tools, not listed (--no-servers)",
            file=sys.stderr,
        )
    return registry


def _list(registry: Registry, as_json: bool) -> int:
    rows = [
        {
            "name": e.name,
            "qualified": e.qualified,
            "spec": e.spec,
            "origin": e.origin,
            "executor": e.tool.spec.executor.type,
            "description": e.description,
        }
        for e in registry
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['executor']:<8}  {_line(row['description'])}")
    return EXIT_OK


def _search(
    registry: Registry,
    query: str,
    top_k: int,
    labels: dict[str, str],
    embedder: str | None,
    as_json: bool,
) -> int:
    from runtime.embed import EmbedderError
    from runtime.tools.finder import ToolFinder

    try:
        finder = ToolFinder(registry, embedder=embedder, cache_dir=INDEX_DIR)
        hits = finder.search(query, top_k, labels=labels)
    except (ValueError, ImportError, EmbedderError) as exc:
        print(f"kiln tools: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        rows = [
            {"name": h.name, "score": round(float(h.score), 4), "description": h.description}
            for h in hits
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not hits:
        print("no tools match", file=sys.stderr)
        return EXIT_OK
    width = max(len(h.name) for h in hits)
    for hit in hits:
        print(f"{hit.name:<{width}}  {float(hit.score):.3f}  {_line(hit.description)}")
    return EXIT_OK


def _line(text: str, width: int = 100) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"
