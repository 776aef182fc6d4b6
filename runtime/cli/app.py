"""``kiln``: validate, compile, graph and diff spec folders; run agents and crews.

Exit codes: 0 success, 1 the specs (or plans) have errors, 2 the command line is wrong,
3 an internal error (a bug in kiln: the message says how to get the traceback).
``kiln plan diff --exit-code`` answers as diff(1) does: 0 the same, 1 changed, 2 a plan
cannot be read.
Diagnostics in text go to stderr; data (plans, JSON diagnostics, graphs) to stdout or -o.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from compiler.diagnostics import render_json, render_text, summary
from compiler.pipeline import Compilation, compile_paths
from runtime.cli.approvals import add_approvals_parser, approvals_command
from runtime.cli.completion import SHELLS, completion_script
from runtime.cli.importing import add_import_parser, import_command
from runtime.cli.memory import add_memory_parser, memory_command
from runtime.cli.run import add_run_parser, run_command
from runtime.cli.runs import add_runs_parser, runs_command
from runtime.cli.sandbox import add_sandbox_parser, sandbox_command
from runtime.cli.serve import (
    add_deploy_parser,
    add_keys_parser,
    add_serve_parser,
    deploy_command,
    keys_command,
    serve_command,
)
from runtime.cli.tools import add_tools_parser, tools_command
from specs.source.atomic import write_atomic

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_UNREADABLE = 2  # plan diff --exit-code: a plan cannot be read (diff(1)'s "trouble")


class _Version(argparse.Action):
    """``--version``: read from the installed distribution only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"kiln {version()}")
        parser.exit(EXIT_OK)


def version() -> str:
    """The installed agentkiln version, or the source tree's when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("agentkiln")
    except PackageNotFoundError:
        return "0+unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"kiln: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kiln", description="Compile and run declarative agent specs.")
    parser.add_argument("--version", action=_Version, nargs=0, help="print kiln's version")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_paths(
        sub: argparse.ArgumentParser, formats: tuple[str, ...] = ("text", "json")
    ) -> None:
        sub.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
        sub.add_argument(
            "--format", "--as", choices=formats, default=formats[0], help="output format"
        )
        sub.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    validate = commands.add_parser("validate", help="check specs and report every problem")
    with_paths(validate)
    compile_ = commands.add_parser("compile", help="compile specs into a plan")
    with_paths(compile_)
    compile_.add_argument(
        "-o", "--output", metavar="FILE", help="write the plan here (default: stdout)"
    )
    compile_.add_argument(
        "--explain", action="store_true", help="print reach and worst-case bounds"
    )
    graph = commands.add_parser("graph", help="draw the lowered execution graph")
    with_paths(graph, ("mermaid", "dot"))
    graph.add_argument("--crew", help="only this crew's graph")
    graph.add_argument("--agent", help="only this agent's graph")
    graph.add_argument("-o", "--output", metavar="FILE")
    plan = commands.add_parser("plan", help="work with compiled plans")
    plan_commands = plan.add_subparsers(dest="plan_command", required=True, parser_class=_Parser)
    diff = plan_commands.add_parser("diff", help="what changed between two plans")
    diff.add_argument("old", metavar="OLD.json")
    diff.add_argument("new", metavar="NEW.json")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument(
        "-v", "--verbose", action="store_true",
        help="show changed values whole (default: what differs in them)",
    )  # fmt: skip
    diff.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the plans differ, 2 when one cannot be read, 0 when they are the same",
    )
    completion = commands.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=SHELLS)
    add_run_parser(commands, _Parser)
    add_runs_parser(commands, _Parser)
    add_sandbox_parser(commands, _Parser)
    add_tools_parser(commands, _Parser)
    add_memory_parser(commands, _Parser)
    add_import_parser(commands, _Parser)
    add_approvals_parser(commands, _Parser)
    add_serve_parser(commands, _Parser)
    add_keys_parser(commands, _Parser)
    add_deploy_parser(commands, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the kiln process itself: short-lived, so the cyclic collector would
        gc.disable()  # only rescan the specs it has just read (a tenth of a large compile)
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        handler = {
            "validate": _validate,
            "compile": _compile,
            "graph": _graph,
            "plan": _plan,
            "run": run_command,
            "runs": runs_command,
            "sandbox": sandbox_command,
            "tools": tools_command,
            "memory": memory_command,
            "completion": _completion,
            "import": import_command,
            "approvals": approvals_command,
            "serve": serve_command,
            "keys": keys_command,
            "deploy": deploy_command,
        }
        return handler[args.command](args)
    except KeyboardInterrupt:
        print("kiln: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("KILN_DEBUG"):
            raise
        print(
            f"kiln: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in kiln. Run again with KILN_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _report(result: Compilation, args: argparse.Namespace, *, data_on_stdout: bool = False) -> None:
    if args.format == "json":  # to stderr when stdout carries the plan itself
        print(render_json(result.diagnostics), file=sys.stderr if data_on_stdout else sys.stdout)
        return
    if result.diagnostics:
        color = args.color == "always" or (args.color == "auto" and _tty(sys.stderr))
        print(render_text(result.diagnostics, result.files, color=color), file=sys.stderr)


def _tty(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _counts(result: Compilation) -> str:
    entries = result.program.user_entries() if result.program is not None else []
    specs, files = len(entries), len({e.doc.path for e in entries})
    return f"{specs} spec{'s' * (specs != 1)} in {files} file{'s' * (files != 1)}"


def _validate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    result = compile_paths(args.paths)
    _report(result, args)
    if args.format == "json":
        return EXIT_OK if result.ok else EXIT_ERRORS
    elapsed = time.perf_counter() - started
    if not result.ok:
        print(f"kiln: {summary(result.diagnostics)}: specs are not valid", file=sys.stderr)
        return EXIT_ERRORS
    warned = f" ({summary(result.diagnostics)})" if result.diagnostics else ""
    print(f"ok: {_counts(result)} valid{warned} in {elapsed * 1000:.0f} ms")
    return EXIT_OK


def _compile(args: argparse.Namespace) -> int:
    from compiler.explain import render_explain
    from compiler.passes.emit import dumps

    result = compile_paths(args.paths)
    _report(result, args, data_on_stdout=args.output in (None, "-"))
    if result.plan is None:
        print(f"kiln: {summary(result.diagnostics)}: no plan written", file=sys.stderr)
        return EXIT_ERRORS
    text = dumps(result.plan)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        if not _write(Path(args.output), text):
            return EXIT_ERRORS
        print(f"wrote {args.output}: {_counts(result)}, plan_hash {result.plan['plan_hash']}")
    if args.explain:
        stream = sys.stderr if args.output in (None, "-") else sys.stdout
        stream.write(render_explain(result.reach))
    return EXIT_OK


def _graph(args: argparse.Namespace) -> int:
    from compiler.graphviz import dot, mermaid

    result = compile_paths(args.paths)
    _report(result, args)
    if not result.ok:
        print(f"kiln: {summary(result.diagnostics)}: no graph drawn", file=sys.stderr)
        return EXIT_ERRORS
    graphs = list(result.graphs)
    for kind, wanted in (("Crew", args.crew), ("Agent", args.agent)):
        if wanted is not None:
            graphs = [g for g in graphs if g.name == f"{kind}/{wanted}"]
            if not graphs:
                from compiler.diagnostics import did_you_mean

                names = [g.name.split("/", 1)[1] for g in result.graphs if g.name.startswith(kind)]
                hint = did_you_mean(wanted, names) or "none are defined"
                print(f"kiln: error: no {kind.lower()} named '{wanted}'; {hint}", file=sys.stderr)
                return EXIT_USAGE
    text = (mermaid if args.format == "mermaid" else dot)(graphs)
    if args.output:
        if not _write(Path(args.output), text):
            return EXIT_ERRORS
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _completion(args: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(args.shell, build_parser()))
    return EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    from compiler.diff import diff_plans, render

    # With --exit-code, 1 means "changed", so "cannot read" needs a code of its own (diff's 2).
    unreadable = EXIT_UNREADABLE if args.exit_code else EXIT_ERRORS
    plans = []
    for path in (args.old, args.new):
        plan, problem = read_plan(Path(path))
        if problem is not None:
            print(f"kiln: error: {problem}", file=sys.stderr)
            return unreadable
        plans.append(plan)
    try:
        changes = diff_plans(plans[0], plans[1], whole=args.verbose)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a hand-edited plan
        print(
            f"kiln: error: the plans are not both kiln plans (malformed: {exc!r})", file=sys.stderr
        )
        return unreadable
    if args.format == "json":
        print(json.dumps([c.as_json() for c in changes], indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render(changes))
    return EXIT_ERRORS if args.exit_code and changes else EXIT_OK


def read_plan(path: Path) -> tuple[dict[str, Any], str | None]:
    """A plan file's data, or why it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return {}, f"cannot read {path}: {exc.strerror}"
    except RecursionError:
        return {}, f"{path} is not a JSON plan: it nests too deeply"
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{path} is not a JSON plan: {exc}"
    if not isinstance(data, dict) or "kiln_plan" not in data:
        problem: str | None = "no 'kiln_plan' key"
    else:
        problem = _plan_shape(data)
    if problem is not None:
        return {}, f"{path} is not a kiln plan ({problem}): make one with 'kiln compile -o'"
    return data, None


def _plan_shape(data: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a plan's data, if anything (enough for plan diff)."""
    for key in ("specs", "graphs", "analysis"):
        section = data.get(key, {})
        if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
            return f"'{key}' is not a mapping of mappings"
    for name, graph in data.get("graphs", {}).items():
        nodes, edges = graph.get("nodes", {}), graph.get("edges", [])
        if not isinstance(nodes, dict) or not all(
            isinstance(n, dict) and isinstance(n.get("kind"), str) for n in nodes.values()
        ):
            return f"graph '{name}' has malformed nodes"
        if not isinstance(edges, list) or not all(
            isinstance(e, dict) and {"source", "target", "kind"} <= set(e) for e in edges
        ):
            return f"graph '{name}' has malformed edges"
    return None


def _write(path: Path, text: str) -> bool:
    try:
        write_atomic(path, text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError):
            blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path)
            reason = f"{blocker} is a file, not a directory"
        print(f"kiln: error: cannot write {path}: {reason}", file=sys.stderr)
        return False
    return True
