"""Progress of slow set-up steps (joining a model file, loading a model, importing litellm).

Library code says what it is doing through :func:`say` and :func:`bytes_joined`; nothing is
shown until a front end installs a reporter (``kiln`` writes to stderr). Reporters run in
whichever thread does the work, so they must be cheap and thread-safe.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Reporter", "StderrReporter", "bytes_joined", "install", "say"]

#: ``(message, fraction)``: fraction in [0, 1] for a step that knows how far it is, else None.
Reporter = Callable[[str, float | None], None]

_reporter: Reporter | None = None


def install(reporter: Reporter | None) -> Reporter | None:
    """Make ``reporter`` receive progress; returns the one it replaces."""
    global _reporter
    previous, _reporter = _reporter, reporter
    return previous


def say(message: str, fraction: float | None = None) -> None:
    reporter = _reporter
    if reporter is not None:
        reporter(message, fraction)


def bytes_joined(name: str) -> Callable[[int, int], None] | None:
    """A byte-count callback for joining ``name``'s model file, or None when nobody listens."""
    if _reporter is None:
        return None

    def report(done: int, total: int) -> None:
        mib, total_mib = done >> 20, total >> 20
        say(f"joining local model {name}: {mib}/{total_mib} MiB", done / total if total else None)

    return report


class StderrReporter:
    """One updating line on a terminal; on anything else, a line at most every 2 seconds
    (and each step's first and last lines), so logs stay short."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = 2.0) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._interval_s = interval_s
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, message: str, fraction: float | None) -> None:
        finished = fraction is None or fraction >= 1.0
        starting = fraction == 0.0  # a step's first line is always shown
        with self._lock:
            now = time.monotonic()
            if self._tty:
                percent = f" {fraction:4.0%}" if fraction is not None else ""
                end = "\n" if finished else ""
                self._stream.write(f"\r\x1b[2K{message}{percent}{end}")
            elif finished or starting or now - self._last >= self._interval_s:
                self._stream.write(message + "\n")
                self._last = now
            self._stream.flush()
