"""Secrets in specs: ``${env:NAME}`` references, and literal secrets that must not be written.

Shared by the ``check`` pass (which reports literal secrets) and the analysis (which lists
the environment variables each agent can reach).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from specs.source import DataPath

ENV_REF: Final = re.compile(r"\$\{env:([^}]*)\}")
ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SECRET_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|token|secret|secret[_-]?key|password|passwd|pwd|private[_-]?key|"
    r"access[_-]?key|client[_-]?secret|authorization|credentials?)$",
    re.IGNORECASE,
)
_SHELL_VAR = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")
_URL_QUERY_SECRET = re.compile(
    r"[?&](api[_-]?key|apikey|key|token|access[_-]?token|secret|password|sig)=([^&#\s]+)",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@{}]+:([^/\s@{}]+)@", re.IGNORECASE)
_KNOWN_FORMATS: Final = (
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"), "an Anthropic API key", "ANTHROPIC_API_KEY"),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"), "an OpenAI API key", "OPENAI_API_KEY"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token", "GITHUB_TOKEN"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id", "AWS_ACCESS_KEY_ID"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token", "SLACK_TOKEN"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key", "PRIVATE_KEY"),
)
#: a substring each known format contains: plain searches are far faster than the regexes
_FORMAT_MARKERS: Final = (
    "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "AKIA", "xox", "-----BEGIN",
)  # fmt: skip
_ANY_FORMAT: Final = re.compile("|".join(f"(?:{p.pattern})" for p, _, _ in _KNOWN_FORMATS))
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


def strings(
    data: Any, key: str | None = None, out: list[tuple[str | None, str]] | None = None
) -> list[tuple[str | None, str]]:
    """Every string value under ``data`` with the mapping key it sits under: ``walk_strings``
    without the paths, several times faster (for scanning; find the path of a hit after)."""
    found = [] if out is None else out
    if isinstance(data, str):
        found.append((key, data))
    elif isinstance(data, dict):
        for k, v in data.items():
            strings(v, k, found)
    elif isinstance(data, list):
        for v in data:
            strings(v, key, found)
    return found


def suspicious(data: Any) -> bool:
    """Whether anything under ``data`` may be a malformed reference or a literal secret: a
    quick scan (most specs have neither) that ``literal_secret`` then confirms value by value.
    """
    pairs = strings(data)
    blob = "\n".join(text for _, text in pairs)
    formats = any(marker in blob for marker in _FORMAT_MARKERS)
    for key, text in pairs:
        if "$" in text and (any(malformed_refs(text)) or _SHELL_VAR.match(text.strip())):
            return True
        if formats and _ANY_FORMAT.search(text):
            return True
        if "://" in text and _in_url(key, text) is not None:
            return True
        if key is not None and _secret_key(key) and literal_secret(key, text) is not None:
            return True
    return False


def env_names(data: Any) -> set[str]:
    """The well-formed ``${env:NAME}`` names referenced anywhere under ``data``."""
    return {
        name
        for _, text in strings(data)
        if "${" in text
        for name in ENV_REF.findall(text)
        if ENV_NAME.match(name)
    }


@dataclass(frozen=True, slots=True)
class LiteralSecret:
    """A secret written in a spec: why it looks like one, the secret text, and the value
    with the secret replaced by an environment reference."""

    why: str
    secret: str
    fixed: str


def literal_secret(key: str | None, text: str) -> LiteralSecret | None:
    """The secret ``text`` (under mapping ``key``) holds written literally, if it does."""
    if _ANY_FORMAT.search(text):
        for pattern, what, env in _KNOWN_FORMATS:
            match = pattern.search(text)
            if match:
                return _found(f"this looks like {what}", text, match.group(0), env)
    if "://" in text:
        found = _in_url(key, text)
        if found is not None:
            return found
    if text.strip().startswith("$"):
        shell = _SHELL_VAR.match(text.strip())
        if shell:
            why = f"'{text.strip()}' is a shell variable, which kiln does not expand"
            return _found(why, text, text.strip(), shell.group(1))
    if key is not None and _secret_key(key):
        stripped = ENV_REF.sub("", text).strip()
        secret = re.sub(r"^(bearer|basic|token)\b\s*", "", stripped, flags=re.IGNORECASE)
        if secret.lower() in _NOT_SECRET_VALUES or "{{" in stripped:
            return None  # empty, a placeholder, or a template filled in at run time
        if secret not in text:  # written around an ${env:...} reference: no one piece to move
            return LiteralSecret(f"'{key}' holds a secret written literally", text, text)
        env = "API_TOKEN" if key.lower() == "authorization" else _env_name(key)
        return _found(f"'{key}' holds a secret written literally", text, secret, env)
    return None


def _in_url(key: str | None, text: str) -> LiteralSecret | None:
    match = _URL_CREDENTIALS.search(text)
    if match and not ENV_REF.fullmatch(match.group(1)):
        env = f"{_env_name(key or 'url')}_PASSWORD".replace("URL_PASSWORD", "PASSWORD")
        return _found("this URL has a password in it", text, match.group(1), env)
    query = _URL_QUERY_SECRET.search(text)
    if query and not query.group(2).startswith(("${env:", "{{")):
        env = _env_name(query.group(1))
        return _found(f"this URL carries a secret in '{query.group(1)}'", text, query.group(2), env)
    return None


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(_snake(key)) is not None


def _found(why: str, text: str, secret: str, env: str) -> LiteralSecret:
    return LiteralSecret(why, secret, text.replace(secret, "${env:" + env + "}", 1))


def _snake(key: str) -> str:
    """``apiKey`` and ``X-Api-Key`` to ``api_Key``, ``X-Api-Key``: words split for matching."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)


def _env_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key).upper() or "SECRET"


def malformed_refs(text: str) -> Iterator[str]:
    """The ``${env:...}`` references in ``text`` (as written) that are not well formed."""
    if "${" not in text:
        return
    for match in ENV_REF.finditer(text):
        if not ENV_NAME.match(match.group(1)):
            yield match.group(0)
    for start in (m.start() for m in re.finditer(r"\$\{env:", text)):
        if "}" not in text[start:]:
            yield text[start:]
