"""Slot values from a patient's free text: parse one, extract several, display, validate.

Pure functions over :class:`~clinicflow.model.Slot`; no I/O and no clock (``today`` is passed
in). They run on every turn, so each message is tokenised once (:class:`_Message`) and the
phrase tables are built at import or cached per slot's options.

Stored values are JSON-plain (:data:`SlotValue`): ``str`` for text, name, phone (``55`` + DDD +
number), email (lower-case), date (ISO), period (``manhã``/``tarde``/``noite``/``qualquer``) and
choice (the option's ``value``); ``bool`` for yes_no; ``int`` or ``float`` for number.

:func:`parse` is lenient: the bot has just asked for that slot. :func:`extract` also picks up
answers given out of order, but for slots nobody asked about it only takes values that carry
their own marker ("me chamo…", "de manhã", an e-mail, "12/03"), so it never invents.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property, lru_cache
from typing import TypeAlias

from clinicflow.model import Option, Slot
from clinicflow.text import fold, has_letters_or_digits, words

__all__ = ["PERIODS", "TEXT_MAX_CHARS", "SlotValue", "display", "extract", "parse", "validate"]

SlotValue: TypeAlias = str | bool | int | float

#: The stored values of a ``period`` slot.
PERIODS: tuple[str, ...] = ("manhã", "tarde", "noite", "qualquer")
#: A ``text`` answer is stored stripped and cut at this many characters.
TEXT_MAX_CHARS = 500
# Only the start of a message is read: a slot answer never needs more, and a pasted wall of
# text must not cost more than a normal turn.
_INPUT_MAX_CHARS = 2000
_NAME_MAX_WORDS = 6  # after a marker ("me chamo …"); particles (da, de, dos) not counted
_BARE_NAME_MAX_WORDS = 4  # a message that is only a name, without a marker

_Phrase: TypeAlias = tuple[str, ...]
_Index: TypeAlias = dict[str, list[tuple[_Phrase, str]]]


# --- shared machinery -------------------------------------------------------------------------

# Sentence punctuation splits clauses; a dot or comma between digits ("1,65") does not.
_CLAUSE_RE = re.compile(r"[;:!?\n()\[\]{}\"|]+|[.,](?!\d)|\s[-–—]\s")
_SQUEEZE_RE = re.compile(r"(.)\1{2,}")


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
# Everyday and clinic words that are never a name (the list keeps "Rosa", "Clara", "Dores").
_STOPWORDS = _FUNCTION_WORDS | _wordset(
    """
    diu consulta consultas exame exames medico medica doutor doutora clinica preco precos valor
    valores orcamento horario horarios agenda convenio plano particular pagamento cartao pix
    endereco dor sangramento gravida gravidez menopausa hormonal implante anticoncepcional
    informacao informacoes duvida duvidas pergunta retorno cirurgia procedimento atendimento
    secretaria paciente cliente mae pai filha filho esposa marido irma irmao amiga amigo
    namorada namorado tia tio avo responsavel casada casado solteira solteiro gestante fumante
    mulher homem senhora senhor sra sr dona moca hoje amanha ontem segunda terca quarta quinta
    sexta sabado domingo semana mes ano anos hora horas opcao numero primeira primeiro
    segundo terceira terceiro ultima ultimo qualquer tanto faz
    vendedor vendedora representante propagandista consultor consultora enfermeira enfermeiro
    estudante advogada advogado empresaria empresario professora professor funcionaria
    funcionario autonoma autonomo aposentada aposentado
    """
)


# --- text -------------------------------------------------------------------------------------


def _parse_text(msg: _Message) -> str | None:
    text = msg.raw.strip()
    return text[:TEXT_MAX_CHARS].rstrip() if has_letters_or_digits(text) else None


# --- name -------------------------------------------------------------------------------------

_NAME_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*|\d+")
# No ":" here: "nome: Ana" keeps its marker and its name together.
_NAME_CLAUSE_RE = re.compile(r"[,.;!?\n()\[\]{}\"|/]+|\s[-–—]\s")
_PARTICLES = frozenset({"da", "de", "do", "das", "dos", "d"})
_GREETINGS = _wordset(
    "oi oie ola opa ei hey hi hello alo bom boa dia tarde noite tudo bem td blz beleza salve "
    "prezados prezada prezado gente boas eai"
)
_NAME_TRAILERS = _GREETINGS | {"aqui", "obrigada", "obrigado", "obg"}
_VOWELS = frozenset("aeiouy")
# Marker word sequences; the "@" ones only count at the start of a clause ("é a Bia").
_NAME_MARKER_TEXTS = _alts(
    "meu nome e|meu nome eh|meu nome|me chamo|me chamam de|pode me chamar de|podem me chamar de|"
    "me chama de|me chame de|sou a|sou o|sou|aqui e a|aqui e o|aqui eh a|aqui e|quem fala e a|"
    "quem fala e o|quem fala e|@ e a|@ e o|@ eh a|@ nome"
)


def _marker_index(texts: Iterable[str]) -> dict[str, list[tuple[_Phrase, bool]]]:
    """Markers by first word, longest first, as (words, only at the start of a clause)."""
    out: dict[str, list[tuple[_Phrase, bool]]] = {}
    for text in sorted(texts, key=lambda text: -len(text.split())):
        body = tuple(text.removeprefix("@ ").split())
        out.setdefault(body[0], []).append((body, text.startswith("@")))
    return out


_NAME_MARKERS = _marker_index(_NAME_MARKER_TEXTS)

_NameToken: TypeAlias = tuple[str, str]  # (as written, folded key)


def _name_clauses(raw: str) -> list[list[_NameToken]]:
    clauses = []
    for part in _NAME_CLAUSE_RE.split(raw):
        tokens = [(tok, _SQUEEZE_RE.sub(r"\1", fold(tok))) for tok in _NAME_TOKEN_RE.findall(part)]
        if tokens:
            clauses.append(tokens)
    return clauses


def _is_name_word(key: str) -> bool:
    return (
        2 <= len(key) <= 30
        and not key.isdigit()
        and key not in _STOPWORDS
        and any(ch in _VOWELS for ch in key)
    )


def _capitalise(word: str) -> str:
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), word)


def _take_name(tokens: Sequence[_NameToken], start: int, capital: bool) -> str | None:
    """The name at ``tokens[start]``; with ``capital`` it must be written capitalised."""
    if start >= len(tokens) or tokens[start][1] in _PARTICLES:
        return None
    if not _is_name_word(tokens[start][1]):
        return None
    if capital and not tokens[start][0][:1].isupper():
        return None
    parts: list[str] = []
    count = 0
    for written, key in tokens[start : start + 2 * _NAME_MAX_WORDS]:
        if key in _PARTICLES:
            parts.append(written.lower())
        elif _is_name_word(key) and count < _NAME_MAX_WORDS:
            parts.append(_capitalise(written))
            count += 1
        else:
            break
    while parts and fold(parts[-1]) in _PARTICLES:
        parts.pop()
    return " ".join(parts)


def _marked_name(clauses: list[list[_NameToken]], strict: bool) -> str | None:
    for tokens in clauses:
        keys = [key for _, key in tokens]
        first = 0
        while first < len(keys) and keys[first] in _GREETINGS:
            first += 1
        for i, key in enumerate(keys):
            for body, at_start in _NAME_MARKERS.get(key, ()):
                end = i + len(body)
                if (at_start and i != first) or tuple(keys[i:end]) != body:
                    continue
                if end + 1 < len(keys) and keys[end] in ("a", "o"):
                    end += 1  # "me chamo a Ana" is odd but harmless
                # A bare "sou" is too often "sou casada" / "sou nova aqui" to trust unasked.
                name = _take_name(tokens, end, capital=strict and body == ("sou",))
                if name:
                    return name
    return None


def _bare_name(clauses: list[list[_NameToken]]) -> str | None:
    """A message that is only a name (greetings around it allowed): "Ana", "oi! ana paula"."""
    for tokens in clauses:
        start, end = 0, len(tokens)
        while start < end and tokens[start][1] in _GREETINGS:
            start += 1
        while end > start and tokens[end - 1][1] in _NAME_TRAILERS:
            end -= 1
        body = tokens[start:end]
        if not body:
            continue  # a clause of greetings only: "Oi, Ana"
        real = [tok for tok in body if tok[1] not in _PARTICLES]
        if len(real) > _BARE_NAME_MAX_WORDS or not all(_is_name_word(key) for _, key in real):
            return None
        if body[0][1] in _PARTICLES or body[-1][1] in _PARTICLES:
            return None
        return _take_name(body, 0, capital=False)
    return None


def _parse_name(msg: _Message, strict: bool) -> str | None:
    clauses = _name_clauses(msg.raw)
    name = _marked_name(clauses, strict)
    if name is None and not strict:
        name = _bare_name(clauses)
    return name


# --- phone and email --------------------------------------------------------------------------

_PHONE_RE = re.compile(r"(?<![\w+])\+?\s?\(?\s?\d[\d\s().-]{6,22}\d(?!\w)")
_CPF_RE = re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}")


def _national_ok(national: str) -> bool:
    """DDD (two digits, no zero) + 9-digit mobile starting with 9 or 8-digit landline."""
    if len(national) not in (10, 11) or "0" in national[:2]:
        return False
    return national[2] == "9" if len(national) == 11 else national[2] in "2345"


def _normalise_phone(digits: str) -> str | None:
    if len(digits) in (12, 13) and digits.startswith("55"):
        national = digits[2:]
    elif len(digits) in (11, 12) and digits.startswith("0"):
        national = digits[1:]  # long-distance prefix: 0 11 98765-4321
    else:
        national = digits
    return "55" + national if _national_ok(national) else None


def _parse_phone(msg: _Message) -> str | None:
    found = set()
    for match in _PHONE_RE.finditer(msg.raw):
        if _CPF_RE.fullmatch(match.group().strip()):
            continue
        phone = _normalise_phone(re.sub(r"\D", "", match.group()))
        if phone:
            found.add(phone)
    return found.pop() if len(found) == 1 else None


_EMAIL_BODY = (
    r"[a-z0-9](?:[a-z0-9._%+-]{0,62}[a-z0-9_-])?@"
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
)
_EMAIL_RE = re.compile(rf"(?<![\w.%+-])({_EMAIL_BODY})(?![\w-])")
_EMAIL_FULL_RE = re.compile(_EMAIL_BODY)


def _parse_email(msg: _Message) -> str | None:
    text = re.sub(r"\s*@\s*", "@", msg.raw.lower())
    found = {m.group(1) for m in _EMAIL_RE.finditer(text) if ".." not in m.group(1)}
    return found.pop() if len(found) == 1 else None


# --- date -------------------------------------------------------------------------------------

_MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        _alts(
            "janeiro jan|fevereiro fev|marco mar|abril abr|maio mai|junho jun|julho jul|agosto ago|"
            "setembro set|outubro out|novembro nov|dezembro dez"
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
# On folded text. Alternatives are tried in order at one position, so "dia 12/03" and
# "dia 12 de março" are read whole before the bare "dia 12".
_DATE_RE = re.compile(
    r"(?<![\w/.-])(?:dia\s+)?(?:"
    r"(?P<d1>\d{1,2})(?P<sep>[/.-])(?P<m1>\d{1,2})(?:(?P=sep)(?P<y1>\d{4}|\d{2}))?"
    r"(?![\w/]|[.-]\d)"
    rf"|(?P<d2>\d{{1,2}})o?\s*(?:de\s+)?(?P<m2>{_MONTH_ALT})(?:\s*(?:de\s+)?(?P<y2>\d{{4}}))?"
    r"(?!\w)"
    r")"
    r"|\bdia\s+(?P<d3>\d{1,2})o?(?!\w|[/.-]\d)"
)
_WEEKDAYS = {
    "segunda": 0,
    "terca": 1,
    "quarta": 2,
    "quinta": 3,
    "sexta": 4,
    "sabado": 5,
    "domingo": 6,
}
_RELATIVE_DAYS = _index(
    _flat(
        {
            "0": "hoje",
            "1": "amanha",
            "2": "depois de amanha|depois amanha",
            "next_week": "semana que vem|proxima semana|semana seguinte",
        }
    )
)


def _valid_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _next_day_of_month(day: int, today: dt.date) -> dt.date | None:
    for ahead in range(13):
        year, month0 = divmod(today.month - 1 + ahead, 12)
        found = _valid_date(today.year + year, month0 + 1, day)
        if found and found >= today:
            return found
    return None


def _without_year(month: int, day: int, today: dt.date) -> dt.date | None:
    for year in range(today.year, today.year + 5):  # five years reach the next 29/02
        found = _valid_date(year, month, day)
        if found and found >= today:
            return found
    return None


def _explicit_dates(msg: _Message, today: dt.date, strict: bool) -> set[dt.date]:
    found: set[dt.date] = set()
    for m in _DATE_RE.finditer(msg.folded):
        date: dt.date | None
        if m.group("d3"):
            date = _next_day_of_month(int(m.group("d3")), today)
        else:
            if m.group("d1") and strict and m.group("sep") != "/":
                continue  # "1.5" or "3-4" unasked is a quantity, not a date
            day = int(m.group("d1") or m.group("d2"))
            month = int(m.group("m1")) if m.group("m1") else _MONTHS[m.group("m2")]
            year_text = m.group("y1") or m.group("y2")
            if year_text:
                year = int(year_text) + (2000 if len(year_text) == 2 else 0)
                date = _valid_date(year, month, day)
            else:
                date = _without_year(month, day, today)
        if date:
            found.add(date)
    return found


def _relative_dates(msg: _Message, today: dt.date) -> set[dt.date]:
    tokens = msg.tokens
    found: set[dt.date] = set()
    next_week = False
    for _, _, key in _spans(tokens, _RELATIVE_DAYS):
        if key == "next_week":
            next_week = True
        else:
            found.add(today + dt.timedelta(days=int(key)))
    for token in tokens:
        weekday = _WEEKDAYS.get(token)
        if weekday is None:
            continue
        if next_week:  # "segunda da semana que vem": that day of next calendar week
            monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)
            found.add(monday + dt.timedelta(days=weekday))
        else:
            found.add(today + dt.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1))
    if len(tokens) == 1 and tokens[0].isdigit() and 1 <= int(tokens[0]) <= 31:
        day = _next_day_of_month(int(tokens[0]), today)  # the whole answer is "15"
        if day:
            found.add(day)
    return found


def _parse_date(msg: _Message, today: dt.date, strict: bool) -> str | None:
    found = _explicit_dates(msg, today, strict)
    if not strict:
        found |= _relative_dates(msg, today)
    return found.pop().isoformat() if len(found) == 1 else None


# --- period -----------------------------------------------------------------------------------

_PERIOD_TABLE = {
    "manhã": "manha|de manha|pela manha|manhazinha|periodo da manha|matutino",
    "tarde": "tarde|a tarde|de tarde|depois do almoco|apos o almoco|vespertino",
    "noite": "noite|a noite|de noite|depois do trabalho|apos o trabalho|depois do expediente|"
    "noturno",
    "qualquer": "qualquer horario|qualquer hora|qualquer um|qualquer uma|qualquer periodo|"
    "qualquer turno|tanto faz|indiferente|sem preferencia|nao tenho preferencia",
    # Phrases that contain a period word without meaning a preference; they hide it.
    "": "bom dia|boa tarde|boa noite|mais tarde|tarde demais|ontem a noite|ontem de noite|"
    "ontem a tarde|ontem de manha|noite passada|a noite toda|a noite inteira|noite toda|"
    "qualquer dia",
}
_PERIODS_STRICT = _index(_flat(_PERIOD_TABLE))
# Asked for a period, "cedo" or "qualquer" is an answer; unasked, "acordei cedo" is not.
_PERIODS_LENIENT = _index(
    _flat(
        {
            **_PERIOD_TABLE,
            "manhã": _PERIOD_TABLE["manhã"] + "|cedo|cedinho|bem cedo",
            "qualquer": _PERIOD_TABLE["qualquer"] + "|qualquer",
        }
    )
)
_HOUR_RE = re.compile(
    r"(?:(?P<pre>\b[a-z]+)\s+)?(?<![\d/:.,])(?P<h>\d{1,2})"
    r"(?:\s*(?:h|hs|hrs?|horas?)\b|\s*(?:h|:)\s*\d{2}\b|(?=\s*$))"
)
_HOUR_BLOCKERS = frozenset({"ha", "faz", "por", "durante", "mais", "de", "tenho", "com", "dia"})


def _period_of_hour(hour: int) -> str | None:
    if 6 <= hour < 12:
        return "manhã"
    if 12 <= hour < 18:
        return "tarde"
    if 18 <= hour <= 23:
        return "noite"
    return None  # "às 2" is more often 14h than 2h: too ambiguous to store


def _parse_period(msg: _Message, strict: bool) -> str | None:
    found = _affirmed(msg.clauses, _PERIODS_STRICT if strict else _PERIODS_LENIENT)
    found.discard("")
    if "qualquer" in found:
        return "qualquer"
    if not found and not strict:
        for m in _HOUR_RE.finditer(msg.folded):
            if m.group("pre") in _HOUR_BLOCKERS:
                continue
            period = _period_of_hour(int(m.group("h")))
            if period:
                found.add(period)
    return found.pop() if len(found) == 1 else None


# --- numbers ----------------------------------------------------------------------------------

_UNITS = {"zero": 0, "um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4}
_UNITS |= {"cinco": 5, "seis": 6, "sete": 7, "oito": 8, "nove": 9}
_TEENS = {"dez": 10, "onze": 11, "doze": 12, "treze": 13, "catorze": 14, "quatorze": 14}
_TEENS |= {"quinze": 15, "dezesseis": 16, "dezasseis": 16, "dezessete": 17, "dezassete": 17}
_TEENS |= {"dezoito": 18, "dezenove": 19, "dezanove": 19}
_TENS = {"vinte": 20, "trinta": 30, "quarenta": 40, "cinquenta": 50, "sessenta": 60}
_TENS |= {"setenta": 70, "oitenta": 80, "noventa": 90}
_HUNDREDS = {"cem": 100, "cento": 100} | {
    stem + ending: 100 * n
    for n, stem in enumerate(
        ("duzent", "trezent", "quatrocent", "quinhent", "seiscent", "setecent", "oitocent"), 2
    )
    for ending in ("os", "as")
}
_HUNDREDS |= {"novecentos": 900, "novecentas": 900}
# Rank: a compound number goes strictly down ("cento e vinte e três"); teens rank like tens.
_NUMBER_WORDS: dict[str, tuple[int, int]] = {w: (v, 1) for w, v in _UNITS.items()}
_NUMBER_WORDS |= {w: (v, 2) for w, v in (_TEENS | _TENS).items()}
_NUMBER_WORDS |= {w: (v, 3) for w, v in _HUNDREDS.items()}
# "um"/"uma" alone are usually articles ("tenho uma dúvida"); they count as a number only
# at the end of the message or before one of these count words.
_COUNT_NOUNS = _wordset(
    "ano anos mes meses semana semanas dia dias vez vezes filho filhos filha filhas kg quilo "
    "quilos parto partos gestacao gestacoes gravidez cigarro cigarros metro metros"
)
_DIGITS_RE = re.compile(r"(\d{1,15})(?:([.,])(\d{1,15}))?([a-z]*)")


def _digit_value(token: str) -> int | float | None:
    m = _DIGITS_RE.fullmatch(token)
    if not m:
        return None
    whole, sep, frac, _unit = m.groups()
    if not sep:
        return int(whole)
    if sep == "." and len(frac) == 3:
        return int(whole + frac)  # 1.650 is a thousands separator in pt-BR
    return float(f"{whole}.{frac}")


def _numbers(tokens: Sequence[str]) -> list[tuple[int, int, int | float]]:
    """Numbers in normalised words as (start, end, value): digits or pt-BR words 0–999."""
    out: list[tuple[int, int, int | float]] = []
    i = 0
    while i < len(tokens):
        value = _digit_value(tokens[i])
        if value is not None:
            out.append((i, i + 1, value))
            i += 1
            continue
        if tokens[i] not in _NUMBER_WORDS:
            i += 1
            continue
        total, rank = _NUMBER_WORDS[tokens[i]]
        end = i + 1
        while end < len(tokens):
            skip = 1 if tokens[end] == "e" else 0  # tolerate "vinte dois"
            nxt = tokens[end + skip] if end + skip < len(tokens) else ""
            if nxt not in _NUMBER_WORDS or nxt == "zero" or _NUMBER_WORDS[nxt][1] >= rank:
                break
            total += _NUMBER_WORDS[nxt][0]
            rank = _NUMBER_WORDS[nxt][1]
            end += skip + 1
        article = end == i + 1 and tokens[i] in ("um", "uma")
        if not article or end == len(tokens) or tokens[end] in _COUNT_NOUNS:
            out.append((i, end, total))
        i = end
    return out


def _in_bounds(slot: Slot, value: float) -> bool:
    if not math.isfinite(value):
        return False
    return (slot.min is None or value >= slot.min) and (slot.max is None or value <= slot.max)


def _parse_number(slot: Slot, msg: _Message) -> int | float | None:
    values = {value for _, _, value in _numbers(msg.tokens)}
    if len(values) != 1:
        return None
    value = values.pop()
    return value if _in_bounds(slot, value) else None


_AGE_LEADS = frozenset({"tenho", "com", "fiz", "faco", "completei", "completo", "idade"})


def _unasked_age(slot: Slot, msg: _Message) -> int | float | None:
    """ "tenho 42 anos", "Ana, 32 anos": only for a slot named like ``idade``."""
    if "idade" not in fold(slot.name) and fold(slot.name) != "age":
        return None
    values = set()
    for tokens in msg.clauses:
        for start, end, value in _numbers(tokens):
            glued = end == start + 1 and tokens[start].endswith("anos")  # "42anos"
            if not glued and tokens[end : end + 1] != ["anos"]:
                continue
            after = end if glued else end + 1
            if tokens[after : after + 1] in (["atras"], ["que"]):
                continue  # "2 anos atrás", "2 anos que uso": a duration, not an age
            if start == 0 or tokens[start - 1] in _AGE_LEADS:
                values.add(value)
    if len(values) != 1:
        return None
    value = values.pop()
    return value if _in_bounds(slot, value) else None


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
        self.strict = _index(p for option in options for p in phrases(option, False))
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


def _parse_choice(slot: Slot, msg: _Message, strict: bool) -> str | None:
    if not slot.options:
        return None
    choices = _choices(slot.options)
    found = _affirmed(msg.clauses, choices.strict if strict else choices.lenient)
    if strict:
        return found.pop() if len(found) == 1 else None
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
    return found.pop() if len(found) == 1 else None


# --- public API -------------------------------------------------------------------------------


def _parse(slot: Slot, msg: _Message, today: dt.date, strict: bool) -> SlotValue | None:
    kind = slot.type
    if kind == "text":
        return None if strict else _parse_text(msg)
    if kind == "name":
        return _parse_name(msg, strict)
    if kind == "phone":
        return _parse_phone(msg)
    if kind == "email":
        return _parse_email(msg)
    if kind == "date":
        return _parse_date(msg, today, strict)
    if kind == "period":
        return _parse_period(msg, strict)
    if kind == "choice":
        return _parse_choice(slot, msg, strict)
    if kind == "yes_no":
        return None if strict else _parse_yes_no(msg)
    if kind == "number":
        return _unasked_age(slot, msg) if strict else _parse_number(slot, msg)
    return None


def parse(slot: Slot, text: str, today: dt.date) -> SlotValue | None:
    """The value for ``slot`` in the patient's answer to its question, or None.

    Args:
        slot: The slot the bot has just asked for.
        text: The patient's message, as received (emojis, no accents, abbreviations...).
        today: The clinic's local date, for "amanhã", "sexta" and dates without a year.

    Returns:
        The value in its stored form (see the module docstring), or None when the message
        holds no value or more than one (ambiguous). Never raises on any string.
    """
    return _parse(slot, _Message(text), today, strict=False)


def extract(
    slots: Sequence[Slot], text: str, today: dt.date, expecting: str | None
) -> dict[str, SlotValue]:
    """Every slot value found in one message, including answers given out of order.

    Args:
        slots: The slots that may be filled (usually the script's still-empty slots).
        text: The patient's message.
        today: The clinic's local date.
        expecting: The name of the slot the bot has just asked for (parsed leniently, as by
            :func:`parse`), or None.

    Returns:
        Slot name to value. Slots not asked about are filled only from explicit forms: a name
        after "sou a / me chamo / meu nome é", a period word, an e-mail, a phone, a date
        written as a date, a choice's label or synonym, an age as "tenho 42 anos". Two unasked
        slots of one type (or one of the asked slot's type) are left empty: never a guess.
    """
    msg = _Message(text)
    asked = next((slot for slot in slots if slot.name == expecting), None)
    out: dict[str, SlotValue] = {}
    if asked is not None:
        value = _parse(asked, msg, today, strict=False)
        if value is not None:
            out[asked.name] = value
    by_type: dict[str, list[tuple[Slot, SlotValue]]] = {}
    for slot in slots:
        if slot is asked or slot.name in out:
            continue
        value = _parse(slot, msg, today, strict=True)
        if value is not None:
            by_type.setdefault(slot.type, []).append((slot, value))
    for kind, filled in by_type.items():
        clash = asked is not None and asked.type == kind
        if kind != "choice" and (len(filled) > 1 or clash):
            continue
        for slot, value in filled:
            out[slot.name] = value
    return out


def _number_text(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return format(value, ".10g").replace(".", ",")


def display(slot: Slot, value: SlotValue) -> str:
    """The value as a template shows it to the patient.

    A choice shows its option's label, a date ``dd/mm/aaaa``, a yes_no ``sim``/``não``, a
    number without a trailing ``.0`` (decimal comma: ``1,65``); the rest as stored.
    """
    if isinstance(value, bool):
        return "sim" if value else "não"
    if slot.type == "choice":
        return next((o.label for o in slot.options if o.value == value), str(value))
    if slot.type == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    if isinstance(value, int | float) and math.isfinite(value):
        return _number_text(value)
    return str(value)


_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAME_VALUE_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*(?: [^\W\d_]+(?:['’-][^\W\d_]+)*)*")


def _valid_date_text(value: str) -> bool:
    if not _ISO_DATE_RE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_STRING_CHECKS: dict[str, Callable[[Slot, str], bool]] = {
    "text": lambda _, v: has_letters_or_digits(v) and len(v) <= TEXT_MAX_CHARS,
    "name": lambda _, v: len(v) <= 120 and bool(_NAME_VALUE_RE.fullmatch(v)),
    "phone": lambda _, v: v.isascii() and v.isdigit() and v[:2] == "55" and _national_ok(v[2:]),
    "email": lambda _, v: v == v.lower() and bool(_EMAIL_FULL_RE.fullmatch(v)) and ".." not in v,
    "date": lambda _, v: _valid_date_text(v),
    "period": lambda _, v: v in PERIODS,
    "choice": lambda slot, v: any(option.value == v for option in slot.options),
}


def validate(slot: Slot, value: object) -> bool:
    """Whether ``value`` (e.g. from the LLM) is a well-formed stored value for ``slot``.

    Checks the stored form exactly: type, shape (ISO date, ``55`` phone, lower-case e-mail,
    one of :data:`PERIODS`), bounds for numbers, and that a choice names an option's value.
    """
    if slot.type == "yes_no":
        return isinstance(value, bool)
    if slot.type == "number":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and _in_bounds(slot, value)
        )
    check = _STRING_CHECKS.get(slot.type)
    return isinstance(value, str) and check is not None and check(slot, value)
