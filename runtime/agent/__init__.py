"""Agent strategies: react, cot and tot, run under the limits of the agent's spec."""

from __future__ import annotations

import anyio

from runtime.agent.budget import Budget, CannotContinue, LimitExceeded, LoopDetected
from runtime.agent.job import AgentJob, AgentOutcome, AnswerRejected, Status
from runtime.agent.react import cot, react
from runtime.agent.tot import tot
from runtime.llm.types import ModelError

__all__ = ["AgentJob", "AgentOutcome", "Budget", "LimitExceeded", "LoopDetected", "run_agent"]

_STRATEGIES = {"react": react, "cot": cot, "tot": tot}


async def run_agent(job: AgentJob, *, timeout_s: float | None) -> AgentOutcome:
    """Run ``job`` to an outcome. Never raises for anything a model, a tool or a limit does;
    cancellation from outside (a failed sibling task, Ctrl-C) propagates."""
    strategy = _STRATEGIES[job.strategy]
    try:
        with anyio.fail_after(timeout_s):
            output = await strategy(job)
    except TimeoutError:
        return _ended(
            job, "limit_exceeded", f"timeout_s exceeded: ran for {timeout_s} s", "timeout_s"
        )
    except LimitExceeded as exc:
        return _ended(job, "limit_exceeded", str(exc), exc.limit)
    except LoopDetected as exc:
        return _ended(job, "loop_detected", str(exc))
    except CannotContinue as exc:
        return _ended(job, "failed", str(exc))
    except AnswerRejected as exc:
        return _ended(job, "failed", str(exc))
    except ModelError as exc:
        return _ended(job, "failed", f"model call failed: {exc}")
    job.emit(
        "agent.answer",
        accepted=True,
        output=output,
        usage=job.budget.usage.as_json(),
        iterations=job.budget.iterations,
    )
    return AgentOutcome(status="succeeded", output=output, iterations=job.budget.iterations)


def _ended(job: AgentJob, status: Status, error: str, limit: str | None = None) -> AgentOutcome:
    return AgentOutcome(
        status=status,
        error=error,
        limit=limit,
        iterations=job.budget.iterations,
    )
