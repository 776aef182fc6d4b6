"""The graph executor: runs a compiled agent or crew graph with anyio.

Every node of the graph that is reached by ``data`` or ``control`` edges becomes a task in
one task group. A node waits for its predecessors, builds its template scope from the
bindings on its incoming data edges, does its work and publishes its value. Independent
crew tasks therefore run concurrently, and a task sees exactly the outputs its edges bind
(``tasks.<name>.output``, ``inputs.<name>``). The first task to fail cancels the others.

Tool calls, approvals and delegation are not walked: an agent run invokes them from its
loop. A hierarchical crew is run by its manager, which hands out tasks as tools.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from jinja2 import Template, TemplateError

from compiler.ir import Edge, Graph, Node
from compiler.symbols import Program
from compiler.templates import environment
from runtime.agent import AgentJob, AgentOutcome, Budget, run_agent
from runtime.agent.job import Status
from runtime.agent.schemas import non_empty
from runtime.envrefs import resolve_env
from runtime.events import EventBus
from runtime.inputs import bind_inputs
from runtime.journal import PARENT_STEP, RunJournal
from runtime.llm.gateway import Gateway
from runtime.llm.params import params_for
from runtime.llm.types import ModelError, ModelRequest, ModelResponse, Usage
from runtime.memory import steps
from runtime.memory.records import MemoryStoreError
from runtime.memory.service import MemoryService, Recall, Who
from runtime.memory.steps import Sightings
from runtime.stops import RunStopped
from runtime.tools import (
    Approver,
    BoundTool,
    ToolBox,
    ToolError,
    ToolExecutor,
    default_executors,
    delegate_tool,
    task_tool,
    virtual,
)
from runtime.tools.approval import Approvals
from runtime.tools.box import ToolRetry
from runtime.tools.cache import MemoryCache, ResultCache
from runtime.tools.finder import FIND_TOOLS, ToolFinder, find_tools_tool
from runtime.tools.registry import Registry
from specs import Agent

INTERRUPTED = "the run was interrupted"


class Output(dict[str, Any]):
    """A typed task output: reads like a mapping in templates, prints as JSON."""

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResult:
    status: Status
    output: Any = None
    error: str | None = None
    limit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    run_id: str
    target: str
    status: Status
    output: Any = None
    error: str | None = None
    limit: str | None = None
    usage: Usage = Usage()
    duration_ms: float = 0.0
    tasks: Mapping[str, TaskResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "target": self.target,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "limit": self.limit,
            "usage": self.usage.as_json(),
            "duration_ms": round(self.duration_ms, 3),
            "tasks": {
                name: {"status": t.status, "output": t.output, "error": t.error, "limit": t.limit}
                for name, t in self.tasks.items()
            },
        }


class _Failed(Exception):
    def __init__(self, where: str, outcome: AgentOutcome) -> None:
        super().__init__(outcome.error)
        self.where = where
        self.outcome = outcome


@dataclass(slots=True, kw_only=True)
class _Run:
    run_id: str
    bus: EventBus
    budget: Budget
    inputs: dict[str, Any]
    text: str | None
    who: Who = Who()
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    #: (agent, task) -> the tool results it saw, for ``remember: [tool_observations]``
    seen: Sightings | None = None
    #: the run's journal (``None``: not durable)
    journal: RunJournal | None = None


class Runner:
    """Runs the graphs of one compiled program. Reusable and safe for concurrent runs."""

    def __init__(
        self,
        program: Program,
        graphs: Mapping[str, Graph] | tuple[Graph, ...],
        *,
        gateway: Gateway,
        executors: Mapping[str, ToolExecutor] | None = None,
        model: str | None = None,
        models: Mapping[str, tuple[str, ...]] | None = None,
        approver: Approver | None = None,
        registry: Registry | None = None,
        finder: ToolFinder | None = None,
        cache: ResultCache | None = None,
        tool_retry: ToolRetry | None = None,
        memory: MemoryService | None = None,
    ) -> None:
        self.program = program
        #: memory policies at work; ``None``: runs neither recall nor remember
        self.memory = memory
        #: one broker per runner: a pending approval can be resolved from elsewhere by id
        self.approvals = Approvals(approver) if approver is not None else None
        #: tool results (``cache: {ttl_s}``), shared by the runner's runs
        self.cache: ResultCache = cache if cache is not None else MemoryCache()
        self.tool_retry = tool_retry or ToolRetry()
        #: every tool the program can call; MCP servers are listed into it before a run
        self.registry = registry if registry is not None else Registry(program)
        #: tool discovery (``find_tools``), for agents with ``tool_discovery``
        self.finder = finder
        #: agent name -> models to try, primary first (scripted paths resolved)
        self.models = dict(models or {})
        self.graphs = graphs if isinstance(graphs, Mapping) else {g.name: g for g in graphs}
        self.gateway = gateway
        self.executors = dict(executors) if executors is not None else default_executors()
        self.model = model
        self._templates: dict[str, Template] = {}
        self._walks: dict[str, _Walk] = {}

    # -- public -----------------------------------------------------------------------------

    def check_inputs(
        self, target: str, inputs: Mapping[str, Any], text: str | None
    ) -> dict[str, Any]:
        kind, _, name = target.partition("/")
        spec = self.program.agent(name).spec if kind == "Agent" else self.program.crew(name).spec
        return bind_inputs(
            spec.inputs, inputs, text, f"{kind.lower()} {name!r}", text_is_message=kind == "Agent"
        )

    async def run(
        self,
        target: str,
        *,
        inputs: Mapping[str, Any],
        text: str | None = None,
        bus: EventBus | None = None,
        run_id: str | None = None,
        who: Who | None = None,
        journal: RunJournal | None = None,
    ) -> RunResult:
        """Run ``target`` (``Agent/<name>`` or ``Crew/<name>``) with inputs already bound
        (see :meth:`check_inputs`), for ``who`` (the tenant and session memory is kept for).
        With a ``journal``, every step is journaled, and what it holds already is replayed."""
        run_id = run_id or (bus.run_id if bus is not None else uuid.uuid4().hex)
        bus = bus or EventBus(run_id)
        graph = self.graphs[target]
        kind, _, name = target.partition("/")
        crew = self.program.crew(name).spec if kind == "Crew" else None
        limits = crew.limits if crew is not None else None
        state = _Run(
            run_id=run_id,
            bus=bus,
            budget=Budget(owner=target, max_cost_usd=limits.max_cost_usd if limits else None),
            inputs=dict(inputs),
            text=text,
            who=who or Who(),
            journal=journal,
        )
        if self.memory is not None and any(n.kind == "memory_read" for n in graph.nodes):
            state.seen = Sightings()
            bus.add(state.seen)
        bus.emit(
            "run.start",
            target=target,
            kind=kind.lower(),
            inputs=state.inputs,
            models=self._models_of(graph),
            text=state.text,
            user=state.who.tenant,
            session=state.who.session,
        )
        started = time.perf_counter()
        status: Status = "succeeded"
        error = limit = None
        output: Any = None
        try:
            with anyio.fail_after(limits.timeout_s if limits else None):
                if crew is not None and crew.process == "hierarchical":
                    output = await self._hierarchical(graph, state, name)
                else:
                    output = await self._walk(graph, state)
        except _Failed as exc:
            status, error, limit = exc.outcome.status, exc.outcome.error, exc.outcome.limit
            if exc.where:
                error = f"task {exc.where!r}: {error}"
        except RunStopped as exc:  # journaled: resumed once a person has decided
            status, error = exc.status, str(exc)
        except TimeoutError:
            status, limit = "limit_exceeded", "timeout_s"
            seconds = limits.timeout_s if limits else None
            error = f"timeout_s exceeded ({target}): still running after {seconds} s"
        except anyio.get_cancelled_exc_class():  # Ctrl-C, SIGTERM: the events say so
            bus.emit("run.error", status="cancelled", error=INTERRUPTED, limit=None)
            bus.emit(
                "run.complete",
                duration_ms=(time.perf_counter() - started) * 1000,
                status="cancelled",
                output=None,
                usage=state.budget.usage.as_json(),
            )
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in kiln: recorded, not a crash
            if os.environ.get("KILN_DEBUG"):
                raise
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._forget(graph, run_id)
        duration_ms = (time.perf_counter() - started) * 1000
        if status != "succeeded":
            bus.emit("run.error", status=status, error=error, limit=limit)
        bus.emit(
            "run.complete",
            duration_ms=duration_ms,
            status=status,
            output=output,
            usage=state.budget.usage.as_json(),
        )
        return RunResult(
            run_id=run_id,
            target=target,
            status=status,
            output=output,
            error=error,
            limit=limit,
            usage=state.budget.usage,
            duration_ms=duration_ms,
            tasks=dict(state.tasks),
        )

    # -- walking ----------------------------------------------------------------------------

    async def _walk(self, graph: Graph, state: _Run) -> Any:
        walk = self._walks.get(graph.name)
        if walk is None:
            walk = self._walks[graph.name] = _Walk.of(graph)
        values: dict[str, Any] = {}
        if not walk.concurrent:  # a chain (every agent, most crews): no tasks to spawn
            for node in walk.order:
                values[node.id] = await self._node(graph, node, walk.scope(node, values), state)
            return values[graph.exit]
        done = {node.id: anyio.Event() for node in walk.order}
        failures: list[_Failed | RunStopped] = []

        async def visit(node: Node) -> None:
            for edge in walk.incoming[node.id]:
                await done[edge.source].wait()
            try:
                values[node.id] = await self._node(graph, node, walk.scope(node, values), state)
            except (_Failed, RunStopped) as exc:  # the first cancels the rest of the graph
                failures.append(exc)
                tg.cancel_scope.cancel()
                return
            done[node.id].set()

        async with anyio.create_task_group() as tg:
            for node in walk.order:
                tg.start_soon(visit, node)
        if failures:
            raise failures[0]
        return values[graph.exit]

    async def _node(self, graph: Graph, node: Node, scope: dict[str, Any], state: _Run) -> Any:
        kind = node.kind
        if kind == "input":
            return state.inputs
        if kind == "join":
            return scope
        if kind == "memory_read":  # the agent run recalls: it knows the query (its prompt)
            return scope
        if kind == "memory_write":  # likewise, the agent run remembers once it has answered
            return scope.get("answer")
        if kind == "agent_run":
            return await self._task(graph, node, scope, state)
        if kind == "output":
            return _result(scope)
        raise AssertionError(f"node kind {kind} is not walked")

    async def _task(self, graph: Graph, node: Node, scope: dict[str, Any], state: _Run) -> Any:
        agent_name = str(node.attrs["agent"])
        prompt_source = node.attrs.get("prompt")
        task = node.task
        if prompt_source is not None:
            try:
                prompt = self._render(str(prompt_source), scope)
            except Exception as exc:  # noqa: BLE001 - a template's fault, never kiln's crash
                error = f"cannot render the prompt of task {task!r}: {_why(exc)}"
                raise _Failed(task or "", AgentOutcome(status="failed", error=error)) from None
        else:
            prompt = state.text or "Carry out your instructions."
        if task is not None:
            state.bus.emit(
                "task.start", task=task, agent=agent_name, prompt=prompt, stage=node.stage
            )
        memory = self._memory_node(graph, node)
        recall = None
        if memory is not None:
            recall = await self._recall(memory, agent_name, task, prompt, state)
        try:
            outcome = await self._agent(
                agent_name,
                task,
                prompt,
                state,
                output_schema=node.attrs.get("output_schema"),
                crew_inputs=scope.get("inputs", {}),
                recall=recall,
            )
        except anyio.get_cancelled_exc_class():
            if task is not None:  # a sibling failed, or the run was stopped: say so
                why = "cancelled: another task failed, or the run was stopped"
                state.tasks[task] = TaskResult(status="cancelled", error=why)
                state.bus.emit(
                    "task.complete", task=task, agent=agent_name, status="cancelled", error=why
                )
            raise
        if task is not None:
            state.tasks[task] = TaskResult(
                status=outcome.status,
                output=outcome.output,
                error=outcome.error,
                limit=outcome.limit,
            )
            state.bus.emit(
                "task.complete",
                task=task,
                agent=agent_name,
                status=outcome.status,
                **({"output": outcome.output} if outcome.ok else {"error": outcome.error}),
            )
        if not outcome.ok:
            raise _Failed(task or "", outcome)
        if memory is not None:
            await self._remember(memory, agent_name, task, prompt, outcome.output, state)
        return Output(outcome.output) if isinstance(outcome.output, dict) else outcome.output

    # -- memory -----------------------------------------------------------------------------

    def _memory_node(self, graph: Graph, node: Node) -> Node | None:
        """The ``memory_read`` node in front of an agent run, if its agent has a policy."""
        head = node.id.removesuffix("agent") + "memory.read"
        try:
            return graph.node(head)
        except KeyError:
            return None

    async def _recall(
        self, memory: Node, agent: str, task: str | None, prompt: str, state: _Run
    ) -> Recall | None:
        policy = str(memory.spec).partition("/")[2]
        crew = memory.attrs.get("crew")
        try:
            return await steps.recall(
                self.memory,
                state.bus,
                policy=policy,
                crew=str(crew) if crew else None,
                agent=agent,
                task=task,
                prompt=prompt,
                who=state.who,
                run_id=state.run_id,
            )
        except MemoryStoreError as exc:
            raise self._memory_failed("read", policy, agent, task, exc, state) from None

    async def _remember(
        self,
        memory: Node,
        agent: str,
        task: str | None,
        prompt: str,
        answer: Any,
        state: _Run,
    ) -> None:
        if self.memory is None:
            return
        policy = str(memory.spec).partition("/")[2]
        crew = memory.attrs.get("crew")

        async def ask(models: tuple[str, ...], request: ModelRequest) -> ModelResponse:
            response = await self.gateway.complete(models, request)
            state.budget.usage = state.budget.usage + response.usage
            return response

        memory_service = self.memory
        observations = state.seen.take(agent, task) if state.seen is not None else ()
        step = f"{PARENT_STEP.get()}/{task or '-'}:{agent}#w"

        async def write(again: bool = False) -> dict[str, Any]:
            return await steps.remember(
                memory_service,
                state.bus,
                policy=policy,
                crew=str(crew) if crew else None,
                agent=agent,
                task=task,
                prompt=prompt,
                answer=answer,
                who=state.who,
                run_id=state.run_id,
                observations=observations,
                models=self.models_for_agent(agent),
                ask=ask,
                write_id=step if state.journal is not None else None,
                again=again,
            )

        try:
            if state.journal is None:
                await write()
            else:
                await state.journal.memory(
                    step, write, lambda data: state.bus.emit("memory.write", **data)
                )
        except MemoryStoreError as exc:
            raise self._memory_failed("write", policy, agent, task, exc, state) from None

    def _memory_failed(
        self,
        what: str,
        policy: str,
        agent: str,
        task: str | None,
        exc: MemoryStoreError,
        state: _Run,
    ) -> _Failed:
        error = steps.failed(state.bus, what, policy=policy, agent=agent, task=task, exc=exc)
        if task is not None:
            state.tasks[task] = TaskResult(status="failed", error=error)
            state.bus.emit("task.complete", task=task, agent=agent, status="failed", error=error)
        return _Failed(task or "", AgentOutcome(status="failed", error=error))

    async def _agent(
        self,
        agent_name: str,
        task: str | None,
        prompt: str,
        state: _Run,
        *,
        output_schema: Any = None,
        crew_inputs: Mapping[str, Any] | None = None,
        extra_tools: Mapping[str, BoundTool] | None = None,
        recall: Recall | None = None,
    ) -> AgentOutcome:
        agent = self.program.agent(agent_name)
        spec = agent.spec
        inputs = {
            name: (crew_inputs or state.inputs).get(name, declared.default)
            for name, declared in spec.inputs.items()
        }
        limits = spec.limits
        try:
            system = self._render(spec.instructions, {"inputs": inputs})
        except Exception as exc:  # noqa: BLE001 - a template's fault, never kiln's crash
            return AgentOutcome(
                status="failed",
                error=f"cannot render the instructions of {agent_name!r}: {_why(exc)}",
            )
        history: tuple[Any, ...] = ()
        if recall is not None:
            history = recall.history
            if recall.block and recall.position == "system":
                system = f"{system.rstrip()}\n\n{recall.block}"
            elif recall.block:
                prompt = f"{recall.block}\n\n{prompt}"
        tools = self._tools(agent, state)
        tools.update(extra_tools or {})
        box = ToolBox(
            tools,
            self.executors,
            approvals=self.approvals,
            cache=self.cache,
            retry=self.tool_retry,
            run_id=state.run_id,
            agent=agent_name,
        )
        discovery = spec.tool_discovery
        if discovery is not None and discovery.enabled:
            box.tools[FIND_TOOLS] = find_tools_tool(
                self._finder(), box.tools, top_k=discovery.top_k, labels=discovery.labels
            )
        job = AgentJob(
            run_id=state.run_id,
            agent=agent_name,
            task=task,
            strategy=spec.strategy,
            models=self.models_for_agent(agent_name),
            system=system,
            prompt=prompt,
            output_schema=non_empty(spec.output_schema if output_schema is None else output_schema),
            tools=box,
            gateway=self.gateway,
            bus=state.bus,
            budget=Budget(
                owner=f"agent {agent_name!r}" + (f", task {task!r}" if task else ""),
                max_iterations=limits.max_iterations,
                max_tokens=limits.max_tokens,
                max_cost_usd=limits.max_cost_usd,
                parent=state.budget,
            ),
            temperature=spec.temperature,
            # --model replaces the agent's models; their reply parameters still apply
            params=resolve_env(params_for(spec.model_params, spec.model, self.model)),
            max_repeats=limits.max_repeated_tool_calls,
            tot_breadth=spec.tot.breadth,
            tot_depth=spec.tot.depth,
            history=history,
            journal=state.journal,
            scope=f"{PARENT_STEP.get()}/{task or '-'}:{agent_name}",
        )
        return await run_agent(job, timeout_s=limits.timeout_s)

    def _finder(self) -> ToolFinder:
        if self.finder is None:
            self.finder = ToolFinder(self.registry)
        return self.finder

    def _tools(self, agent: Agent, state: _Run) -> dict[str, BoundTool]:
        tools: dict[str, BoundTool] = {}
        for name in agent.spec.tools:
            tools.update(self.registry.bound(name))
        for other in agent.spec.delegate_to:
            tools[delegate_tool(other)] = self._delegate(other, state)
        return tools

    def _delegate(self, other: str, state: _Run) -> BoundTool:
        description = self.program.agent(other).spec.description or f"the agent {other}"

        async def call(arguments: Mapping[str, Any]) -> Any:
            # no task: a delegate replays its own turns, not those of the task it helps
            outcome = await self._agent(other, None, str(arguments["request"]), state)
            if not outcome.ok:
                raise ToolError(f"{other} could not help ({outcome.status}): {outcome.error}")
            return outcome.output

        return virtual(
            delegate_tool(other),
            f"Hand a request to another agent: {description}",
            {
                "type": "object",
                "properties": {"request": {"type": "string"}},
                "required": ["request"],
                "additionalProperties": False,
            },
            call,
        )

    # -- hierarchical crews -----------------------------------------------------------------

    async def _hierarchical(self, graph: Graph, state: _Run, crew_name: str) -> Any:
        crew = self.program.crew(crew_name)
        manager = self.program.manager(crew_name)
        assert manager is not None  # the compiler rejects a hierarchical crew without one
        deps = self.program.task_deps.get(crew_name, {})
        outputs: dict[str, Any] = {}
        tools: dict[str, BoundTool] = {}
        for task in crew.spec.tasks:
            tools[task_tool(task.name)] = self._hand_out(
                graph, task.name, deps.get(task.name, ()), outputs, state
            )
        listing = "\n".join(
            f"- {task_tool(t.name)}: {t.description or t.prompt.strip().splitlines()[0]}"
            for t in crew.spec.tasks
        )
        prompt = (
            f"You manage a crew. Get its work done by handing out these tasks (each is a "
            f"tool), in a sensible order, then give the final answer.\n{listing}\n\n"
            f"Inputs: {json.dumps(state.inputs, ensure_ascii=False, default=str)}"
        )
        outcome = await self._agent(manager, None, prompt, state, extra_tools=tools)
        if not outcome.ok:
            raise _Failed("", outcome)
        return outcome.output

    def _hand_out(
        self,
        graph: Graph,
        task: str,
        needs: tuple[str, ...],
        outputs: dict[str, Any],
        state: _Run,
    ) -> BoundTool:
        node = graph.node(f"task.{task}.agent")

        async def call(arguments: Mapping[str, Any]) -> Any:
            missing = [n for n in needs if n not in outputs]
            if missing:
                raise ToolError(f"task {task} needs the output of {', '.join(missing)} first")
            scope = {"inputs": state.inputs, "tasks": {n: {"output": outputs[n]} for n in outputs}}
            notes = arguments.get("instructions")
            patched = node
            if notes:
                prompt = f"{node.attrs['prompt']}\n\nFrom your manager: {notes}"
                patched = replace(node, attrs={**node.attrs, "prompt": prompt})
            try:
                value = await self._task(graph, patched, scope, state)
            except _Failed as exc:
                raise ToolError(f"task {task} {exc.outcome.status}: {exc.outcome.error}") from None
            outputs[task] = value
            return value

        return virtual(
            task_tool(task),
            f"Run the crew task {task!r} and get its output.",
            {
                "type": "object",
                "properties": {"instructions": {"type": "string"}},
                "additionalProperties": False,
            },
            call,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _render(self, source: str, scope: Mapping[str, Any]) -> str:
        template = self._templates.get(source)
        if template is None:
            template = self._templates[source] = environment().from_string(source)
        return template.render(scope)

    def _forget(self, graph: Graph, run_id: str) -> None:
        """Let backends that keep per-run state (the scripted model's positions) drop it."""
        for model in self._models_of(graph):
            try:
                backend = self.gateway.backend(model)
            except ModelError:
                continue
            forget = getattr(backend, "forget", None)
            if forget is not None:
                forget(run_id)

    def models_for_agent(self, agent_name: str) -> tuple[str, ...]:
        """The models ``agent_name`` tries, primary first."""
        if self.model:
            return (self.model,)
        models = self.models.get(agent_name)
        if models:
            return models
        spec = self.program.agent(agent_name).spec
        return (spec.model, *spec.fallbacks)

    def models_for(self, target: str) -> list[str]:
        """Every model a run of ``target`` may call, primary and fallbacks."""
        return self._models_of(self.graphs[target])

    def agents_of(self, target: str) -> list[str]:
        """Every agent a run of ``target`` may start: those of its graph, the crew's manager,
        and whoever they delegate to."""
        graph = self.graphs[target]
        todo = [str(n.attrs["agent"]) for n in graph.nodes if n.kind == "agent_run"]
        kind, _, name = target.partition("/")
        if kind == "Crew" and (boss := self.program.manager(name)) is not None:
            todo.append(boss)
        seen: dict[str, None] = {}
        while todo:
            agent = todo.pop()
            if agent not in seen and agent in self.program.agents:
                seen[agent] = None
                todo.extend(self.program.agent(agent).spec.delegate_to)
        return sorted(seen)

    def _models_of(self, graph: Graph) -> list[str]:
        agents = dict.fromkeys(str(n.attrs["agent"]) for n in graph.nodes if n.kind == "agent_run")
        return list(dict.fromkeys(m for a in agents for m in self.models_for_agent(a)))


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"


#: Nodes whose value is a template scope, handed on whole to what follows them.
_SCOPE_NODES = frozenset({"join", "memory_read"})




def _merge(scope: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(scope.get(key), dict):
            _merge(scope[key], value)
        else:
            scope[key] = value


@dataclass(frozen=True, slots=True)
class _Walk:
    """How to walk one graph, worked out once: the nodes that data and control edges reach,
    in dependency order, what each waits for, and whether any of them may run together."""

    order: tuple[Node, ...]
    incoming: Mapping[str, tuple[Edge, ...]]
    kinds: Mapping[str, str]
    concurrent: bool

    @classmethod
    def of(cls, graph: Graph) -> _Walk:
        incoming: dict[str, list[Edge]] = {n.id: [] for n in graph.nodes}
        following: dict[str, list[str]] = {}
        for edge in graph.edges:
            if edge.kind in ("data", "control"):
                incoming[edge.target].append(edge)
                following.setdefault(edge.source, []).append(edge.target)
        reached = {graph.entry}
        queue = [graph.entry]
        for node_id in queue:
            for target in following.get(node_id, ()):
                if target not in reached:
                    reached.add(target)
                    queue.append(target)
        waiting = {n: sum(e.source in reached for e in incoming[n]) for n in reached}
        order = [n for n in sorted(reached) if waiting[n] == 0]
        for node_id in order:  # Kahn's algorithm; the compiler has ruled out cycles
            for target in following.get(node_id, ()):
                waiting[target] -= 1
                if waiting[target] == 0:
                    order.append(target)
        nodes = {n.id: n for n in graph.nodes}
        walked = tuple(nodes[n] for n in order)
        return cls(
            order=walked,
            incoming={n: tuple(e for e in incoming[n] if e.source in reached) for n in reached},
            kinds={n.id: n.kind for n in graph.nodes},
            concurrent=any(n.parallel for n in walked),
        )

    def scope(self, node: Node, values: Mapping[str, Any]) -> dict[str, Any]:
        """The template scope of ``node``: what its incoming data edges bind."""
        scope: dict[str, Any] = {}
        for edge in self.incoming[node.id]:
            if edge.kind != "data":
                continue
            if self.kinds[edge.source] in _SCOPE_NODES:  # passes its whole scope on
                _merge(scope, values[edge.source])
                continue
            for binding in edge.bindings:
                _put(scope, binding.name.split("."), _get(values[edge.source], binding.path))
        return scope


def _get(value: Any, path: Any) -> Any:
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key)
        else:
            return None
    return value


def _put(scope: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        scope = scope.setdefault(key, {})
    scope[path[-1]] = value


def _result(scope: Mapping[str, Any]) -> Any:
    if "output" in scope:
        return scope["output"]
    outputs = {name: t.get("output") for name, t in scope.get("tasks", {}).items()}
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return outputs
