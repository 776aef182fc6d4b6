"""A run's inputs: the command line's values checked against what the spec declares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specs._common import InputSpec

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class InputError(Exception):
    pass


def bind_inputs(
    declared: Mapping[str, InputSpec],
    given: Mapping[str, Any],
    text: str | None,
    owner: str,
) -> dict[str, Any]:
    """The inputs of a run: ``given`` (from ``--inputs``), ``text`` (``--input``) for the one
    declared input not given otherwise, then defaults. Raises :class:`InputError` listing
    every problem."""
    values = dict(given)
    problems = [
        f"{owner} has no input {name!r} (inputs: {', '.join(sorted(declared)) or 'none'})"
        for name in values
        if name not in declared
    ]
    open_ = [n for n, spec in declared.items() if n not in values and spec.is_required]
    if not open_:
        open_ = [n for n in declared if n not in values]
    if text is not None and len(open_) == 1 and declared[open_[0]].type == "string":
        values[open_[0]] = text
    for name, spec in declared.items():
        if name in values:
            value = values[name]
            ok = isinstance(value, _TYPES[spec.type]) and not (
                spec.type in ("number", "integer") and isinstance(value, bool)
            )
            if not ok:
                problems.append(
                    f"input {name!r} of {owner} must be {_a(spec.type)}, got {type(value).__name__}"
                )
        elif spec.default is not None:
            values[name] = spec.default
        elif spec.required:
            problems.append(
                f"{owner} needs input {name!r}"
                + (f" ({spec.description})" if spec.description else "")
                + f": give it with --inputs '{{\"{name}\": ...}}'"
                + (" or --input TEXT" if spec.type == "string" and len(open_) == 1 else "")
            )
        else:
            values[name] = None
    if problems:
        raise InputError("\n".join(problems))
    return values


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
