"""``kiln approvals list|approve|deny``: decide, from any process, the approvals that runs
stopped for (``waiting_approval``); ``kiln runs resume`` or ``recover`` then carries them
on. The decisions live in the trace store beside the runs."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, TypeVar

from runtime.cli.options import add_format_option
from runtime.cli.runs import db_path

__all__ = ["add_approvals_parser", "approvals_command"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


def add_approvals_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    approvals = commands.add_parser(
        "approvals", help="decide the tool calls that stopped runs wait for"
    )
    sub = approvals.add_subparsers(
        dest="approvals_command", required=True, parser_class=parser_class
    )
    list_ = sub.add_parser("list", help="pending approvals, oldest first")
    list_.add_argument("--all", action="store_true", help="decided ones too")
    list_.add_argument("--run", metavar="RUN_ID", help="only this run's")
    _with_db(list_)
    add_format_option(list_, "print the approvals as JSON")
    approve = sub.add_parser("approve", help="let the call go ahead")
    approve.add_argument("id", metavar="ID", help="an approval id or a unique prefix")
    approve.add_argument("--reason", metavar="TEXT", help="why (kept with the decision)")
    approve.add_argument("--by", metavar="NAME", help="who decides (default: your user name)")
    _with_db(approve)
    deny = sub.add_parser("deny", help="refuse the call: the agent is told the reason")
    deny.add_argument("id", metavar="ID", help="an approval id or a unique prefix")
    deny.add_argument("--reason", metavar="TEXT", required=True, help="what the agent is told")
    deny.add_argument("--by", metavar="NAME", help="who decides (default: your user name)")
    _with_db(deny)


def _with_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-db", "--db", dest="db", metavar="FILE", default=None,
        help="the trace store (default: $KILN_RUNS_DB or .kiln/runs.db)",
    )  # fmt: skip


def approvals_command(args: argparse.Namespace) -> int:
    from runtime.trace import TraceError, TraceStore

    path = db_path(args)
    try:
        if not path.exists():
            raise TraceError(f"{path}: no trace store there (the file does not exist)")
        with TraceStore(path) as store:
            if args.approvals_command == "list":
                return _list(store, args)
            approved = args.approvals_command == "approve"
            reason = (args.reason or "").strip() or None
            if not approved and reason is None:
                print("kiln: error: --reason must say something", file=sys.stderr)
                return EXIT_USAGE
            row = store.decide_approval(
                args.id, approved=approved, reason=reason, by=args.by or _user()
            )
    except TraceError as exc:
        print(f"kiln: error: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    print(
        f"approval {row.id} {row.status} ({row.tool} of run {row.run_id[:12]}); "
        f"carry the run on with: kiln runs resume {row.run_id[:12]}"
    )
    return EXIT_OK


def _list(store: Any, args: argparse.Namespace) -> int:
    rows = store.list_approvals(pending_only=not args.all, run_id=args.run)
    if args.json:
        print(json.dumps({"approvals": [r.as_json() for r in rows]}, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("no pending approvals" if not args.all else "no approvals")
        return EXIT_OK
    for row in rows:
        shown = json.dumps(row.arguments, ensure_ascii=False, default=str)
        shown = shown if len(shown) <= 120 else shown[:119] + "…"
        verdict = row.status + (f" by {row.decided_by}" if row.decided_by else "")
        print(f"{row.id}  {verdict:<10}  run {row.run_id[:12]}  {row.agent or '-'}: "
              f"{row.tool} {shown}")  # fmt: skip
    return EXIT_OK


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
