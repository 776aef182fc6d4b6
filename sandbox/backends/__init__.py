"""Sandbox backends by name, and what the isolating ones share.

The registry maps names to import strings, so importing this package imports no backend
(and nothing heavy): :func:`backend_named` imports one on first use. The rest of this module
is what nsjail and bubblewrap must agree on, written once: the world inside
(:func:`world`), the syscalls refused (:data:`REFUSED_SYSCALLS`), the outside uid of a slot
(:func:`outside_uid`), which cgroup v1 controllers can limit a sandbox here
(:func:`cgroups`), how a launch is run (:func:`process_options`) and how each finds its
binary and learns whether it can run (:class:`IsolatingBackend`).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import platform
import shutil
import stat
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict, cast

from sandbox.backends.base import INSIDE_ENV, Backend, Launch
from sandbox.profile import (
    FIRST_UID,
    INSIDE_FOLDERS,
    INSIDE_PATHS,
    INSIDE_PYTHON,
    INSIDE_ROOT,
    INSIDE_TMP,
    INSIDE_WORK,
    INSIDE_WORKER,
    INSIDE_WORKSPACE,
    BackendName,
    Profile,
    folder_names,
)

__all__ = [
    "BACKENDS",
    "CLONE",
    "CLONE3",
    "CLONE_NEWUSER",
    "ISOLATING",
    "PROBE_SLOT",
    "REFUSED_SYSCALLS",
    "WORKER_DIR",
    "X32_BIT",
    "X32_ONLY",
    "Cgroups",
    "Controller",
    "IsolatingBackend",
    "LaunchError",
    "Mount",
    "ProcessOptions",
    "backend_named",
    "cgroup_memory",
    "cgroups",
    "check_readable",
    "dies_with_runtime",
    "inside_env",
    "share_workspace",
    "inside_paths",
    "namespaces_problem",
    "outside_uid",
    "probe",
    "process_options",
    "slot_cgroup",
    "uid_note",
    "unreadable",
    "with_pwd",
    "worker_command",
    "world",
    "x86_64",
    "yes_or_why",
]

#: name -> "module:Class"; each class takes no arguments.
BACKENDS: Mapping[BackendName, str] = {
    "nsjail": "sandbox.backends.nsjail:NsjailBackend",
    "bwrap": "sandbox.backends.bwrap:BwrapBackend",
    "none": "sandbox.backends.none:NoneBackend",
}
#: The worker's folder in this package (mounted at /kiln): what the probes run.
WORKER_DIR = Path(__file__).resolve().parents[1] / "inside"
#: The slot of the test sandbox a backend's ``problem()`` runs: no pool slot, so its
#: outside uid (``FIRST_UID - 1``) and its cgroups are no worker's.
PROBE_SLOT = -1
#: The backends that isolate, best first.
ISOLATING: tuple[BackendName, ...] = ("nsjail", "bwrap")


class LaunchError(RuntimeError):
    """A backend could not prepare a worker's launch (a path the sandbox could not read, a
    cgroup it could not set up). The message says what to fix."""


@functools.cache
def backend_named(name: str) -> Backend:
    """The backend called ``name`` (one instance per process: backends cache what they
    learn about the machine)."""
    target = BACKENDS.get(cast(BackendName, name))
    if target is None:
        close = difflib.get_close_matches(name, list(BACKENDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; one of {', '.join(BACKENDS)}"
        raise ValueError(f"no sandbox backend named '{name}'{hint}")
    module, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module), attribute)
    return cast(Backend, factory())


def outside_uid(slot: int) -> int:
    """The uid (and gid) a slot's sandbox runs as outside: ``FIRST_UID + slot`` when the
    runtime is root, so no sandbox is root outside and none shares a uid (and so a
    process count, signals, ptrace) with another or with the runtime; otherwise the
    runtime's own uid, which is the only one an unprivileged user may map."""
    return FIRST_UID + slot if os.geteuid() == 0 else os.geteuid()


def uid_note() -> str:
    """How the outside uid is chosen here, in words (for ``kiln sandbox check``)."""
    if os.geteuid() == 0:
        return f"yes: FIRST_UID + slot ({outside_uid(0)}, {outside_uid(1)}, ...)"
    return f"no: the runtime is not root, so the runtime's own ({os.geteuid()})"


def yes_or_why(problem: str | None) -> str:
    return "yes" if problem is None else f"no: {problem}"


#: util-linux's setpriv: started through it, a worker's outermost process gets SIGKILL when
#: the runtime dies (PR_SET_PDEATHSIG), so a killed kiln leaves no call running on (one
#: would race the resumed run's retry of the same call).
SETPRIV = shutil.which("setpriv") or ""


def dies_with_runtime(argv: tuple[str, ...]) -> tuple[str, ...]:
    """``argv`` started so that it is killed when the runtime dies (as is, without setpriv:
    the worker still ends at its next read, once the call in progress is done)."""
    return (SETPRIV, "--pdeathsig", "KILL", *argv) if SETPRIV else argv


def worker_command() -> tuple[str, ...]:
    """The worker command inside: always the last words of ``Launch.argv`` (the pool adds
    the config). ``-I``: no PYTHON* variables, no user site, no script folder on sys.path."""
    return (INSIDE_PYTHON, "-I", INSIDE_WORKER)


def with_pwd(workdir: str) -> dict[str, str]:
    """The inside environment with ``PWD``: bubblewrap always sets it after its chdir, so
    every backend sets it to the working directory, and tools see the same variables."""
    return {**INSIDE_ENV, "PWD": workdir}


def inside_env(profile: Profile, workspace: str = INSIDE_WORKSPACE,
               folders: str = INSIDE_FOLDERS) -> dict[str, str]:  # fmt: skip
    """The environment of a worker for ``profile``: :func:`with_pwd` of its working
    directory, with ``KILN_WORKSPACE`` and ``KILN_FOLDERS`` when it sees them (the
    ``none`` backend gives the host's paths)."""
    env = with_pwd(workspace if profile.workspace is not None else INSIDE_WORK)
    if profile.workspace is not None:
        env["KILN_WORKSPACE"] = workspace
    if profile.folders:
        env["KILN_FOLDERS"] = folders
    return env


class ProcessOptions(TypedDict):
    """Keywords for ``subprocess.Popen``/``run`` and ``anyio.open_process``."""

    env: dict[str, str]
    user: int | None
    group: int | None
    extra_groups: list[int] | None


def process_options(launch: Launch) -> ProcessOptions:
    """How to run ``launch`` (see :class:`~sandbox.backends.base.Launch`): with exactly its
    environment, as its user and group, and with no supplementary group of the runtime's
    (such as root's) when it has a user of its own."""
    return {
        "env": dict(launch.env),
        "user": launch.user,
        "group": launch.group,
        "extra_groups": [] if launch.user is not None else None,
    }


# -- probes ---------------------------------------------------------------------------------

PROBE_TIMEOUT_S = 20.0


def namespaces_problem() -> str | None:
    """Why no user namespace can be made here (``None``: the knob allows them)."""
    try:
        allowed = int(Path("/proc/sys/user/max_user_namespaces").read_text())
    except (OSError, ValueError):
        return None  # an older kernel without the knob: the probe will tell
    if allowed == 0:
        return "user namespaces are disabled (sysctl user.max_user_namespaces = 0)"
    return None


def probe(launch: Launch, what: str) -> str | None:
    """Run ``launch`` with ``python3 -c ''`` in place of the worker: ``None`` when that ran,
    else what went wrong, in the backend's own words (the end of its stderr)."""
    argv = [*launch.argv[: -len(worker_command())], INSIDE_PYTHON, "-I", "-c", ""]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            **process_options(launch),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"a test {what} could not run: {exc}"
    if done.returncode == 0:
        return None
    said = done.stderr.decode("utf-8", "replace").strip().splitlines()
    tail = " / ".join(said[-3:]) or "no message"
    return f"a test {what} failed (exit {done.returncode}): {tail}"


class IsolatingBackend(ABC):
    """What nsjail and bubblewrap share as backends: the binary, found once, and whether
    they can run here, probed once. A subclass says how to find its binary (``_locate``)
    and how to launch a worker; its ``launch`` starts with :meth:`_binary_and_uid`."""

    name: BackendName
    #: why there is no binary, and how to install one
    missing: str
    #: what one sandbox is called in this backend's problems ("a test jail failed ...")
    noun: str

    def __init__(self, binary: Path | None = None) -> None:
        self._binary = binary
        self._problem: str | None = None
        self._probed = False

    def binary(self) -> Path | None:
        """The binary (``_locate`` says where it is looked for), or ``None`` when there is
        none."""
        if self._binary is None:
            self._binary = self._locate()
        return self._binary

    def problem(self) -> str | None:
        """Why this backend cannot run here: no binary, no user namespaces, or a test
        sandbox (the real command line, an empty Python program in place of the worker)
        that failed, in the backend's own words."""
        if not self._probed:
            self._problem = self._find_problem()
            self._probed = True
        return self._problem

    @abstractmethod
    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch: ...

    @abstractmethod
    def _locate(self) -> Path | None: ...

    def _binary_and_uid(self, profile: Profile, slot: int, worker_dir: Path) -> tuple[Path, int]:
        """The binary and the slot's outside uid, once that uid is known to be able to read
        the worker and every allowed path: the start of every launch."""
        binary = self.binary()
        if binary is None:
            raise LaunchError(self.missing)
        uid = outside_uid(slot)
        share_workspace(profile, uid)
        check_readable(profile, worker_dir, uid)
        return binary, uid

    def _find_problem(self) -> str | None:
        if self.binary() is None:
            return self.missing
        why = namespaces_problem()
        if why is not None:
            return why
        if not os.access(INSIDE_PYTHON, os.X_OK):
            return f"no {INSIDE_PYTHON}: the worker runs on the system's python3"
        try:
            launch = self.launch(Profile(backend=self.name), PROBE_SLOT, WORKER_DIR)
        except (LaunchError, OSError) as exc:
            return f"a test {self.noun} could not be prepared: {exc}"
        return probe(launch, self.noun)


# -- the world inside -----------------------------------------------------------------------

MountKind = Literal["ro", "rw", "dev", "tmpfs", "symlink", "proc"]


@dataclass(frozen=True, slots=True)
class Mount:
    """One entry of the sandbox's file system, in mount order.

    ``ro``: bind ``source`` read-only at ``target``; ``dev``: bind the device node
    ``source`` (writable, devices allowed); ``tmpfs``: a fresh tmpfs of ``size`` bytes;
    ``symlink``: a link at ``target`` pointing to ``source``; ``proc``: a fresh procfs of
    the sandbox's own pid namespace.
    """

    kind: MountKind
    target: str
    source: str = ""
    size: int = 0


#: The only /etc files every sandbox sees: the dynamic linker's cache and the time zone.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
#: What name resolution and TLS need, only when the profile has network.
NETWORK_ETC = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl")
#: Devices: nothing that reaches hardware, a terminal or the kernel log.
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
#: Top-level system folders outside /usr: links on a merged-/usr system (Debian 12).
SYSTEM_TOP = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def world(profile: Profile, worker_dir: Path) -> tuple[Mount, ...]:
    """Everything mounted in a sandbox for ``profile``, in order. The root itself is an
    empty tmpfs the backend makes read-only after these mounts."""
    mounts = [Mount("ro", "/usr", "/usr"), *_system_links()]
    wanted = ETC_FILES + (NETWORK_ETC if profile.network else ())
    mounts += [Mount("ro", p, p) for p in wanted if os.path.exists(p)]
    mounts.append(Mount("proc", "/proc"))
    mounts += [Mount("dev", d, d) for d in DEVICES]
    mounts += [Mount("symlink", link, target) for target, link in DEV_LINKS]
    size = profile.tmp_mb * 1024 * 1024
    mounts += [Mount("tmpfs", INSIDE_TMP, size=size), Mount("tmpfs", INSIDE_WORK, size=size)]
    mounts += _kiln_mounts(profile, worker_dir)
    if profile.workspace is not None:
        kind: MountKind = "rw" if profile.workspace_writable else "ro"
        mounts.append(Mount(kind, INSIDE_WORKSPACE, str(Path(profile.workspace).resolve())))
    for name, host in zip(folder_names(profile), profile.folders, strict=True):
        mounts.append(Mount("ro", f"{INSIDE_FOLDERS}/{name}", str(Path(host).resolve())))
    return tuple(mounts)


def inside_paths(profile: Profile) -> tuple[str, ...]:
    """Where ``profile.paths`` are inside: /kiln/paths/0, /kiln/paths/1, ..."""
    return tuple(f"{INSIDE_PATHS}/{index}" for index in range(len(profile.paths)))


def _system_links() -> list[Mount]:
    """/bin, /lib, ... as the host has them: the same link where it is a link (merged
    /usr), a read-only bind where it is a real folder, nothing where it is absent."""
    mounts = []
    for top in SYSTEM_TOP:
        if os.path.islink(top):
            mounts.append(Mount("symlink", top, os.readlink(top)))
        elif os.path.isdir(top):
            mounts.append(Mount("ro", top, top))
    return mounts


def _kiln_mounts(profile: Profile, worker_dir: Path) -> list[Mount]:
    """/kiln: each entry of the worker folder, then the allowed paths. Entries one by one
    (not the folder): /kiln/paths/<i> must be created in the sandbox's own read-only root,
    never in a bind of a host folder."""
    mounts = [
        Mount("ro", f"{INSIDE_ROOT}/{entry.name}", str(entry))
        for entry in sorted(worker_dir.iterdir())
        if entry.name not in ("paths", "__pycache__")
    ]
    for inside, host in zip(inside_paths(profile), profile.paths, strict=True):
        mounts.append(Mount("ro", inside, str(Path(host).resolve())))
    return mounts


def unreadable(path: Path, uid: int) -> str | None:
    """Why a sandbox running as ``uid`` (no groups) could not read ``path``, or ``None``.

    Checks the permission bits of the path and of every folder above it, as "other" when
    ``uid`` is not the owner (ACLs are not looked at)."""
    try:
        resolved = path.resolve(strict=True)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    for folder in reversed(resolved.parents):
        if not _allows(folder, uid, 0o1):
            return f"{path}: the folder {folder} is not searchable by all (chmod o+x)"
    need = 0o5 if resolved.is_dir() else 0o4
    if not _allows(resolved, uid, need):
        return f"{path}: not readable by all (chmod o+r{'x' if need == 0o5 else ''})"
    return None


def _allows(path: Path, uid: int, bits: int) -> bool:
    info = path.stat()
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool((info.st_mode >> 6) & bits == bits)
    return bool(stat.S_IMODE(info.st_mode) & bits == bits)


def share_workspace(profile: Profile, uid: int) -> None:
    """Let ``uid`` write to the profile's workspace, when the sandbox may and the runtime
    is root (otherwise the sandbox's uid is the runtime's own, which owns the folder)."""
    if profile.workspace is None or not profile.workspace_writable or os.geteuid() != 0:
        return
    from sandbox.acl import AclError, grant

    try:
        grant(Path(profile.workspace), uid)
    except (AclError, OSError) as exc:
        raise LaunchError(str(exc)) from None


def check_readable(profile: Profile, worker_dir: Path, uid: int) -> None:
    """Raise :class:`LaunchError` unless the sandbox's uid can read the worker and every
    allowed path (they are bound in as they are: their modes still apply inside)."""
    seen = [worker_dir, *map(Path, profile.paths), *map(Path, profile.folders)]
    if profile.workspace is not None:
        seen.append(Path(profile.workspace))
    for path in seen:
        why = unreadable(path, uid)
        if why is not None:
            raise LaunchError(f"the sandbox (uid {uid}) could not read {why}")


# -- syscalls refused -----------------------------------------------------------------------

#: Syscalls no tool needs and sandbox escapes use (x86_64 numbers), refused with EPERM:
#: tracing and reading other processes, namespaces and mounts (the old and the new mount
#: API), kernel keyrings, eBPF, userfaultfd and perf (exploit primitives), io_uring (a large
#: attack surface), modules, kexec, reboot, swap, file handles by inode.
#: ``clone`` is refused only with CLONE_NEWUSER; ``clone3`` gets ENOSYS (its flags are in
#: memory a filter cannot read), so libc falls back to ``clone``.
REFUSED_SYSCALLS: Mapping[str, int] = {
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "move_mount": 429,
    "open_tree": 428,
    "mount_setattr": 442,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,
    "userfaultfd": 323,
    "perf_event_open": 298,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "reboot": 169,
    "swapon": 167,
    "swapoff": 168,
    "open_by_handle_at": 304,
}
CLONE = 56
CLONE3 = 435
CLONE_NEWUSER = 0x10000000
#: x32 syscalls are x86_64 numbers with this bit (same audit arch): a filter must cover
#: them too where the kernel has the x32 ABI. Some x32 numbers differ (below).
X32_BIT = 0x40000000
X32_ONLY = {"ptrace": 521, "process_vm_readv": 539, "process_vm_writev": 540, "kexec_load": 528}


def x86_64() -> bool:
    """Whether the syscall numbers above are this machine's."""
    return platform.machine() in ("x86_64", "AMD64")


# -- cgroups --------------------------------------------------------------------------------

#: The folder kiln's sandboxes' cgroups go in, below the runtime's own cgroup.
CGROUP_FOLDER = "agentkiln"


@dataclass(frozen=True, slots=True)
class Controller:
    """One cgroup v1 controller: ``problem`` is why it cannot limit sandboxes here
    (``None``: it can); ``parent`` is kiln's folder, relative to ``mount``."""

    name: str
    problem: str | None
    mount: Path = Path("/")
    parent: str = ""

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def folder(self) -> Path:
        return self.mount / self.parent


@dataclass(frozen=True, slots=True)
class Cgroups:
    """What cgroup v1 can limit for a whole sandbox here (v2 is not used: on these
    machines it has neither controller)."""

    memory: Controller
    pids: Controller

    def describe(self) -> dict[str, str]:
        return {
            c.name: "yes" if c.problem is None else f"no: {c.problem}"
            for c in (self.memory, self.pids)
        }


_LIMIT_FILE = {"memory": "memory.limit_in_bytes", "pids": "pids.max"}


@functools.cache
def cgroups() -> Cgroups:
    """Which cgroup v1 controllers can limit sandboxes here, and why not. Creates kiln's
    folder below the runtime's own cgroup (the real test that it is writable), once."""
    return Cgroups(memory=_controller("memory"), pids=_controller("pids"))


#: Memory (cgroup) for the worker itself (and bwrap), on top of the call's limit and tmpfs.
WORKER_MEMORY_MB = 64


def cgroup_memory(profile: Profile) -> int:
    """The memory cgroup limit of a whole sandbox, in bytes: the call's limit, both tmpfs
    folders (their pages are charged to it) and the worker itself."""
    return (profile.memory_mb + 2 * profile.tmp_mb + WORKER_MEMORY_MB) * 1024 * 1024


def slot_cgroup(controller: Controller, backend: str, uid: int) -> Path:
    """The folder of a slot's cgroups for ``backend`` (``<backend>-<uid>`` in kiln's folder
    of ``controller``), created if need be."""
    folder = controller.folder / f"{backend}-{uid}"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise LaunchError(f"cannot create the cgroup {folder}: {exc.strerror or exc}") from None
    return folder


def _controller(name: str) -> Controller:
    mount = _v1_mount(name)
    if mount is None:
        return Controller(name, f"no cgroup v1 '{name}' hierarchy is mounted")
    root, where = mount
    own = _own_cgroup(name)
    if own is None:
        return Controller(name, f"this process is in no '{name}' cgroup")
    relative = os.path.relpath(own, root) if own.startswith(root) else own.lstrip("/")
    parent = os.path.normpath(os.path.join(relative, CGROUP_FOLDER)).lstrip("/")
    folder = where / parent
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        return Controller(name, f"cannot create {folder}: {exc.strerror or exc}", where, parent)
    if not os.access(folder / _LIMIT_FILE[name], os.W_OK):
        return Controller(name, f"{folder / _LIMIT_FILE[name]} is not writable", where, parent)
    return Controller(name, None, where, parent)


def _v1_mount(name: str) -> tuple[str, Path] | None:
    """(root inside the hierarchy, mount point) of the v1 hierarchy with ``name``."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts, rest = fields.split(), tail.split()
        if len(parts) >= 5 and len(rest) >= 3 and rest[0] == "cgroup":
            if name in rest[2].split(","):
                return parts[3], Path(parts[4])
    return None


def _own_cgroup(name: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if name in controllers.split(","):
            return path
    return None
