"""The idempotency key of the tool call in progress: the same on every retry and resume of
a call (see runtime/journal.py), for executors to hand to the tool, which can use it to do
its effect once. Sandboxed tools see ``$KILN_IDEMPOTENCY_KEY``, HTTP and OpenAPI tools send
an ``Idempotency-Key`` header, MCP calls carry it in ``_meta`` as :data:`MCP_META`."""

from __future__ import annotations

from contextvars import ContextVar

IDEMPOTENCY_KEY: ContextVar[str | None] = ContextVar("kiln_idempotency_key", default=None)
#: the ``_meta`` key of an MCP ``tools/call`` request that holds it
MCP_META = "dev.kiln/idempotency-key"
