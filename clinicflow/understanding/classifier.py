"""The trained intent classifier: calibrated probabilities over the closed intent vocabulary.

A multinomial logistic regression (scikit-learn) over three feature blocks of a message:

    [ sentence embedding (the engine's embedder, 512-d) | character 2–5-grams | words ]

Character n-grams (TF-IDF over normalised text) absorb typos and missing accents; the word
block marks every word under a negation (``NEG_marcar`` in "não quero marcar agora"); the
embedding carries meaning across phrasings. It is trained on the corpus shipped with the
package (:mod:`clinicflow.understanding.corpus`) plus the catalog's own intent examples,
keywords, FAQ questions and red-flag phrases, and a second, smaller regression over the same
features tells the emergency category of an urgent message.

Training takes a few seconds, so the weights are cached in ``<data>/models/`` under a digest
of everything they were trained on (corpus, catalog texts, embedder, feature version) and
retrained only when that changes, like the embedding index. The cache is plain numpy arrays
(``.npz``, no pickle). Prediction is a sparse dot product: well under a millisecond once the
message is embedded. Hyper-parameters were chosen on ``tests/data/understanding_tune.yaml``
with ``bench/understanding.py --sweep``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clinicflow.errors import StorageError
from clinicflow.model import Catalog
from clinicflow.text import normalize
from clinicflow.understanding.context import mark_negations
from clinicflow.understanding.corpus import Corpus, Example, corpus_digest, load_corpus

if TYPE_CHECKING:
    import numpy as np
    from scipy import sparse

    from clinicflow.embeddings import Embedder

FEATURES_VERSION = "4"  # bump when features or training change: every cached model retrains
C_INTENT = 16.0  # inverse regularisation (tuning set: 8–32 within half a point)
C_CATEGORY = 8.0
CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
_FOLDER = "models"


def catalog_examples(catalog: Catalog) -> list[Example]:
    """The catalog's own labelled texts: intent examples and keywords, FAQ questions with an
    intent, and red-flag phrases (urgent)."""
    out: list[Example] = []
    for intent in catalog.clinic.intents:
        out += [Example(text, intent.name) for text in (*intent.examples, *intent.keywords)]
    faqs = [*catalog.clinic.faq, *(faq for script in catalog.scripts for faq in script.faq)]
    for faq in faqs:
        if faq.intent:
            out += [Example(question, faq.intent) for question in faq.questions]
    flags = [*catalog.clinic.red_flags, *(f for s in catalog.scripts for f in s.red_flags)]
    for flag in flags:
        out += [Example(phrase, "urgent", flag.category) for phrase in flag.phrases]
    return out


_SPACES = re.compile(r"\s\s+")


def char_grams(text: str) -> list[str]:
    """Character 2–5-grams of each normalised word padded with spaces (scikit-learn's
    ``char_wb`` analyzer, written out so prediction needs no scikit-learn import)."""
    low, high = CHAR_NGRAMS
    grams: list[str] = []
    for word in _SPACES.sub(" ", normalize(text)).split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            grams += [padded[i : i + n] for i in range(max(1, size - n + 1))]
            if size <= n:  # a short word counts once
                break
    return grams


def word_grams(text: str) -> list[str]:
    """Words (negated ones marked ``NEG_``) and word pairs of the normalised text."""
    tokens = mark_negations(normalize(text)).split()
    low, high = WORD_NGRAMS
    grams = list(tokens) if low == 1 else []
    for n in range(max(2, low), high + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams


_ANALYZERS = {"char": char_grams, "word": word_grams}


@dataclass(frozen=True)
class _Vocabulary:
    """A fixed TF-IDF vocabulary: terms (their column order) and inverse document frequencies."""

    terms: tuple[str, ...]
    idf: np.ndarray


def _fit_vocabulary(kind: str, texts: Sequence[str], min_df: int) -> _Vocabulary:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    fitted = TfidfVectorizer(
        analyzer=_ANALYZERS[kind], min_df=min_df, sublinear_tf=True, dtype=np.float32
    ).fit(texts)
    terms = sorted(fitted.vocabulary_, key=fitted.vocabulary_.__getitem__)
    return _Vocabulary(tuple(terms), fitted.idf_.astype("float32"))


class _Block:
    """Sublinear TF-IDF rows over a fixed vocabulary, l2-normalised (scikit-learn's
    ``TfidfVectorizer(sublinear_tf=True)`` numbers, computed here without it)."""

    def __init__(self, kind: str, vocabulary: _Vocabulary) -> None:
        self.analyze = _ANALYZERS[kind]
        self.index = {term: i for i, term in enumerate(vocabulary.terms)}
        self.vocabulary = vocabulary

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One message's non-zero columns and values."""
        import numpy as np

        counts: dict[int, int] = {}
        for term in self.analyze(text):
            column = self.index.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.vocabulary.idf[columns]
        return columns, values / np.float32(np.linalg.norm(values))

    def rows(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The rows of many messages (training)."""
        import numpy as np
        from scipy import sparse

        indptr = [0]
        indices: list[np.ndarray] = []
        data: list[np.ndarray] = []
        for text in texts:
            columns, values = self.row(text)
            indices.append(columns)
            data.append(values)
            indptr.append(indptr[-1] + len(columns))
        shape = (len(texts), len(self.vocabulary.terms))
        return sparse.csr_matrix(
            (np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=shape
        )


class IntentModel:
    """Calibrated intent probabilities and the emergency category of urgent messages.

    Build with :meth:`open` (cached) or :meth:`train`; thread-safe once built (read-only).
    """

    def __init__(
        self,
        classes: Sequence[str],
        weights: np.ndarray,
        bias: np.ndarray,
        categories: Sequence[str],
        category_weights: np.ndarray,
        category_bias: np.ndarray,
        char_vocabulary: _Vocabulary,
        word_vocabulary: _Vocabulary,
        digest: str,
    ) -> None:
        self.classes = tuple(classes)
        self.weights = weights  # (n_classes, n_features), float32
        self.bias = bias
        self.categories = tuple(categories)
        self.category_weights = category_weights
        self.category_bias = category_bias
        self.char = _Block("char", char_vocabulary)
        self.word = _Block("word", word_vocabulary)
        self.digest = digest
        self._urgent = self.classes.index("urgent") if "urgent" in self.classes else -1

    # -- prediction -------------------------------------------------------------------------

    def features(self, texts: Sequence[str], vectors: np.ndarray) -> sparse.csr_matrix:
        """Feature rows of ``texts`` given their embeddings (``len(texts) × dim``)."""
        from scipy import sparse

        return sparse.hstack(
            [sparse.csr_matrix(vectors), self.char.rows(texts), self.word.rows(texts)],
            format="csr",
        )

    def _scores(self, text: str, vector: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``weights @ features(text)`` without building a sparse matrix."""
        dim = vector.shape[0]
        char_columns, char_values = self.char.row(text)
        word_columns, word_values = self.word.row(text)
        offset = dim + len(self.char.vocabulary.terms)
        return (
            weights[:, :dim] @ vector
            + weights[:, dim + char_columns] @ char_values
            + weights[:, offset + word_columns] @ word_values
        )

    def probabilities(self, text: str, vector: np.ndarray) -> dict[str, float]:
        """``{intent: probability}`` for one message (sums to 1)."""
        scores = self._scores(text, vector, self.weights) + self.bias
        return dict(zip(self.classes, _softmax(scores[None, :])[0].tolist(), strict=True))

    def urgent_probability(self, text: str, vector: np.ndarray) -> float:
        """The probability of ``urgent`` alone (0 when the model has no urgent class)."""
        if self._urgent < 0:
            return 0.0
        return self.probabilities(text, vector)["urgent"]

    def category(self, text: str, vector: np.ndarray) -> tuple[str | None, float]:
        """The most likely emergency category of a message and its probability."""
        if not self.categories:
            return None, 0.0
        scores = self._scores(text, vector, self.category_weights) + self.category_bias
        probs = _softmax(scores[None, :])[0]
        best = int(probs.argmax())
        return self.categories[best], float(probs[best])

    # -- training and the cache -------------------------------------------------------------

    @staticmethod
    def digest_of(corpus_digest: str, catalog: Catalog, embedder: Embedder) -> str:
        """What a model is keyed by: the corpus, the catalog's labelled texts, the embedder."""
        own = [(e.text, e.intent, e.category) for e in catalog_examples(catalog)]
        payload = json.dumps([FEATURES_VERSION, corpus_digest, embedder.name, own])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def ready(cls, catalog: Catalog, data_dir: str | Path, embedder: Embedder) -> bool:
        """Whether :meth:`open` finds the model built (in this process or in ``data_dir``),
        so it will not train."""
        digest = cls.digest_of(corpus_digest(), catalog, embedder)
        return digest in _LOADED or (Path(data_dir) / _FOLDER / f"intents-{digest}.npz").exists()

    @classmethod
    def open(
        cls,
        catalog: Catalog,
        data_dir: str | Path,
        embedder: Embedder,
        *,
        progress: bool = False,
    ) -> IntentModel:
        """The cached model for the shipped corpus, this catalog and embedder, trained (on
        the corpus and the catalog's own examples) if missing.

        A model already built in this process (same digest) is reused: models are read-only,
        so engines over the same catalog share one.

        Raises:
            StorageError: the models folder cannot be read or written.
        """
        digest = cls.digest_of(corpus_digest(), catalog, embedder)
        folder = Path(data_dir) / _FOLDER
        path = folder / f"intents-{digest}.npz"
        try:
            model = _LOADED.get(digest)
            if model is None and path.exists():
                model = cls._load(path, digest)
            if model is None:
                corpus = load_corpus()
                own = catalog_examples(catalog)
                with _progress(progress, len(corpus.examples) + len(own)):
                    vectors = corpus_vectors(corpus, embedder, Path(data_dir))
                    own_vectors = _embed(embedder, [e.text for e in own])
                    model = cls.train(
                        [*corpus.examples, *own],
                        embedder,
                        digest,
                        vectors=_stack(vectors, own_vectors),
                    )
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                model._save(path)
                for old in folder.glob("intents-*.npz"):
                    if old != path:
                        old.unlink(missing_ok=True)
        except (OSError, ValueError, KeyError) as exc:
            raise StorageError(f"cannot open the intent model in {folder}: {exc}") from exc
        _LOADED[digest] = model
        return model

    @classmethod
    def train(
        cls,
        examples: Sequence[Example],
        embedder: Embedder,
        digest: str,
        *,
        vectors: np.ndarray | None = None,
    ) -> IntentModel:
        """Fit the intent and category regressions on ``examples`` (their embeddings are
        computed unless ``vectors`` gives them, row for row)."""
        from collections import Counter

        import numpy as np
        from sklearn.linear_model import LogisticRegression

        texts = [e.text for e in examples]
        vectors = _embed(embedder, texts) if vectors is None else vectors
        char = _fit_vocabulary("char", texts, min_df=2)
        word = _fit_vocabulary("word", texts, min_df=1)
        model = cls(
            (), np.zeros((0, 0)), np.zeros(0), (), np.zeros((0, 0)), np.zeros(0), char, word, digest
        )
        rows = model.features(texts, vectors)
        labels = [e.intent for e in examples]
        # Balanced classes: the corpus has many more emergencies and statements than, say,
        # goodbyes, and an unweighted model leans to the big classes on unfamiliar text.
        counts = Counter(labels)
        weights = np.array([len(labels) / (len(counts) * counts[label]) for label in labels])
        intents = LogisticRegression(C=C_INTENT, max_iter=3000).fit(
            rows, labels, sample_weight=weights
        )
        urgent = [i for i, e in enumerate(examples) if e.intent == "urgent" and e.category]
        categories = LogisticRegression(C=C_CATEGORY, max_iter=3000).fit(
            rows[urgent], [examples[i].category for i in urgent]
        )
        return cls(
            [str(c) for c in intents.classes_],
            intents.coef_.astype(np.float32),
            intents.intercept_.astype(np.float32),
            [str(c) for c in categories.classes_],
            categories.coef_.astype(np.float32),
            categories.intercept_.astype(np.float32),
            char,
            word,
            digest,
        )

    def _save(self, path: Path) -> None:
        import numpy as np

        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        os.close(handle)
        with open(temp, "wb") as out:
            np.savez_compressed(
                out,
                classes=np.array(self.classes),
                weights=self.weights,
                bias=self.bias,
                categories=np.array(self.categories),
                category_weights=self.category_weights,
                category_bias=self.category_bias,
                char_terms=np.array(self.char.vocabulary.terms),
                char_idf=self.char.vocabulary.idf,
                word_terms=np.array(self.word.vocabulary.terms),
                word_idf=self.word.vocabulary.idf,
            )
        os.replace(temp, path)  # atomic: another process never reads half a file

    @classmethod
    def _load(cls, path: Path, digest: str) -> IntentModel:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return cls(
                [str(c) for c in data["classes"]],
                data["weights"],
                data["bias"],
                [str(c) for c in data["categories"]],
                data["category_weights"],
                data["category_bias"],
                _Vocabulary(tuple(str(t) for t in data["char_terms"]), data["char_idf"]),
                _Vocabulary(tuple(str(t) for t in data["word_terms"]), data["word_idf"]),
                digest,
            )


# Models built or read in this process, by digest (read-only, so safe to share).
_LOADED: dict[str, IntentModel] = {}


@contextlib.contextmanager
def _progress(show: bool, rows: int) -> Iterator[None]:
    """A spinner while the model trains (the first start, or after the catalog changed)."""
    if not show:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(f"Treinando o modelo de intenções ({rows} exemplos)…"):
        yield


# Corpus embeddings computed or read in this process, by (corpus digest, embedder name).
_CORPUS_VECTORS: dict[tuple[str, str], np.ndarray] = {}
_CORPUS_TABLE = "corpus"


def corpus_vectors(corpus: Corpus, embedder: Embedder, data_dir: Path) -> np.ndarray:
    """The embeddings of the corpus's texts, row for row: computed once and kept in LanceDB
    (table ``corpus`` of ``<data>/index.lance``), so a catalog change retrains without
    embedding the corpus again."""
    import numpy as np
    import pyarrow as pa

    from clinicflow.native import lancedb

    key = (corpus.digest, embedder.name)
    if key in _CORPUS_VECTORS:
        return _CORPUS_VECTORS[key]
    folder = data_dir / "index.lance"
    stamp = {"corpus": corpus.digest, "embedder": embedder.name, "rows": len(corpus.examples)}
    meta = folder / "corpus.json"
    db = lancedb().connect(str(folder))
    vectors: np.ndarray | None = None
    stored = meta.exists() and json.loads(meta.read_text()) == stamp
    if stored and _CORPUS_TABLE in db.list_tables().tables:
        column = db.open_table(_CORPUS_TABLE).to_arrow().column("vector")
        flat = column.combine_chunks().values.to_numpy()
        vectors = np.asarray(flat, dtype=np.float32).reshape(len(corpus.examples), -1)
    if vectors is None:
        vectors = _embed(embedder, [e.text for e in corpus.examples])
        table = pa.table(
            {
                "text": [e.text for e in corpus.examples],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1), type=pa.float32()), embedder.dim
                ),
            }
        )
        db.create_table(_CORPUS_TABLE, table, mode="overwrite")
        meta.write_text(json.dumps(stamp))
    _CORPUS_VECTORS[key] = vectors
    return vectors


def _stack(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.concatenate([first, second]) if len(second) else first


def _embed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    import numpy as np

    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    chunks = [embedder.embed(texts[i : i + 128]) for i in range(0, len(texts), 128)]
    return np.concatenate(chunks).astype(np.float32)


def _softmax(scores: np.ndarray) -> np.ndarray:
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    scores -= scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)
