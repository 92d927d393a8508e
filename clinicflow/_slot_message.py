"""One patient message, tokenised once, and the phrase tables every slot parser matches.

Private to :mod:`clinicflow.slots`. A table is ``{key: "phrase|phrase"}``, indexed by each
phrase's first normalised word; a phrase matches whole words only, and a longer match hides
the shorter ones inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TypeAlias

from clinicflow.text import fold, words

# Only the start of a message is read: a slot answer never needs more, and a pasted wall of
# text must not cost more than a normal turn.
_INPUT_MAX_CHARS = 2000

_Phrase: TypeAlias = tuple[str, ...]
_Index: TypeAlias = dict[str, list[tuple[_Phrase, str]]]

# Sentence punctuation splits clauses; a dot or comma between digits ("1,65") does not.
_CLAUSE_RE = re.compile(r"[;:!?\n()\[\]{}\"|]+|[.,](?!\d)|\s[-–—]\s")


class _Message:
    """One patient message, tokenised lazily and once for every slot parser."""

    def __init__(self, text: str) -> None:
        self.raw = text[:_INPUT_MAX_CHARS]

    @cached_property
    def folded(self) -> str:
        return fold(self.raw)

    @cached_property
    def tokens(self) -> list[str]:
        return words(self.raw)

    @cached_property
    def clauses(self) -> list[list[str]]:
        """Normalised words per clause (punctuation kept as a boundary)."""
        return [toks for part in _CLAUSE_RE.split(self.raw) if (toks := words(part))]


def _index(pairs: Iterable[tuple[str, str]]) -> _Index:
    """(key, phrase) pairs indexed by the phrase's first normalised word."""
    out: _Index = {}
    for key, phrase in pairs:
        tokens = tuple(words(phrase))
        if tokens:
            out.setdefault(tokens[0], []).append((tokens, key))
    return out


def _spans(tokens: Sequence[str], index: _Index) -> list[tuple[int, int, str]]:
    """Whole-word phrase matches as (start, end, key), dropping any nested in a longer one.

    Unlike :class:`clinicflow.text.PhraseMatcher` this keeps positions, so "sem hormônio"
    (one option's synonym) hides the "hormônio" inside it (another option's synonym).
    """
    found: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        for phrase, key in index.get(token, ()):
            end = i + len(phrase)
            if len(phrase) == 1 or tuple(tokens[i:end]) == phrase:
                found.append((i, end, key))
    return [
        (s, e, k)
        for s, e, k in found
        if not any(os <= s and e <= oe and oe - os > e - s for os, oe, _ in found)
    ]


# Before a phrase in its clause, these make it a "not this": "não quero o hormonal".
_NEGATIONS = frozenset({"nao", "nem", "sem", "nunca", "menos", "exceto", "jamais"})


def _affirmed(clauses: Sequence[Sequence[str]], index: _Index) -> set[str]:
    """Keys of the phrases found and not negated: no negation earlier in the clause, no
    "não" right after ("de manhã não posso"). Clauses keep "não, à tarde" an answer."""
    keys: set[str] = set()
    for tokens in clauses:
        for start, end, key in _spans(tokens, index):
            if any(tok in _NEGATIONS for tok in tokens[:start]) or tokens[end : end + 1] == ["nao"]:
                continue
            keys.add(key)
    return keys


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _alts(text: str) -> list[str]:
    return text.split("|")


def _flat(table: dict[str, str]) -> list[tuple[str, str]]:
    """{key: "phrase|phrase"} as (key, phrase) pairs: tables stay short and greppable."""
    return [(key, phrase) for key, phrases in table.items() for phrase in _alts(phrases)]


# Words with no meaning of their own in an option label ("Quero saber mais"), never a name.
_FUNCTION_WORDS = _wordset(
    """
    oi ola oie opa ei hey hi hello alo bom boa bons boas dia dias tarde noite manha tudo bem
    beleza salve prezados prezada prezado gente obrigada obrigado valeu ok okay sim nao claro
    certo certeza isso aham uhum hum hmm haha hahaha hehe kk rs rsrs tchau logo bjs beijos
    a o as os um uma uns umas eu tu voce voces ele ela eles elas nos vos me te se lhe lhes meu
    minha meus minhas seu sua seus suas nosso nossa de da do das dos em na no nas num numa por
    pela pelo pelas pelos para pro com sem sobre ate entre e ou mas que quem qual quais quando
    onde como porque quanto quanta quantos quantas isto aquilo esse essa este esta estes
    estas aquele aquela aqui ali la ai ja ainda so tambem muito muita pouco mais menos mal nada
    algo alguem ninguem todo toda todos todas outro outra mesmo mesma cada tal tipo assim entao
    sou es eh era foi ser estar estou estava estamos tenho tem tinha ter temos quero queria
    gostaria preciso precisava posso pode podia poderia vou vai ir fazer faco fiz saber sei
    sabe gosto marcar agendar agendamento consultar prefiro chamo chama chamar nome falar falo
    ligar ver vi acho achei entendi entender gente favor desculpa desculpe perdao nova novo
    """
)
