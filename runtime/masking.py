"""Secret values, masked wherever they would leave the runtime (#24 item 1).

Every value kiln reads from ``${env:NAME}`` (tool headers, URLs and bodies, MCP ``env`` and
``headers``, memory server addresses, model parameters), and the values of the
environment's credentials (variables named ``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``,
``*_PASSWORD``), are remembered here as they are read. :func:`mask` replaces each of them,
plain, base64-encoded or URL-encoded, by ``***NAME***``. Tool outcomes are masked before
the model sees them (and before the journal keeps them), and every event is masked on the
one event path (so the trace store, ``--events``, the live view, SSE and the web view get
masked data); the run's result and the server's log lines too. Values shorter than 6
characters are not masked: masking every ``1`` would mangle everything and protect nothing.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MIN_LENGTH", "mask", "mask_data", "refresh", "remember"]

MIN_LENGTH = 6
_CREDENTIAL = re.compile(r"(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)

#: a form of a secret (itself, encoded) -> the name it is masked by
_FORMS: dict[str, str] = {}
_pattern: re.Pattern[str] | None = None
_environment_read = False


def remember(name: str, value: str) -> None:
    """``value`` (of ``${env:name}``) is a secret from now on."""
    global _pattern
    if len(value) < MIN_LENGTH or value in _FORMS:
        return
    raw = value.encode("utf-8", "surrogatepass")
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    for form in forms:
        if len(form) >= MIN_LENGTH:
            _FORMS.setdefault(form, name)
    ordered = sorted(_FORMS, key=len, reverse=True)  # the longest form first
    _pattern = re.compile("|".join(map(re.escape, ordered)))


def _read_environment() -> None:
    global _environment_read
    _environment_read = True
    for name, value in os.environ.items():
        if _CREDENTIAL.search(name):
            remember(name, value)


def refresh() -> None:
    """Read the environment's credentials again (each run starts with this)."""
    _read_environment()


def mask(text: str) -> str:
    """``text`` with every known secret (in any of its forms) replaced by ``***NAME***``."""
    if not _environment_read:
        _read_environment()
    if _pattern is None or not text:
        return text
    return _pattern.sub(lambda m: f"***{_FORMS[m.group(0)]}***", text)


def mask_data(value: Any) -> Any:
    """Every string in ``value`` (JSON-like data) masked; the same object when nothing
    needed it."""
    if not _environment_read:
        _read_environment()
    if _pattern is None:
        return value
    return _walk(value)


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        out = {k: _walk(v) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(value, list | tuple):
        items = [_walk(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value
