"""``kiln sandbox check``: which sandbox backends work here, what they enforce, how fast.

For each backend it says whether it can run (or exactly why not), what it can enforce on
this machine (outside uid, seccomp, cgroup memory and pids limits), then starts one real
worker and makes one trivial call through the worker protocol, with the latencies. Exit
0 when at least one isolating backend (nsjail, bwrap) works, else 1.

This module is imported when ``kiln`` starts, whatever the command: the sandbox package
is imported inside the functions, so ``kiln validate`` never pays for it.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, TypeVar, cast

from runtime.cli.options import add_format_option

if TYPE_CHECKING:
    from sandbox.backends.base import Backend, Launch
    from sandbox.profile import BackendName, Profile

__all__ = ["Check", "add_sandbox_parser", "check_backend", "sandbox_command"]

EXIT_OK, EXIT_NONE_WORKS = 0, 1
TRIAL_TIMEOUT_S = 15.0
TRIAL_REQUEST = {"id": 1, "kind": "python", "code": "def run(): return 42", "input": {}}
TRIAL_OUTPUT = 42

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


def add_sandbox_parser(
    commands: argparse._SubParsersAction[_Parser], parser_class: type[_Parser]
) -> None:
    """Add ``sandbox check`` to the ``kiln`` sub-commands."""
    sandbox = commands.add_parser("sandbox", help="inspect the tool sandboxes on this machine")
    sub = sandbox.add_subparsers(dest="sandbox_command", required=True, parser_class=parser_class)
    check = sub.add_parser(
        "check", help="which backends work here, what they enforce, and a test call in each"
    )
    add_format_option(check, "print the findings as JSON")


def sandbox_command(args: argparse.Namespace) -> int:
    """Run ``kiln sandbox check``: 0 when an isolating backend works, else 1."""
    from sandbox.backends import BACKENDS, ISOLATING

    checks = [check_backend(name) for name in BACKENDS]
    isolating = [c.name for c in checks if c.works and c.name in ISOLATING]
    if args.json:
        print(json.dumps({"ok": bool(isolating), "backends": [asdict(c) for c in checks]}))
    else:
        sys.stdout.write(_render(checks, isolating))
    return EXIT_OK if isolating else EXIT_NONE_WORKS


@dataclass(slots=True)
class Check:
    """What ``kiln sandbox check`` found about one backend."""

    name: str
    #: it can run here and its test call answered
    works: bool = False
    #: why not (not installed, user namespaces disabled, a test launch that failed, ...)
    problem: str | None = None
    binary: str | None = None
    enforces: dict[str, str] = field(default_factory=dict)
    #: from starting the worker to its "ready" line, and the test call's round trip
    start_ms: float | None = None
    call_ms: float | None = None


def check_backend(name: str) -> Check:
    """Check one backend: can it run, what does it enforce, does a real worker answer."""
    from sandbox.backends import backend_named

    backend = backend_named(name)
    known = cast("BackendName", name)
    check = Check(name=name, binary=_binary(backend), enforces=_enforces(backend))
    check.problem = backend.problem()
    if check.problem is None:
        try:
            check.start_ms, check.call_ms = _trial(backend, known)
            check.works = True
        except (OSError, RuntimeError, ValueError) as exc:
            check.problem = str(exc)
    return check


def _binary(backend: Backend) -> str | None:
    find = getattr(backend, "binary", None)
    found = find() if callable(find) else None
    return str(found) if found is not None else None


def _enforces(backend: Backend) -> dict[str, str]:
    describe = getattr(backend, "enforces", None)
    found = describe() if callable(describe) else None
    return dict(found) if isinstance(found, dict) else {}


# -- a test worker --------------------------------------------------------------------------


def _trial(backend: Backend, name: BackendName) -> tuple[float, float]:
    """(start ms, call ms) of one real worker answering one trivial call. It runs in the
    probe slot, which no pool uses, so a running kiln's workers are not disturbed."""
    from sandbox.backends import PROBE_SLOT, WORKER_DIR
    from sandbox.profile import Profile

    profile = Profile(backend=name)
    launch = backend.launch(profile, PROBE_SLOT, WORKER_DIR)
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = _start(launch, profile, log)
        try:
            return _exchange(process, started, log)
        finally:
            _stop(process)
            for path in launch.cleanup:
                shutil.rmtree(path, ignore_errors=True)


def _start(launch: Launch, profile: Profile, log: IO[bytes]) -> subprocess.Popen[bytes]:
    from sandbox.backends import process_options
    from sandbox.pool import worker_config

    return subprocess.Popen(
        [*launch.argv, json.dumps(worker_config(profile, launch))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
        **process_options(launch),
    )


def _exchange(
    process: subprocess.Popen[bytes], started: float, log: IO[bytes]
) -> tuple[float, float]:
    deadline = time.monotonic() + TRIAL_TIMEOUT_S
    ready = _line(process, deadline, log)
    if json.loads(ready) != {"ready": True}:
        raise RuntimeError(f"the worker did not say it was ready: {ready[:200]!r}")
    start_ms = (time.perf_counter() - started) * 1000
    assert process.stdin is not None
    sent = time.perf_counter()
    process.stdin.write(json.dumps(TRIAL_REQUEST).encode() + b"\n")
    process.stdin.flush()
    answer = json.loads(_line(process, deadline, log))
    call_ms = (time.perf_counter() - sent) * 1000
    if not (answer.get("ok") is True and answer.get("output") == TRIAL_OUTPUT):
        raise RuntimeError(f"the test call failed: {json.dumps(answer)[:300]}")
    return round(start_ms, 1), round(call_ms, 1)


def _line(process: subprocess.Popen[bytes], deadline: float, log: IO[bytes]) -> bytes:
    """One line from the worker's stdout, or an error with what the backend printed."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"no answer in {TRIAL_TIMEOUT_S:g} s{_said(log)}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                process.wait(5)
                raise RuntimeError(f"the worker exited ({process.returncode}){_said(log)}")
            data += chunk
    return data


def _said(log: IO[bytes]) -> str:
    log.seek(0)
    lines = log.read().decode("utf-8", "replace").strip().splitlines()
    return ": " + " / ".join(lines[-3:]) if lines else ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait(5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


# -- output ---------------------------------------------------------------------------------


def _render(checks: Sequence[Check], isolating: Sequence[str]) -> str:
    lines = []
    for check in checks:
        state = "works" if check.works else f"does not work: {check.problem}"
        if check.works and check.name == "none":
            state += " (isolates nothing: only for tools marked unsafe)"
        lines.append(f"{check.name}: {state}")
        if check.binary:
            lines.append(f"  binary: {check.binary}")
        lines += [f"  {what}: {value}" for what, value in check.enforces.items()]
        if check.works:
            lines.append(
                f"  test worker: ready in {check.start_ms:.0f} ms, "
                f"a call answered in {check.call_ms:.1f} ms"
            )
    if isolating:
        lines.append(f"ok: {', '.join(isolating)} can isolate tools here")
    else:
        lines.append("kiln: no isolating sandbox works here (see above)")
    return "\n".join(lines) + "\n"
