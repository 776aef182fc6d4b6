"""Any embedding model litellm reaches: ``litellm/<provider>/<model>``.

litellm is imported on the first call (it costs seconds). Its exceptions become
:class:`~runtime.embed.EmbedderError` here, with ``retryable`` set for timeouts, rate limits
and server errors. Vectors are L2-normalised on arrival (not every provider does it).

``params`` go to ``litellm.embedding`` as they are (``api_base``, ``api_key``,
``dimensions``, ``timeout``...). The dimension is learnt from the first answer, or from
``params["dimensions"]``; reading :attr:`LiteLLMEmbedder.dim` before any call embeds a
probe text to learn it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from runtime.embed import EmbedderError, EmbedderUnavailable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["LiteLLMEmbedder"]

_INSTALL: Final = "install it with: pip install 'agentkiln[hosted]'"
#: texts per request: providers cap a request's inputs (OpenAI at 2048)
_BATCH: Final = 256
_DETAIL: Final = 300
_RETRYABLE: Final = (
    "Timeout",
    "RateLimitError",
    "APIConnectionError",
    "InternalServerError",
    "ServiceUnavailableError",
    "BadGatewayError",
)
_RETRY_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class LiteLLMEmbedder:
    """Embeds through ``litellm.embedding(model=..., input=[...])``."""

    def __init__(self, model: str, params: Mapping[str, Any] | None = None) -> None:
        if not model:
            raise ValueError("litellm/<model>: name the embedding model")
        self.model = model
        self.name = f"litellm/{model}"
        self._params = dict(params or {})
        dims = self._params.get("dimensions")
        self._dim: int | None = int(dims) if isinstance(dims, int) else None

    def __repr__(self) -> str:
        return f"LiteLLMEmbedder({self.model!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        items = list(texts)
        if not items:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        # providers reject empty strings: embed the others, leave blank texts as zero rows
        todo = [i for i, t in enumerate(items) if t.strip()]
        rows: list[list[float]] = []
        for start in range(0, len(todo), _BATCH):
            rows += self._call([items[i] for i in todo[start : start + _BATCH]])
        if rows:
            dim = len(rows[0])
            if self._dim is not None and dim != self._dim or any(len(r) != dim for r in rows):
                raise EmbedderError(
                    f"{self.name} returned vectors of {sorted({len(r) for r in rows})} "
                    f"dimensions, expected {self._dim or dim}"
                )
            self._dim = dim
        out = np.zeros((len(items), self._dim or 0), dtype=np.float32)
        if rows:
            got = np.asarray(rows, dtype=np.float32)
            norms = np.linalg.norm(got, axis=1, keepdims=True)
            np.divide(got, norms, out=got, where=norms > 0)
            out[todo] = got
        return out

    def _call(self, batch: list[str]) -> list[list[float]]:
        litellm = _litellm(self.name)
        try:
            response = litellm.embedding(model=self.model, input=batch, **self._params)
        except Exception as exc:  # noqa: BLE001 - litellm raises many types; named below
            kind = type(exc).__name__
            detail = " ".join(str(exc).split())
            for prefix in (f"litellm.{kind}: ", f"{kind}: "):  # litellm repeats the class name
                detail = detail.removeprefix(prefix)
            detail = detail[:_DETAIL]
            status = getattr(exc, "status_code", None)
            retryable = kind in _RETRYABLE or status in _RETRY_STATUS
            raise EmbedderError(f"{self.name}: {kind}: {detail}", retryable=retryable) from None
        data = sorted(_items(response), key=lambda d: int(_get(d, "index", 0)))
        if len(data) != len(batch):
            raise EmbedderError(f"{self.name} returned {len(data)} vectors for {len(batch)} texts")
        return [[float(x) for x in _get(d, "embedding", ())] for d in data]


def _litellm(name: str) -> Any:
    # as runtime/llm/hosted.py: the bundled price map (no fetch from GitHub at import) and
    # no "Give Feedback / Get Help" banners on stdout
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        raise EmbedderUnavailable(f"{name} needs litellm: {_INSTALL}") from None
    litellm.suppress_debug_info = True
    return litellm


def _items(response: Any) -> list[Any]:
    data = _get(response, "data", None)
    if not isinstance(data, list):
        raise EmbedderError(f"unexpected embedding response: {type(response).__name__}")
    return data


def _get(obj: Any, key: str, default: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)
