"""GitOps: what a server serves follows a spec folder or a git branch.

Each new revision (a changed folder, a new commit) is compiled. Only one that compiles with
no error replaces what is serving, in one step (the next request sees the new plan; the
runs in flight finish on the plan they started with, whose engine is closed when the last
of them ends). A revision that does not compile is recorded as ``rejected`` with its
located diagnostics, and the last good plan keeps serving. Every deployment is kept with
its plan's diff against the one before it, reach changes (a new tool, a new secret)
flagged, for ``GET /v1/deployments``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from compiler.diff import diff_plans
from runtime.engine import CompileFailed, Engine, RunSetupError

__all__ = ["Deployer", "Deployment", "FolderSource", "GitSource", "Revision", "StaticSource"]

log = logging.getLogger("kiln.deploy")

Status = Literal["serving", "superseded", "rejected"]


@dataclass(frozen=True, slots=True)
class Revision:
    """One version of the specs: where its files are and what names it."""

    root: Path
    id: str
    author: str | None = None
    message: str | None = None


@dataclass(slots=True)
class Deployment:
    id: int
    revision: Revision
    created: float
    status: Status
    plan_hash: str | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    engine: Engine | None = field(default=None, repr=False)
    #: runs in flight on this deployment's engine
    runs: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "revision": self.revision.id,
            "author": self.revision.author,
            "message": self.revision.message,
            "created": self.created,
            "status": self.status,
            "plan_hash": self.plan_hash,
            "errors": [d for d in self.diagnostics if d.get("severity") == "error"],
            "diagnostics": self.diagnostics,
            "changes": self.changes,
            "flagged": self.flagged,
        }


class StaticSource:
    """One engine, compiled by whoever made it: nothing to watch, nothing to write."""

    writable = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self._given = False

    async def poll(self) -> Revision | None:
        if self._given:
            return None
        self._given = True
        return Revision(self.root, _fingerprint(self.root))


class FolderSource:
    """A spec folder, watched: a new revision once its files changed and then stayed the
    same for ``settle_s`` (an editor's save, a ``git pull``: one deploy, not ten)."""

    writable = True

    def __init__(self, root: Path, *, settle_s: float = 0.5) -> None:
        self.root = root
        self.settle_s = settle_s
        self._served: str | None = None

    async def poll(self) -> Revision | None:
        now = await anyio.to_thread.run_sync(_fingerprint, self.root)
        if now == self._served:
            return None
        while True:  # debounce: wait until it stops changing
            await anyio.sleep(self.settle_s)
            later = await anyio.to_thread.run_sync(_fingerprint, self.root)
            if later == now:
                break
            now = later
        self._served = now
        return Revision(self.root, now)


class GitSource:
    """A branch of a git repository: cloned into ``workdir``, fetched on each poll; each
    new commit is checked out into a folder of its own (what a run reads never changes
    under it)."""

    writable = False

    def __init__(self, url: str, branch: str, workdir: Path) -> None:
        self.url, self.branch, self.workdir = url, branch, workdir
        self.repo = workdir / "repo"
        self._served: str | None = None

    async def poll(self) -> Revision | None:
        return await anyio.to_thread.run_sync(self._poll)

    def _poll(self) -> Revision | None:
        if not (self.repo / ".git").exists() and not (self.repo / "HEAD").exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            _git("clone", "--bare", "--quiet", self.url, str(self.repo))
        _git("-C", str(self.repo), "fetch", "--quiet", "--prune", "origin",
             f"+refs/heads/{self.branch}:refs/heads/{self.branch}")  # fmt: skip
        sha = _git("-C", str(self.repo), "rev-parse", f"refs/heads/{self.branch}").strip()
        if sha == self._served:
            return None
        author, _, message = (
            _git("-C", str(self.repo), "log", "-1", "--format=%an <%ae>%x00%s", sha)
            .strip()
            .partition("\x00")
        )
        snapshot = self.workdir / "commits" / sha
        if not snapshot.exists():
            partial = snapshot.with_name(f".{sha}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            archive = subprocess.run(
                ["git", "-C", str(self.repo), "archive", "--format=tar", sha],
                capture_output=True, check=True, timeout=120,
            )  # fmt: skip
            subprocess.run(
                ["tar", "-x", "-C", str(partial)], input=archive.stdout, check=True, timeout=120
            )
            partial.rename(snapshot)  # a snapshot is whole or absent
        self._served = sha
        return Revision(snapshot, sha, author or None, message or None)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )  # fmt: skip
    if done.returncode != 0:
        raise DeployError(f"git {args[0] if args[0] != '-C' else args[2]}: "
                          f"{done.stderr.strip() or done.stdout.strip()}")  # fmt: skip
    return done.stdout


def _fingerprint(root: Path) -> str:
    """What changes when a spec file under ``root`` does: names, sizes, mtimes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "folder:" + digest.hexdigest()[:16]


class DeployError(Exception):
    """A source could not be read (git failed): the message says why."""


Source = StaticSource | FolderSource | GitSource


class Deployer:
    """The deployments of one server: checks its source for new revisions and swaps the
    engine it serves when one compiles."""

    def __init__(
        self,
        source: Source,
        make_engine: Callable[[Sequence[Path]], Engine],
        *,
        keep: int = 100,
    ) -> None:
        self.source = source
        self.make_engine = make_engine
        self.keep = keep
        self.history: list[Deployment] = []
        self.current: Deployment | None = None
        self._wake = anyio.Event()
        self._lock = anyio.Lock()
        self.error: str | None = None

    @classmethod
    def of(cls, engine: Engine) -> Deployer:
        """A deployer that serves one engine, and nothing else."""
        _hand_over(engine)
        deployer = cls(StaticSource(Path(".")), lambda paths: engine)
        deployment = Deployment(1, Revision(Path("."), "static"), time.time(), "serving",
                                _plan_hash(engine), engine=engine)  # fmt: skip
        deployer.history.append(deployment)
        deployer.current = deployment
        deployer.source._given = True  # type: ignore[union-attr]
        return deployer

    @property
    def engine(self) -> Engine:
        if self.current is None or self.current.engine is None:
            raise DeployError("nothing is deployed yet: the specs have never compiled")
        return self.current.engine

    def wake(self) -> None:
        """Check the source now (a webhook said something changed)."""
        self._wake.set()

    async def check(self) -> Deployment | None:
        """Deploy the source's next revision, if there is one: the new deployment (serving,
        or rejected with its diagnostics), or ``None``."""
        async with self._lock:
            try:
                revision = await self.source.poll()
            except DeployError as exc:
                self.error = str(exc)
                log.warning("deploy: %s", exc)
                return None
            self.error = None
            if revision is None:
                return None
            return await self._deploy(revision)

    async def _deploy(self, revision: Revision) -> Deployment:
        deployment = Deployment(len(self.history) + 1, revision, time.time(), "rejected")
        try:
            engine = await anyio.to_thread.run_sync(self._make, revision.root)
        except CompileFailed as exc:
            deployment.diagnostics = _located(exc.compilation.diagnostics, revision.root)
            self._record(deployment)
            log.warning("deploy %s rejected: %s", revision.id, str(exc).splitlines()[0])
            return deployment
        except RunSetupError as exc:
            deployment.diagnostics = [{"severity": "error", "code": "setup", "message": str(exc),
                                       "path": None, "line": None, "col": None}]  # fmt: skip
            self._record(deployment)
            return deployment
        _hand_over(engine)  # made in a worker thread, used on the event loop's
        compilation = engine.compilation
        deployment.engine = engine
        deployment.plan_hash = _plan_hash(engine)
        deployment.diagnostics = _located(compilation.diagnostics, revision.root)
        previous = self.current
        if previous is not None and previous.engine is not None:
            changes = diff_plans(previous.engine.compilation.plan or {},
                                 compilation.plan or {})  # fmt: skip
            deployment.changes = [c.as_json() for c in changes]
            deployment.flagged = [
                f"{c.subject}: {'; '.join(c.details)}" for c in changes if c.op == "!"
            ]
        deployment.status = "serving"
        self.current = deployment  # the swap: the next request sees the new plan
        self._record(deployment)
        if previous is not None:
            previous.status = "superseded"
            if previous.runs == 0:
                await self.retire(previous)
        log.info("deployed %s (plan %s)", revision.id, deployment.plan_hash)
        return deployment

    def _make(self, root: Path) -> Engine:
        """The engine of a revision, whose specs may read no file outside its folder."""
        from specs.source.paths import confined

        with confined(root):
            return self.make_engine([root])

    def _record(self, deployment: Deployment) -> None:
        self.history.append(deployment)
        if len(self.history) > self.keep:
            del self.history[: len(self.history) - self.keep]

    async def retire(self, deployment: Deployment) -> None:
        """Close a superseded deployment's engine (its last run has ended)."""
        engine, deployment.engine = deployment.engine, None
        if engine is not None and engine is not (self.current and self.current.engine):
            await engine.aclose()

    async def watch(self, interval_s: float) -> None:
        """Check the source every ``interval_s``, or at once when woken."""
        while True:
            await self.check()
            with anyio.move_on_after(interval_s):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def aclose(self) -> None:
        for deployment in self.history:
            if deployment.engine is not None:
                engine, deployment.engine = deployment.engine, None
                await engine.aclose()


def _hand_over(engine: Engine) -> None:
    if engine.store is not None:
        engine.store.release()


def _plan_hash(engine: Engine) -> str | None:
    plan = engine.compilation.plan or {}
    value = plan.get("plan_hash")
    return str(value) if value is not None else None


def _located(diagnostics: Sequence[Any], root: Path) -> list[dict[str, Any]]:
    """Diagnostics as JSON, their paths relative to the revision's folder."""
    prefix = f"{root.absolute()}/"
    out = []
    for d in diagnostics:
        found = d.as_json()
        path = str(found.get("path") or "")
        found["path"] = path.removeprefix(prefix).removeprefix(f"{root}/")
        out.append(found)
    return out
