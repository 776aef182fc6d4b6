"""Limits of an agent run (and of the run around it), enforced as work is done."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.llm.types import Usage


class LimitExceeded(Exception):
    """A limit from a spec was hit: the run ends with status ``limit_exceeded``."""

    def __init__(self, limit: str, detail: str, owner: str = "") -> None:
        super().__init__(f"{limit} exceeded{f' ({owner})' if owner else ''}: {detail}")
        self.limit = limit
        self.detail = detail
        self.owner = owner


class LoopDetected(Exception):
    """The agent kept repeating the same tool call after being told: ``loop_detected``."""


class CannotContinue(Exception):
    """A tool call needs something this run cannot give (an approval nobody can grant):
    the run ends ``failed`` with the reason, rather than letting the agent guess on."""


@dataclass(slots=True, kw_only=True)
class Budget:
    """Counts model calls, tokens and dollars, and raises :class:`LimitExceeded` at a limit.

    A budget may have a ``parent`` (a crew's, shared by its tasks): every charge goes to both.
    ``None`` means unlimited.
    """

    owner: str = ""
    max_iterations: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    parent: Budget | None = None
    iterations: int = 0
    usage: Usage = field(default_factory=Usage)

    def begin_call(self) -> None:
        """Count one model call, refusing it when the iteration limit is used up."""
        if self.max_iterations is not None and self.iterations >= self.max_iterations:
            raise LimitExceeded(
                "max_iterations",
                f"{self.iterations} model calls, limit {self.max_iterations}",
                self.owner,
            )
        self.iterations += 1

    def charge(self, usage: Usage) -> None:
        self.usage = self.usage + usage
        if self.parent is not None:
            self.parent.charge(usage)
        self.check()

    def check(self) -> None:
        if self.max_tokens is not None and self.usage.total_tokens > self.max_tokens:
            raise LimitExceeded(
                "max_tokens",
                f"{self.usage.total_tokens:,} tokens used, limit {self.max_tokens:,}",
                self.owner,
            )
        if self.max_cost_usd is not None and self.usage.cost_usd > self.max_cost_usd:
            raise LimitExceeded(
                "max_cost_usd",
                f"${self.usage.cost_usd:.4f} spent, limit ${self.max_cost_usd:.4f}",
                self.owner,
            )
