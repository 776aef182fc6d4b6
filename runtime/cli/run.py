"""``kiln run``: compile, run an agent or a crew, stream what happens, print the answer."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from runtime.cli.options import add_format_option
from runtime.cli.runs import DEFAULT_DB, db_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_run_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="compile and run an agent or a crew",
        description="Compile the specs, run one agent or crew, stream its steps to stderr and "
        "print the final answer to stdout. Exit 0 when the run succeeds, 1 when it fails.",
    )
    run.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    who = run.add_mutually_exclusive_group()
    who.add_argument("--agent", metavar="NAME", help="run this agent")
    who.add_argument("--crew", metavar="NAME", help="run this crew")
    run.add_argument("--input", metavar="TEXT", help="the request (fills the one string input)")
    run.add_argument("--inputs", metavar="JSON", help="inputs as a JSON object")
    run.add_argument(
        "--model", metavar="MODEL", help="use this model for every agent (e.g. scripted:FILE)"
    )
    run.add_argument(
        "--approve-all",
        action="store_true",
        help="let tools that require approval run without asking (default: ask at the "
        "terminal; a run that is not at a terminal fails at the first such call)",
    )
    run.add_argument(
        "--sandbox",
        choices=("nsjail", "bwrap", "none"),
        help="the sandbox for python and shell tools (default: the first that works here)",
    )
    run.add_argument(
        "--pool",
        metavar="SIZE[,WARM[,MAX_CALLS]]",
        help="sandbox workers per limit profile, started ahead, and calls before a worker "
        "is replaced (default 4,1,500)",
    )
    run.add_argument(
        "--unsafe",
        action="store_true",
        help="allow --sandbox none, which runs tool code without isolation",
    )
    run.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="PATTERN",
        help="let http tools without their own allow_hosts (http_get, http_request) call "
        "hosts matching PATTERN (fnmatch; repeatable; also $KILN_ALLOW_HOSTS, comma-separated)",
    )
    run.add_argument(
        "--workspace",
        metavar="DIR",
        help="the folder the file tools work in (default: .kiln/workspaces/<run id>)",
    )
    run.add_argument(
        "--tool-cache",
        metavar="URL",
        help="where cached tool results live: memory (the default) or redis://HOST:PORT/DB "
        "(also $KILN_TOOL_CACHE)",
    )
    run.add_argument(
        "--embedder",
        metavar="NAME",
        help="the embedder find_tools searches with: default, sentence or litellm/<model> "
        "(also $KILN_EMBEDDER)",
    )
    run.add_argument(
        "--user",
        metavar="ID",
        help="the user the run is for: memory is kept per user, and no user reads another's "
        "(default: local)",
    )
    run.add_argument(
        "--session",
        metavar="ID",
        help="the conversation the run belongs to: short-term memory and session-scoped "
        "policies carry over between runs of one session",
    )
    run.add_argument(
        "--memory-dir",
        metavar="DIR",
        help="where embedded memory stores keep their files "
        "(default: $KILN_MEMORY_DIR or .kiln/memory)",
    )
    add_format_option(run, "print the result object as JSON")
    run.add_argument("--events", metavar="FILE", help="also write every event as a JSON line")
    run.add_argument(
        "--runs-db",
        "--db",
        dest="db",
        metavar="FILE",
        default=None,
        help=f"the trace store (default: $KILN_RUNS_DB or {DEFAULT_DB})",
    )
    run.add_argument("--no-trace", action="store_true", help="do not record the run")
    view = run.add_mutually_exclusive_group()
    view.add_argument("-q", "--quiet", action="store_true", help="no live view")
    view.add_argument("-v", "--verbose", action="store_true", help="show values in full")
    run.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def run_command(args: argparse.Namespace) -> int:
    from runtime import progress
    from runtime.run import CompileFailed, RunSetupError, prepare

    if not args.quiet:  # joining and loading a local model take seconds: say so on stderr
        progress.install(progress.StderrReporter())

    inputs = _inputs(args.inputs)
    if isinstance(inputs, str):
        return _fail(inputs, EXIT_USAGE, as_json=args.json)
    pool = _pool(args.pool)
    if isinstance(pool, str):
        return _fail(pool, EXIT_USAGE, as_json=args.json)
    for flag, value in (("--user", args.user), ("--session", args.session)):
        if value is not None and not value.strip():
            return _fail(f"{flag} needs an id, not a blank", EXIT_USAGE, as_json=args.json)
    if args.sandbox == "none" and not args.unsafe:
        message = "--sandbox none runs tool code without isolation: add --unsafe to mean it"
        return _fail(message, EXIT_USAGE, as_json=args.json)
    from runtime.tools.cache import cache_from_url

    try:
        cache = cache_from_url(args.tool_cache or os.environ.get("KILN_TOOL_CACHE") or None)
    except ValueError as exc:
        return _fail(f"--tool-cache: {exc}", EXIT_USAGE, as_json=args.json)
    hosts = [h for h in os.environ.get("KILN_ALLOW_HOSTS", "").split(",") if h.strip()]
    approver = _approver(args)
    try:
        prepared = prepare(
            args.paths,
            agent=args.agent,
            crew=args.crew,
            text=args.input,
            inputs=inputs,
            model=args.model,
            approver=approver,
            sandbox=args.sandbox,
            unsafe=args.unsafe,
            pool=pool,
            allow_hosts=[h.strip() for h in (*hosts, *args.allow_host)],
            workspace=Path(args.workspace) if args.workspace else None,
            embedder=args.embedder,
            index_dir=Path(".kiln", "cache", "tool-index"),
            tool_cache=cache,
            memory_dir=memory_dir(args),
            runs_db=None if args.no_trace else db_path(args),
        )
    except CompileFailed as exc:
        from compiler.diagnostics import render_text, summary

        color = _color(args.color, sys.stderr)
        comp = exc.compilation
        print(render_text(comp.diagnostics, comp.files, color=color), file=sys.stderr)
        print(f"kiln: {summary(comp.diagnostics)}: nothing was run", file=sys.stderr)
        if args.json:
            error = f"{summary(comp.diagnostics)}: nothing was run"
            _print_json({"status": "error", "error": error, "diagnostics": _diagnostics(comp)})
        return EXIT_FAILED
    except RunSetupError as exc:
        return _fail(str(exc), EXIT_USAGE, as_json=args.json)
    return _run(prepared, args, approver)


def _approver(args: argparse.Namespace) -> Any:
    """Who approves tools that require it: everyone (``--approve-all``), the person at the
    terminal when stdin is one, or nobody (such a call then ends the run, saying why)."""
    if args.approve_all:
        from runtime.tools.approval import approve_all

        return approve_all
    if not _is_terminal(sys.stdin):
        return None
    from runtime.tools.approval import TerminalApprover

    return TerminalApprover(sys.stdin.fileno(), _prompt_stream())


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):  # closed or detached
        return False


def _prompt_stream() -> Any:
    """Where questions go: stderr when it is the terminal, else the terminal itself (stderr
    may be a log file while the person types at the keyboard)."""
    if _is_terminal(sys.stderr):
        return sys.stderr
    try:
        return open("/dev/tty", "w", encoding="utf-8")  # closed when the run ends
    except OSError:
        return sys.stderr


def _run(prepared: Any, args: argparse.Namespace, approver: Any = None) -> int:
    import gc

    import anyio

    # `kiln` starts with the cyclic collector off (compiling makes no cycles). A run may go
    # on for long and make some: collect, but rarely, and never rescan the compiled specs.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    gc.enable()
    _terminate_like_interrupt()

    from runtime.events import JsonlWriter, Sink
    from runtime.run import execute

    sinks: list[Sink] = []
    closers: list[Any] = []
    if not args.quiet:
        from runtime.live import LiveView, make_console

        view = LiveView(make_console(sys.stderr, color=args.color), verbose=args.verbose)
        sinks.append(view)
        if hasattr(approver, "pause"):  # the live view holds its lines while a question is up
            approver.pause = view.paused
    prompts = getattr(approver, "output", None)
    if prompts is not None and prompts is not sys.stderr:
        closers.append(prompts)
    writer = None
    if args.events:
        try:
            writer = JsonlWriter.open(args.events)
        except OSError as exc:
            message = f"--events {args.events}: {exc.strerror or exc}"
            return _fail(message, EXIT_USAGE, as_json=args.json)
        sinks.append(writer)
        closers.append(writer)
    store = None
    if not args.no_trace:
        from runtime.trace import TraceError, TraceStore

        try:
            store = TraceStore(db_path(args))
        except TraceError as exc:
            message = f"{exc} (use --no-trace to run without recording)"
            return _fail(message, EXIT_USAGE, as_json=args.json)
        closers.append(store)
    from runtime.memory.records import DEFAULT_TENANT
    from runtime.memory.service import Who
    from runtime.run import RunSetupError

    try:
        who = Who(tenant=args.user or DEFAULT_TENANT, session=args.session)
        result = anyio.run(lambda: execute(prepared, sinks=sinks, store=store, who=who))
    except RunSetupError as exc:  # an MCP server that does not start, a script that lacks
        return _fail(str(exc), EXIT_FAILED, as_json=args.json)  # a tool it lists
    finally:
        for closer in closers:
            closer.close()
    if writer is not None and writer.error is not None:
        print(
            f"kiln: warning: --events {args.events}: writing stopped: {writer.error}",
            file=sys.stderr,
        )
    if args.json:
        _print_json(result.as_json())
    elif result.ok:
        print(_answer(result.output))
    else:
        print(f"kiln: run {result.status}: {result.error}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def _terminate_like_interrupt() -> None:
    """SIGTERM (a container stopping, a CI timeout) ends a run as Ctrl-C does: recorded as
    cancelled, sandboxes killed, instead of leaving the run 'running' forever."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _answer(output: Any) -> str:
    if isinstance(output, str):
        return output
    if (
        isinstance(output, dict)
        and len(output) == 1
        and isinstance(next(iter(output.values())), str)
    ):
        return str(next(iter(output.values())))
    return json.dumps(output, ensure_ascii=False, indent=2, default=str)


def _pool(text: str | None) -> Any:
    """``--pool 8,2,1000``: the pool's settings, or what is wrong with them."""
    from sandbox.pool import PoolSettings

    if text is None:
        return None
    parts = text.split(",")
    if len(parts) > 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        return f"--pool {text}: give SIZE[,WARM[,MAX_CALLS]] as whole numbers above 0"
    size, *rest = (int(p) for p in parts)
    warm = rest[0] if rest else 1
    if warm > size:
        return f"--pool {text}: cannot warm {warm} workers in a pool of {size}"
    settings = PoolSettings(size=size, warm=warm)
    if len(rest) > 1:
        settings.max_calls = rest[1]
    return settings


def _inputs(text: str | None) -> dict[str, Any] | str:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"--inputs is not JSON: {exc.msg} at character {exc.pos}"
    if not isinstance(value, dict):
        return '--inputs must be a JSON object, such as \'{"topic": "tides"}\''
    return value


def _color(choice: str, stream: Any) -> bool:
    if choice != "auto":
        return choice == "always"
    return bool(stream.isatty()) and "NO_COLOR" not in os.environ


def _fail(message: str, code: int, *, as_json: bool = False) -> int:
    print(f"kiln: error: {message}", file=sys.stderr)
    if as_json:  # --json promises an object on stdout, whatever happens
        _print_json({"status": "error", "error": message})
    return code


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _diagnostics(compilation: Any) -> Any:
    from compiler.diagnostics import render_json

    return json.loads(render_json(compilation.diagnostics))


def memory_dir(args: argparse.Namespace) -> Path:
    """``--memory-dir``, else ``$KILN_MEMORY_DIR``, else ``.kiln/memory``."""
    from runtime.memory.registry import default_root

    given = getattr(args, "memory_dir", None)
    return Path(given) if given else default_root()
