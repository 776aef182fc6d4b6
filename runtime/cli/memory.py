"""``kiln memory query|forget|list``: what agents remember, for people.

Each compiles the given spec folders (default: the working folder) to learn the agent's
memory policy, then opens the same stores a run would (``--memory-dir``, ``--runs-db``):

- ``query`` recalls for a query exactly as a run would before the agent thinks, and shows
  every item with its score and why, or why nothing came back;
- ``forget`` drops memories of one namespace: all of them (``--all``), some (``--id``), the
  old ones (``--before``) or the expired ones (``--expired``);
- ``list`` shows the namespaces a policy holds, and how much each store keeps in each.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from runtime.cli.options import add_format_option

if TYPE_CHECKING:
    from compiler.symbols import Program
    from runtime.memory.records import Namespace
    from runtime.memory.service import MemoryService, Who

__all__ = ["add_memory_parser", "memory_command"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


class _Usage(Exception):
    """A command line that cannot be served: the message says why."""


def add_memory_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    memory = commands.add_parser("memory", help="query, list and forget what agents remember")
    sub = memory.add_subparsers(dest="memory_command", required=True, parser_class=parser_class)

    def common(p: argparse.ArgumentParser, *, agent_required: bool = True) -> None:
        p.add_argument(
            "paths", nargs="*", metavar="PATH", help="spec files or folders (default: .)"
        )
        p.add_argument(
            "--agent", required=agent_required, metavar="NAME", help="whose memory"
        )
        p.add_argument(
            "--crew", metavar="NAME", help="the crew's shared memory (shared_memory: true)"
        )
        p.add_argument("--user", metavar="ID", help="the user (tenant); default: local")
        p.add_argument("--session", metavar="ID", help="the session, for session scope")
        p.add_argument(
            "--memory-dir",
            metavar="DIR",
            help="the embedded stores' folder (default: $KILN_MEMORY_DIR or .kiln/memory)",
        )
        p.add_argument(
            "--runs-db",
            "--db",
            dest="db",
            metavar="FILE",
            help="the trace store episodic memory reads (default: $KILN_RUNS_DB or "
            ".kiln/runs.db)",
        )
        add_format_option(p, "print JSON")

    query = sub.add_parser("query", help="recall for a query, as a run would, and say why")
    query.add_argument("query", metavar="QUERY")
    common(query)
    query.add_argument("-k", "--top-k", type=int, default=None, help="default: the policy's")
    forget = sub.add_parser("forget", help="forget memories of one namespace")
    common(forget)
    what = forget.add_mutually_exclusive_group(required=True)
    what.add_argument("--all", action="store_true", help="everything in the namespace")
    what.add_argument("--id", action="append", metavar="ID", help="these memories (repeatable)")
    what.add_argument("--before", metavar="DATE", help="memories written before DATE (ISO 8601)")
    what.add_argument("--expired", action="store_true", help="memories past their TTL")
    listing = sub.add_parser("list", help="the namespaces of a policy and what they hold")
    common(listing, agent_required=False)
    listing.add_argument("--policy", metavar="NAME", help="this policy (default: the agent's)")


def memory_command(args: argparse.Namespace) -> int:
    """Run ``kiln memory …``: 0 done, 1 the specs or a store failed, 2 bad usage."""
    import anyio

    from runtime.memory.records import MemoryStoreError

    for path in args.paths:
        if not Path(path).exists():
            print(f"kiln memory: {path}: no such file or folder", file=sys.stderr)
            return EXIT_USAGE
    program = _program(args.paths or ["."])
    if program is None:
        return EXIT_FAILED
    handler = {"query": _query, "forget": _forget, "list": _list}[args.memory_command]
    try:
        result: int = anyio.run(handler, program, args)
        return result
    except _Usage as exc:
        print(f"kiln memory: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryStoreError as exc:
        print(f"kiln memory: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _program(paths: list[str]) -> Program | None:
    from compiler.diagnostics import render_text, summary
    from compiler.pipeline import compile_paths

    compilation = compile_paths(paths)
    if not compilation.ok or compilation.program is None:
        print(render_text(compilation.diagnostics, compilation.files), file=sys.stderr)
        print(f"kiln memory: {summary(compilation.diagnostics)}", file=sys.stderr)
        return None
    return compilation.program


def _service(program: Program, args: argparse.Namespace) -> MemoryService:
    from runtime.cli.run import memory_dir
    from runtime.cli.runs import db_path
    from runtime.memory.service import MemoryService

    return MemoryService(program, root=memory_dir(args), runs_db=db_path(args))


def _who(args: argparse.Namespace) -> Who:
    from runtime.memory.records import DEFAULT_TENANT
    from runtime.memory.service import Who

    for flag, value in (("--user", args.user), ("--session", args.session)):
        if value is not None and not value.strip():
            raise _Usage(f"{flag} needs an id, not a blank")
    return Who(tenant=args.user or DEFAULT_TENANT, session=args.session)


def _policy(program: Program, args: argparse.Namespace) -> tuple[str, str | None]:
    """(policy, shared crew) of ``--agent`` (and ``--crew``)."""
    agent = args.agent
    if agent not in program.agents:
        known = ", ".join(sorted(program.agents)) or "none"
        raise _Usage(f"no agent named {agent!r} (known: {known})")
    own = program.agent(agent).spec.memory
    if args.crew is not None:
        if args.crew not in program.crews:
            known = ", ".join(sorted(program.crews)) or "none"
            raise _Usage(f"no crew named {args.crew!r} (known: {known})")
        crew = program.crew(args.crew).spec
        if not crew.shared_memory:
            raise _Usage(f"crew {args.crew!r} has no shared memory (shared_memory: false)")
        policy = crew.memory or own
        if policy is None:
            raise _Usage(f"neither crew {args.crew!r} nor agent {agent!r} names a memory policy")
        return policy, args.crew
    if own is None:
        raise _Usage(f"agent {agent!r} has no memory policy (spec.memory)")
    if program.policy(own).spec.scope == "session" and args.session is None:
        raise _Usage(f"memory policy {own!r} keeps memory per session: give --session ID")
    return own, None


async def _query(program: Program, args: argparse.Namespace) -> int:
    policy, crew = _policy(program, args)
    if args.top_k is not None and args.top_k < 1:
        raise _Usage("--top-k must be at least 1")
    service = _service(program, args)
    try:
        recall = await service.recall(
            policy=policy,
            agent=args.agent,
            query=args.query,
            who=_who(args),
            crew=crew,
            top_k=args.top_k,
        )
    finally:
        await service.aclose()
    if args.json:
        data = recall.as_json(policy)
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    out = sys.stdout
    print(f"policy {policy}, namespace {recall.namespace}", file=out)
    for name, info in recall.stores.items():
        print(f"  {name}: {info.get('reason')}", file=out)
    if recall.history:
        print(f"\n{len(recall.history)} earlier turns:", file=out)
        for message in recall.history:
            print(f"  {message['role']}: {_cut(str(message['content']))}", file=out)
    if recall.items:
        print("", file=out)
    for item in recall.items:
        store = item["store"]
        if store == "vector":
            print(f"{item['score']:.2f}  [{item['kind']}] {_cut(item['text'])}", file=out)
            print(f"      {item['why']}; id {item['id']}", file=out)
        elif store == "episodic":
            text = _cut(str(item.get("text", "")))
            print(f"{item['relevance']:.2f}  [episode {item.get('status')}] {text}", file=out)
        else:
            print(f"      [graph] {item['text']}", file=out)
    if recall.reason is not None:
        print(f"\nnothing recalled: {recall.reason}", file=out)
    return EXIT_OK


async def _forget(program: Program, args: argparse.Namespace) -> int:
    policy, crew = _policy(program, args)
    before = None
    if args.before is not None:
        try:
            before = datetime.fromisoformat(args.before).timestamp()
        except ValueError:
            raise _Usage(f"--before {args.before}: not an ISO 8601 date") from None
    service = _service(program, args)
    namespace: Namespace = service.namespace(policy, args.agent, _who(args), crew=crew)
    try:
        counts = await service.forget(
            policy=policy,
            namespace=namespace,
            agent=args.agent,
            session=args.session,
            ids=args.id,
            before=before,
            expired=args.expired,
        )
    finally:
        await service.aclose()
    if args.json:
        print(json.dumps({"namespace": namespace.key, "forgotten": counts}))
        return EXIT_OK
    from runtime.memory.records import plural

    total = sum(counts.values())
    detail = ", ".join(f"{store} {n}" for store, n in counts.items()) or "no store"
    where = namespace.key + (f", session {args.session}" if args.session else "")
    print(f"forgot {plural(total, 'item')} in {where} ({detail})")
    return EXIT_OK


async def _list(program: Program, args: argparse.Namespace) -> int:
    if args.policy is not None:
        if args.policy not in program.policies:
            known = ", ".join(sorted(program.policies)) or "none"
            raise _Usage(f"no memory policy named {args.policy!r} (known: {known})")
        policies = [args.policy]
    elif args.agent is not None:
        policies = [_policy(program, args)[0]]
    else:
        policies = sorted(program.policies)
    who = _who(args)
    service = _service(program, args)
    found: dict[str, dict[str, dict[str, int]]] = {}
    try:
        for policy in policies:
            spaces = await service.namespaces(policy)
            found[policy] = {k: v for k, v in spaces.items() if _shown(k, args, who.tenant)}
    finally:
        await service.aclose()
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    from runtime.memory.records import plural

    for policy, spaces in found.items():
        print(f"policy {policy}: {plural(len(spaces), 'namespace')}")
        for key in sorted(spaces):
            counts = ", ".join(f"{store} {n}" for store, n in sorted(spaces[key].items()))
            print(f"  {key}  {counts}")
    return EXIT_OK


def _shown(key: str, args: argparse.Namespace, tenant: str) -> bool:
    """Whether ``list`` shows the namespace ``key`` for ``--user`` and ``--crew``."""
    from runtime.memory.records import Namespace

    try:
        ns = Namespace.parse(key.partition("#")[0])  # a session's window: its namespace
    except ValueError:
        return False
    if args.user is not None and ns.tenant != tenant:
        return False
    return args.crew is None or (ns.scope == "crew" and ns.owner == args.crew)


def _cut(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"

