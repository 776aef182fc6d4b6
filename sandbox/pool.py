"""Warm pools of sandboxed workers, one pool per :class:`~sandbox.profile.Profile`.

A worker is started ahead of need (``warm``), serves many calls (each in a fresh forked
child, see ``sandbox/inside/worker.py``), and is retired after ``max_calls`` calls, after
any call that hit a limit or crashed, or when the worker says it could not clean up. At
most ``size`` calls run at once per profile; more wait, ``queue`` of them at most, each for
``queue_timeout_s`` at most. A worker that stops answering (``timeout_s`` plus a grace) is
killed from outside: nothing a tool does can hang the runtime.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE
from typing import IO, Any, Final

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from sandbox.backends import LaunchError, backend_named, process_options
from sandbox.backends.base import Backend, Launch
from sandbox.profile import FIRST_UID, Profile

WORKER_DIR: Final = Path(__file__).resolve().parent / "inside"
#: Extra seconds a worker gets past a call's own timeout before it is killed from outside.
GRACE_S: Final = 2.0
START_TIMEOUT_S: Final = 15.0
MAX_LINE: Final = 64 * 1024 * 1024
#: Reasons after which a worker is retired: the limit may have left it in a bad state.
RETIRE: Final = frozenset({"timeout", "cpu", "memory", "killed", "crash", "output", "leak"})


class SandboxError(Exception):
    """A call could not be made at all: no backend, a worker that would not start, a full
    queue. (A call that ran and failed is a :class:`CallResult` with ``ok=False``.)"""


@dataclass(frozen=True, slots=True)
class CallResult:
    ok: bool
    output: Any = None
    error: str | None = None
    #: why it failed: exception, timeout, cpu, memory, processes, output, killed, crash, ...
    reason: str | None = None
    stdout: str = ""
    ms: float = 0.0


@dataclass(slots=True)
class PoolSettings:
    size: int = 4  #: calls at once per profile (and workers kept per profile)
    warm: int = 1  #: workers started ahead of the first call, per profile
    max_calls: int = 500  #: calls before a worker is replaced
    queue: int = 256  #: calls that may wait per profile
    queue_timeout_s: float = 30.0


#: Slots a pool may use: a pool claims a block of them, so two kiln processes on one machine
#: never share an outside uid (nor its process count, signals or cgroup folders).
BLOCK = 64
BLOCKS = 1000
LOCKS = Path(tempfile.gettempdir()) / f"kiln-sandbox-slots-{os.geteuid()}"


class _Slots:
    """Pool slots, each with its own outside uid; a slot is reused only after its worker
    is gone. The pool's block of slots is claimed with a lock file held for its life."""

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 0
        self._base: int | None = None
        self._lock: IO[bytes] | None = None

    def take(self) -> int:
        if self._base is None:
            self._base = self._claim()
        if self._free:
            return self._free.pop()
        if self._next >= BLOCK:
            raise SandboxError(f"more than {BLOCK} sandbox workers at once in one process")
        self._next += 1
        return self._base + self._next - 1

    def give(self, slot: int) -> None:
        # a worker retired after release() (a shielded kill outliving aclose) must not hand
        # a slot of a block this pool no longer holds to its next block
        if self._base is not None and self._base <= slot < self._base + self._next:
            self._free.append(slot)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the lock
            self._lock = None
            self._base = None
            self._free.clear()
            self._next = 0

    def _claim(self) -> int:
        LOCKS.mkdir(mode=0o700, exist_ok=True)
        for block in range(BLOCKS):
            handle = open(LOCKS / f"{block}.lock", "ab")  # noqa: SIM115 - held while in use
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self._lock = handle
            return block * BLOCK
        raise SandboxError(f"all {BLOCKS} blocks of sandbox slots are in use on this machine")


@dataclass(slots=True, eq=False)
class _Worker:
    process: Process
    reader: BufferedByteReceiveStream
    slot: int
    launch: Launch
    #: the backend's stderr: a file, not a pipe nobody drains (which could fill and block)
    log: IO[bytes]
    calls: int = 0
    started: float = field(default_factory=time.monotonic)

    async def call(self, request: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        token = secrets.token_hex(8)  # an answer must name its call: nothing can forge one
        await self.process.stdin.send(json.dumps({**request, "id": token}).encode() + b"\n")
        with anyio.fail_after(timeout_s + GRACE_S):
            line = await self.reader.receive_until(b"\n", MAX_LINE)
        self.calls += 1
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ValueError("the worker's answer is not an object")
        if answer.get("id") != token:
            raise ValueError("the answer is not for this call")
        return answer


class _ProfilePool:
    def __init__(self, profile: Profile, settings: PoolSettings) -> None:
        self.profile = profile
        self.settings = settings
        self.idle: list[_Worker] = []
        self.waiting = 0
        self.limiter = anyio.Semaphore(settings.size)

    @property
    def busy(self) -> int:
        """Calls running now (each holds the limiter from before it takes a worker until
        after it gives it back)."""
        return self.settings.size - self.limiter.value


class Pool:
    """Sandboxed workers for every profile in use. Use as an async context manager (or call
    :meth:`aclose`): every worker is killed on the way out."""

    def __init__(
        self,
        settings: PoolSettings | None = None,
        *,
        backends: Mapping[str, Backend] | None = None,
    ) -> None:
        self.settings = settings or PoolSettings()
        self._backends = dict(backends or {})
        self._pools: dict[Profile, _ProfilePool] = {}
        self._slots = _Slots()
        self._live: set[_Worker] = set()
        self.started = 0
        self.retired = 0

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def backend(self, name: str) -> Backend:
        found = self._backends.get(name)
        if found is None:
            found = self._backends[name] = backend_named(name)
        return found

    async def warm(self, profile: Profile, count: int | None = None) -> None:
        """Start workers for ``profile`` now, so the first calls find them ready."""
        pool = self._pool(profile)
        want = self.settings.warm if count is None else count
        while len(pool.idle) + pool.busy < min(want, self.settings.size):
            pool.idle.append(await self._start(profile))

    async def call(self, profile: Profile, request: Mapping[str, Any]) -> CallResult:
        """Run one call in a worker for ``profile``. Raises :class:`SandboxError` only when
        the call could not be made at all."""
        pool = self._pool(profile)
        if pool.waiting >= self.settings.queue:
            raise SandboxError(
                f"sandbox pool busy: {pool.waiting} calls already waiting ({profile.describe()})"
            )
        pool.waiting += 1
        try:
            with anyio.move_on_after(self.settings.queue_timeout_s) as waited:
                await pool.limiter.acquire()
        finally:
            pool.waiting -= 1
        if waited.cancelled_caught:
            raise SandboxError(
                f"no sandbox worker became free within {self.settings.queue_timeout_s:g} s"
            )
        try:
            worker = await self._idle(pool) or await self._start(profile)
            try:
                result, keep = await self._run(worker, request, profile)
            except BaseException:  # cancelled mid-call: the worker's state is unknown
                await self._retire(worker)
                raise
            if keep and worker.calls < self.settings.max_calls and profile in self._pools:
                pool.idle.append(worker)
            else:
                await self._retire(worker)
            return result
        finally:
            pool.limiter.release()

    async def forget(self, workspace: str) -> None:
        """A run is over: retire the idle workers that see its ``workspace`` and forget
        their profiles (a call still running keeps its worker, which is retired after it,
        since its profile is no longer pooled)."""
        for profile in [p for p in self._pools if p.workspace == workspace]:
            pool = self._pools.pop(profile)
            while pool.idle:
                await self._retire(pool.idle.pop())

    async def aclose(self) -> None:
        for worker in list(self._live):
            await self._retire(worker)
        self._pools.clear()
        self._slots.release()

    # -- workers ----------------------------------------------------------------------------

    def _pool(self, profile: Profile) -> _ProfilePool:
        pool = self._pools.get(profile)
        if pool is None:
            pool = self._pools[profile] = _ProfilePool(profile, self.settings)
        return pool

    async def _idle(self, pool: _ProfilePool) -> _Worker | None:
        """The last idle worker that is still alive (one may die while idle: a process a
        call of the ``none`` backend left behind can kill it); dead ones are retired."""
        while pool.idle:
            worker = pool.idle.pop()
            if worker.process.returncode is None:
                return worker
            await self._retire(worker)
        return None

    async def _start(self, profile: Profile) -> _Worker:
        backend = self.backend(profile.backend)
        problem = backend.problem()
        if problem is not None:
            raise SandboxError(f"the {backend.name} sandbox cannot run here: {problem}")
        slot = self._slots.take()
        try:
            launch = backend.launch(profile, slot, WORKER_DIR)
        except (LaunchError, OSError) as exc:
            self._slots.give(slot)
            raise SandboxError(f"cannot start a {backend.name} sandbox: {exc}") from None
        log = tempfile.TemporaryFile(prefix="kiln-sandbox-")  # noqa: SIM115 - closed on retire
        try:
            process = await anyio.open_process(
                [*launch.argv, json.dumps(worker_config(profile, launch))],
                stdin=PIPE,
                stdout=PIPE,
                stderr=log,
                start_new_session=True,
                **process_options(launch),
            )
        except BaseException as exc:
            log.close()
            _remove(launch.cleanup)
            self._slots.give(slot)
            if isinstance(exc, OSError):
                raise SandboxError(f"cannot start a {backend.name} sandbox: {exc}") from None
            raise
        assert process.stdout is not None
        worker = _Worker(process, BufferedByteReceiveStream(process.stdout), slot, launch, log)
        self._live.add(worker)
        self.started += 1
        try:
            with anyio.fail_after(START_TIMEOUT_S):
                ready = await worker.reader.receive_until(b"\n", MAX_LINE)
            if json.loads(ready) != {"ready": True}:
                raise ValueError(ready[:200])
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, say what the backend said
            await _exited(process)
            why = _said(worker.log)
            await self._retire(worker)
            detail = why or f"{type(exc).__name__}: {exc}"
            raise SandboxError(f"the {backend.name} sandbox did not start: {detail}") from None
        except BaseException:  # cancelled while it started: no one else would retire it
            await self._retire(worker)
            raise
        return worker

    async def _run(
        self, worker: _Worker, request: Mapping[str, Any], profile: Profile
    ) -> tuple[CallResult, bool]:
        """The call's result, and whether the worker may serve again."""
        try:
            answer = await worker.call(request, profile.timeout_s)
        except TimeoutError:
            return CallResult(
                ok=False,
                reason="timeout",
                error=f"timeout after {profile.timeout_s:g} s (the sandbox stopped answering)",
            ), False
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, OSError):
            await _exited(worker.process)
            why = _said(worker.log)
            return CallResult(
                ok=False,
                reason="crash",
                error="the sandbox died during the call" + (f": {why}" if why else ""),
            ), False
        except (ValueError, anyio.DelimiterNotFound) as exc:
            return CallResult(ok=False, reason="protocol", error=f"bad answer: {exc}"), False
        result = CallResult(
            ok=bool(answer.get("ok")),
            output=answer.get("output"),
            error=answer.get("error"),
            reason=answer.get("reason"),
            stdout=str(answer.get("stdout") or ""),
            ms=float(answer.get("ms") or 0.0),
        )
        keep = result.ok or (result.reason not in RETIRE and answer.get("clean", True))
        return result, bool(keep)

    async def _retire(self, worker: _Worker) -> None:
        if worker not in self._live:
            return
        self._live.discard(worker)
        self.retired += 1
        with anyio.CancelScope(shield=True):
            await _kill(worker.process)
            _remove(worker.launch.cleanup)
        worker.log.close()
        self._slots.give(worker.slot)


def worker_config(profile: Profile, launch: Launch) -> dict[str, Any]:
    """The worker's config, CONFIG_JSON (its last argument), as
    :class:`~sandbox.backends.base.Launch` describes it."""
    return {
        "limits": {
            "memory_mb": profile.memory_mb,
            "cpu_s": profile.cpu_s,
            "timeout_s": profile.timeout_s,
            "max_processes": profile.max_processes,
            "max_open_files": profile.max_open_files,
            "max_output_bytes": profile.max_output_bytes,
        },
        "pidns": launch.pidns,
        "wipe": list(launch.wipe),
        "workdir": launch.workdir,
        "paths": list(launch.paths),
        "max_line": MAX_LINE,
    }


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


async def _kill(process: Process) -> None:
    """Kill the worker's whole session (the backend's process and all under it)."""
    if process.returncode is None:
        # the worker leads its own session: one signal reaches the backend and all inside
        # (not process.kill(), which reaps behind asyncio's back and makes it complain)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with anyio.move_on_after(5):
        await process.wait()
    await process.aclose()


async def _exited(process: Process) -> None:
    """Give a dying worker a moment to finish writing its last words."""
    with anyio.move_on_after(0.5):
        await process.wait()


def _said(log: IO[bytes]) -> str:
    """The end of what the sandbox printed (the backend's own error), on one line."""
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - 4096))
    text = log.read().decode("utf-8", "replace").strip()
    return " ".join(text.split())[-600:]


__all__ = ["CallResult", "FIRST_UID", "Pool", "PoolSettings", "SandboxError", "worker_config"]
