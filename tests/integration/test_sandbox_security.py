"""The sandbox escape suite: every isolating backend against the same attacks, unedited.

Each attack is a real tool call (Python code defining ``run(**input)``, or a shell
command) made through the real :class:`~sandbox.pool.Pool` under a default-ish profile
(256 MB, 2 s CPU, 5 s wall, 16 processes, 1 MB of output). Every attempt must fail and come
back as a clean tool result: either ``ok=False`` with the limit that stopped it, or
``ok=True`` with output proving the attempt failed (the tool catches the exception and
returns ``{"blocked": "PermissionError: ..."}``). And the host must be unchanged afterwards:
no file created outside, no process of a sandbox uid (``>= FIRST_UID``) left once the pool
is closed, and this process (the runtime) alive and able to start processes.

The attacks run against ``nsjail`` and ``bwrap`` only. The ``none`` backend isolates
nothing by design (see docs/sandbox.md: it runs the worker as a plain process, for code
you trust), so it gets only the harmless sanity part: a normal tool runs, an exception is
reported, the worker survives it.

Each test has its own pool (and event loop): a worker starts in well under a second, and a
leak in one test cannot make the next one pass or fail.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import subprocess
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import to_thread

from sandbox.backends import with_pwd
from sandbox.backends.base import INSIDE_ENV
from sandbox.pool import WORKER_DIR, CallResult, Pool, PoolSettings
from sandbox.profile import FIRST_UID, INSIDE_UID, INSIDE_WORK, BackendName, Profile
from tests.helpers import readable_by_all

ISOLATING: list[BackendName] = ["nsjail", "bwrap"]
EVERY: list[BackendName] = [*ISOLATING, "none"]
isolating = pytest.mark.parametrize("backend", ISOLATING)
every = pytest.mark.parametrize("backend", EVERY)

#: How long the host waits for a killed sandbox's processes to disappear.
SETTLE_S = 3.0


# -- the host's view: processes of sandbox uids ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    uid: int
    state: str
    command: str


def host_processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = Path(f"/proc/{name}/status").read_text(encoding="utf-8", errors="replace")
            command = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.partition(":\t")[::2] for line in status.splitlines())
        found[int(name)] = Proc(
            pid=int(name),
            ppid=int(fields.get("PPid", "0")),
            uid=int(fields.get("Uid", "0").split()[0]),
            state=fields.get("State", "?")[:1],
            command=command.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:200],
        )
    return found


def _lineage(procs: Mapping[int, Proc], pid: int) -> Iterator[Proc]:
    seen: set[int] = set()
    while pid in procs and pid not in seen:
        seen.add(pid)
        yield procs[pid]
        pid = procs[pid].ppid


def sandbox_processes() -> dict[int, Proc]:
    """Live processes of a sandbox uid that are this test's: descendants of this process, or
    orphans (re-parented to init or a subreaper above us). Other people's sandboxes running
    at the same time on this machine hang under their own runtime and are left out."""
    procs = host_processes()
    mine = {p.pid for p in _lineage(procs, os.getpid())} | {0, 1}
    out: dict[int, Proc] = {}
    for proc in procs.values():
        if proc.uid < FIRST_UID or proc.state in "ZX":
            continue
        line = list(_lineage(procs, proc.pid))
        if any(p.pid == os.getpid() for p in line):
            out[proc.pid] = proc
            continue
        keeper = next((p for p in line if p.uid < FIRST_UID), None)
        if keeper is None or keeper.pid in mine:
            out[proc.pid] = proc
    return out


async def strays(allowed: Mapping[int, Proc], ignore: Mapping[int, Proc]) -> list[Proc]:
    """The sandbox processes beyond ``allowed`` still alive after up to SETTLE_S (a killed
    pid namespace takes a moment to empty)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        left = [
            p for pid, p in sandbox_processes().items() if pid not in allowed and pid not in ignore
        ]
        if not left or time.monotonic() > deadline:
            return left
        await anyio.sleep(0.05)


def host_usable() -> float:
    """Seconds the host takes to start and finish ``/bin/true``."""
    started = time.perf_counter()
    subprocess.run(["/bin/true"], check=True, timeout=10)
    return time.perf_counter() - started


# -- calls ----------------------------------------------------------------------------------


def profile(backend: BackendName, **limits: Any) -> Profile:
    settings: dict[str, Any] = {
        "memory_mb": 256,
        "cpu_s": 2,
        "timeout_s": 5,
        "max_processes": 16,
        "max_output_bytes": 1_000_000,
        **limits,
    }
    return Profile(backend=backend, **settings)


#: Prepended to every attack: ``attempt(f)`` runs ``f`` and says how it failed.
PRELUDE = """
import os


def attempt(action):
    try:
        return {"done": repr(action())[:300]}
    except BaseException as exc:
        return {"blocked": f"{type(exc).__name__}: {exc}"[:300],
                "errno": getattr(exc, "errno", None)}
"""


@dataclass(slots=True)
class Box:
    """One pool with one profile, and the host's view of it."""

    pool: Pool
    profile: Profile
    #: the sandbox processes of the warm worker (backend, worker), before any call
    idle: dict[int, Proc] = field(default_factory=dict)
    #: sandbox processes that were there before the test: not its business
    before: dict[int, Proc] = field(default_factory=dict)

    async def python(self, code: str, **input: Any) -> CallResult:
        request = {"kind": "python", "code": PRELUDE + textwrap.dedent(code), "input": input}
        return self._seen("python", await self.pool.call(self.profile, request))

    async def shell(self, *argv: str) -> CallResult:
        request = {"kind": "shell", "argv": list(argv), "input": {}}
        return self._seen(" ".join(argv), await self.pool.call(self.profile, request))

    def _seen(self, what: str, result: CallResult) -> CallResult:
        # shown by pytest when a test fails (and with -rP): what the sandbox answered
        print(
            f"{self.profile.backend}: {what[:60]!r} -> ok={result.ok} reason={result.reason}"
            f" error={result.error!r} output={str(result.output)[:500]} ms={result.ms}"
        )
        return result

    async def assert_nothing_left(self) -> None:
        """Only the warm worker's own processes may remain (none if it was retired)."""
        left = await strays(self.idle, self.before)
        assert not left, f"processes the call left behind: {left}"


Scenario = Callable[[Box], Awaitable[None]]


async def in_sandbox(
    backend: BackendName, scenario: Scenario, *, size: int = 1, **limits: Any
) -> Box:
    """Run ``scenario`` against a fresh warm pool, close the pool, then check the host."""
    before = sandbox_processes()
    async with Pool(PoolSettings(size=size, warm=1)) as pool:
        box = Box(pool, profile(backend, **limits), before=before)
        await pool.warm(box.profile)
        box.idle = {p: v for p, v in sandbox_processes().items() if p not in before}
        # (as root, every backend runs its worker as FIRST_UID + slot; as another user, as
        # that user, and these checks could not tell the sandbox from the runtime)
        assert box.idle, "the warm worker runs as no sandbox uid: is the runtime root?"
        await scenario(box)
    left = await strays({}, before)
    assert not left, f"sandbox processes alive after the pool closed: {left}"
    assert host_usable() < 5
    return box


def sandboxed(backend: BackendName, scenario: Scenario, *, size: int = 1, **limits: Any) -> Box:
    """:func:`in_sandbox` in an event loop of its own."""
    return anyio.run(functools.partial(in_sandbox, backend, scenario, size=size, **limits))


def blocked(outcome: Any, *exceptions: str) -> str:
    """``outcome`` is an ``attempt`` that failed with one of ``exceptions``: its message."""
    assert isinstance(outcome, dict) and "blocked" in outcome, f"not blocked: {outcome}"
    message: str = outcome["blocked"]
    assert message.split(":")[0] in exceptions, message
    return message


# -- sanity: every backend, none included ---------------------------------------------------


@every
def test_a_normal_tool_runs(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def run(x):
                print("hello from inside")
                return {"y": x + 1, "uid": os.getuid(), "cwd": os.getcwd()}
            """,
            x=2,
        )
        assert result.ok and result.error is None and result.reason is None
        assert result.output["y"] == 3
        assert result.output["uid"] != 0, "the tool runs as root"
        assert result.stdout == "hello from inside\n"
        if backend != "none":
            assert result.output["uid"] == INSIDE_UID
            assert result.output["cwd"] == "/work"

    sandboxed(backend, scenario)


@every
def test_an_exception_is_reported(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def run():
                raise ValueError("bad input: 42")
            """
        )
        assert not result.ok
        assert result.reason == "exception"
        assert result.error == "ValueError: bad input: 42"

    sandboxed(backend, scenario)


@every
def test_the_worker_survives_an_exception(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        failed = await box.python("def run():\n    raise ValueError('first')\n")
        assert (failed.ok, failed.reason) == (False, "exception")
        result = await box.python("def run(x):\n    return {'y': x + 1}\n", x=41)
        assert result.ok and result.output == {"y": 42}
        assert box.pool.started == 1 and box.pool.retired == 0

    sandboxed(backend, scenario, size=1)


# -- 1. secrets on disk ---------------------------------------------------------------------


@isolating
def test_cannot_read_host_secrets(backend: BackendName) -> None:
    files = [
        "/etc/shadow",
        "/etc/passwd",
        "/root/.bashrc",
        __file__,
        str(Path.cwd()),
        "/proc/1/root/etc/shadow",
    ]
    folders = ["/root", str(Path(__file__).parent), "/work/main", "/home"]
    assert Path("/etc/shadow").exists() and Path(__file__).exists()  # they are on the host

    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def run(files, folders):
                out = {}
                for path in files:
                    out[path] = attempt(lambda: open(path, "rb").read(64))
                for path in folders:
                    out[path] = attempt(lambda: os.listdir(path))
                return out
            """,
            files=files,
            folders=folders,
        )
        assert result.ok, result.error
        for path in [*files, *folders]:
            blocked(
                result.output[path], "FileNotFoundError", "PermissionError", "IsADirectoryError"
            )

    sandboxed(backend, scenario)


# -- 2. writing outside ---------------------------------------------------------------------


@isolating
def test_cannot_write_outside_tmp(backend: BackendName) -> None:
    token = f"kiln-attack-{uuid.uuid4().hex[:12]}"
    # inside path -> where it would land on the host
    targets = {
        f"/usr/{token}": Path(f"/usr/{token}"),
        f"/etc/{token}": Path(f"/etc/{token}"),
        f"/kiln/{token}": WORKER_DIR / token,
        f"/{token}": Path(f"/{token}"),
        f"/usr/lib/{token}": Path(f"/usr/lib/{token}"),
        f"/proc/{token}": Path(f"/proc/{token}"),
        f"/sys/{token}": Path(f"/sys/{token}"),
        f"/tmp/{token}": Path(f"/tmp/{token}"),  # writable inside: its own tmpfs, not the host's
        f"/work/{token}": Path(f"/work/{token}"),
    }
    worker_files = sorted(p.name for p in WORKER_DIR.iterdir())
    python_size = Path("/usr/bin/python3").resolve().stat().st_size

    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def write(path):
                with open(path, "x") as f:
                    f.write("pwned")

            def run(paths):
                out = {path: attempt(lambda: write(path)) for path in paths}
                out["mkdir /usr/share"] = attempt(lambda: os.mkdir("/usr/share/x"))
                out["append python3"] = attempt(lambda: open("/usr/bin/python3", "ab").close())
                out["chmod /tmp"] = attempt(lambda: os.chmod("/", 0o777))
                return out
            """,
            paths=list(targets),
        )
        assert result.ok, result.error
        for inside in targets:
            if inside.startswith(("/tmp/", "/work/")):
                assert "done" in result.output[inside], result.output[inside]
            else:
                blocked(result.output[inside], "OSError", "PermissionError", "FileNotFoundError")
        for what in ("mkdir /usr/share", "append python3", "chmod /tmp"):
            blocked(result.output[what], "OSError", "PermissionError")

    sandboxed(backend, scenario)
    for inside, outside in targets.items():
        assert not outside.exists(), f"{inside} written on the host as {outside}"
    assert sorted(p.name for p in WORKER_DIR.iterdir()) == worker_files
    assert Path("/usr/bin/python3").resolve().stat().st_size == python_size


@isolating
def test_the_workspace_is_the_only_host_folder_it_can_write(
    backend: BackendName, tmp_path: Path
) -> None:
    """``workspace: rw`` binds the run's workspace (and nothing above it) writable at
    /workspace; ``folders`` are read-only; links made there lead only inside the sandbox."""
    workspace = tmp_path / "desk"
    workspace.mkdir()
    (workspace / "mine.txt").write_text("kept", encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    (project / "code.py").write_text("x = 1\n", encoding="utf-8")
    readable_by_all(tmp_path)

    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def made():
                with open("/workspace/made.txt", "x") as f:
                    f.write("made")

            def shadow():
                os.symlink("/etc/shadow", "shadow")
                return open("shadow").read()

            def run():
                return {
                    "cwd": os.getcwd(),
                    "read": open("mine.txt").read(),
                    "write": attempt(made),
                    "folder read": open("/folders/project/code.py").read(),
                    "folder write": attempt(lambda: open("/folders/project/evil.py", "x")),
                    "folder remove": attempt(lambda: os.unlink("/folders/project/code.py")),
                    "above": sorted(os.listdir("/workspace/..")),
                    "link": attempt(shadow),
                    "hard link": attempt(lambda: os.link("/usr/bin/python3", "py")),
                }
            """
        )
        assert result.ok, result.error
        out = result.output
        assert (out["cwd"], out["read"], out["folder read"]) == ("/workspace", "kept", "x = 1\n")
        assert "done" in out["write"], out["write"]
        blocked(out["folder write"], "OSError", "PermissionError")
        blocked(out["folder remove"], "OSError", "PermissionError")
        assert "desk" not in out["above"] and "project" not in out["above"]
        blocked(out["link"], "FileNotFoundError")  # the sandbox has no /etc/shadow
        blocked(out["hard link"], "OSError", "PermissionError")  # another mount: EXDEV

    sandboxed(
        backend,
        scenario,
        workspace=str(workspace),
        workspace_writable=True,
        folders=(str(project),),
    )
    made = workspace / "made.txt"
    assert made.read_text(encoding="utf-8") == "made" and made.stat().st_uid != 0
    assert sorted(p.name for p in project.iterdir()) == ["code.py"]
    assert not (workspace / "py").exists()


# -- 3. and 4. network ----------------------------------------------------------------------

NETWORK = """
import socket


def connect(host, port):
    with socket.create_connection((host, port), timeout=2):
        return "connected"


def run(port):
    with open("/proc/net/dev") as f:
        interfaces = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    return {
        "outside": attempt(lambda: connect("1.1.1.1", 80)),
        "host": attempt(lambda: connect("127.0.0.1", port)),
        "interfaces": interfaces,
    }
"""


@isolating
def test_no_network(backend: BackendName) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]

        async def scenario(box: Box) -> None:
            result = await box.python(NETWORK, port=port)
            assert result.ok, result.error
            out = result.output
            # no route at all: not a timeout of a firewalled packet
            blocked(out["outside"], "OSError")
            assert out["outside"]["errno"] == errno.ENETUNREACH, out["outside"]
            blocked(out["host"], "ConnectionRefusedError", "OSError")
            assert out["host"]["errno"] in (errno.ECONNREFUSED, errno.ENETUNREACH), out["host"]
            assert set(out["interfaces"]) <= {"lo"}, out["interfaces"]

        sandboxed(backend, scenario)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected from inside


@isolating
def test_no_dns(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        started = time.monotonic()
        result = await box.python(
            """
            import socket

            def run():
                return attempt(lambda: socket.getaddrinfo("example.com", 80))
            """
        )
        assert result.ok, result.error
        blocked(result.output, "gaierror")
        assert time.monotonic() - started < box.profile.timeout_s

    sandboxed(backend, scenario)


# -- 5. to 8. limits ------------------------------------------------------------------------

FORK_BOMB = """
def run():
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""


@isolating
@pytest.mark.parametrize("kind", ["python", "shell"])
def test_a_fork_bomb_ends(backend: BackendName, kind: str) -> None:
    probes: list[float] = []

    async def probe() -> None:
        await anyio.sleep(1.0)  # the bomb is at its worst
        probes.append(await to_thread.run_sync(host_usable))

    async def scenario(box: Box) -> None:
        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(probe)
            if kind == "python":
                result = await box.python(FORK_BOMB)
            else:
                # dash will not redefine ':', so the classic bomb under another name; the
                # shell then waits, so only a limit ends the call
                result = await box.shell("/bin/sh", "-c", "b() { b | b & }; b; sleep 10")
        assert time.monotonic() - started < box.profile.timeout_s + 2
        assert not result.ok
        assert result.reason in ("timeout", "cpu"), result
        assert result.error in ("timeout after 3 s", "CPU time limit 1 s exceeded"), result.error
        await box.assert_nothing_left()

    sandboxed(backend, scenario, cpu_s=1, timeout_s=3)
    assert probes and probes[0] < 2.0, f"the host could not start a process: {probes}"


@isolating
def test_memory_is_limited(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        at_once = await box.python("def run():\n    return len(bytearray(4 << 30))\n")
        assert (at_once.ok, at_once.reason) == (False, "memory")
        assert at_once.error == "memory limit 256 MB exceeded"
        gradually = await box.python(
            """
            def run():
                chunks = []
                while True:
                    chunks.append(bytearray(16 << 20))
            """
        )
        assert (gradually.ok, gradually.reason) == (False, "memory")
        assert gradually.error == "memory limit 256 MB exceeded"

    sandboxed(backend, scenario)


@isolating
def test_cpu_is_limited(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        started = time.monotonic()
        result = await box.python("def run():\n    while True:\n        pass\n")
        assert time.monotonic() - started < box.profile.timeout_s + 2
        assert not result.ok
        assert (result.reason, result.error) in (
            ("cpu", "CPU time limit 1 s exceeded"),
            ("timeout", "timeout after 3 s"),
        ), result
        await box.assert_nothing_left()

    sandboxed(backend, scenario, cpu_s=1, timeout_s=3)


@isolating
def test_output_is_limited(backend: BackendName) -> None:
    cap = "output limit of 1,000,000 bytes exceeded"

    async def scenario(box: Box) -> None:
        started = time.monotonic()
        printed = await box.python(
            """
            import sys

            def run():
                chunk = "x" * (1 << 20)
                for _ in range(1024):  # 1 GB
                    sys.stdout.write(chunk)
            """
        )
        assert (printed.ok, printed.reason, printed.error) == (False, "output", cap)
        assert time.monotonic() - started < 2.0
        returned = await box.python("def run():\n    return 'x' * (20 << 20)\n")
        assert (returned.ok, returned.reason, returned.error) == (False, "output", cap)
        yes = await box.shell("yes")
        assert (yes.ok, yes.reason, yes.error) == (False, "output", cap)
        await box.assert_nothing_left()

    sandboxed(backend, scenario)


# -- 9. and 10. nothing survives a call -----------------------------------------------------

OTHERS = """
def run():
    me, parent = os.getpid(), os.getppid()
    others = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in (1, me, parent):
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    others[name] = f.read().replace(b"\\0", b" ").decode()
            except OSError as exc:
                others[name] = str(exc)
    return {"others": others}
"""

BACKGROUND_PYTHON = """
import time


def run():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:  # a daemon: re-parented, in a session of its own
            # It closes what it inherited but stdout and stderr, as daemons do. (One that
            # keeps the result pipe open holds the call until its timeout: the worker
            # waits for that pipe's end of file; see the report on sandbox/inside.)
            os.closerange(3, 4096)
            time.sleep(30)
        os._exit(0)
    os.waitpid(pid, 0)
    return {"left": "a sleeper"}
"""


@isolating
@pytest.mark.parametrize("kind", ["python", "shell"])
def test_no_process_survives_a_call(backend: BackendName, kind: str) -> None:
    async def scenario(box: Box) -> None:
        if kind == "python":
            first = await box.python(BACKGROUND_PYTHON)
            assert first.ok and first.output == {"left": "a sleeper"}, first
        else:
            # one holds the output pipe open, one has a session of its own
            first = await box.shell(
                "/bin/sh", "-c", "nohup sleep 1000 & setsid sleep 1000 >/dev/null 2>&1 &"
            )
            assert first.ok and first.output["exit_code"] == 0, first
        await box.assert_nothing_left()
        second = await box.python(OTHERS)
        assert second.ok and second.output == {"others": {}}, second
        assert box.pool.started == 1  # the same worker served both calls
        await box.assert_nothing_left()

    sandboxed(backend, scenario, size=1)


@isolating
def test_calls_do_not_share_files(backend: BackendName) -> None:
    places = ["/tmp", "/work", "/dev/shm", "/var/tmp", "/run", "/dev/mqueue"]

    async def scenario(box: Box) -> None:
        first = await box.python(
            """
            def write(folder):
                with open(f"{folder}/secret", "w") as f:
                    f.write("hunter2")
                os.mkdir(f"{folder}/locked")
                os.chmod(f"{folder}/locked", 0)
                return folder

            def run(places):
                return {place: attempt(lambda: write(place)) for place in places}
            """,
            places=places,
        )
        assert first.ok, first.error
        assert "done" in first.output["/tmp"] and "done" in first.output["/work"], first.output
        second = await box.python(
            """
            def run(places):
                return {
                    place: attempt(lambda: open(f"{place}/secret").read())
                    for place in places
                } | {"ls " + place: attempt(lambda: os.listdir(place)) for place in places}
            """,
            places=places,
        )
        assert second.ok, second.error
        for place in places:
            blocked(second.output[place], "FileNotFoundError", "PermissionError")
            listed = second.output["ls " + place]
            assert "blocked" in listed or listed["done"] == "[]", (place, listed)
        assert box.pool.started == 1  # the same worker served both calls

    sandboxed(backend, scenario, size=1)


# -- 11. the runtime's environment ----------------------------------------------------------


@isolating
def test_no_environment_leaks(backend: BackendName, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_TEST_SECRET", "hunter2")
    host = dict(os.environ)

    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def run():
                environs = {}
                for name in os.listdir("/proc"):
                    if name.isdigit():
                        try:
                            with open(f"/proc/{name}/environ", "rb") as f:
                                environs[name] = f.read().decode("utf-8", "replace")
                        except OSError as exc:
                            environs[name] = type(exc).__name__
                return {"env": dict(os.environ), "environs": environs}
            """
        )
        assert result.ok, result.error
        env: dict[str, str] = result.output["env"]
        assert "hunter2" not in str(result.output)
        leaked = {k: v for k, v in env.items() if host.get(k) == v and INSIDE_ENV.get(k) != v}
        assert not leaked, f"the runtime's variables inside: {leaked}"
        assert env == with_pwd(INSIDE_WORK)  # the contract: these and nothing else

    sandboxed(backend, scenario)


# -- 12. to 15. escapes ---------------------------------------------------------------------


@isolating
def test_symlinks_lead_nowhere(backend: BackendName) -> None:
    outside = [Path("/work/x"), Path("/work/h")]
    assert not any(p.exists() or p.is_symlink() for p in outside)

    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            def run():
                os.symlink("/etc/shadow", "/work/x")
                os.symlink("/root", "/work/h")
                os.symlink("/", "/tmp/root")
                return {
                    "shadow": attempt(lambda: open("/work/x", "rb").read(64)),
                    "root": attempt(lambda: os.listdir("/work/h")),
                    "home": attempt(lambda: os.listdir("/tmp/root/root")),
                    "proc root": attempt(lambda: os.listdir("/proc/1/root/root")),
                    "cwd": attempt(lambda: os.listdir("/proc/self/cwd/../main")),
                }
            """
        )
        assert result.ok, result.error
        for attack, outcome in result.output.items():
            assert blocked(outcome, "FileNotFoundError", "PermissionError"), attack

    sandboxed(backend, scenario)
    assert not any(p.exists() or p.is_symlink() for p in outside)


PTRACE = """
import ctypes
import errno
import functools


def attach(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    ret = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    err = ctypes.get_errno()
    if ret == 0:
        libc.ptrace(17, pid, None, None)  # PTRACE_DETACH: be polite if it worked
    return {"ret": ret, "errno": errno.errorcode.get(err, err)}


def run():
    worker = os.getppid()
    return {
        "attach worker": attach(worker),
        "attach init": attach(1),
        "mem": attempt(lambda: open(f"/proc/{worker}/mem", "rb").read(1)),
        "environ": attempt(lambda: open(f"/proc/{worker}/environ", "rb").read()),
    }
"""


@isolating
def test_no_ptrace(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        result = await box.python(PTRACE)
        assert result.ok, result.error
        for target in ("attach worker", "attach init"):
            assert result.output[target]["ret"] == -1, result.output
        blocked(result.output["mem"], "PermissionError")
        blocked(result.output["environ"], "PermissionError")

    sandboxed(backend, scenario)


HIJACK = """
import json

FORGED = json.dumps({"ok": True, "output": "forged", "stdout": "", "ms": 0}) + "\\n"


def forge(path):
    with open(path, "w") as pipe:
        pipe.write(FORGED * 3)


def run():
    out = {}
    # pid 1 is the worker (nsjail) or bubblewrap's init, which holds the same pipes
    for pid in sorted({1, os.getppid()}):
        out[f"read requests {pid}"] = attempt(lambda: open(f"/proc/{pid}/fd/0", "rb").read(1))
        out[f"forge answers {pid}"] = attempt(lambda: forge(f"/proc/{pid}/fd/1"))
    return out
"""


@isolating
def test_cannot_hijack_the_worker_pipes(backend: BackendName) -> None:
    """Answers written into the pipe to the runtime would be taken for the next calls' (the
    pool reads one line per call): another tool of the same profile would get the forgery."""

    async def scenario(box: Box) -> None:
        result = await box.python(HIJACK)
        assert result.ok, result.error
        assert result.output != "forged"
        for attack, outcome in result.output.items():
            assert blocked(outcome, "PermissionError"), attack
        for x in range(3):
            after = await box.python("def run(x):\n    return {'y': x + 1}\n", x=x)
            assert after.ok and after.output == {"y": x + 1}, after
        assert box.pool.started == 1  # the same worker

    sandboxed(backend, scenario, size=1)


@isolating
def test_cannot_kill_the_runtime(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        result = await box.python(
            """
            import signal

            def run(host_pid):
                return attempt(lambda: os.kill(host_pid, signal.SIGKILL))
            """,
            host_pid=os.getpid(),
        )
        assert result.ok, result.error
        blocked(result.output, "ProcessLookupError", "PermissionError")
        # everything it can signal: at most its own sandbox. nsjail's worker is pid 1 there,
        # which no signal from inside reaches (ProcessLookupError: nothing else to kill);
        # bubblewrap's is pid 2 and dies, a crash the pool answers with a new worker
        everything = await box.python(
            """
            import signal

            def run():
                return attempt(lambda: os.kill(-1, signal.SIGKILL))
            """
        )
        assert everything.ok or everything.reason == "crash", everything
        after = await box.python("def run():\n    return 'still here'\n")
        assert after.ok and after.output == "still here"

    sandboxed(backend, scenario)
    os.kill(os.getpid(), 0)  # still alive, obviously, but said


USERNS = """
import ctypes
import errno
import functools


def run():
    libc = ctypes.CDLL(None, use_errno=True)
    ret = libc.unshare(0x10000000)  # CLONE_NEWUSER
    err = ctypes.get_errno()
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines())
    return {
        "unshare": {"ret": ret, "errno": errno.errorcode.get(err, err)},
        "setuid": attempt(lambda: os.setuid(0)),
        "uid": os.getuid(),
        "CapEff": int(status["CapEff"], 16),
        "NoNewPrivs": int(status["NoNewPrivs"]),
    }
"""


@isolating
def test_no_nested_user_namespace(backend: BackendName) -> None:
    async def scenario(box: Box) -> None:
        result = await box.python(USERNS)
        assert result.ok, result.error
        out = result.output
        assert out["unshare"]["ret"] == -1, out
        # EINVAL: no uid 0 exists in the sandbox's user namespace to become
        assert out["setuid"]["errno"] in (errno.EPERM, errno.EINVAL), out["setuid"]
        assert (out["uid"], out["CapEff"], out["NoNewPrivs"]) == (INSIDE_UID, 0, 1), out
        shell = await box.shell("unshare", "-Ur", "id")
        assert shell.ok, shell.error
        assert shell.output["exit_code"] != 0, shell.output
        assert "uid=0" not in shell.output["stdout"], shell.output

    sandboxed(backend, scenario)
