"""A builtin tool that does nothing: what the runtime benchmarks call, so that every
microsecond they measure is the runtime's own (``stdlib_tools.noop:run``; no Tool spec
registers it, so no agent sees it unless a spec names it)."""

from __future__ import annotations

from typing import Any


def run(**kwargs: Any) -> dict[str, Any]:
    """Accept any arguments, return an empty object."""
    return {}
