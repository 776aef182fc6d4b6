"""``kiln serve PATH``: the HTTP API over a spec folder (runtime/server); ``kiln keys
create|list|revoke``: its API keys."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

from runtime.cli.options import add_format_option

__all__ = [
    "add_deploy_parser",
    "add_keys_parser",
    "add_serve_parser",
    "deploy_command",
    "keys_command",
    "serve_command",
]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
DEFAULT_KEYS = Path(".kiln", "keys.db")

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


def keys_path(args: argparse.Namespace) -> Path:
    return Path(args.keys_db or os.environ.get("KILN_KEYS_DB") or DEFAULT_KEYS)


def _with_keys_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys-db", metavar="FILE", default=None,
        help=f"where the keys' hashes live (default: $KILN_KEYS_DB or {DEFAULT_KEYS})",
    )  # fmt: skip


def add_serve_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the agents and crews of a spec folder over HTTP",
        description="Compile the specs and serve them: the /v1 API (docs/server.md). Every "
        "request needs an API key (kiln keys create) unless --no-auth, which only a "
        "loopback address may use.",
    )
    serve.add_argument(
        "path", metavar="PATH|GIT_URL",
        help="the spec folder to serve (watched), or a git repository whose branch to follow",
    )  # fmt: skip
    serve.add_argument("--branch", default="main", help="the git branch to follow (main)")
    serve.add_argument(
        "--poll", type=float, default=None, metavar="SECONDS",
        help="how often to check for a new revision (folder 2, git 30; 0: never)",
    )  # fmt: skip
    serve.add_argument(
        "--webhook-secret-env", metavar="NAME", default="KILN_WEBHOOK_SECRET",
        help="the environment variable holding the secret of POST /v1/deploy/hook "
        "(HMAC-SHA256, as GitHub signs; default KILN_WEBHOOK_SECRET; unset: no webhook)",
    )  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8321, help="port to listen on (8321)")
    serve.add_argument(
        "--no-auth", action="store_true",
        help="serve without keys, as one local admin tenant (loopback addresses only)",
    )  # fmt: skip
    serve.add_argument("--model", metavar="MODEL", help="use this model for every agent")
    serve.add_argument(
        "--runs-db", "--db", dest="db", metavar="FILE", default=None,
        help="the trace store (default: $KILN_RUNS_DB or .kiln/runs.db)",
    )  # fmt: skip
    serve.add_argument("--memory-dir", metavar="DIR", help="where embedded memory lives")
    serve.add_argument(
        "--sandbox", choices=("nsjail", "bwrap", "none"), help="the sandbox for tools"
    )
    serve.add_argument("--unsafe", action="store_true", help="allow --sandbox none")
    serve.add_argument("--rate", type=float, default=20.0, help="requests a second per key")
    serve.add_argument("--burst", type=int, default=40, help="requests at once per key")
    serve.add_argument(
        "--max-runs", type=int, default=32, help="runs in flight per tenant (32)"
    )
    serve.add_argument(
        "--max-body", type=int, default=1 << 20, help="largest request body in bytes (1 MiB)"
    )
    serve.add_argument(
        "--log-format", choices=("text", "json"), default="text",
        help="text, or one JSON object a line for log collectors",
    )  # fmt: skip
    _with_keys_db(serve)


def add_keys_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    keys = commands.add_parser("keys", help="the API keys of kiln serve")
    sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=parser_class)
    create = sub.add_parser("create", help="make a key; it is printed once and never kept")
    create.add_argument("--tenant", required=True, help="who the key's runs and memory belong to")
    create.add_argument(
        "--scope", action="append", required=True, choices=("read", "run", "approve", "admin"),
        help="what the key may do (repeatable): read, run (and read), approve (and read), admin",
    )  # fmt: skip
    create.add_argument("--name", help="a note saying what the key is for")
    _with_keys_db(create)
    add_format_option(create, "print the key and its id as JSON")
    list_ = sub.add_parser("list", help="every key: id, tenant, scopes, revoked or not")
    _with_keys_db(list_)
    add_format_option(list_, "print the keys as JSON")
    revoke = sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id", metavar="ID", help="the key's id (or the key)")
    _with_keys_db(revoke)


def keys_command(args: argparse.Namespace) -> int:
    from runtime.server.keys import KeyError_, KeyStore

    store = KeyStore(keys_path(args))
    try:
        if args.keys_command == "create":
            key = store.create(args.tenant, args.scope, name=args.name)
            if args.json:
                print(json.dumps({"key": key, "id": key.split("_")[1], "tenant": args.tenant}))
            else:
                print(key)
                print(
                    f"kiln: key {key.split('_')[1]} for tenant {args.tenant} "
                    f"({', '.join(sorted(set(args.scope)))}): keep it, it is not shown again",
                    file=sys.stderr,
                )
        elif args.keys_command == "list":
            found = store.list()
            if args.json:
                print(json.dumps([k.as_json() for k in found], indent=2))
            for k in found if not args.json else ():
                state = "revoked" if k.revoked else "live"
                print(f"{k.id}  {k.tenant:<16} {','.join(sorted(k.scopes)):<20} {state}"
                      f"  {k.name or ''}".rstrip())  # fmt: skip
        else:
            revoked = store.revoke(args.id)
            print(f"kiln: key {revoked.id} of tenant {revoked.tenant} revoked", file=sys.stderr)
    except KeyError_ as exc:
        print(f"kiln: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    finally:
        store.close()
    return EXIT_OK


def _is_git(path: str) -> bool:
    return (
        path.startswith(("https://", "http://", "ssh://", "git@", "file://"))
        or path.endswith(".git")
    )


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(args: argparse.Namespace) -> int:
    if args.no_auth and not loopback(args.host):
        print(
            f"kiln: --no-auth serves anyone who can reach {args.host}: only a loopback "
            "address (127.0.0.1, ::1) may be served without keys",
            file=sys.stderr,
        )
        return EXIT_USAGE
    import hashlib

    import uvicorn

    from runtime.cli.runs import db_path
    from runtime.engine import Engine, Settings
    from runtime.server.app import Limits, Server, create_app
    from runtime.server.deploy import Deployer, FolderSource, GitSource
    from runtime.server.keys import KeyStore

    settings = Settings(
        model=args.model,
        sandbox=args.sandbox,
        unsafe=args.unsafe,
        memory_dir=Path(args.memory_dir) if args.memory_dir else None,
    )
    runs_db = db_path(args)
    source: Any
    if _is_git(args.path):
        digest = hashlib.sha256(f"{args.path}#{args.branch}".encode()).hexdigest()[:12]
        source = GitSource(args.path, args.branch, Path(".kiln", "deploy", digest))
        poll = args.poll if args.poll is not None else 30.0
    else:
        if not Path(args.path).is_dir():
            print(f"kiln: {args.path}: not a folder or a git URL", file=sys.stderr)
            return EXIT_USAGE
        source = FolderSource(Path(args.path))
        poll = args.poll if args.poll is not None else 2.0
    deployer = Deployer(source, lambda paths: Engine(paths, settings, runs_db=runs_db))
    secret = os.environ.get(args.webhook_secret_env) if args.webhook_secret_env else None
    keys = None
    if args.no_auth:
        print("kiln: WARNING: serving without keys (--no-auth): every caller is admin",
              file=sys.stderr)  # fmt: skip
    else:
        keys = KeyStore(keys_path(args))
        if not keys.list():
            print("kiln: no API keys yet: make one with 'kiln keys create --tenant T "
                  "--scope run'", file=sys.stderr)  # fmt: skip
    limits = Limits(
        rate=args.rate, burst=args.burst, max_body=args.max_body, runs_per_tenant=args.max_runs
    )
    from runtime.otel import tracing_from_env

    server = Server(
        deployer=deployer, keys=keys, limits=limits, poll_s=poll or None,
        webhook_secret=secret.encode() if secret else None, tracing=tracing_from_env(),
    )  # fmt: skip
    app = create_app(server)
    from runtime.server.logs import configure

    log_config = configure(args.log_format)
    # on SIGTERM, open event streams get 10 s to end before the runs are drained
    config: dict[str, Any] = {
        "host": args.host, "port": args.port, "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }  # fmt: skip
    if log_config is not None:
        config["log_config"] = log_config
    uvicorn.run(app, **config)
    return EXIT_OK


def add_deploy_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    deploy = commands.add_parser("deploy", help="what a kiln server deploys")
    sub = deploy.add_subparsers(dest="deploy_command", required=True, parser_class=parser_class)
    status = sub.add_parser(
        "status", help="a server's deployments: serving, rejected (with errors), superseded"
    )
    status.add_argument("--server", required=True, metavar="URL", help="e.g. http://host:8321")
    status.add_argument(
        "--key-env", default="KILN_API_KEY", metavar="NAME",
        help="the environment variable holding a read key (default KILN_API_KEY)",
    )  # fmt: skip
    status.add_argument("-n", type=int, default=10, help="how many deployments (10)")
    add_format_option(status, "print the server's answer as JSON")


def deploy_command(args: argparse.Namespace) -> int:
    import httpx

    key = os.environ.get(args.key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        answer = httpx.get(f"{args.server.rstrip('/')}/v1/deployments", headers=headers,
                           timeout=30)  # fmt: skip
    except httpx.HTTPError as exc:
        print(f"kiln: {args.server}: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    if answer.status_code != 200:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:200]
        print(f"kiln: {args.server}: {answer.status_code}: {message}", file=sys.stderr)
        return EXIT_ERRORS
    data = answer.json()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    source = data.get("source", {})
    if source.get("error"):
        print(f"source: {source['error']}")
    for d in data.get("items", [])[: args.n]:
        line = f"#{d['id']:<4} {d['status']:<10} {str(d['revision'])[:12]:<12}"
        print(f"{line} {d.get('plan_hash') or '-':<20.20} {d.get('message') or ''}".rstrip())
        for flag in d.get("flagged", []):
            print(f"       ! {flag}")
        for error in d.get("errors", []):
            print(f"       {error['path']}:{error['line']}:{error['col']}: "
                  f"error[{error['code']}]: {error['message']}")  # fmt: skip
    return EXIT_OK
