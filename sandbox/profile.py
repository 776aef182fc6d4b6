"""What a sandboxed worker may do: one :class:`Profile` per distinct set of limits.

Workers are pooled per profile: two tools with the same limits share warm workers, and a
worker never serves a call with other limits than it was started with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

BackendName = Literal["nsjail", "bwrap", "none"]

#: Where things are inside every sandbox, whatever the backend.
INSIDE_ROOT = "/kiln"  #: the worker script's folder, read-only
INSIDE_WORKER = "/kiln/worker.py"
INSIDE_PATHS = "/kiln/paths"  #: allowed import paths, read-only, as /kiln/paths/0, /1, ...
INSIDE_TMP = "/tmp"  #: private, writable, wiped after every call
INSIDE_WORK = "/work"  #: the working directory of every call: private, writable, wiped
#: the run's workspace, for tools whose spec asks for it (then the working directory)
INSIDE_WORKSPACE = "/workspace"
INSIDE_FOLDERS = "/folders"  #: declared project folders, read-only, as /folders/<name>
#: The interpreter inside (Debian's, under /usr, which every backend mounts read-only):
#: the runtime's own may live under a home directory, which sandboxes never see.
INSIDE_PYTHON = "/usr/bin/python3"
#: The unprivileged uid and gid sandboxed code runs as, inside.
INSIDE_UID = 65534
#: Outside, each worker slot gets its own unprivileged uid and gid (FIRST_UID + slot): the
#: kernel then counts processes per worker (RLIMIT_NPROC), and no worker's processes can
#: signal or trace another's. None of these ids exist in /etc/passwd; none need to.
FIRST_UID = 820_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    backend: BackendName
    network: bool = False
    memory_mb: int = 256
    cpu_s: float = 5.0
    timeout_s: float = 10.0
    max_processes: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 1_000_000
    #: host folders made readable (read-only) inside, at /kiln/paths/<index>
    paths: tuple[str, ...] = ()
    #: size of each private tmpfs (/tmp, /work)
    tmp_mb: int = 64
    #: the run's workspace (a host folder), bound at /workspace; ``None``: not seen
    workspace: str | None = None
    #: whether the sandbox may write to the workspace
    workspace_writable: bool = False
    #: project folders (host folders) bound read-only at /folders/<their name>
    folders: tuple[str, ...] = ()

    @property
    def workdir(self) -> str:
        """The working directory of every call: the workspace when the tool sees it."""
        return INSIDE_WORKSPACE if self.workspace is not None else INSIDE_WORK

    def describe(self) -> str:
        net = "network" if self.network else "no network"
        return (
            f"{self.backend}, {net}, {self.memory_mb} MB, {self.cpu_s:g} s CPU, "
            f"{self.timeout_s:g} s wall, {self.max_processes} processes"
            + (f", workspace {'rw' if self.workspace_writable else 'ro'}" if self.workspace else "")
            + (f", folders {', '.join(folder_names(self))}" if self.folders else "")
        )


def folder_names(profile: Profile) -> tuple[str, ...]:
    """The names of ``profile.folders`` inside, under /folders: each folder's own name."""
    return tuple(PurePosixPath(folder).name for folder in profile.folders)
