"""Who the patient is and how to reach them: ``name``, ``phone`` and ``email`` slot parsers.

Private to :mod:`clinicflow.slots`. A name is taken after a marker ("me chamo…", "sou a…")
or, when asked, from a message that is only a name; a phone is a Brazilian number (stored as
``55`` + DDD + number); an e-mail is stored lower-case. Two different values: none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from clinicflow._slot_message import _FUNCTION_WORDS, _alts, _Message, _Phrase, _wordset
from clinicflow.text import fold

_NAME_MAX_WORDS = 6  # after a marker ("me chamo …"); particles (da, de, dos) not counted
_BARE_NAME_MAX_WORDS = 4  # a message that is only a name, without a marker
_SQUEEZE_RE = re.compile(r"(.)\1{2,}")

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
