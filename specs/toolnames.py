"""Tool names as model APIs accept them.

MCP allows tool names of up to 128 characters, dots included; OpenAI and Anthropic accept
only ``^[a-zA-Z0-9_-]{1,64}$``. Every tool kiln offers a model has an *API name* that fits,
computed from its *qualified name*: a spec's own tool is qualified by the spec's name
(already an API name: it maps to itself); a tool a spec imports (an MCP server's tool, an
OpenAPI operation) is ``<spec>.<remote name>``.

The mapping is a pure function, so the same tools get the same names on every machine and
in every run, and scripted turns can name them:

- ``spec.name`` becomes ``spec__name`` when that is lossless: the remote name uses only
  allowed characters, holds no ``__`` and the result fits in 64 characters;
- anything else keeps an allowed, truncated prefix and gets ``-`` plus 8 hex digits of the
  SHA-256 of the qualified name, so two different names never share a form by accident.

The way back is the registry's table (API name -> qualified name), which also refuses the
collisions a function cannot rule out on its own (a spec literally named ``time__now`` next
to a server ``time`` with a tool ``now``).
"""

from __future__ import annotations

import hashlib
import re

API_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_LENGTH = 64
#: what MCP allows (SEP-986): 1..128 of letters, digits, ``_ - . /``
REMOTE_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,128}$")
SEPARATOR = "__"
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")
_DIGEST = 8


def qualify(spec: str, remote: str | None) -> str:
    """The qualified name of a spec's tool (``remote`` is ``None``) or an imported one."""
    return spec if remote is None else f"{spec}.{remote}"


def api_name(qualified: str) -> str:
    """The name a model sees for the tool ``qualified``: deterministic, within the API's
    pattern, and distinct for distinct inputs (up to a SHA-256 prefix collision)."""
    spec, dot, remote = qualified.partition(".")
    if not dot:
        if API_NAME.match(qualified):
            return qualified
        return _hashed(qualified, qualified)
    simple = f"{spec}{SEPARATOR}{remote}"
    if API_NAME.match(simple) and SEPARATOR not in remote and SEPARATOR not in spec:
        return simple
    return _hashed(f"{spec}{SEPARATOR}{_NOT_ALLOWED.sub('_', remote)}", qualified)


def _hashed(readable: str, qualified: str) -> str:
    digest = hashlib.sha256(qualified.encode()).hexdigest()[:_DIGEST]
    head = _NOT_ALLOWED.sub("_", readable)[: MAX_LENGTH - _DIGEST - 1].rstrip("-") or "tool"
    return f"{head}-{digest}"
