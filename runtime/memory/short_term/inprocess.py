"""The in-process short-term store: conversation windows in a dict, gone with the process.

One instance serves every run of a process that keeps its memory in one folder
(:meth:`InProcessShortTerm.from_settings` hands out the same one for the same ``root``), so
two runs of an agent in one long-lived process share a session's window as they would
through Redis, while programs (and tests) with their own memory folders stay apart.

Expiry is lazy: a window past its TTL is dropped when something reads it, and now and then
every expired window is swept, so namespaces that nobody reads again do not pile up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from runtime.memory.records import Turn

if TYPE_CHECKING:
    from runtime.memory.registry import StoreSettings

__all__ = ["InProcessShortTerm"]

#: how often (seconds) an append also drops every expired window
SWEEP_S = 60.0


@dataclass(slots=True)
class _Window:
    turns: list[Turn] = field(default_factory=list)
    #: on the store's clock; ``None``: never expires
    expires_at: float | None = None


class InProcessShortTerm:
    """:class:`~runtime.memory.protocols.ShortTermStore` in a dict of namespace → turns.

    ``clock`` is monotonic (tests pass a fake one). Every method does its work without
    awaiting anything, under a :class:`threading.Lock` held for microseconds: a plain dict
    is then safe for any number of anyio tasks and also for runs driven by event loops on
    other threads (an anyio lock would belong to one loop).
    """

    _shared: ClassVar[dict[str, InProcessShortTerm]] = {}
    _shared_lock = threading.Lock()

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + SWEEP_S

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> InProcessShortTerm:
        """The process's one store for ``settings.root``."""
        key = str(settings.root.absolute())
        with cls._shared_lock:
            store = cls._shared.get(key)
            if store is None:
                store = cls._shared[key] = cls()
            return store

    async def append(
        self, namespace: str, turns: Sequence[Turn], *, ttl_s: int | None = None
    ) -> None:
        """Add ``turns`` at the end; ``ttl_s`` restarts the window's expiry (``None`` leaves
        it as it is). Appending nothing changes nothing."""
        if ttl_s is not None and ttl_s < 1:
            raise ValueError(f"a window's ttl_s is at least 1 second, not {ttl_s}")
        if not turns:
            return
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._sweep(now)
            window = self._live(namespace, now)
            if window is None:
                window = self._windows[namespace] = _Window()
            window.turns.extend(turns)
            if ttl_s is not None:
                window.expires_at = now + ttl_s

    async def window(self, namespace: str) -> list[Turn]:
        """Every turn, oldest first (a copy); ``[]`` for an unknown or expired window."""
        with self._lock:
            window = self._live(namespace, self._clock())
            return list(window.turns) if window is not None else []

    async def compact(
        self, namespace: str, head: Sequence[str], replacement: Sequence[Turn]
    ) -> bool:
        """Replace the turns whose ids are ``head`` (the oldest, in order) by
        ``replacement``; ``False`` and no change when the window does not start with them.
        The window keeps its expiry."""
        with self._lock:
            window = self._live(namespace, self._clock())
            current = window.turns if window is not None else []
            if [turn.id for turn in current[: len(head)]] != list(head):
                return False
            turns = [*replacement, *current[len(head) :]]
            if window is None:
                if turns:
                    self._windows[namespace] = _Window(turns=turns)
            elif turns:
                window.turns = turns
            else:  # an empty window is no window, as in Redis
                del self._windows[namespace]
            return True

    async def clear(self, namespace: str) -> int:
        """Forget the window; how many turns it held (``0`` once expired)."""
        with self._lock:
            window = self._live(namespace, self._clock())
            if window is None:
                return 0
            del self._windows[namespace]
            return len(window.turns)

    async def namespaces(self) -> list[str]:
        """The namespaces holding an unexpired window, sorted."""
        with self._lock:
            self._sweep(self._clock())
            return sorted(self._windows)

    async def close(self) -> None:
        """Nothing to release; the windows stay, for the other runs of this process."""

    def _live(self, namespace: str, now: float) -> _Window | None:
        """The window of ``namespace``, or ``None`` (dropping it) once it has expired."""
        window = self._windows.get(namespace)
        if window is not None and window.expires_at is not None and window.expires_at <= now:
            del self._windows[namespace]
            return None
        return window

    def _sweep(self, now: float) -> None:
        expired = [
            key
            for key, window in self._windows.items()
            if window.expires_at is not None and window.expires_at <= now
        ]
        for key in expired:
            del self._windows[key]
        self._next_sweep = now + SWEEP_S
