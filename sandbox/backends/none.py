"""The ``none`` backend: the worker as a plain process, isolated by nothing.

Only for tools whose spec (or run) says ``unsafe``: the pool and the runtime enforce that,
not this module. It still takes what costs nothing: when the runtime is root the worker
runs as the slot's unprivileged uid (``FIRST_UID + slot``), so it can neither read the
runtime's private files nor signal its processes; it gets the minimal environment and a
private folder (mode 0700, its own) as working directory, ``HOME`` and ``TMPDIR``, wiped
after every call and removed with the worker. It shares the host's network, file system,
/tmp and process table, and has no pid namespace: the worker does not hunt leftovers
(``pidns`` false), it kills the call's process group only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sandbox.backends import (
    check_readable,
    dies_with_runtime,
    inside_env,
    outside_uid,
    share_workspace,
    uid_note,
)
from sandbox.backends.base import Launch
from sandbox.profile import INSIDE_PYTHON, Profile, folder_names

__all__ = ["NoneBackend"]

NONE_OFFSET = 100_000


class NoneBackend:
    """No sandbox: see the module docstring."""

    name = "none"

    def problem(self) -> str | None:
        if not os.access(INSIDE_PYTHON, os.X_OK):
            return f"no {INSIDE_PYTHON}: the worker runs on the system's python3"
        return None

    def enforces(self) -> dict[str, str]:
        """What this backend enforces here (for ``kiln sandbox check``)."""
        return {
            "outside uid": uid_note(),
            "isolation": "no: the runtime's network, file system and process table",
            "rlimits": "per call, set by the worker",
        }

    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch:
        root = os.geteuid() == 0
        # its own uid range: a none worker shares the host with everything, and must not
        # share a uid (signals, process counts) with an isolated worker of the same slot
        uid = outside_uid(slot + NONE_OFFSET)
        share_workspace(profile, uid)
        check_readable(profile, worker_dir, uid)
        folder = Path(tempfile.mkdtemp(prefix=f"kiln-none-{slot}-"))
        if root:
            os.chown(folder, uid, uid)
        workdir = str(folder)
        cleanup = [folder]
        if profile.workspace is not None:
            workdir = str(Path(profile.workspace).resolve())
        links = ""
        if profile.folders:  # the same names as /folders/<name> in a sandbox, as links
            links = tempfile.mkdtemp(prefix=f"kiln-none-{slot}-folders-")
            cleanup.append(Path(links))
            os.chmod(links, 0o755)  # readable by the worker's uid, not changeable
            for name, host in zip(folder_names(profile), profile.folders, strict=True):
                os.symlink(Path(host).resolve(), Path(links, name))
        env = {
            **inside_env(profile, workdir, links),
            "PWD": workdir,
            "HOME": str(folder),
            "TMPDIR": str(folder),
        }
        return Launch(
            argv=dies_with_runtime(
                (INSIDE_PYTHON, "-I", str(worker_dir.resolve() / "worker.py"))
            ),
            env=env,
            user=uid if root else None,
            group=uid if root else None,
            cleanup=tuple(cleanup),
            pidns=False,
            workdir=workdir,
            wipe=(str(folder),),
            paths=tuple(str(Path(p).resolve()) for p in profile.paths),
        )
