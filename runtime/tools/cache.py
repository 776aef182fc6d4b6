"""Tool-result caching: ``cache: {ttl_s: N}`` on a tool spec.

A result is kept under a key made of the tool's name, its spec ``version`` and its input in
canonical JSON (sorted keys, no whitespace, UTF-8), hashed with SHA-256: two calls with the
same input in another key order or spacing share a result, and bumping ``version`` drops
every result of the old one. The box caches only successful calls, and never those of a
tool with ``side_effects: true``.

Two stores behind one protocol, both holding JSON text:

- :class:`MemoryCache`: in-process, a bounded LRU whose entries expire on a monotonic clock;
- :class:`RedisCache`: shared between processes and machines, entries expired by Redis
  itself (``SET ... EX``). When Redis cannot be reached the cache degrades to no cache, says
  so once, and tries again now and then: a cache outage never fails a tool call.

``cache_from_url`` picks one from a URL: ``memory`` (or nothing) or ``redis://...``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from runtime.redact import redact

__all__ = [
    "MemoryCache",
    "RedisCache",
    "ResultCache",
    "cache_from_url",
    "cache_key",
    "canonical_json",
]

#: Bumped when the key recipe changes, so old entries in a shared store are never misread.
_KEY_FORMAT = "kiln-tool-result/1"


class ResultCache(Protocol):
    """Where tool results are kept: JSON text by key, each entry living ``ttl_s`` seconds.

    Implementations must not raise for an unreachable store: a miss is always an answer.
    """

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float) -> None: ...


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no whitespace, non-ASCII kept as is."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
    )


def cache_key(tool: str, version: str, arguments: Mapping[str, Any]) -> str:
    """The key of one call: SHA-256 (hex) over the tool, its version and canonical input."""
    text = "\x00".join((_KEY_FORMAT, tool, version, canonical_json(arguments)))
    # surrogatepass: a lone surrogate (valid in JSON text) still gets a stable key
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class MemoryCache:
    """An in-process cache: at most ``max_entries`` results, least recently used out first;
    an entry is gone ``ttl_s`` seconds after it was set (``clock`` is monotonic)."""

    def __init__(
        self, max_entries: int = 1024, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("a memory cache holds at least one entry")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _default_warn(message: str) -> None:
    print(f"kiln: warning: {message}", file=sys.stderr, flush=True)


class RedisCache:
    """Tool results in Redis under ``prefix + key``, expired by Redis (``SET ... EX``).

    Errors talking to Redis are never raised: the call is a miss (or the result is not
    kept), ``warn`` is told once per outage, and Redis is left alone for ``retry_s``
    seconds before the next try. ``redis`` is imported on first use.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "kiln:tool:",
        *,
        timeout_s: float = 2.0,
        retry_s: float = 30.0,
        warn: Callable[[str], None] = _default_warn,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._warn = warn
        self._clock = clock
        self._client: Any = None
        self._loop: object = None
        #: while Redis is down: when to try it again
        self._down_until: float | None = None

    @property
    def available(self) -> bool:
        """False while an outage is being waited out."""
        return self._down_until is None

    async def get(self, key: str) -> str | None:
        try:
            client = self._connected()
            if client is None:
                return None
            value = await client.get(self.prefix + key)
        except Exception as exc:  # noqa: BLE001 - any failure of the store is a miss
            self._failed(exc)
            return None
        self._recovered()
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        try:
            client = self._connected()
            if client is None:
                return
            await client.set(self.prefix + key, value.encode("utf-8"), ex=max(1, round(ttl_s)))
        except Exception as exc:  # noqa: BLE001 - a result not kept is no failure
            self._failed(exc)
            return
        self._recovered()

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing a broken connection must not fail
                pass

    def _connected(self) -> Any:
        """The client for the running event loop, or ``None`` while Redis is down."""
        if self._down_until is not None and self._clock() < self._down_until:
            return None
        import asyncio

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # redis.asyncio connections belong to the loop that opened them
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                health_check_interval=0,
            )
            self._loop = loop
        return self._client

    def _failed(self, exc: BaseException) -> None:
        first = self._down_until is None
        self._down_until = self._clock() + self.retry_s
        if first:
            why = str(exc) or type(exc).__name__
            self._warn(
                f"tool cache {redact(self.url)} is not answering ({why}): tool results are "
                f"not cached until it is back (next try in {self.retry_s:g} s)"
            )

    def _recovered(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            self._warn(f"tool cache {redact(self.url)} is back")


REDIS_SCHEMES = ("redis", "rediss", "unix")


def cache_from_url(url: str | None, **options: Any) -> MemoryCache | RedisCache:
    """The cache a URL names: ``None``, ``""`` or ``memory`` → :class:`MemoryCache`;
    ``redis://``, ``rediss://`` or ``unix://`` → :class:`RedisCache` (``options`` go to it).
    Raises :class:`ValueError` for anything else."""
    if url is None or url.strip() in ("", "memory"):
        return MemoryCache()
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        import importlib.util

        if importlib.util.find_spec("redis") is None:
            raise ValueError(
                f"the tool cache {redact(url)} needs the redis package: "
                "pip install 'agentkiln[memory]'"
            )
        return RedisCache(url, **options)
    raise ValueError(
        f"unknown tool cache {redact(url)!r}: use 'memory' or a Redis URL such as "
        "redis://localhost:6379/0"
    )
