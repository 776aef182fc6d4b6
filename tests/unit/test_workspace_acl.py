"""The ACLs that let sandboxes (one unprivileged uid per slot, when the runtime is root)
share a run's workspace: checked by real processes running as those uids."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox.acl import grant
from sandbox.profile import FIRST_UID
from tests.helpers import readable_by_all


@pytest.fixture(autouse=True)
def _as_root() -> None:
    # the ACLs exist for root only (any other runtime's sandboxes run as its own uid), and
    # these machines and CI run as root, as the sandbox escape suite does: never skipped
    assert os.geteuid() == 0, "these tests start processes as other uids: run them as root"

A, B, STRANGER = FIRST_UID + 900, FIRST_UID + 901, FIRST_UID + 902


def as_uid(uid: int, script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/python3", "-I", "-c", script],
        user=uid, group=uid, extra_groups=[], cwd=cwd,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_two_slots_share_the_workspace_and_a_stranger_cannot_write(tmp_path: Path) -> None:
    workspace = tmp_path / "desk"
    (workspace / "old").mkdir(parents=True)
    (workspace / "old" / "notes.txt").write_text("from the file tools\n", encoding="utf-8")
    readable_by_all(tmp_path)
    grant(workspace, A)
    grant(workspace, B)  # the entries add up: A keeps its own

    made = as_uid(A, "import os; os.mkdir('new'); open('new/a.txt', 'w').write('a')", workspace)
    assert made.returncode == 0, made.stderr
    changed = as_uid(
        B,
        "open('new/a.txt', 'a').write('b'); open('new/b.txt', 'w').write('b');"
        "open('old/notes.txt', 'a').write('b')",
        workspace,
    )
    assert changed.returncode == 0, changed.stderr  # B changes what A made, and root's
    assert (workspace / "new" / "a.txt").read_text(encoding="utf-8") == "ab"
    assert (workspace / "new" / "a.txt").stat().st_uid == A

    refused = as_uid(STRANGER, "open('new/c.txt', 'w')", workspace)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_links_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x", encoding="utf-8")
    workspace = tmp_path / "desk"
    workspace.mkdir()
    (workspace / "link").symlink_to(outside)
    grant(workspace, A)
    assert os.listxattr(outside) == []  # the file the link points at got no entry
