"""POSIX ACLs that let a sandbox's unprivileged uid write to a run's workspace.

When the runtime is root, each sandbox runs as a uid of its own (``FIRST_UID + slot``),
which the workspace's modes (root's folder, 0755) do not let write. Rather than open the
folder to every local user (mode 0777) or hand it to one slot (others use it too), the
folder and everything in it get an ACL entry for that uid, and every folder a default
entry so that what is made later (by any slot, or the file tools) inherits them. A file
made under a default ACL ignores the umask, so another slot can change it too.

The ACLs are written as the kernel's extended attributes (``system.posix_acl_access`` and
``system.posix_acl_default``), with no ``setfacl`` needed. Symbolic links are never
followed: an entry is set on what is inside the workspace, not on what a link points to.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

__all__ = ["AclError", "grant"]

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")


class AclError(Exception):
    """The workspace's file system does not take ACLs, or one could not be set."""


def grant(folder: Path, uid: int) -> None:
    """Give ``uid`` read, write and search on ``folder`` and everything below it, now and
    for what is made there later. Entries for other uids are kept."""
    for path, info in _walk(folder):
        is_dir = stat.S_ISDIR(info.st_mode)
        _add(path, ACCESS, uid, info.st_mode, is_dir)
        if is_dir:
            _add(path, DEFAULT, uid, info.st_mode, True)  # others keep what they had


def _walk(folder: Path) -> list[tuple[Path, os.stat_result]]:
    found = [(folder, folder.lstat())]
    for root, dirs, files in os.walk(folder):  # never follows links
        for name in (*dirs, *files):
            path = Path(root, name)
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                found.append((path, info))
    return found


def _add(path: Path, which: str, uid: int, mode: int, is_dir: bool) -> None:
    try:
        raw = os.getxattr(path, which, follow_symlinks=False)
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise _failed(path, exc) from None
        raw = b""
    entries = _parse(raw) if raw else _from_mode(mode)
    perm = 0o7 if is_dir else 0o6
    users = {ident: p for tag, p, ident in entries if tag == _USER}
    if users.get(uid, 0) & perm == perm:
        mask = next((p for tag, p, _ in entries if tag == _MASK), 0o7)
        if mask & perm == perm:
            return
    users[uid] = users.get(uid, 0) | perm
    kept = [e for e in entries if e[0] not in (_USER, _MASK)]
    kept += [(_USER, p, ident) for ident, p in users.items()]
    group_class = 0
    for tag, p, _ in kept:
        if tag in (_USER, _GROUP, _GROUP_OBJ):
            group_class |= p
    kept.append((_MASK, group_class, _UNDEFINED))
    kept.sort(key=lambda e: (e[0], e[2]))
    blob = _HEADER.pack(_VERSION) + b"".join(_ENTRY.pack(*e) for e in kept)
    try:
        os.setxattr(path, which, blob, follow_symlinks=False)
    except OSError as exc:
        raise _failed(path, exc) from None


def _parse(raw: bytes) -> list[tuple[int, int, int]]:
    (version,) = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise AclError(f"unknown ACL version {version}")
    return [(t, p, i) for t, p, i in _ENTRY.iter_unpack(raw[_HEADER.size :])]


def _from_mode(mode: int) -> list[tuple[int, int, int]]:
    return [
        (_USER_OBJ, (mode >> 6) & 0o7, _UNDEFINED),
        (_GROUP_OBJ, (mode >> 3) & 0o7, _UNDEFINED),
        (_OTHER, mode & 0o7, _UNDEFINED),
    ]


def _failed(path: Path, exc: OSError) -> AclError:
    if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
        why = "its file system does not support POSIX ACLs (mount it with 'acl')"
    else:
        why = exc.strerror or str(exc)
    return AclError(f"cannot let the sandbox write to the workspace {path}: {why}")
