"""``kiln runs list|show|resume|recover``: the runs recorded in the trace store.

The store is ``.kiln/runs.db`` under the working folder, or ``$KILN_RUNS_DB``, or ``--db``.
This module is imported when ``kiln`` starts, whatever the command: rich, sqlite3 and the
store are imported inside the functions that use them, so ``kiln validate`` never pays for
them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runtime.cli.options import add_format_option

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from runtime.events import Event
    from runtime.trace import RunRow

__all__ = ["DEFAULT_DB", "add_runs_parser", "db_path", "runs_command"]

DEFAULT_DB = ".kiln/runs.db"
EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
_COLUMNS = ("ID", "TARGET", "STATUS", "STARTED", "DURATION", "TOKENS", "COST")
_NUMERIC = frozenset({"DURATION", "TOKENS", "COST"})
_ID_WIDTH = 12

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


def add_runs_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    """Add ``runs list`` and ``runs show`` to the ``kiln`` sub-commands."""
    runs = commands.add_parser("runs", help="list and inspect recorded runs")
    sub = runs.add_subparsers(dest="runs_command", required=True, parser_class=parser_class)
    list_ = sub.add_parser("list", help="the latest runs, newest first")
    _with_db(list_)
    list_.add_argument("--limit", type=_positive, default=20, metavar="N", help="default: 20")
    list_.add_argument(
        "--status",
        help="only runs with this status (running, interrupted, succeeded, needs_attention, …)",
    )
    list_.add_argument("--target", help="only runs of this target (Agent/NAME or Crew/NAME)")
    add_format_option(list_, "print the runs as JSON")
    show = sub.add_parser("show", help="one run and its events")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix of 4+ chars")
    _with_db(show)
    add_format_option(show, "print the run and events as JSON")
    show.add_argument(
        "--events",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="print the run's events (default: yes)",
    )
    show.add_argument(
        "-v", "--verbose", action="store_true", help="print event values in full, not cut"
    )
    from runtime.cli.run import add_resume_options, add_view_options

    resume = sub.add_parser(
        "resume",
        help="carry on an interrupted or stopped run from its journal",
        description="Replay the run's journal (no model or tool call for a recorded step) and "
        "carry on from the first step without a result. Exit 0 when the run succeeds, 1 "
        "when it fails, 4 when it waits for an approval, 5 when a call needs a person.",
    )
    resume.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix of 4+ chars")
    _resuming(resume)
    add_resume_options(resume)
    add_view_options(resume)
    recover = sub.add_parser(
        "recover",
        help="resume every interrupted run, and every run whose approvals are all decided",
        description="Resume, one after the other, every run whose process died while it ran "
        "and every run that waited for approvals which are all decided now.",
    )
    _resuming(recover)
    add_view_options(recover)


def _resuming(parser: argparse.ArgumentParser) -> None:
    _with_db(parser)
    add_format_option(parser, "print each result object as JSON")
    parser.add_argument("--events", metavar="FILE", help="also write every event as a JSON line")
    from runtime.cli.run import add_approval_options

    add_approval_options(parser)


def runs_command(args: argparse.Namespace) -> int:
    """Run ``kiln runs …``: 0 done, 1 unknown run or unusable store, 2 bad usage."""
    from runtime.trace import TraceError

    handlers = {"list": _list, "show": _show, "resume": _resume, "recover": _recover}
    handler = handlers.get(getattr(args, "runs_command", None) or "")
    if handler is None:
        print("kiln: error: say 'kiln runs list' or 'kiln runs show RUN_ID'", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except TraceError as exc:
        print(f"kiln: error: {exc}", file=sys.stderr)
        return EXIT_ERRORS


def db_path(args: argparse.Namespace) -> Path:
    """``--db``, else ``$KILN_RUNS_DB``, else ``.kiln/runs.db`` in the working folder."""
    return Path(getattr(args, "db", None) or os.environ.get("KILN_RUNS_DB") or DEFAULT_DB)


def _with_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        "--runs-db",
        dest="db",
        metavar="PATH",
        help=f"the trace store (default: $KILN_RUNS_DB, else {DEFAULT_DB})",
    )


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


# -- kiln runs list ---------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    from runtime.trace import TraceStore

    path = db_path(args)
    if not path.exists():
        if args.json:
            print(_dumps({"db": str(path), "runs": []}))
        else:
            print(f"no runs yet ({path} does not exist)")
        return EXIT_OK
    with TraceStore(path) as store:
        if args.status == "interrupted":  # a running run whose process is gone
            found = store.list_runs(limit=None, status="running", target=args.target)
            runs = [run for run in found if run.state == "interrupted"][: args.limit]
        else:
            runs = store.list_runs(limit=args.limit, status=args.status, target=args.target)
    if args.json:
        print(_dumps({"db": str(path), "runs": [run.as_json() for run in runs]}))
    elif not runs:
        filtered = args.status is not None or args.target is not None
        print("no runs match" if filtered else f"no runs yet ({path} holds none)")
    elif sys.stdout.isatty():
        _print_table(runs)
    else:
        sys.stdout.write(_plain_table(runs))
    return EXIT_OK


def _cells(run: RunRow) -> tuple[str, ...]:
    from runtime.live import format_cost, format_duration, format_tokens

    known = (run.usage or {}).get("cost_known") is not False
    return (
        run.id[:_ID_WIDTH],
        run.target,
        run.state,
        _local_time(run.started, "minutes"),
        format_duration(run.duration_s),
        format_tokens(run.tokens),
        format_cost(run.cost_usd, known=known),
    )


def _plain_table(runs: list[RunRow]) -> str:
    """Aligned columns for pipes and files: no colour, no box, one run per line."""
    rows = [_COLUMNS, *(_cells(run) for run in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if name in _NUMERIC else cell.ljust(width)
            for name, cell, width in zip(_COLUMNS, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _print_table(runs: list[RunRow]) -> None:
    from rich.table import Table

    from runtime.live import make_console

    # The plain table's layout, in colour: two spaces between columns, no box.
    table = Table(box=None, header_style="bold", padding=(0, 2, 0, 0), pad_edge=False)
    for name in _COLUMNS:
        # Only the target is cut when the terminal is narrow: ids and times stay whole.
        table.add_column(
            name.lower(),
            justify="right" if name in _NUMERIC else "left",
            no_wrap=name != "TARGET",
        )
    for run in runs:
        cells = list(_cells(run))
        table.add_row(*cells[:2], _status_text(run.state), *cells[3:])
    make_console(sys.stdout).print(table)


def _status_text(status: str) -> Text:
    from rich.text import Text

    styles = {
        "succeeded": "green",
        "running": "yellow",
        "cancelled": "dim",
        "interrupted": "yellow",
        "needs_attention": "yellow",
        "waiting_approval": "yellow",
    }
    return Text(status, styles.get(status, "red"))


# -- kiln runs resume / recover ---------------------------------------------------------


def _resume(args: argparse.Namespace) -> int:
    from runtime.cli.run import resume_command

    return resume_command(args, args.run_id)


def _recover(args: argparse.Namespace) -> int:
    """Resume every interrupted run, oldest first; exit 1 when one of them did not end
    well (it says which), 0 when all did (or there were none)."""
    from runtime.cli.run import resume_command
    from runtime.trace import TraceStore

    path = db_path(args)
    if not path.exists():
        print(f"no runs to recover ({path} does not exist)", file=sys.stderr)
        return EXIT_OK
    with TraceStore(path) as store:
        found = store.list_runs(limit=None, status="running")
        interrupted = [run for run in reversed(found) if run.state == "interrupted"]
        # and runs that waited for approvals which are all decided now
        waiting = store.list_runs(limit=None, status="waiting_approval")
        interrupted += [
            run
            for run in reversed(waiting)
            if not store.list_approvals(pending_only=True, run_id=run.id)
        ]
    if not interrupted:
        print("no interrupted runs", file=sys.stderr)
        return EXIT_OK
    worst = EXIT_OK
    for run in interrupted:
        print(f"kiln: resuming run {run.id} ({run.target})", file=sys.stderr)
        args.retry_call = args.skip_call = args.force = False
        args.observation = None
        code = resume_command(args, run.id)
        worst = max(worst, code)
    return EXIT_OK if worst == EXIT_OK else EXIT_ERRORS


# -- kiln runs show ---------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    from runtime.trace import TraceError, TraceStore

    path = db_path(args)
    if not path.exists():
        raise TraceError(f"{path}: no trace store there (the file does not exist)")
    with TraceStore(path) as store:
        run = store.get_run(args.run_id)
        events = store.events(run.id) if args.events else []
    if args.json:
        shown: dict[str, Any] = {"run": run.as_json()}
        if args.events:
            shown["events"] = [event.as_json() for event in events]
        print(_dumps(shown))
        return EXIT_OK
    from runtime.live import make_console

    console = make_console(sys.stdout)
    _print_header(console, run)
    if args.events:
        _print_events(console, events, verbose=args.verbose)
    return EXIT_OK


def _print_header(console: Console, run: RunRow) -> None:
    """The run's facts, values in full: ``show`` is where a user reads the whole output."""
    from rich.text import Text

    from runtime.live import format_duration, format_value, usage_summary

    facts: list[tuple[str, Any]] = [
        ("run", run.id),
        ("target", f"{run.target} ({run.kind})" if run.kind else run.target),
        ("status", run.state),
        ("model", run.model),
        ("started", _local_time(run.started, "seconds")),
        ("duration", format_duration(run.duration_s) if run.ended is not None else None),
        ("plan", run.plan_hash),
        ("inputs", run.inputs),
        ("output", run.output),
        ("error", run.error),
        ("usage", usage_summary(run.usage) or None),
    ]
    width = max(len(name) for name, _ in facts)
    soft = not console.is_terminal
    for name, value in facts:
        if value is None:
            continue
        text = format_value(value, verbose=True).replace("\n", "\n" + " " * (width + 2))
        style = "red" if name == "error" else "bold" if name == "status" else ""
        console.print(Text.assemble((f"{name:<{width}}  ", "dim"), (text, style)), soft_wrap=soft)


def _print_events(console: Console, events: list[Event], *, verbose: bool) -> None:
    from runtime.live import LiveView

    console.print()
    if not events:
        console.print("(no events recorded)")
        return
    view = LiveView(console, verbose=verbose)
    for event in events:
        view(event)


# -- shared -----------------------------------------------------------------------------


def _local_time(ts: float, timespec: str) -> str:
    try:
        return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec=timespec)
    except (OverflowError, OSError, ValueError):
        return "-"


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=repr)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a model: keep them as JSON escapes
        text = json.dumps(obj, indent=2, default=repr)
    return text
