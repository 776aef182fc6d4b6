"""Pick values out of JSON data with a JSONPath query (see :mod:`stdlib_tools.jsonpath`)."""

from __future__ import annotations

import json
from typing import Any

from stdlib_tools import jsonpath

#: the longest JSON text accepted as ``data``
MAX_DATA_CHARS = 10_000_000
#: the most values one call returns
MAX_VALUES = 1_000


def run(data: Any, query: str) -> dict[str, Any]:
    """The values ``query`` selects in ``data`` (a JSON value, or a string holding JSON
    text), each with its normalized path such as ``$['items'][0]['price']``."""
    if isinstance(data, str):
        data = _parsed(data)
    parsed = jsonpath.parse(query)
    nodes = jsonpath.evaluate(parsed, data)
    shown = nodes[:MAX_VALUES]
    return {
        "values": [value for _, value in shown],
        "paths": [path for path, _ in shown],
        "count": len(nodes),
        "truncated": len(nodes) > MAX_VALUES,
    }


def _parsed(text: str) -> Any:
    if len(text) > MAX_DATA_CHARS:
        raise ValueError(f"data is longer than {MAX_DATA_CHARS:,} characters")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"data is a string but not JSON text: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # an integer with too many digits
        raise ValueError(f"data is a string but not JSON text: {exc}") from None
    except RecursionError:
        raise ValueError("data nests too deeply to be read") from None
