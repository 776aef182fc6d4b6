"""The backend protocol: how to start one sandboxed worker process.

A backend only builds a command line. The pool starts it with pipes on stdin and stdout
(the worker protocol, :mod:`sandbox.protocol`), stderr to a log pipe, and owns its life.
Every backend must give the worker the same world (see :mod:`sandbox.profile`):

- ``/usr/bin/python3 -I /kiln/worker.py`` running as uid/gid 65534 inside, mapped to the
  unprivileged outside uid ``FIRST_UID + slot`` (never to root; when the runtime is not
  root, to its own uid, the only one it may map), with no capabilities and no supplementary
  groups;
- read-only system folders (``/usr`` and the ``/bin``, ``/lib``, ``/lib64``, ``/sbin``
  links), only ``/etc/ld.so.cache`` (and ``/etc/localtime``) of ``/etc`` (plus
  ``resolv.conf``, ``hosts``, ``nsswitch.conf`` and ``ssl/`` with ``profile.network``), a
  fresh ``/proc`` of its own pid namespace, a minimal ``/dev`` (null, zero, random,
  urandom and the fd links);
- private tmpfs ``/tmp`` and ``/work`` (the working directory), ``/kiln`` read-only with
  the worker, allowed paths read-only at ``/kiln/paths/<i>``;
- new pid, mount, ipc, uts, cgroup and user namespaces, and a new network namespace unless
  ``profile.network``; nested user namespaces refused; no ptrace;
- an explicit environment: ``PATH=/usr/bin:/bin``, ``HOME=/tmp``, ``LANG=C.UTF-8``,
  ``PYTHONDONTWRITEBYTECODE=1``, ``PYTHONNOUSERSITE=1``, ``PWD`` (the working directory:
  bubblewrap always sets it, so every backend does) and nothing of the runtime's;
- whole-sandbox limits where the machine allows them (cgroup memory and pids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sandbox.profile import INSIDE_TMP, INSIDE_WORK, Profile

#: The worker's environment inside, for every backend.
INSIDE_ENV: Mapping[str, str] = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
}


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one worker.

    Start ``[*argv, CONFIG_JSON]``: ``argv`` always ENDS with the worker command
    (``/usr/bin/python3 -I /kiln/worker.py`` inside a sandbox) and the pool appends the
    worker's config as the last argument. Run it with exactly ``env``, as ``user``/``group``
    (``None``: as the runtime itself) with ``extra_groups=[]`` when ``user`` is set (no
    supplementary group of the runtime's, such as root's, may follow the sandbox), with
    pipes on stdin and stdout and stderr to a log. After the process is gone, remove each
    ``cleanup`` path with ``shutil.rmtree(path, ignore_errors=True)``.

    The config (CONFIG_JSON, built by the pool) is ``{"limits": {"memory_mb", "cpu_s",
    "timeout_s", "max_processes", "max_open_files", "max_output_bytes"}, "pidns": pidns,
    "wipe": [*wipe], "workdir": workdir, "paths": [*paths], "max_line"}``: ``pidns``,
    ``wipe``, ``workdir`` and ``paths`` say where the worker is, which differs only for the
    ``none`` backend (a private host folder, no pid namespace of its own, the allowed paths
    as they are on the host); ``max_line`` is the longest answer line the pool reads.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    user: int | None = None
    group: int | None = None
    cleanup: tuple[Path, ...] = field(default=())
    #: the worker has a pid namespace of its own (so it may kill every other process in it)
    pidns: bool = True
    #: the working directory of every call
    workdir: str = INSIDE_WORK
    #: the folders wiped after every call
    wipe: tuple[str, ...] = (INSIDE_TMP, INSIDE_WORK)
    #: the allowed import paths as the worker sees them (``/kiln/paths/<i>`` in a sandbox)
    paths: tuple[str, ...] = ()


class Backend(Protocol):
    name: str

    def problem(self) -> str | None:
        """Why this backend cannot run here (``None``: it can). Cheap after the first call."""
        ...

    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch:
        """The command that starts one worker for ``profile`` in pool slot ``slot``;
        ``worker_dir`` is the host folder to mount read-only at ``/kiln``."""
        ...
