"""The default embedder: lexical feature hashing, offline and deterministic.

What it is: a bag of features hashed into ``dim`` signed buckets (the "hashing trick"), then
L2-normalised, so the dot product of two vectors is the cosine of their feature counts.
Features of a text, each weighted by ``1 + log(tf)`` of its word:

- word stems (lowercased; ``camelCase`` and ``snake_case`` split; English stopwords and
  filler such as "tool" or "please" dropped; light suffix stripping, so "files", "filing"
  and "file" meet, as do "calculate", "calculator" and "calculation");
- concepts: a small built-in vocabulary of words that mean the same to a tool user
  ("download", "fetch", "retrieve"; "folder", "directory"; "grep", "search", "find"),
  each word of a group also counting for the group;
- bigrams of neighbouring stems ("web page", "time zone");
- character 3- to 5-grams of each word, weighted low, so parts of words still match
  ("timezone" and "time zone", "jsonpath" and "json").

Buckets come from BLAKE2b, never Python's ``hash()``: vectors are identical in every process
and on every machine, so they can be cached on disk and stored with memories.

What it is not: semantic. It knows nothing of words outside its synonym groups that share
no letters ("automobile" and "car" score 0), nor of negation or word order beyond
neighbours. Any change to the features changes the vector space: bump :data:`VERSION`,
which is part of :attr:`HashingEmbedder.name`, so caches and stores keyed by it never mix
old and new vectors.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DEFAULT_DIM", "VERSION", "HashingEmbedder", "stem", "tokens"]

VERSION: Final = 1
DEFAULT_DIM: Final = 384

_UNIGRAM: Final = 1.0
_CONCEPT: Final = 1.2
_BIGRAM: Final = 0.5
#: the weight of all character n-grams of one word together (spread over them)
_CHARGRAMS: Final = 0.8
#: words that carry a little meaning in tool talk but less than most ("get", "text")
_WEAK: Final = 0.5

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W_]+")
_PERCENT = re.compile(r"(?<=\d)\s*%")
# "-" and "/" only between spaces: "2024-01-02" and "3/4" are dates and fractions as often
_OPERATORS = frozenset("+-*/^×÷")
_ARITHMETIC = re.compile(r"(?<=\d)(?:\s*(?:\*\*|[+*^×÷])\s*|\s[-/]\s)(?=[\d(])")

_STOPWORDS: Final = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves
    tool tools please want need needs like something thing things way help let lets using
    use used uses via given also into onto etc eg ie e g i.e able may might must shall
    s t d ll m re ve
    """.split()
) - {"now", "up", "down", "off", "out", "over", "before", "after", "between"}

_WEAK_WORDS: Final = frozenset(
    "get make do give show return returns text data value input output result results "
    "new current one two".split()
)

#: words that mean the same to someone looking for a tool; the first word names the group
_CONCEPTS: Final = (
    "fetch download retrieve grab scrape crawl pull",
    "web webpage website page url urls link site internet online http https html browse",
    "api endpoint rest request webhook post put patch graphql",
    "file files document doc docs filesystem disk",
    "read open load view cat",
    "write save store persist dump record overwrite",
    "list ls enumerate listing entries",
    "directory folder dir subfolder subdirectory workspace tree",
    "time clock now timestamp timezone tz hour hours minute",
    "date today day calendar tomorrow yesterday",
    "math calculate calculator compute arithmetic evaluate equation formula sum "
    "multiply multiplication divide division subtract plus minus sqrt root percent percentage",
    "search find grep locate lookup seek occurrence occurrences contain containing mention",
    "extract select pick pluck field fields attribute",
    "pattern regex regexp regular wildcard",
    "json jsonpath jq nested",
    "run execute exec launch invoke interpreter",
    "code script program snippet python py",
    "count tally many length",
    "word words character characters char chars letter letters line lines",
    "email mail inbox gmail outlook",
    "send deliver notify",
    "message chat slack",
    "meeting appointment event schedule booking",
    "weather forecast temperature rain climate",
    "stock stocks ticker share shares equity market",
    "price cost quote",
    "image picture photo png jpg jpeg thumbnail img",
    "database db sql table tables postgres mysql sqlite",
    "translate translation translator language",
    "delete remove erase rm unlink drop",
    "convert conversion transform",
    "currency money exchange dollar dollars euro euros usd eur",
    "git commit repository repo branch",
    "summarize summary summarise tldr condense",
    "compare diff difference",
    "map maps directions route address location geocode",
    "upload push",
    "random generate generator",
    "update modify edit change",
    "create make add insert",
)

_NGRAM_SIZES: Final = (3, 4, 5)


def tokens(text: str) -> list[str]:
    """The words of ``text``, lowercased, with ``camelCase`` and ``snake_case`` split;
    numbers are dropped, arithmetic between them ("2 + 3", "17%") becomes words."""
    if "%" in text:
        text = _PERCENT.sub(" percent ", text)
    if _OPERATORS.intersection(text):
        text = _ARITHMETIC.sub(" arithmetic ", text)
    lowered = text.lower()
    if lowered != text:
        lowered = _CAMEL.sub(" ", text).lower()
    return [w for w in _WORD.findall(lowered) if not w.isdigit()]


@functools.lru_cache(maxsize=16_384)
def stem(word: str) -> str:
    """A light suffix-stripping stem: plurals, ``-ing``, ``-ed``, a final ``e`` and a few
    derivational endings. Crude by design; it only has to send variants to one key."""
    w = word
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith(("sses", "xes", "ches", "shes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and _has_vowel(w[: -len(suffix)]):
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    for suffix, repl in (
        ("ization", "iz"),
        ("isation", "iz"),
        ("ation", "at"),
        ("ator", "at"),
        ("ion", ""),
        ("ement", ""),
        ("ment", ""),
        ("ness", ""),
        ("er", ""),
        ("ly", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) + len(repl) >= 4:
            w = w[: -len(suffix)] + repl
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def _has_vowel(s: str) -> bool:
    return any(c in "aeiouy" for c in s)


@functools.lru_cache(maxsize=1)
def _concept_of() -> dict[str, tuple[str, ...]]:
    """stem -> the concept features it also counts for."""
    found: dict[str, set[str]] = {}
    for group in _CONCEPTS:
        words = group.split()
        for word in words:
            found.setdefault(stem(word), set()).add("c:" + words[0])
    return {k: tuple(sorted(v)) for k, v in found.items()}


@functools.lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """The bucket and sign of a feature (cached: character n-grams recur across words)."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dim, (1.0 if value & 1 else -1.0)


class HashingEmbedder:
    """Lexical feature hashing into ``dim`` signed buckets (see the module docstring)."""

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        if dim < 16:
            raise ValueError(f"a hashing embedder needs at least 16 dimensions, not {dim}")
        self.dim = dim
        self.name = f"hashing-v{VERSION}-{dim}"

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        cols: list[int] = []
        values: list[float] = []
        sizes: list[int] = []
        for text in texts:
            before = len(cols)
            self._features(text, cols, values)
            sizes.append(len(cols) - before)
        rows = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        flat = np.bincount(
            rows * self.dim + np.asarray(cols, dtype=np.int64),
            weights=np.asarray(values, dtype=np.float64),
            minlength=len(sizes) * self.dim,
        )
        # float64 even when nothing was counted (bincount of nothing is integer)
        matrix = flat.astype(np.float64, copy=False).reshape(len(sizes), self.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix.astype(np.float32)

    def _features(self, text: str, cols: list[int], values: list[float]) -> None:
        words = [w for w in tokens(text) if w not in _STOPWORDS]
        for word, count in Counter(words).items():
            idx, vals = _word_features(word, self.dim)
            cols.extend(idx)
            if count == 1:
                values.extend(vals)
            else:
                tf = 1.0 + math.log(count)
                values.extend([v * tf for v in vals])
        stems = [stem(w) for w in words if len(w) > 1]
        for pair, count in Counter(zip(stems, stems[1:], strict=False)).items():
            i, v = _bucket(f"b:{pair[0]} {pair[1]}", self.dim)
            v *= _BIGRAM
            cols.append(i)
            values.append(v if count == 1 else v * (1.0 + math.log(count)))


# The caches are shared by every embedder of a process (keyed by dimension) and bounded:
# a few MB at most. Tool texts and memories reuse a small vocabulary, so they stay warm.
@functools.lru_cache(maxsize=16_384)
def _word_features(word: str, dim: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A word's buckets and signed weights: its stem, concepts and character n-grams."""
    scale = _WEAK if word in _WEAK_WORDS else 1.0
    root = stem(word)
    features = [("w:" + root, _UNIGRAM * scale)]
    features += [(c, _CONCEPT * scale) for c in _concept_of().get(root, ())]
    padded = f"<{word}>"
    grams = [
        padded[i : i + n]
        for n in _NGRAM_SIZES
        if len(padded) > n  # a word shorter than the n-gram is its unigram already
        for i in range(len(padded) - n + 1)
    ]
    if grams:
        weight = _CHARGRAMS * scale / math.sqrt(len(grams))
        features += [("g:" + g, weight) for g in grams]
    idx: list[int] = []
    vals: list[float] = []
    for feature, weight in features:
        bucket, sign = _bucket(feature, dim)
        idx.append(bucket)
        vals.append(sign * weight)
    return tuple(idx), tuple(vals)
