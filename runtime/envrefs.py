"""``${env:NAME}`` references in specs, read when a run needs them, never at compile time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from compiler.secrets import ENV_REF

__all__ = ["env_value", "resolve_env"]


def resolve_env(value: Any) -> Any:
    """``${env:NAME}`` references replaced by the environment's values, read at run time.
    A value whose variable is not set is left out rather than sent as the literal text:
    the provider then reports the missing key, if it needs one."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            resolved = resolve_env(item)
            if resolved is not _UNSET:
                out[key] = resolved
        return out
    if isinstance(value, list | tuple):
        return [v for v in map(resolve_env, value) if v is not _UNSET]
    if isinstance(value, str) and "${env:" in value:
        names = ENV_REF.findall(value)
        if any(name not in os.environ for name in names):
            return _UNSET
        return ENV_REF.sub(lambda m: _read(m.group(1)), value)
    return value


_UNSET = object()


def _read(name: str) -> str:
    """A variable's value, remembered as a secret (runtime/masking.py masks it)."""
    from runtime.masking import remember

    value = os.environ[name]
    remember(name, value)
    return value


def env_value(value: str | None) -> str | None:
    """One string with its references read; ``None`` when it is ``None`` or names a
    variable that is not set."""
    if value is None:
        return None
    resolved = resolve_env(value)
    return None if resolved is _UNSET else str(resolved)
