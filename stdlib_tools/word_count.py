"""Count the words, characters and lines of a text."""

from __future__ import annotations


def run(text: str) -> dict[str, int]:
    return {
        "words": len(text.split()),
        "characters": len(text),
        "lines": text.count("\n") + 1 if text else 0,
    }
