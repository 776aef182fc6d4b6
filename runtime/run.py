"""From spec folders to a finished run: compile, check the run's inputs and scripts, run
the target with every event going to the trace store and the given sinks."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio

from compiler.hashing import digest
from compiler.models import parse_model
from compiler.pipeline import Compilation, compile_paths
from compiler.symbols import Program
from runtime.events import Event, EventBus, Sink
from runtime.executor import INTERRUPTED, Runner, RunResult
from runtime.inputs import InputError
from runtime.journal import Ambiguous, Durability, RunJournal
from runtime.llm.gateway import Gateway
from runtime.llm.scripted import ScriptedModel
from runtime.llm.types import ModelBackend, ModelError, Usage
from runtime.masking import mask, mask_data
from runtime.masking import refresh as refresh_secrets
from runtime.memory.records import MemoryStoreError
from runtime.memory.registry import default_root
from runtime.memory.service import MemoryService, Who
from runtime.pytools import InprocessToolExecutor, PythonTool
from runtime.sandboxed import SandboxExecutor
from runtime.tools import Approver, ToolExecutor, default_executors, delegate_tool, task_tool
from runtime.tools.finder import FIND_TOOLS, ToolFinder
from runtime.tools.mcp import McpHub, McpToolExecutor
from runtime.tools.registry import Registry
from sandbox.pool import Pool, PoolSettings
from sandbox.profile import BackendName
from specs import Tool
from stdlib_tools.workspace import WORKSPACE

if TYPE_CHECKING:
    from runtime.tools.cache import ResultCache
    from runtime.tools.http import HttpToolExecutor


#: What the agent is told for a call a person chose to skip, when they said nothing more.
SKIPPED = "The call was skipped by a person; its result is unknown."


@dataclass(frozen=True, slots=True)
class Resume:
    """How to carry on an interrupted run: what to do with a side-effecting call that was
    started but never finished (stop and ask, make it again, or skip it)."""

    ambiguous: Ambiguous = "stop"
    #: with ``skip``: what the agent is told instead of the call's result
    observation: str | None = None


class RunSetupError(Exception):
    """The run cannot start: an unknown target, bad inputs, a script that does not fit."""


@dataclass(frozen=True, slots=True)
class Prepared:
    compilation: Compilation
    runner: Runner
    target: str
    inputs: dict[str, Any]
    text: str | None
    #: the sandboxes of python and shell tools (``None`` when the caller gave executors)
    sandbox: SandboxExecutor | None = None
    #: whether :func:`execute` opens MCP sessions (each run its own) for the run's servers
    mcp: bool = False
    #: the HTTP client of http and openapi tools, closed by :func:`execute`
    http: HttpToolExecutor | None = None
    #: the folder the file tools work in (default: ``.kiln/workspaces/<run id>``)
    workspace: Path | None = None
    #: runs of this preparation in progress: the last one to end closes what they share
    active: _Active = field(default_factory=lambda: _Active())
    #: the memory policies' stores (``None`` when no agent of the run has a policy)
    memory: MemoryService | None = None
    #: how this run was asked for, kept with it so that it can be resumed (see resume.py)
    request: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Active:
    count: int = 0


def choose_target(program: Program, agent: str | None, crew: str | None) -> str:
    if agent is not None and crew is not None:
        raise RunSetupError("give --agent or --crew, not both")
    if agent is not None:
        if agent not in program.agents:
            raise RunSetupError(_unknown("agent", agent, program.agents))
        return f"Agent/{agent}"
    if crew is not None:
        if crew not in program.crews:
            raise RunSetupError(_unknown("crew", crew, program.crews))
        return f"Crew/{crew}"
    user = [e for e in program.user_entries() if e.kind in ("Agent", "Crew")]
    crews = [e for e in user if e.kind == "Crew"]
    if len(crews) == 1:
        return f"Crew/{crews[0].name}"
    if not crews and len(user) == 1:
        return f"Agent/{user[0].name}"
    names = ", ".join(f"--{e.kind.lower()} {e.name}" for e in user) or "none"
    raise RunSetupError(f"say what to run: {names}")


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    return f"no {kind} named {name!r} (known: {', '.join(sorted(known)) or 'none'})"


def resolve_models(program: Program, model: str | None) -> dict[str, tuple[str, ...]]:
    """Agent name -> the models to try, primary first. ``--model`` replaces them all.
    Scripted model paths in specs are relative to the spec's file; ``--model`` paths to the
    working directory."""
    out: dict[str, tuple[str, ...]] = {}
    for name, entry in program.agents.items():
        if model is not None:
            out[name] = (model,)
            continue
        spec = program.agent(name).spec
        folder = Path(entry.doc.path).parent
        out[name] = tuple(_relative_to(m, folder) for m in (spec.model, *spec.fallbacks))
    return out


def _relative_to(model: str, folder: Path) -> str:
    if not model.startswith("scripted:"):
        return model
    path = Path(model.removeprefix("scripted:"))
    return model if path.is_absolute() else f"scripted:{folder / path}"


def check_scripts(program: Program, runner: Runner, target: str) -> list[str]:
    """Every scripted model of the run loaded and checked against the agents and tasks it
    will serve: a turn calling a tool its agent lacks is reported before the run starts."""
    problems: list[str] = []
    tools = _tools_by_key(program, target, runner.registry)
    for model in sorted(runner.models_for(target)):
        if not model.startswith("scripted:"):
            continue
        try:
            backend = runner.gateway.backend(model)
        except ModelError as exc:
            problems.append(str(exc))
            continue
        if isinstance(backend, ScriptedModel):
            problems += [str(p) for p in backend.check(tools)]
            problems += _uncovered(program, runner, target, model, backend)
    return problems


def _uncovered(
    program: Program, runner: Runner, target: str, model: str, script: ScriptedModel
) -> list[str]:
    """Work the script must have turns for and does not, or cannot replay in a fixed
    order: an agent serving several tasks that run side by side needs turns per task."""
    kind, _, name = target.partition("/")
    mine = {agent for agent in program.agents if runner.models_for_agent(agent)[0] == model}
    problems = []
    if kind == "Agent":
        if name in mine and name not in script.turns:
            problems.append(f"{script.path}: no turns for agent {name!r}")
        return problems
    crew = program.crew(name)
    serving: dict[str, list[str]] = {}
    for task in crew.spec.tasks:
        if task.agent in mine and task.name not in script.turns:
            serving.setdefault(task.agent, []).append(task.name)
    for agent, tasks in serving.items():
        if agent not in script.turns:
            problems.append(
                f"{script.path}: no turns for task{'s' * (len(tasks) > 1)} "
                f"{', '.join(map(repr, tasks))} (agent {agent!r}): key them by task or agent"
            )
        elif len(tasks) > 1:
            problems.append(
                f"{script.path}: agent {agent!r} serves tasks {', '.join(map(repr, tasks))}; "
                "their turns would be taken in whatever order the tasks run: key the turns "
                "by task name"
            )
    boss = program.manager(name)
    if crew.spec.process == "hierarchical" and boss in mine and boss not in script.turns:
        problems.append(f"{script.path}: no turns for the manager {boss!r}")
    return problems


def _tools_by_key(
    program: Program, target: str, registry: Registry
) -> dict[str, frozenset[str] | None]:
    """Agent and task name -> the names of the tools it may call (``None``: not known until
    the run's MCP servers are listed)."""
    out: dict[str, frozenset[str] | None] = {}
    everything: frozenset[str] | None = frozenset(e.name for e in registry)
    if registry.unlisted():
        everything = None
    for name in program.agents:
        spec = program.agent(name).spec
        names: set[str] | None = {delegate_tool(o) for o in spec.delegate_to}
        for tool in spec.tools:
            mine = registry.names_of(tool)
            if mine is None or names is None:
                names = None
            else:
                names |= mine
        if spec.tool_discovery is not None and spec.tool_discovery.enabled:
            names = None if everything is None or names is None else names | everything
            if names is not None:
                names.add(FIND_TOOLS)
        out[name] = frozenset(names) if names is not None else None
    kind, _, name = target.partition("/")
    if kind == "Crew":
        crew = program.crew(name)
        for task in crew.spec.tasks:
            out[task.name] = out.get(task.agent, frozenset())
        boss = program.manager(name)
        if boss is not None and crew.spec.process == "hierarchical":
            mine = out[boss]
            if mine is not None:
                out[boss] = mine | {task_tool(t.name) for t in crew.spec.tasks}
    return out


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How runs are set up, whatever they run: the model override, the gateway, tool
    executors, sandboxes, hosts, workspace, caches and stores. One object for
    :func:`build`, :func:`prepare` and :class:`runtime.engine.Engine`."""

    #: every agent uses this model instead of its own (``scripted:FILE`` for tests)
    model: str | None = None
    gateway: Gateway | None = None
    #: tool executors by executor type; ``None``: sandboxes, HTTP and MCP as kiln has them
    executors: Mapping[str, ToolExecutor] | None = None
    #: who approves tools that require it (``None``: nobody here)
    approver: Approver | None = None
    sandbox: BackendName | None = None
    unsafe: bool = False
    pool: PoolSettings | None = None
    allow_hosts: Sequence[str] = ()
    #: the folder the file tools work in (``None``: ``.kiln/workspaces/<run id>``)
    workspace: Path | None = None
    embedder: str | None = None
    index_dir: Path | None = None
    tool_cache: ResultCache | None = None
    memory_dir: Path | None = None
    #: the trace store episodic memory searches (``None``: it finds nothing)
    runs_db: Path | None = None
    #: Python functions offered as tools, compiled with the specs (see runtime/pytools.py)
    tools: Sequence[PythonTool] = ()
    #: model backend objects by the model name they answer for (an agent's ``model:``, or
    #: ``model`` above); other names get kiln's backends
    backends: Mapping[str, ModelBackend] = field(default_factory=dict)


def prepare(
    paths: Sequence[str | Path],
    *,
    agent: str | None = None,
    crew: str | None = None,
    text: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    compilation: Compilation | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> Prepared:
    """Compile and set up a run: :func:`build` then :func:`bind`. ``options`` are
    :class:`Settings` fields, for callers that give a few (``model=``, ``gateway=``).
    Raises :class:`CompileFailed` or :class:`RunSetupError` for anything that would make
    the run fail before its first step."""
    if options:
        settings = replace(settings or Settings(), **options)
    base = build(paths, settings or Settings(), compilation=compilation)
    return bind(base, agent=agent, crew=crew, text=text, inputs=inputs)


def build(
    paths: Sequence[str | Path], settings: Settings, *, compilation: Compilation | None = None
) -> Prepared:
    """Compile and set up what every run of the program shares: the runner, sandboxes,
    HTTP client, memory stores. Not bound to a target yet (see :func:`bind`).

    Memory stores live under ``settings.memory_dir`` (default ``.kiln/memory``); episodic
    memory searches the runs recorded in ``settings.runs_db``."""
    python_tools = {t.name: t for t in settings.tools}
    if len(python_tools) != len(settings.tools):
        raise RunSetupError("two Python tools have the same name: give one name=...")
    compilation = compilation or compile_paths(
        paths, extra=[(t.source_name(), t.spec()) for t in python_tools.values()]
    )
    if not compilation.ok or compilation.program is None:
        raise CompileFailed(compilation)
    program = compilation.program
    model = settings.model
    if model is not None and model not in settings.backends:
        ref = parse_model(model)
        if not hasattr(ref, "kind"):
            raise RunSetupError(f"--model {model}: {getattr(ref, 'message', 'not a model')}")
    registry = Registry(program)
    if registry.problems:
        raise RunSetupError("\n".join(map(str, registry.problems)))
    sandboxes = http = None
    executors = settings.executors
    if executors is None:
        from runtime.tools.http import HttpToolExecutor

        sandboxes = SandboxExecutor(
            Pool(settings.pool),
            backend=settings.sandbox,
            unsafe=settings.unsafe,
            folders=registry.folders,
        )
        http = HttpToolExecutor(folders=registry.folders, allow_hosts=settings.allow_hosts)
        executors = {
            **default_executors(),
            "python": sandboxes,
            "shell": sandboxes,
            "http": http,
            "openapi": http,
            "mcp": McpToolExecutor(folders=registry.folders),
        }
    if python_tools:
        executors = {**executors, "inprocess": InprocessToolExecutor(python_tools)}
    memory = None
    if program.policies:
        memory = MemoryService(
            program, root=settings.memory_dir or default_root(), runs_db=settings.runs_db
        )
    runner = Runner(
        program,
        compilation.graphs,
        memory=memory,
        gateway=_gateway(settings),
        executors=executors,
        model=model,
        models=resolve_models(program, model),
        approver=settings.approver,
        registry=registry,
        finder=ToolFinder(registry, embedder=settings.embedder, cache_dir=settings.index_dir),
        cache=settings.tool_cache,
    )
    mcp = isinstance(executors.get("mcp"), McpToolExecutor)
    request = {
        "paths": [str(Path(p).absolute()) for p in paths],
        "model": model,
        "sandbox": settings.sandbox,
        "unsafe": settings.unsafe,
        "allow_hosts": list(settings.allow_hosts),
        "embedder": settings.embedder,
        "memory_dir": str(settings.memory_dir.absolute()) if settings.memory_dir else None,
    }
    return Prepared(
        compilation,
        runner,
        "",
        {},
        None,
        sandboxes,
        mcp,
        http,
        settings.workspace,
        memory=memory,
        request=request,
    )


def _gateway(settings: Settings) -> Gateway:
    gateway = settings.gateway or Gateway()
    for name, backend in settings.backends.items():
        gateway.register(name, backend)
    return gateway


def bind(
    base: Prepared,
    *,
    agent: str | None = None,
    crew: str | None = None,
    text: str | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Prepared:
    """A run of ``base``'s program: its target, checked inputs and scripts. Shares the
    runner, sandboxes and stores with every other binding of ``base``."""
    runner = base.runner
    program = runner.program
    target = choose_target(program, agent, crew)
    problems = check_scripts(program, runner, target)
    if problems:
        raise RunSetupError("\n".join(problems))
    try:
        bound = runner.check_inputs(target, inputs or {}, text)
    except InputError as exc:
        raise RunSetupError(str(exc)) from None
    request = {
        **base.request,
        "agent": agent,
        "crew": crew,
        "text": text,
        "inputs": dict(inputs or {}),
        "target_hash": target_hash(base.compilation.plan or {}, target),
    }
    return replace(base, target=target, inputs=bound, text=text, request=request)


def durability_of(prepared: Prepared, chosen: str | None) -> Durability | None:
    """The run's durability: ``chosen`` (``kiln run --durability``), else the target spec's
    ``limits.durability``, else ``sync``; ``None`` for ``off``."""
    if chosen is None:
        program = prepared.runner.program
        kind, _, name = prepared.target.partition("/")
        if kind == "Agent":
            chosen = program.agent(name).spec.limits.durability
        else:
            limits = program.crew(name).spec.limits
            chosen = limits.durability if limits is not None else None
    if chosen == "off":
        return None
    return cast("Durability", chosen or "sync")


def target_hash(plan: Mapping[str, Any], target: str) -> str:
    """A hash of what a run of ``target`` depends on: its graph and the hashes of every
    spec the graph names. A change elsewhere in the folder leaves it as it is."""
    graph = plan.get("graphs", {}).get(target)
    specs = plan.get("specs", {})
    named: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value in specs:
                named.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(graph)
    reached = {name: specs[name].get("hash") for name in sorted(named)}
    return digest({"graph": graph, "specs": reached})


def _tools_of(prepared: Prepared) -> list[Tool]:
    """The tools a run of the target may call."""
    program = prepared.runner.program
    graph = prepared.runner.graphs[prepared.target]
    names = {n.spec.partition("/")[2] for n in graph.nodes if n.kind == "tool_call" and n.spec}
    return [program.tool(n) for n in sorted(names) if n in program.tools]


class CompileFailed(Exception):
    """The specs do not compile: ``compilation.diagnostics`` holds every diagnostic; the
    message names the first few errors (``path:line:col: error[K…]: message``)."""

    def __init__(self, compilation: Compilation) -> None:
        errors = compilation.errors
        shown = [f"{d.span}: error[{d.code}]: {d.message}" for d in errors[:5]]
        more = [f"... and {len(errors) - 5} more"] if len(errors) > 5 else []
        count = f"{len(errors)} compile error{'s' * (len(errors) != 1)}"
        super().__init__("\n".join([count, *shown, *more]))
        self.compilation = compilation


async def execute(
    prepared: Prepared,
    *,
    sinks: Sequence[Sink] = (),
    store: Any = None,
    run_id: str | None = None,
    who: Who | None = None,
    durability: Durability | None = "sync",
    resume: Resume | None = None,
    defer_approvals: bool = False,
    tenant: str | None = None,
) -> RunResult:
    """Run a prepared target. With a trace ``store``, the run is recorded as it starts (so a
    crash leaves it visible as ``running``) and completed at the end, whatever happens.

    The run's MCP servers are started and listed first: a server that does not start, or a
    script that calls a tool the server lacks, is a :class:`RunSetupError` and no run is
    recorded. ``who`` is the tenant (user) and session memory is kept for.

    With a store and a ``durability`` (``None``: not durable), every step is journaled
    (runtime/journal.py). ``resume`` carries on the run ``run_id`` from its journal. With
    ``defer_approvals`` (a durable run only), a call that needs approval stops the run as
    ``waiting_approval`` until the approval is decided in the trace store. ``tenant`` (the
    server's) is recorded as the run's owner: other tenants do not see it."""
    if resume is not None and run_id is None:
        raise ValueError("resuming needs the run's id")
    refresh_secrets()  # credentials set since the last run are masked in this one
    run_id = run_id or uuid.uuid4().hex
    async with contextlib.AsyncExitStack() as stack:
        prepared.active.count += 1
        stack.push_async_callback(_release, prepared)
        specs = _mcp_specs(prepared) if prepared.mcp else []
        if specs:
            from runtime.tools.mcp import CURRENT_HUB

            hub = await stack.enter_async_context(McpHub())
            stack.callback(CURRENT_HUB.reset, CURRENT_HUB.set(hub))
            await _list_servers(prepared, hub, specs)
        workspace = _workspace(prepared, run_id)
        token = WORKSPACE.set(workspace)
        stack.callback(WORKSPACE.reset, token)
        if prepared.sandbox is not None:
            stack.push_async_callback(_forget_workspace, prepared.sandbox, workspace)
        who = who or Who()
        journal = None
        if store is not None:
            if resume is None:
                request = {
                    **prepared.request,
                    "workspace": str(workspace),
                    "durability": durability,
                    "user": who.tenant,
                    "session": who.session,
                    **({"tenant": tenant} if tenant is not None else {}),
                }
                _start(prepared, store, run_id, request)
                replay = {}
            else:
                replay = store.resume_run(run_id)
            if durability is not None:
                journal = RunJournal(
                    store,
                    run_id,
                    durability,
                    replay,
                    ambiguous=resume.ambiguous if resume else "stop",
                    observation=(resume.observation if resume else None) or SKIPPED,
                    defer_approvals=defer_approvals,
                )
        return await _execute(prepared, sinks, store, run_id, who, journal)
    raise AssertionError("unreachable")  # pragma: no cover - mypy cannot see the return


async def _forget_workspace(sandbox: SandboxExecutor, workspace: Path) -> None:
    with anyio.CancelScope(shield=True):
        await sandbox.forget(workspace)


async def _release(prepared: Prepared) -> None:
    """The end of one run: the last of the runs in progress closes the HTTP clients and the
    sandboxes they shared."""
    prepared.active.count -= 1
    if prepared.active.count:
        return
    with anyio.CancelScope(shield=True):
        if prepared.http is not None:
            await prepared.http.aclose()
        if prepared.sandbox is not None:
            await prepared.sandbox.pool.aclose()
        if prepared.memory is not None:
            await prepared.memory.aclose()


async def _list_servers(prepared: Prepared, hub: McpHub, specs: list[str]) -> None:
    """List the MCP servers the run may use (each once per runner), then check the scripts
    again: now every tool name is known."""
    runner = prepared.runner
    await runner.registry.load(hub, specs)  # lists only what no earlier run listed
    problems = [str(p) for p in runner.registry.problems if p.spec in specs]
    if not problems:
        problems = check_scripts(runner.program, runner, prepared.target)
    if problems:
        raise RunSetupError("\n".join(problems))


def _mcp_specs(prepared: Prepared) -> list[str]:
    """The MCP tool specs a run may call: those its agents list, and all of them when one
    of its agents discovers tools."""
    program = prepared.runner.program
    mcp = {n for n in program.tools if program.tool(n).spec.executor.type == "mcp"}
    if not mcp:
        return []
    names: set[str] = set()
    for agent in prepared.runner.agents_of(prepared.target):
        spec = program.agent(agent).spec
        if spec.tool_discovery is not None and spec.tool_discovery.enabled:
            return sorted(mcp)
        names.update(spec.tools)
    return sorted(names & mcp)


def _workspace(prepared: Prepared, run_id: str) -> Path:
    """The folder the file tools work in; made when a tool first needs it."""
    return (prepared.workspace or Path(".kiln", "workspaces", run_id)).absolute()


def _start(prepared: Prepared, store: Any, run_id: str, request: Mapping[str, Any]) -> None:
    plan = prepared.compilation.plan or {}
    store.start_run(
        run_id,
        target=prepared.target,
        kind=prepared.target.partition("/")[0].lower(),
        inputs=prepared.inputs,
        started=time.time(),
        plan_hash=plan.get("plan_hash"),
        model=prepared.runner.model,
        request=request,
    )


async def _execute(
    prepared: Prepared,
    sinks: Sequence[Sink],
    store: Any,
    run_id: str,
    who: Who,
    journal: RunJournal | None,
) -> RunResult:
    bus = EventBus(run_id, sinks)
    if store is not None:
        bus.add(store.sink(run_id))
    status, result = "cancelled", None
    ending = _Ending()
    bus.add(ending)
    try:
        if prepared.sandbox is not None:
            await prepared.sandbox.warm(_tools_of(prepared))
        result = await prepared.runner.run(
            prepared.target,
            inputs=prepared.inputs,
            text=prepared.text,
            bus=bus,
            run_id=run_id,
            who=who,
            journal=journal,
        )
        # what the run returns, and the trace store keeps, holds no secret's value
        result = replace(
            result,
            output=mask_data(result.output),
            error=mask(result.error) if result.error else result.error,
        )
        status = result.status
        return result
    finally:
        if ending.usage is None:  # interrupted before the runner began: nothing was spent
            bus.emit("run.error", status="cancelled", error=INTERRUPTED, limit=None)
            bus.emit("run.complete", status="cancelled", output=None, usage=Usage().as_json())
        if store is not None:
            store.finish_run(
                run_id,
                status=status,
                ended=time.time(),
                output=result.output if result else None,
                error=result.error if result else INTERRUPTED,
                usage=ending.usage,
            )
            if prepared.memory is not None and result is not None:
                await _record_episode(prepared, store, run_id)


async def _record_episode(prepared: Prepared, store: Any, run_id: str) -> None:
    """Index the finished run for the episodic memory of the agents that have it. A failure
    loses nothing: the next search indexes what is missing from the trace store."""
    memory = prepared.memory
    assert memory is not None
    program = prepared.runner.program
    embedders: dict[str, str | None] = {}
    for agent in prepared.runner.agents_of(prepared.target):
        name = program.agent(agent).spec.memory
        if name is None or name not in program.policies:
            continue
        spec = program.policy(name).spec
        if spec.episodic is not None and spec.episodic.enabled:
            embedder = spec.vector.embedder if spec.vector is not None else None
            embedders[embedder or ""] = embedder
    if not embedders:
        return
    store.flush()
    with anyio.CancelScope(shield=True):
        for embedder in embedders.values():
            with contextlib.suppress(MemoryStoreError):
                episodic = await memory.stores.episodic(embedder)
                if episodic is None:
                    return
                await episodic.index(run_id)


class _Ending:
    """Keeps the usage ``run.complete`` reports: the runner's own count, also when the run
    is interrupted and no result comes back."""

    usage: dict[str, Any] | None = None

    def __call__(self, event: Event) -> None:
        if event.type == "run.complete":
            self.usage = event.data.get("usage")
