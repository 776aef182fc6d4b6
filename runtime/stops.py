"""Why a run stops before its end without failing: it waits for a person."""

from __future__ import annotations

from typing import Literal

StopStatus = Literal["needs_attention", "waiting_approval"]


class RunStopped(Exception):
    """Raised through every layer of a run (tools, agent loops, crews) to stop it where it
    is, journaled, with ``status``: nothing catches it as a tool's or an agent's failure."""

    status: StopStatus = "needs_attention"
