"""Sandbox backends started directly (no pool): what a tool inside can and cannot do.

One worker per isolating backend serves every test of the module (a start is ~50 ms), so
the tests also show that /tmp and /work come back empty between calls. Both nsjail and
bubblewrap work on the machines this project runs on: a backend that cannot run here fails
its tests with the backend's own reason, it is never skipped.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sandbox.backends import WORKER_DIR, backend_named, cgroups, outside_uid, process_options
from sandbox.backends.base import INSIDE_ENV, Launch
from sandbox.backends.none import NONE_OFFSET
from sandbox.pool import worker_config
from sandbox.profile import FIRST_UID, INSIDE_UID, BackendName, Profile

ROOT = Path(__file__).resolve().parents[2]
#: A slot no pool in a concurrent test run is likely to use.
SLOT = 7
ISOLATING: tuple[BackendName, ...] = ("nsjail", "bwrap")
MODULE = "kiln_probe_tool"
MODULE_SOURCE = """
import errno, os

def run():
    try:
        open(os.path.join(os.path.dirname(__file__), "written"), "w").close()
    except OSError as exc:
        return {"file": __file__, "errno": exc.errno}
    return {"file": __file__, "errno": None}
"""


class Worker:
    """One worker process, spoken to as the pool would: JSON lines on stdin and stdout."""

    def __init__(self, backend: BackendName, profile: Profile) -> None:
        self.launch: Launch = backend_named(backend).launch(profile, SLOT, WORKER_DIR)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [*self.launch.argv, json.dumps(worker_config(profile, self.launch))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
            **process_options(self.launch),
        )
        ready = self._line()
        assert json.loads(ready) == {"ready": True}, ready

    def call(self, code: str, **arguments: Any) -> dict[str, Any]:
        return self.request({"kind": "python", "code": code, "input": arguments})

    def output(self, code: str, **arguments: Any) -> Any:
        answer = self.call(code, **arguments)
        assert answer["ok"], answer
        return answer["output"]

    def request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": 1, **request}).encode() + b"\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def processes(self) -> list[int]:
        """The worker's process and all its descendants, seen from outside."""
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    stat = Path(f"/proc/{name}/stat").read_text()
                except OSError:
                    continue
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def worker_pid(self) -> int:
        for pid in self.processes():
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if argv[:3] == [b"/usr/bin/python3", b"-I", b"/kiln/worker.py"]:
                return pid
        raise AssertionError("no worker process under the sandbox")

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.process.kill()
        self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.log.close()
        for path in self.launch.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def _line(self) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        data = b""
        deadline = time.monotonic() + 15
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.log.seek(0)
                said = self.log.read().decode("utf-8", "replace")
                raise AssertionError(f"the worker stopped answering; it said: {said}")
            data += chunk
        return data


@pytest.fixture(scope="module")
def allowed() -> Iterator[Path]:
    """A folder readable by all with one module in it: an allowed import path."""
    folder = Path(tempfile.mkdtemp(prefix="kiln-allowed-", dir="/tmp"))
    folder.chmod(0o755)
    (folder / f"{MODULE}.py").write_text(MODULE_SOURCE)
    (folder / f"{MODULE}.py").chmod(0o644)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module", params=ISOLATING)
def worker(request: pytest.FixtureRequest, allowed: Path) -> Iterator[Worker]:
    name: BackendName = request.param
    problem = backend_named(name).problem()
    assert problem is None, f"{name} does not work here: {problem}"
    started = Worker(name, Profile(backend=name, paths=(str(allowed),)))
    yield started
    started.close()


def test_a_trivial_call_works(worker: Worker) -> None:
    answer = worker.call("def run(): return 42")
    assert answer["ok"] is True and answer["output"] == 42, answer


def test_uid_is_65534_inside_and_unprivileged_outside(worker: Worker) -> None:
    code = "import os\ndef run(): return [os.getuid(), os.getgid(), os.getgroups()]"
    assert worker.output(code) == [INSIDE_UID, INSIDE_UID, []]
    expected = FIRST_UID + SLOT if os.geteuid() == 0 else os.geteuid()
    seen = {}
    for pid in worker.processes():
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        ids = {line.split(":")[0]: line.split()[1:] for line in status if ":" in line}
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"nsjail" in command.split(b"\0")[0]:
            continue  # nsjail itself stays outside, as the runtime, to supervise
        seen[pid] = (set(ids["Uid"]), set(ids["Gid"]), command[:60])
    assert any(b"/kiln/worker.py" in command for _, _, command in seen.values()), seen
    assert all(uids == gids == {str(expected)} for uids, gids, _ in seen.values()), seen
    assert outside_uid(SLOT) == expected != 0


def test_the_host_is_not_visible(worker: Worker) -> None:
    code = "import os\ndef run(paths): return {p: os.path.exists(p) for p in paths}\n"
    paths = ["/etc/shadow", "/etc/passwd", "/root", str(ROOT), str(ROOT / "pyproject.toml")]
    assert worker.output(code, paths=paths) == dict.fromkeys(paths, False)
    listing = "import os\ndef run(): return [p for p in os.listdir('/proc') if p.isdigit()]"
    pids = worker.output(listing)
    assert len(pids) <= 4, f"more than the sandbox's own processes in /proc: {pids}"


def test_tmp_and_work_are_writable_and_empty_at_the_next_call(worker: Worker) -> None:
    write = (
        "import os\n"
        "def run():\n"
        "    for folder in ('/tmp', '/work'):\n"
        "        os.makedirs(folder + '/sub/deeper')\n"
        "        open(folder + '/sub/file', 'w').write('x')\n"
        "        open(folder + '/top', 'w').write('y')\n"
        "    os.chmod('/work/sub', 0)\n"
        "    return [sorted(os.listdir('/tmp')), sorted(os.listdir('/work')), os.getcwd()]\n"
    )
    assert worker.output(write) == [["sub", "top"], ["sub", "top"], "/work"]
    read = "import os\ndef run(): return [os.listdir('/tmp'), os.listdir('/work')]"
    assert worker.output(read) == [[], []]


def test_no_network(worker: Worker) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        code = (
            "import socket\n"
            "def run(port):\n"
            "    try:\n"
            "        socket.create_connection(('127.0.0.1', port), timeout=2).close()\n"
            "    except OSError as exc:\n"
            "        return type(exc).__name__\n"
            "    return 'connected'\n"
        )
        assert worker.output(code, port=port) in ("ConnectionRefusedError", "OSError")
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # from outside: yes


def test_the_environment_is_minimal(worker: Worker) -> None:
    environment = worker.output("import os\ndef run(): return dict(os.environ)")
    assert environment == {**INSIDE_ENV, "PWD": "/work"}


def test_allowed_paths_are_importable_read_only(worker: Worker, allowed: Path) -> None:
    answer = worker.request({"kind": "python", "entrypoint": f"{MODULE}:run", "input": {}})
    assert answer["ok"], answer
    assert answer["output"] == {"file": f"/kiln/paths/0/{MODULE}.py", "errno": errno.EROFS}
    assert not (allowed / "written").exists()


def test_no_nested_user_namespace_and_no_ptrace(worker: Worker) -> None:
    code = (
        "import ctypes, os\n"
        "def run():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    results = []\n"
        "    for call in (lambda: libc.unshare(0x10000000),\n"
        "                 lambda: libc.ptrace(16, os.getppid(), 0, 0)):\n"
        "        results.append([call(), ctypes.get_errno()])\n"
        "    return results\n"
    )
    (unshare, unshare_errno), (ptrace, _) = worker.output(code)
    assert unshare == -1 and unshare_errno in (errno.EPERM, errno.ENOSPC)
    assert ptrace == -1


def test_cgroup_limits_apply_to_the_whole_sandbox(worker: Worker) -> None:
    found = cgroups()
    for controller, limit in ((found.pids, "pids.max"), (found.memory, "memory.limit_in_bytes")):
        if not controller.usable:
            assert controller.problem  # nothing to check on this machine: it says why
            continue
        path = _cgroup(worker.worker_pid(), controller.name)
        assert path.startswith("/") and "/agentkiln/" in path, path
        value = (controller.mount / path.lstrip("/") / limit).read_text().strip()
        assert value.isdigit() and int(value) < 2**40, f"{controller.name}: {value}"


def _cgroup(pid: int, controller: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    raise AssertionError(f"process {pid} is in no {controller} cgroup")


def test_none_runs_as_the_unprivileged_slot_uid() -> None:
    assert backend_named("none").problem() is None
    started = Worker("none", Profile(backend="none"))
    try:
        code = "import os\ndef run(): return [os.getuid(), os.getcwd(), os.environ['TMPDIR']]"
        uid, cwd, tmpdir = started.output(code)
        folder = started.launch.workdir
        # a uid range of its own, apart from the isolating backends' slots
        assert uid == (FIRST_UID + NONE_OFFSET + SLOT if os.geteuid() == 0 else os.geteuid())
        assert cwd == tmpdir == folder and Path(folder).stat().st_mode & 0o077 == 0
        started.output("def run(): open('left', 'w').write('x')")
        assert os.listdir(folder) == []
    finally:
        started.close()
    assert not Path(folder).exists()
