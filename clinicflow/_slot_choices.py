"""Which answer: the ``yes_no`` and ``choice`` slot parsers.

Private to :mod:`clinicflow.slots`. A yes/no is read from its words and emojis ("não sei" is
no answer); a choice from an option's label, synonyms or value, a word only one option's label
has, or its number ("2", "a segunda", "a última"). Negated options ("não quero o hormonal")
never count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from clinicflow._slot_message import (
    _FUNCTION_WORDS,
    _NEGATIONS,
    _affirmed,
    _flat,
    _index,
    _Message,
    _spans,
    _wordset,
)
from clinicflow._slot_numbers import _NUMBER_WORDS
from clinicflow.model import Option, Slot
from clinicflow.text import words

# --- yes / no ---------------------------------------------------------------------------------

_LEADS = ("claro", "logico", "obvio", "acho", "creio", "com certeza", "certeza", "e claro")
# "não quero" is a no, not a "quero" and a "não" that contradict each other.
_VERBS = ("quero", "tenho", "posso", "pode", "pode ser", "gostaria", "e isso", "uso", "sou")
_YES_NO_TABLE = {
    "yes": "sim|claro|com certeza|aham|ahan|anham|uhum|isso|isso mesmo|isso ai|pode ser|pode|"
    "quero|ok|okay|positivo|exato|exatamente|correto|certo|afirmativo|perfeito|yes|tenho|posso|"
    "gostaria|sou|confirmo|logico|obvio|esta bom|esta certo|combinado|fechado|bora|"
    + "|".join(f"{lead} que sim" for lead in _LEADS),
    "no": "nao|nn|nunca|jamais|de jeito nenhum|de forma nenhuma|nem pensar|negativo|nenhum|"
    "nenhuma|nope|"
    + "|".join(f"{lead} que nao" for lead in _LEADS)
    + "|"
    + "|".join(f"nao {verb}" for verb in _VERBS),
    "unsure": "nao sei|sei la|talvez|nao tenho certeza|depende|nao lembro|nao me lembro|"
    "nao faco ideia|pode ser que|quem sabe|acho que|mais ou menos",
}
_YES_NO = _index(_flat(_YES_NO_TABLE))
_YES_EMOJI = ("👍", "✅", "✔")
_NO_EMOJI = ("👎", "❌", "✖")


def _parse_yes_no(msg: _Message) -> bool | None:
    keys = {key for _, _, key in _spans(msg.tokens, _YES_NO)}
    if any(emoji in msg.raw for emoji in _YES_EMOJI):
        keys.add("yes")
    if any(emoji in msg.raw for emoji in _NO_EMOJI):
        keys.add("no")
    if "unsure" in keys or len(keys) != 1:
        return None
    return keys.pop() == "yes"


# --- choice -----------------------------------------------------------------------------------

_ORDINALS = {"primeira": 1, "primeiro": 1, "segunda": 2, "segundo": 2, "terceira": 3}
_ORDINALS |= {"terceiro": 3, "quarta": 4, "quarto": 4, "quinta": 5, "quinto": 5, "sexta": 6}
_ORDINALS |= {"sexto": 6, "setima": 7, "setimo": 7, "oitava": 8, "oitavo": 8, "nona": 9}
_ORDINALS |= {"nono": 9, "decima": 10, "decimo": 10}
# Words around an option number that do not change it: "quero a opção 2, por favor".
_CHOICE_FILLERS = _wordset(
    "a o as os opcao numero no num n item escolho escolha quero prefiro fico com essa esse esta "
    "este acho que e pode ser sim por favor letra alternativa mesmo isso eu vou de da do entao "
    "ok bom obrigada obrigado valeu"
)


class _Choices:
    """A choice slot's options as phrase indexes, built once per distinct options tuple."""

    def __init__(self, options: tuple[Option, ...]) -> None:
        def phrases(option: Option, with_value: bool) -> list[tuple[str, str]]:
            out = [(option.value, option.label)]
            out.append((option.value, re.sub(r"\(.*?\)", " ", option.label)))  # "DIU hormonal"
            out += [(option.value, synonym) for synonym in option.synonyms]
            if with_value:
                out.append((option.value, option.value.replace("_", " ")))
            return out

        self.values = tuple(option.value for option in options)
        self.lenient = _index(p for option in options for p in phrases(option, True))
        # Unasked, only a phrase with a word of its own counts: "quero entender" or "não sei"
        # said in passing chooses nothing.
        self.strict = _index(
            (value, phrase)
            for option in options
            for value, phrase in phrases(option, False)
            if any(word not in _FUNCTION_WORDS for word in words(phrase))
        )
        owners: dict[str, set[str]] = {}
        for option in options:
            for _, phrase in phrases(option, True):
                for word in words(phrase):
                    if len(word) >= 4 and word not in _FUNCTION_WORDS and not word.isdigit():
                        owners.setdefault(word, set()).add(option.value)
        # A label word that belongs to one option only: "valores" for "Valores e pagamento".
        self.distinctive = {word: vals.pop() for word, vals in owners.items() if len(vals) == 1}


@lru_cache(maxsize=512)
def _choices(options: tuple[Option, ...]) -> _Choices:
    return _Choices(options)


def _option_number(tokens: Sequence[str], count: int) -> tuple[int | None, bool]:
    """The option picked by number ("2", "opção 2", "a segunda", "2️⃣", "a última").

    Returns (number, alone): ``alone`` is False for a leading number followed by other words
    ("2 mirena"), which only counts when the words name the same option.
    """
    rest = [tok for tok in tokens if tok not in _CHOICE_FILLERS]
    if not rest or (len(rest) > 1 and not rest[0].isdigit()):
        return None, False
    token = rest[0]
    if token.isdigit():
        number = int(token) if len(token) <= 3 else 0
    elif token in ("ultima", "ultimo"):
        number = count
    else:
        number = _ORDINALS.get(token) or _NUMBER_WORDS.get(token, (0, 0))[0]
    return (number if 1 <= number <= count else None), len(rest) == 1


def _parse_choice(slot: Slot, msg: _Message, strict: bool) -> str | list[str] | None:
    if not slot.options:
        return None
    found = _chosen(slot, msg, strict)
    if slot.multiple:
        # Several options at once, in the options' order ("os calorões e o sono").
        order = {option.value: n for n, option in enumerate(slot.options)}
        return sorted(found, key=order.__getitem__) or None
    return found.pop() if len(found) == 1 else None


def _chosen(slot: Slot, msg: _Message, strict: bool) -> set[str]:
    """The option values a message picks (a set: one, several or none)."""
    choices = _choices(slot.options)
    found = _affirmed(msg.clauses, choices.strict if strict else choices.lenient)
    if strict:
        return found if len(found) == 1 or slot.multiple else set()
    for tokens in msg.clauses:
        covered = {
            i for start, end, _ in _spans(tokens, choices.lenient) for i in range(start, end)
        }
        found |= {
            choices.distinctive[tok]
            for i, tok in enumerate(tokens)
            if tok in choices.distinctive
            and i not in covered
            and not any(t in _NEGATIONS for t in tokens[:i])
        }
    number, alone = _option_number(msg.tokens, len(choices.values))
    if number is not None and (alone or found):
        found.add(choices.values[number - 1])
    elif slot.multiple and not found:
        found = {choices.values[n - 1] for n in _option_numbers(msg.tokens, len(choices.values))}
    return found


def _option_numbers(tokens: Sequence[str], count: int) -> list[int]:
    """Several option numbers ("1 e 2", "1, 3"); [] when anything else is said."""
    rest = [tok for tok in tokens if tok not in _CHOICE_FILLERS]
    if not rest or not all(tok.isdigit() and len(tok) <= 2 for tok in rest):
        return []
    numbers = [int(tok) for tok in rest]
    return numbers if all(1 <= n <= count for n in numbers) else []


def option_number(text: str, count: int) -> int | None:
    """The option a message picks by number alone: "3", "três", "a segunda", "a última",
    "opção 2" (None when it says anything else)."""
    number, alone = _option_number(words(text), count)
    return number if alone else None
