"""Short-term memory: the conversation window of a namespace, behind
:class:`~runtime.memory.protocols.ShortTermStore`.

- :class:`runtime.memory.short_term.sqlite.SqliteShortTerm` (``backend: sqlite``, the
  default): a SQLite file under the memory folder, so a session's window outlives the
  process; no server needed.
- :class:`InProcessShortTerm` (``backend: inprocess``): a dict in this process, shared by
  all its runs that use one memory folder; gone with the process.
- :class:`runtime.memory.short_term.redis.RedisShortTerm` (``backend: redis``): one Redis
  list per namespace, shared by every process and machine that uses the server. It is not
  re-exported here: importing this package must not import ``redis``.

What a window may hold (how many turns, how many tokens) and how it is shrunk (older turns
folded into a summary, or dropped) is :mod:`runtime.memory.window`, the same for all three.
"""

from runtime.memory.short_term.inprocess import InProcessShortTerm as InProcessShortTerm

__all__ = ["InProcessShortTerm"]
