"""The Redis short-term store: one Redis list per namespace, shared by every process.

The window of namespace ``ns`` is the list at ``kiln:memory:short:<ns>``, one JSON turn
(:meth:`~runtime.memory.records.Turn.as_json`) per element, oldest first; its TTL is the
key's, restarted by each append that names one. What has to be atomic is:

- append: ``RPUSH`` and ``EXPIRE`` in one ``MULTI``;
- compact: a Lua script checks that the list still starts with the expected turn ids
  (decoding each head element with ``cjson``), then ``LTRIM``\\s them off and pushes the
  replacement, keeping the key's TTL; turns appended meanwhile are untouched;
- clear: a Lua script, ``LLEN`` then ``DEL``, so a key holding something else is refused
  before anything is deleted.

Errors are translated here and nowhere else: a server that cannot be reached is
:class:`~runtime.memory.records.StoreUnavailable` (retryable, naming the URL without its
password); a key holding something that is not a window is
:class:`~runtime.memory.records.MemoryStoreError` naming the key. redis-py is told not to
retry on its own: the caller's retry logic reads ``retryable`` and decides.

Importing this module imports ``redis``; the registry imports it only for ``backend: redis``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import anyio.lowlevel
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runtime.memory.records import MemoryStoreError, StoreUnavailable, Turn
from runtime.redact import redact

if TYPE_CHECKING:
    from runtime.memory.registry import StoreSettings

__all__ = ["DEFAULT_URL", "KEY_PREFIX", "RedisShortTerm"]

DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"
KEY_PREFIX: Final = "kiln:memory:short:"

# KEYS[1]: the window. ARGV[1]: n, the number of head ids; ARGV[2 .. n+1]: the ids, oldest
# first; ARGV[n+2 ..]: the replacement turns as JSON, oldest first.
# Returns 1 (done), 0 (the window does not start with those ids), -1 (a head element is not
# a turn). The key's TTL is put back: trimming a list to nothing deletes the key, and the
# replacement pushed after that would otherwise live for ever.
_COMPACT: Final = """
local n = tonumber(ARGV[1])
if n > 0 then
  local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
  if #head < n then return 0 end
  for i = 1, n do
    local ok, turn = pcall(cjson.decode, head[i])
    if not ok or type(turn) ~= 'table' then return -1 end
    if turn['id'] ~= ARGV[i + 1] then return 0 end
  end
end
local ttl = redis.call('PTTL', KEYS[1])
if n > 0 then redis.call('LTRIM', KEYS[1], n, -1) end
for i = #ARGV, n + 2, -1 do redis.call('LPUSH', KEYS[1], ARGV[i]) end
if ttl > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""

# LLEN fails on a key of another type before DEL runs: such a key is reported, not deleted.
_CLEAR: Final = """
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"""


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _encode(turn: Turn) -> bytes:
    # surrogatepass: a lone surrogate in a model's output must not make the turn unstorable
    text = json.dumps(turn.as_json(), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


class RedisShortTerm:
    """:class:`~runtime.memory.protocols.ShortTermStore` on a Redis server at ``url``.

    The client (a connection pool) is opened on first use and belongs to the event loop that
    opened it, as redis-py's connections do. Used from another loop, the store opens a new
    one; await :meth:`close` in the first loop before that, or its connections are left
    for the garbage collector (with a ``ResourceWarning``). ``password`` is used when
    ``url`` carries none.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = KEY_PREFIX,
        password: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._password = password
        # redis-py's commands are typed as "awaitable or value" (one signature for its
        # sync and async clients), which strict mypy cannot await: held as Any.
        self._client: Any = None
        self._compact: Any = None
        self._clear: Any = None
        self._loop: object = None

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> RedisShortTerm:
        """A store on ``settings.url`` (default :data:`DEFAULT_URL`)."""
        return cls(settings.url or DEFAULT_URL, password=settings.password)

    def key(self, namespace: str) -> str:
        """The Redis key of ``namespace``'s window."""
        return self.prefix + namespace

    async def append(
        self, namespace: str, turns: Sequence[Turn], *, ttl_s: int | None = None
    ) -> None:
        """``RPUSH`` ``turns`` and, with ``ttl_s``, ``EXPIRE`` the key, in one ``MULTI``
        (``None`` leaves the key's TTL as it is). Appending nothing changes nothing."""
        if ttl_s is not None and ttl_s < 1:
            raise ValueError(f"a window's ttl_s is at least 1 second, not {ttl_s}")
        if not turns:
            return
        key = self.key(namespace)
        with self._translated(key):
            async with self._connected().pipeline(transaction=True) as pipe:
                pipe.rpush(key, *(_encode(turn) for turn in turns))
                if ttl_s is not None:
                    pipe.expire(key, ttl_s)
                await pipe.execute()

    async def window(self, namespace: str) -> list[Turn]:
        """``LRANGE 0 -1``, each element decoded; ``[]`` when the key is gone."""
        key = self.key(namespace)
        with self._translated(key):
            raw = await self._connected().lrange(key, 0, -1)
        try:
            return [
                Turn.from_json(json.loads(item.decode("utf-8", "surrogatepass"))) for item in raw
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise MemoryStoreError(
                f"the Redis key {key!r} at {redact(self.url)} holds something that is not "
                f"a conversation window ({type(exc).__name__}: {exc})"
            ) from exc

    async def compact(
        self, namespace: str, head: Sequence[str], replacement: Sequence[Turn]
    ) -> bool:
        """Replace the turns whose ids are ``head`` by ``replacement`` in one Lua script;
        ``False`` and no change when the list does not start with them. The TTL stays."""
        key = self.key(namespace)
        args = [len(head), *head, *(_encode(turn) for turn in replacement)]
        with self._translated(key):
            self._connected()  # opens the client and registers the scripts if need be
            done = int(await self._compact(keys=[key], args=args))
        if done < 0:
            raise MemoryStoreError(
                f"the Redis key {key!r} at {redact(self.url)} holds something that is not "
                "a conversation window (an element is not a JSON turn)"
            )
        return done == 1

    async def clear(self, namespace: str) -> int:
        """``LLEN`` then ``DEL`` in one script: how many turns the window held."""
        key = self.key(namespace)
        with self._translated(key):
            self._connected()
            return int(await self._clear(keys=[key]))

    async def namespaces(self) -> list[str]:
        """The namespaces with a window now, by ``SCAN MATCH <prefix>*`` (never ``KEYS``:
        it would block the server while it walks every key)."""
        pattern = _glob_escape(self.prefix) + "*"
        found: set[str] = set()
        with self._translated(None):
            async for raw in self._connected().scan_iter(match=pattern, count=1000):
                found.add(raw.decode("utf-8", "surrogateescape")[len(self.prefix) :])
        return sorted(found)  # SCAN may return a key twice, in no order

    async def close(self) -> None:
        """Close the connection pool; the next call opens a new one."""
        client, self._client, self._loop = self._client, None, None
        self._compact = self._clear = None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing a broken connection must not fail
                pass

    def _connected(self) -> Any:
        """The client for the running event loop, opened on first use."""
        loop = anyio.lowlevel.current_token()
        if self._client is None or self._loop != loop:
            try:
                self._client = redis.asyncio.Redis.from_url(
                    self.url,
                    password=self._password,
                    socket_timeout=self.timeout_s,
                    socket_connect_timeout=self.timeout_s,
                    retry=Retry(NoBackoff(), 0),
                    health_check_interval=0,
                )
            except ValueError as exc:  # not a Redis URL (one read from ${env:...})
                raise StoreUnavailable(
                    f"the short-term store's url {redact(self.url)!r} is not a Redis URL: {exc}",
                    retryable=False,
                ) from None
            self._compact = self._client.register_script(_COMPACT)
            self._clear = self._client.register_script(_CLEAR)
            self._loop = loop
        return self._client

    @contextmanager
    def _translated(self, key: str | None) -> Iterator[None]:
        """redis-py's exceptions as memory store errors, here and nowhere else."""
        where = redact(self.url)
        try:
            yield
        except AuthenticationError as exc:  # a wrong password: trying again will not help
            raise StoreUnavailable(
                f"short-term memory at {where} refused the credentials: {exc}", retryable=False
            ) from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(
                f"short-term memory at {where} is not answering: {str(exc) or type(exc).__name__}"
            ) from exc
        except ResponseError as exc:
            if key is not None and "WRONGTYPE" in str(exc):
                raise MemoryStoreError(
                    f"the Redis key {key!r} at {where} holds something that is not a "
                    "conversation window (not a list)"
                ) from exc
            raise MemoryStoreError(f"short-term memory at {where}: {exc}") from exc
        except RedisError as exc:
            raise MemoryStoreError(f"short-term memory at {where}: {exc}") from exc
