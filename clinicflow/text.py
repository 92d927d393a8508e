"""Text normalisation and whole-word phrase matching for colloquial Brazilian Portuguese.

Patients write without accents, with abbreviations (vc, q, pq, tb, mt), emojis and typos.
Everything that compares patient text with catalog text goes through :func:`normalize` and
:class:`PhraseMatcher`, so "dor" matches "dor" and "com dor" but never "vendedor" or "adoro".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Abbreviations and spellings common in WhatsApp Portuguese, mapped to the word they stand for.
_ABBREVIATIONS: dict[str, str] = {
    "vc": "voce",
    "vcs": "voces",
    "voce": "voce",
    "q": "que",
    "pq": "porque",
    "porq": "porque",
    "tb": "tambem",
    "tbm": "tambem",
    "tmb": "tambem",
    "mt": "muito",
    "mto": "muito",
    "mta": "muita",
    "td": "tudo",
    "tds": "todos",
    "blz": "beleza",
    "obg": "obrigada",
    "obgd": "obrigada",
    "obgda": "obrigada",
    "brigada": "obrigada",
    "msg": "mensagem",
    "msgs": "mensagens",
    "hj": "hoje",
    "amnh": "amanha",
    "qdo": "quando",
    "qnd": "quando",
    "qto": "quanto",
    "qt": "quanto",
    "qnto": "quanto",
    "qnt": "quanto",
    "qnts": "quantos",
    "ctz": "certeza",
    "cmg": "comigo",
    "ctg": "contigo",
    "dps": "depois",
    "tava": "estava",
    "to": "estou",
    "tô": "estou",
    "ta": "esta",
    "tá": "esta",
    "pra": "para",
    "pro": "para o",
    "nao": "nao",
    "ñ": "nao",
    "ss": "sim",
    "sss": "sim",
    "dr": "doutor",
    "dra": "doutora",
    "drª": "doutora",
    "oii": "oi",
    "oiii": "oi",
    "ola": "ola",
    "vlw": "valeu",
    "flw": "falou",
    "add": "adicionar",
    "info": "informacao",
    "infos": "informacoes",
    "p": "para",
    "c": "com",
    "agr": "agora",
    "kd": "cade",
    "aq": "aqui",
    "ai": "ai",
    "tbem": "tambem",
    "neh": "ne",
    "eh": "e",
}

_SOLO = {"s": "sim", "ss": "sim", "n": "nao", "nn": "nao"}
_WORD_RE = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?")
_REPEAT_RE = re.compile(r"([a-z])\1{2,}")


def encodable(text: str) -> str:
    """``text`` with every lone surrogate (a byte that was not UTF-8, read with
    ``surrogateescape``; a JSON ``\\udXXX`` escape) replaced by U+FFFD, so it can be stored,
    embedded and printed; any other text comes back unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def expand(word: str) -> str:
    """A lower-case word with its WhatsApp abbreviation expanded ("vc" -> "voce")."""
    return _ABBREVIATIONS.get(word, word)


def strip_accents(text: str) -> str:
    """Remove diacritics: "manhã" -> "manha"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """Lower-case and strip accents, keeping everything else (for substring checks)."""
    return strip_accents(text).casefold()


def words(text: str) -> list[str]:
    """Normalised words of ``text``: accents and emojis gone, abbreviations expanded.

    Letters repeated three or more times are squeezed ("oiiii" -> "oi", "simmm" -> "sim").
    """
    folded = _REPEAT_RE.sub(r"\1", fold(text))
    solo = _SOLO.get(folded.strip(" .!\n\t"))
    if solo:  # "s" / "n" alone are yes / no; inside "%s" or "n°" they are not
        return [solo]
    out: list[str] = []
    for word in _WORD_RE.findall(folded):
        expanded = _ABBREVIATIONS.get(word, word)
        out.extend(expanded.split())
    return out


def normalize(text: str) -> str:
    """The canonical form used for matching: ``" ".join(words(text))``."""
    return " ".join(words(text))


def has_letters_or_digits(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class PhraseMatcher:
    """Finds catalog phrases in patient text as whole words, in order, after normalisation.

    Built once per catalog; a phrase of several words matches only those words in sequence.
    """

    def __init__(self, phrases: Iterable[tuple[str, str]]) -> None:
        """``phrases``: pairs of (key, phrase); the key is returned on a match."""
        self._by_first: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
        for key, phrase in phrases:
            tokens = tuple(words(phrase))
            if not tokens:
                continue
            self._by_first.setdefault(tokens[0], []).append((tokens, key, phrase))
        for entries in self._by_first.values():
            entries.sort(key=lambda entry: -len(entry[0]))

    def find(self, text: str) -> list[tuple[str, str]]:
        """All (key, phrase) pairs found in ``text``, longest phrase first at each position."""
        return [(key, phrase) for key, phrase, _ in self.find_at(text)]

    def find_at(self, text: str) -> list[tuple[str, str, int]]:
        """As :meth:`find`, with the index of each match's first word in ``words(text)``
        (its first occurrence)."""
        tokens = words(text)
        found: list[tuple[str, str, int]] = []
        seen: set[tuple[str, str]] = set()
        for index, token in enumerate(tokens):
            for phrase_tokens, key, phrase in self._by_first.get(token, ()):
                end = index + len(phrase_tokens)
                if tuple(tokens[index:end]) == phrase_tokens and (key, phrase) not in seen:
                    seen.add((key, phrase))
                    found.append((key, phrase, index))
        return found

    def keys(self, text: str) -> list[str]:
        """Distinct keys found in ``text``, in order of first appearance."""
        out: list[str] = []
        for key, _ in self.find(text):
            if key not in out:
                out.append(key)
        return out
