"""'Did you mean' suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, if any is close enough to be a likely typo."""
    pool = sorted(set(candidates))
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered:
        return lowered[word.lower()]
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # plural/singular and prefix slips: 'tool' for 'tools', 'max_iter' for 'max_iterations'
    for c in pool:
        if len(word) >= 3 and (c.startswith(word) or word.startswith(c)):
            return c
    return None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    pool = sorted(set(candidates))
    match = closest(word, pool)
    if match is not None:
        return f"did you mean '{match}'?"
    if pool and len(pool) <= 12:
        return "expected one of: " + ", ".join(pool)
    return None
