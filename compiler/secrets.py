"""Secrets in specs: ``${env:NAME}`` references, and literal secrets that must not be written.

Shared by the ``check`` pass (which reports literal secrets) and the analysis (which lists
the environment variables each agent can reach).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from specs.source import DataPath

ENV_REF: Final = re.compile(r"\$\{env:([^}]*)\}")
ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SECRET_KEY = re.compile(
    r"(^|_|-)(api_?key|apikey|token|access_?token|secret|secret_?key|password|passwd|"
    r"private_?key|access_?key|client_?secret|authorization|credentials?)$",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@{}]+:([^/\s@{}]+)@", re.IGNORECASE)
_KNOWN_FORMATS: Final = (
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), "an OpenAI or Anthropic API key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
)
_NOT_SECRET_VALUES = {"", "none", "null", "changeme"}


def walk_strings(data: Any, path: DataPath = ()) -> Iterator[tuple[DataPath, str | None, str]]:
    """Every string value under ``data``: its path, the mapping key it sits under, the text."""
    stack: list[tuple[DataPath, str | None, Any]] = [(path, None, data)]
    while stack:
        here, key, node = stack.pop()
        if isinstance(node, str):
            yield here, key, node
        elif isinstance(node, dict):
            stack.extend(((*here, k), str(k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*here, i), key, v) for i, v in reversed(list(enumerate(node))))


def env_names(data: Any) -> set[str]:
    """The well-formed ``${env:NAME}`` names referenced anywhere under ``data``."""
    return {
        name
        for _, _, text in walk_strings(data)
        if "${" in text
        for name in ENV_REF.findall(text)
        if ENV_NAME.match(name)
    }


def literal_secret(key: str | None, text: str) -> str | None:
    """Why ``text`` (under mapping ``key``) looks like a secret written literally, if it does."""
    for pattern, what in _KNOWN_FORMATS:
        if pattern.search(text):
            return f"this looks like {what}"
    match = _URL_CREDENTIALS.search(text)
    if match and not ENV_REF.fullmatch(match.group(1)):
        return "this URL has a password in it"
    if key is not None and _SECRET_KEY.search(key):
        stripped = ENV_REF.sub("", text).strip()
        if stripped.lower().removeprefix("bearer").strip() in _NOT_SECRET_VALUES:
            return None
        if "{{" in stripped:  # a template fills it at run time
            return None
        return f"'{key}' holds a secret written literally"
    return None


def malformed_refs(text: str) -> Iterator[str]:
    """The ``${env:...}`` references in ``text`` whose name is not an environment variable name."""
    if "${" not in text:
        return
    for name in ENV_REF.findall(text):
        if not ENV_NAME.match(name):
            yield name
    for start in (m.start() for m in re.finditer(r"\$\{env:", text)):
        if "}" not in text[start:]:
            yield text[start + 6 :]
