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
    *,
    text_is_message: bool = True,
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
    open_ = [n for n in declared if n not in values]
    # --input fills the one string input still open (preferring required ones)
    strings = [n for n in open_ if declared[n].type == "string"]
    required = [n for n in strings if declared[n].is_required]
    target = required if required else strings
    if text is not None and len(target) == 1:
        values[target[0]] = text
    elif text is not None and not text_is_message:
        problems.append(
            f"--input has nowhere to go: {owner} has no string input left to fill "
            f"(inputs: {', '.join(sorted(declared)) or 'none'}); use --inputs"
        )
    for name, spec in declared.items():
        if name in values:
            value = values[name]
            ok = isinstance(value, _TYPES[spec.type]) and not (
                spec.type in ("number", "integer") and isinstance(value, bool)
            )
            if not ok:
                problems.append(
                    f"input {name!r} of {owner} must be {_a(spec.type)}, got {_json_type(value)}"
                )
        elif spec.default is not None:
            values[name] = spec.default
        elif spec.required:
            problems.append(
                f"{owner} needs input {name!r}"
                + (f" ({spec.description})" if spec.description else "")
                + f": give it with --inputs '{{\"{name}\": ...}}'"
                + (" or --input TEXT" if spec.type == "string" and len(target) == 1 else "")
            )
        else:
            values[name] = None
    if problems:
        raise InputError("\n".join(problems))
    return values


def _json_type(value: Any) -> str:
    """What a value is in JSON's words (the words of the spec's input types)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
