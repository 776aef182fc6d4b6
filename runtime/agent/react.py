"""ReAct (thought → action → observation, until a final answer) and chain of thought
(the same loop with no tools: reason step by step, then answer).

Models with native tool calling get the tools as tools and answer with ``tool_calls``;
every other model is asked for one JSON object per step, constrained to the action schema
where the backend can enforce it. Nothing a model replies crashes the loop: a malformed
step, an unknown tool, invalid input or a failing tool all come back as observations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtime.agent import prompts
from runtime.agent.budget import CannotContinue, LoopDetected
from runtime.agent.job import (
    AgentJob,
    AnswerRejected,
    check_answer,
    observation_text,
    parse_json_reply,
)
from runtime.llm.types import Message, ModelError, ModelResponse
from runtime.tools import ToolBox, ToolOutcome
from runtime.tools.approval import ApprovalRequest, Decision


@dataclass(slots=True)
class _Guard:
    """Counts identical tool calls in a row (same tool, same canonical input)."""

    last: str = ""
    count: int = 0

    def see(self, tool: str, arguments: Any) -> int:
        key = tool + "\x00" + json.dumps(arguments, sort_keys=True, default=str)
        self.count = self.count + 1 if key == self.last else 1
        self.last = key
        return self.count


@dataclass(slots=True)
class _Loop:
    job: AgentJob
    native: bool
    messages: list[Message] = field(default_factory=list)
    corrected: bool = False
    guard: _Guard = field(default_factory=_Guard)
    #: Tools the loop guard has just answered for: a constrained model is not offered them
    #: again until it does something else (it would only repeat itself).
    resting: set[str] = field(default_factory=set)

    async def run(self) -> Any:
        job = self.job
        while True:
            last = job.budget.max_iterations is not None and (
                job.budget.iterations + 1 >= job.budget.max_iterations
            )
            if last and job.tools and not self.native:
                self.messages.append({"role": "user", "content": prompts.LAST_STEP})
            response, self.messages = await job.ask(
                self.messages,
                "final" if last or not job.tools else "act",
                schema=self._schema(last),
                tools=job.tools.definitions() if self.native else (),
            )
            if self.native and response.tool_calls:
                await self._native_calls(response)
                continue
            done, answer = await self._step(response)
            if done:
                return answer

    def _schema(self, last: bool) -> dict[str, Any] | None:
        job = self.job
        if self.native:
            return None
        offered = [t for t in job.tools.tools.values() if t.name not in self.resting]
        if last or not offered:
            return prompts.final_branch(job.output_schema)
        return prompts.action_schema(offered, job.output_schema)

    async def _step(self, response: ModelResponse) -> tuple[bool, Any]:
        """A reply without native tool calls: a JSON step, or a native model's answer."""
        job = self.job
        self.messages.append({"role": "assistant", "content": response.text})
        if self.native:
            job.thought(response, "")
            return self._final(response.text)
        reply = parse_json_reply(response.text)
        if isinstance(reply, str) or not ("tool" in reply or "final" in reply):
            error = reply if isinstance(reply, str) else "it has neither 'tool' nor 'final'"
            job.thought(response, response.text, malformed=error)
            self._observe(prompts.malformed(error))
            return False, None
        thought = reply.get("thought")
        job.thought(response, thought if isinstance(thought, str) else json.dumps(thought))
        if "tool" in reply:
            if not job.tools:
                self._observe("Error: you have no tools here; give your final answer.")
                return False, None
            call_id = f"call_{job.step}"
            outcome = await self._act(str(reply["tool"]), reply.get("input", {}), call_id)
            self._observe(_observation(str(reply["tool"]), outcome))
            return False, None
        return self._final(reply["final"])

    def _final(self, value: Any) -> tuple[bool, Any]:
        job = self.job
        value, problem = check_answer(value, job.output_schema)
        if problem is None:
            return True, value
        if self.corrected:
            raise AnswerRejected(
                f"the final answer does not match the output schema after one correction: {problem}"
            )
        self.corrected = True
        job.emit("agent.answer", accepted=False, output=value, error=problem)
        self.messages.append(
            {"role": "user", "content": prompts.rejected_answer(problem, job.output_schema)}
        )
        return False, None

    def _observe(self, text: str) -> None:
        self.messages.append({"role": "user", "name": "observation", "content": text})

    async def _native_calls(self, response: ModelResponse) -> None:
        job = self.job
        job.thought(response, response.text)
        self.messages.append(
            {
                "role": "assistant",
                "content": response.text or None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": c.arguments
                            if isinstance(c.arguments, str)
                            else json.dumps(c.arguments),
                        },
                    }
                    for c in response.tool_calls
                ],
            }
        )
        for call in response.tool_calls:
            outcome = await self._act(call.name, call.arguments, call.id)
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": _observation(call.name, outcome),
                }
            )

    async def _act(self, tool: str, arguments: Any, call_id: str) -> ToolOutcome:
        job = self.job
        job.emit("agent.action", tool=tool, input=arguments, call_id=call_id)
        repeats = self.guard.see(tool, arguments)
        if repeats > job.max_repeats:
            job.emit(
                "tool.result",
                tool=tool,
                call_id=call_id,
                status="loop",
                error=f"loop detected: the same call {repeats} times in a row; the run ends",
            )
            raise LoopDetected(
                f"{job.agent} called {tool} with the same input {repeats} times in a row, "
                "after being told the result would not change"
            )
        if repeats == job.max_repeats:
            outcome = ToolOutcome("loop", error=prompts.repeated(tool, repeats))
            self.resting.add(tool)
        else:
            self.resting.clear()

            def on_approval(request: ApprovalRequest, decision: Decision | None) -> None:
                if decision is None:
                    job.emit(
                        "approval.request",
                        id=request.id,
                        tool=tool,
                        input=arguments,
                        call_id=call_id,
                    )
                else:
                    job.emit(
                        "approval.decision",
                        id=request.id,
                        tool=tool,
                        call_id=call_id,
                        **decision.as_json(),
                    )

            bound = job.tools.tools.get(tool)
            asks = (
                bound is not None and bound.spec is not None and bound.spec.spec.requires_approval
            )
            outcome = await job.call_tool(tool, arguments, on_approval if asks else None)
        job.emit(
            "tool.result",
            duration_ms=outcome.duration_ms,
            tool=tool,
            call_id=call_id,
            status=outcome.status,
            **({"output": outcome.output} if outcome.ok else {"error": outcome.error}),
            **({"stdout": outcome.stdout} if outcome.stdout else {}),
            **_call_facts(outcome),
        )
        if outcome.status == "approval_required":
            raise CannotContinue(str(outcome.error))
        return outcome


def _call_facts(outcome: ToolOutcome) -> dict[str, Any]:
    """What the trace keeps about how a call went, beyond its result."""
    facts: dict[str, Any] = {}
    if outcome.cached:
        facts["cached"] = True
    if outcome.attempts > 1:
        facts["attempts"] = outcome.attempts
    if outcome.retryable and not outcome.ok:
        facts["retryable"] = True
    return facts


def _observation(tool: str, outcome: ToolOutcome) -> str:
    if outcome.ok:
        return f"Observation from {tool}: {observation_text(outcome.output)}"
    if outcome.status == "loop":
        return str(outcome.error)
    return f"Error from {tool}: {outcome.error}"


def _all_native(job: AgentJob) -> bool:
    """Native tool calling only when every model the agent may fall back to has it: the
    conversation is built once, and a fallback must be able to continue it."""
    for model in job.models:
        try:
            if not job.gateway.backend(model).native_tools:
                return False
        except ModelError:
            return False
    return True


async def react(job: AgentJob) -> Any:
    native = bool(job.tools) and _all_native(job)
    system = (
        prompts.react_native(job.system, job.output_schema)
        if native
        else prompts.react_json(job.system, list(job.tools.tools.values()), job.output_schema)
    )
    loop = _Loop(job, native)
    loop.messages = [
        {"role": "system", "content": system},
        *job.history,
        {"role": "user", "content": job.prompt},
    ]
    return await loop.run()


async def cot(job: AgentJob) -> Any:
    """Chain of thought: the loop with no tools, so every reply is reasoning plus an answer."""
    loop = _Loop(job, native=False)
    job.tools = ToolBox({}, job.tools.executors)
    loop.messages = [
        {"role": "system", "content": prompts.cot(job.system, job.output_schema)},
        *job.history,
        {"role": "user", "content": job.prompt},
    ]
    return await loop.run()
