"""The engine: a compiled program with its stores, pools, gateway and journal, running many
runs at once, resuming them and listing them. ``kiln run`` and ``kiln runs`` use the same
pieces; programs that embed kiln use this::

    from runtime.engine import Engine, Settings

    async with Engine(["agents/"], Settings(model="scripted:turns.yml")) as engine:
        result = await engine.run("assistant", input="What is 12 times 7?")
        print(result.output)

Compile once, then run as often as you like, concurrently; each run is journaled in the
trace store (``settings.runs_db``, default ``.kiln/runs.db``; ``None``: not recorded, not
durable) and can be resumed with :meth:`Engine.resume` after its process died. See
docs/python-api.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from compiler.pipeline import Compilation
from runtime.events import Event, Sink
from runtime.executor import RunResult
from runtime.journal import Ambiguous, Durability
from runtime.llm.types import ModelBackend
from runtime.memory.records import DEFAULT_TENANT
from runtime.memory.service import MemoryService, Who
from runtime.pytools import PythonTool, tool
from runtime.run import (
    CompileFailed,
    Prepared,
    Resume,
    RunSetupError,
    Settings,
    _release,
    bind,
    build,
    execute,
)
from runtime.trace import RunRow, TraceError, TraceStore

__all__ = ["CompileFailed", "Engine", "PythonTool", "RunSetupError", "Settings", "tool"]

DEFAULT_DB = Path(".kiln", "runs.db")


class Engine:
    """Runs of one compiled program (see the module docstring). Use as an async context
    manager, or call :meth:`aclose` when done: it stops the sandboxes and closes stores."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        settings: Settings | None = None,
        *,
        runs_db: Path | str | None = DEFAULT_DB,
        durability: Durability | None = "sync",
        compilation: Compilation | None = None,
        tools: Sequence[PythonTool] = (),
        backends: Mapping[str, ModelBackend] | None = None,
    ) -> None:
        """Compile ``paths`` (raises :class:`CompileFailed`, whose ``compilation`` holds
        every diagnostic) and set up what the runs share. ``runs_db`` is the trace store
        (``None``: runs are neither recorded nor durable); ``durability`` the default of
        :meth:`run`. ``tools``: Python functions made tools with :func:`tool`, compiled
        with the specs; ``backends``: model backend objects by the model name they answer
        for (both add to ``settings``)."""
        settings = settings or Settings()
        if tools or backends:
            settings = replace(
                settings,
                tools=(*settings.tools, *tools),
                backends={**settings.backends, **(backends or {})},
            )
        self.store = TraceStore(runs_db) if runs_db is not None else None
        if self.store is not None and settings.runs_db is None:
            settings = replace(settings, runs_db=self.store.path)
        self.settings = settings
        self.durability = durability
        try:
            self._base = build(paths, settings, compilation=compilation)
        except BaseException:
            if self.store is not None:
                self.store.close()
            raise
        self._base.active.count += 1  # held until aclose: runs never close what they share
        self._closed = False

    # -- what it runs ---------------------------------------------------------------------

    @property
    def compilation(self) -> Compilation:
        return self._base.compilation

    @property
    def memory(self) -> MemoryService | None:
        """The memory policies' stores (``None`` when no agent has a policy)."""
        return self._base.memory

    @property
    def targets(self) -> list[str]:
        """Everything it can run: ``Agent/<name>`` and ``Crew/<name>``."""
        program = self._base.runner.program
        return [*(f"Agent/{a}" for a in program.agents), *(f"Crew/{c}" for c in program.crews)]

    def prepare(
        self,
        target: str | None = None,
        *,
        input: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Prepared:
        """A run of ``target`` bound and checked (inputs, scripts), not started. ``target``
        is ``Agent/<name>``, ``Crew/<name>``, a bare agent or crew name, or ``None`` when
        the program has one crew, or one agent and no crew."""
        agent, crew = self._target(target)
        return bind(self._base, agent=agent, crew=crew, text=input, inputs=inputs)

    # -- running --------------------------------------------------------------------------

    async def run(
        self,
        target: str | None = None,
        *,
        input: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        user: str | None = None,
        session: str | None = None,
        sinks: Sequence[Sink] = (),
        run_id: str | None = None,
        durability: Durability | None | str = "default",
        defer_approvals: bool | None = None,
        tenant: str | None = None,
    ) -> RunResult:
        """Run ``target`` to its end and return the result; never raises for what a model,
        a tool or a limit does (that is the result's ``status``). ``input`` is the request
        (an agent's user message); ``inputs`` the declared inputs. Events go to ``sinks``
        as they happen. With a trace store, a call that needs approval and has no approver
        stops the run as ``waiting_approval`` (unless ``defer_approvals`` is false)."""
        self._check_open()
        prepared = self.prepare(target, input=input, inputs=inputs)
        chosen = self.durability if durability == "default" else durability
        journaled = chosen if self.store is not None else None
        if defer_approvals is None:
            defer_approvals = self.settings.approver is None
        return await execute(
            prepared,
            sinks=sinks,
            store=self.store,
            run_id=run_id,
            who=Who(tenant=user or DEFAULT_TENANT, session=session),
            durability=journaled,  # type: ignore[arg-type]
            defer_approvals=bool(defer_approvals and journaled is not None),
            tenant=tenant,
        )

    async def stream(
        self,
        target: str | None = None,
        *,
        input: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        user: str | None = None,
        session: str | None = None,
    ) -> AsyncIterator[Event]:
        """The events of a new run as they happen, ending with ``run.complete``. Stop
        iterating early and the run is cancelled (recorded as ``cancelled``)."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=1024)

        async def go() -> None:
            async with send:
                await self.run(
                    target, input=input, inputs=inputs, user=user, session=session,
                    sinks=[send.send_nowait],
                )  # fmt: skip

        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            try:
                async with receive:
                    async for event in receive:
                        yield event
            finally:
                tg.cancel_scope.cancel()

    async def resume(
        self,
        run_id: str,
        *,
        force: bool = False,
        ambiguous: Ambiguous = "stop",
        observation: str | None = None,
        sinks: Sequence[Sink] = (),
    ) -> RunResult:
        """Carry on a recorded run (interrupted, stopped, waiting for a person) from its
        journal, with this engine's program. Refused (:class:`RunSetupError`) when the
        specs it depends on changed since it started, unless ``force``; ``ambiguous``
        says what to do with a side-effecting call that was cut off (see
        docs/durability.md)."""
        self._check_open()
        if self.store is None:
            raise RunSetupError("this engine records no runs (runs_db=None): nothing to resume")
        row = self.store.get_run(run_id)
        request = row.request or {}
        if not request:
            raise RunSetupError(f"run {row.id} was recorded without what resuming needs")
        if "durability" in request and request["durability"] is None:
            raise RunSetupError(f"run {row.id} ran with durability off: it cannot be resumed")
        kind, _, name = row.target.partition("/")
        prepared = bind(
            self._base,
            agent=name if kind == "Agent" else None,
            crew=name if kind == "Crew" else None,
            text=request.get("text"),
            inputs=request.get("inputs") or {},
        )
        if prepared.request.get("target_hash") != request.get("target_hash") and not force:
            raise RunSetupError(
                f"the specs run {row.id} depends on changed since it started: resume with "
                "force=True to replay its steps against these specs"
            )
        if request.get("workspace"):
            prepared = replace(prepared, workspace=Path(request["workspace"]))
        return await execute(
            prepared,
            sinks=sinks,
            store=self.store,
            run_id=row.id,
            who=Who(tenant=request.get("user") or DEFAULT_TENANT, session=request.get("session")),
            durability=request.get("durability") or "sync",
            resume=Resume(ambiguous=ambiguous, observation=observation),
            defer_approvals=self.settings.approver is None,
        )

    # -- looking back ---------------------------------------------------------------------

    def runs(
        self, *, limit: int | None = 20, status: str | None = None, target: str | None = None
    ) -> list[RunRow]:
        """Recorded runs, newest first (``state`` says ``interrupted`` for a dead one)."""
        if self.store is None:
            return []
        return self.store.list_runs(limit=limit, status=status, target=target)

    def events(self, run_id: str) -> list[Event]:
        if self.store is None:
            raise TraceError("this engine records no runs (runs_db=None)")
        return self.store.events(self.store.get_run(run_id).id)

    # -- lifetime -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the sandboxes, close HTTP clients, memory and the trace store. Runs still
        going on keep what they use until they end."""
        if self._closed:
            return
        self._closed = True
        await _release(self._base)
        if self.store is not None:
            self.store.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(TraceError):
            await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")

    def _target(self, target: str | None) -> tuple[str | None, str | None]:
        if target is None:
            return None, None
        kind, slash, name = target.partition("/")
        if slash:
            if kind not in ("Agent", "Crew"):
                raise RunSetupError(f"target {target!r}: say Agent/<name> or Crew/<name>")
            return (name, None) if kind == "Agent" else (None, name)
        program = self._base.runner.program
        if target in program.agents and target in program.crews:
            raise RunSetupError(f"{target!r} is an agent and a crew: say Agent/ or Crew/")
        return (None, target) if target in program.crews else (target, None)
