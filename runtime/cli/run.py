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
#: The run stopped for a person: a side-effecting call may have been made (needs_attention,
#: resume with --retry-call or --skip-call), or a call waits for approval (kiln approvals).
EXIT_APPROVAL, EXIT_ATTENTION = 4, 5  # 3 is a bug in kiln


def add_run_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="compile and run an agent or a crew",
        description="Compile the specs, run one agent or crew, stream its steps to stderr and "
        "print the final answer to stdout. Exit 0 when the run succeeds, 1 when it fails.",
    )
    run.add_argument(
        "paths", nargs="*", metavar="PATH", help="spec files or folders (none with --resume)"
    )
    who = run.add_mutually_exclusive_group()
    who.add_argument("--agent", metavar="NAME", help="run this agent")
    who.add_argument("--crew", metavar="NAME", help="run this crew")
    run.add_argument("--input", metavar="TEXT", help="the request (fills the one string input)")
    run.add_argument("--inputs", metavar="JSON", help="inputs as a JSON object")
    run.add_argument(
        "--model", metavar="MODEL", help="use this model for every agent (e.g. scripted:FILE)"
    )
    add_approval_options(run)
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
    run.add_argument(
        "--durability",
        choices=("sync", "async", "exit", "off"),
        help="when step results are journaled, for resuming: before the next step (sync, the "
        "default), in the background (async), when the run ends (exit), never (off); "
        "default: the target's limits.durability, else sync",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="carry on an interrupted run from its journal (the same as kiln runs resume)",
    )
    add_resume_options(run)
    add_view_options(run)


def add_approval_options(parser: argparse.ArgumentParser) -> None:
    """Who approves tools that require it: shared by ``kiln run`` and ``kiln runs resume``."""
    parser.add_argument(
        "--approvals",
        choices=("ask", "defer", "all"),
        help="ask at the terminal; defer: stop the run (waiting_approval, exit 4) until "
        "someone decides with kiln approvals; all: approve everything. Default: ask at a "
        "terminal, else defer (a run with --durability off or --no-trace then fails at "
        "such a call)",
    )
    parser.add_argument(
        "--approve-all", action="store_true", help="the same as --approvals all"
    )


def add_view_options(parser: argparse.ArgumentParser) -> None:
    """How a run is shown as it goes: shared by ``kiln run`` and ``kiln runs resume``."""
    view = parser.add_mutually_exclusive_group()
    view.add_argument("-q", "--quiet", action="store_true", help="no live view")
    view.add_argument("-v", "--verbose", action="store_true", help="show values in full")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def add_resume_options(parser: argparse.ArgumentParser) -> None:
    """What resuming may do beyond replaying: shared by ``kiln run --resume`` and ``kiln runs
    resume``."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="resume even though the specs the run depends on changed since it started",
    )
    call = parser.add_mutually_exclusive_group()
    call.add_argument(
        "--retry-call",
        action="store_true",
        help="make again the side-effecting call the run stopped at (needs_attention)",
    )
    call.add_argument(
        "--skip-call",
        action="store_true",
        help="go on without that call; the agent is told --observation",
    )
    parser.add_argument(
        "--observation",
        metavar="TEXT",
        help="with --skip-call: what the agent is told instead of the call's result",
    )


def run_command(args: argparse.Namespace) -> int:
    from runtime import progress
    from runtime.run import CompileFailed, RunSetupError, prepare

    if not args.quiet:  # joining and loading a local model take seconds: say so on stderr
        progress.install(progress.StderrReporter())
    if args.resume:
        return resume_command(args, args.resume)
    if not args.paths:
        return _fail("give the spec files or folders to run", EXIT_USAGE, as_json=args.json)
    if args.observation is not None or args.retry_call or args.skip_call or args.force:
        message = "--force, --retry-call, --skip-call and --observation go with --resume"
        return _fail(message, EXIT_USAGE, as_json=args.json)

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
    from runtime.run import durability_of

    durability = None if args.no_trace else durability_of(prepared, args.durability)
    return _run(prepared, args, approver, durability=durability)


def resume_command(args: argparse.Namespace, run_id: str) -> int:
    """Carry on a recorded run from its journal (``kiln run --resume``, ``kiln runs
    resume``): the same specs, target, inputs and options, in the same workspace."""
    from runtime.journal import Ambiguous
    from runtime.run import CompileFailed, Resume, RunSetupError, prepare
    from runtime.trace import TraceError, TraceStore

    as_json = args.json
    if args.observation is not None and not args.skip_call:
        return _fail("--observation goes with --skip-call", EXIT_USAGE, as_json=as_json)
    if getattr(args, "no_trace", False):
        return _fail("a resumed run is recorded: drop --no-trace", EXIT_USAGE, as_json=as_json)
    path = db_path(args)
    try:
        if not path.exists():
            raise TraceError(f"{path}: no trace store there (the file does not exist)")
        with TraceStore(path) as store:
            row = store.get_run(run_id)
    except TraceError as exc:
        return _fail(str(exc), EXIT_FAILED, as_json=as_json)
    request = row.request
    if not request:
        message = f"run {row.id} was recorded without what resuming needs (by an older kiln)"
        return _fail(message, EXIT_FAILED, as_json=as_json)
    if row.state == "succeeded":
        return _fail(f"run {row.id} succeeded: nothing to resume", EXIT_FAILED, as_json=as_json)
    if "durability" in request and request["durability"] is None:
        message = (
            f"run {row.id} ran with durability off: nothing of it was journaled, and running "
            "it again from the start could repeat its side effects; start a new run instead"
        )
        return _fail(message, EXIT_FAILED, as_json=as_json)
    approver = _approver(args)
    try:
        prepared = prepare(
            request["paths"],
            agent=request.get("agent"),
            crew=request.get("crew"),
            text=request.get("text"),
            inputs=request.get("inputs") or {},
            model=request.get("model"),
            approver=approver,
            sandbox=request.get("sandbox"),
            unsafe=bool(request.get("unsafe")),
            allow_hosts=request.get("allow_hosts") or [],
            workspace=Path(request["workspace"]) if request.get("workspace") else None,
            embedder=request.get("embedder"),
            index_dir=Path(".kiln", "cache", "tool-index"),
            memory_dir=Path(request["memory_dir"]) if request.get("memory_dir") else None,
            runs_db=path,
        )
    except CompileFailed as exc:
        from compiler.diagnostics import summary

        comp = exc.compilation
        message = f"the specs of run {row.id} no longer compile ({summary(comp.diagnostics)})"
        return _fail(message, EXIT_FAILED, as_json=as_json)
    except RunSetupError as exc:
        return _fail(f"run {row.id} cannot be set up again: {exc}", EXIT_FAILED, as_json=as_json)
    if prepared.request.get("target_hash") != request.get("target_hash") and not args.force:
        message = (
            f"the specs run {row.id} depends on changed since it started ({row.target}'s graph "
            "or a spec it reaches): resuming would replay its steps against other specs; "
            "use --force to resume anyway"
        )
        return _fail(message, EXIT_FAILED, as_json=as_json)
    ambiguous: Ambiguous = "retry" if args.retry_call else "skip" if args.skip_call else "stop"
    resume = Resume(ambiguous=ambiguous, observation=args.observation)
    args.no_trace = False
    return _run(
        prepared,
        args,
        approver,
        run_id=row.id,
        resume=resume,
        durability=request.get("durability") or "sync",
        user=request.get("user"),
        session=request.get("session"),
    )


def _approver(args: argparse.Namespace) -> Any:
    """Who approves tools that require it: everyone (``--approvals all``), the person at the
    terminal when stdin is one, or nobody (a durable run then defers the approval; any
    other ends at such a call, saying why)."""
    choice = getattr(args, "approvals", None)
    if args.approve_all or choice == "all":
        from runtime.tools.approval import approve_all

        return approve_all
    if choice == "defer" or not _is_terminal(sys.stdin):
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


def _run(
    prepared: Any,
    args: argparse.Namespace,
    approver: Any = None,
    *,
    run_id: str | None = None,
    resume: Any = None,
    durability: Any = "sync",
    user: str | None = None,
    session: str | None = None,
) -> int:
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
    if not getattr(args, "no_trace", False):
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
        who = Who(
            tenant=user or getattr(args, "user", None) or DEFAULT_TENANT,
            session=session or getattr(args, "session", None),
        )
        # nobody to ask here: a durable run waits for a decision made elsewhere, later
        defer = approver is None and getattr(args, "approvals", None) != "ask"
        result = anyio.run(
            lambda: execute(
                prepared,
                sinks=sinks,
                store=store,
                who=who,
                run_id=run_id,
                durability=durability,
                resume=resume,
                defer_approvals=defer and durability is not None,
            )
        )
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
    if result.status in ("needs_attention", "waiting_approval"):
        if args.json:
            _print_json(result.as_json())
        else:
            print(f"kiln: run {result.run_id} stopped ({result.status}): {result.error}",
                  file=sys.stderr)  # fmt: skip
        return EXIT_APPROVAL if result.status == "waiting_approval" else EXIT_ATTENTION
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
