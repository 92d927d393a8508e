"""The post-check of every text Gemini writes: answers to patients, summaries for the secretary.

Pure functions over the text and the catalog; no I/O. A generated answer must never diagnose,
prescribe, dose, call a symptom "normal", promise results, or quote a price, date, link or
phone number the catalog does not hold (see /work/shared/CLINIC_DOMAIN.md, "What the bot must
never do"). Each rule is a pattern on the folded text (lower case, no accents); a match is a
violation, and the caller replaces the whole text with a fixed, approved one. The rules are
deliberately strict: a false alarm costs a less specific answer, a miss costs a patient's
safety.

Violations are strings ``"kind: detail"``; :data:`MEDICAL_KINDS` are the kinds that call for
the clinic's ``medical_advice`` text rather than "the secretary will confirm".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from clinicflow.model import Catalog
from clinicflow.templates import render
from clinicflow.text import fold

MAX_ANSWER_CHARS = 600
MAX_SUMMARY_CHARS = 400

MEDICAL_KINDS = frozenset({"diagnosis", "prescription", "dosing", "reassurance", "promise"})

_DIAGNOSIS = (
    # "você tem / deve ter / está com ..." about her body; "você tem direito/alguma dúvida" is fine
    r"\bvoce (?:provavelmente |talvez |deve |pode |ja )?(?:tem|tenha|teria|ter|esta com|estar com"
    r"|estaria com|sofre de)\b(?! (?:direito|alguma|algum|duvida|interesse|preferencia|a opcao"
    r"|como|que|ate|acesso|em))",
    r"\bpode(?:m)? ser (?:um |uma |o |a )?(?:sinal|sintoma|indicio|indicativo|caso|quadro)\b",
    r"\b(?:parece|provavelmente e|deve ser|com certeza e) (?:um |uma )?(?:infeccao|inflamacao|"
    r"candid|mioma|cisto|endometriose|sop|menopausa|gravidez|alergia|hormonal|virus|bacteria)",
    r"\b(?:seu|o seu) (?:diagnostico|caso) (?:e|parece)\b",
)
_REASSURANCE = (
    r"\be (?:bem |totalmente |super |muito )?(?:normal|comum|esperado|natural)\b",
    r"\bisso (?:e|eh) (?:normal|comum|esperado|natural)\b",
    r"\bnao e nada (?:grave|demais|serio)?",
    r"\bnao (?:precisa|tem por que|tem porque) (?:se )?preocupar\b",
    r"\bfique tranquila\b",
)
_PRESCRIPTION = (
    r"\btome\b",
    r"\btomar\b.{0,40}\b(?:remedio|comprimido|capsula|medicamento|antibiotico|analgesico|"
    r"anti-?inflamatorio|cha|vitamina|suplemento|dose)\b",
    r"\b(?:recomendo|indico|sugiro|aconselho) (?:que )?(?:voce )?(?:tom|use|us|aplique|fa[cz])",
    r"\b(?:receit|prescrev)\w*",
    r"\b(?:comprimidos?|capsulas?|pomada|antibiotico|anti-?inflamatorio|analgesico)\b",
    r"\b(?:ibuprofeno|paracetamol|dipirona|buscopan|nimesulida|diclofenaco|cetoprofeno|naproxeno|"
    r"metformina|semaglutida|tirzepatida|liraglutida|ozempic|wegovy|mounjaro|saxenda|sibutramina|"
    r"orlistate|estradiol|progesterona|testosterona|ciproterona|drospirenona|amoxicilina|"
    r"azitromicina|metronidazol|fluconazol|clindamicina|cefalexina|tibolona)\b",
)
_DOSING = (
    r"\d+(?:[.,]\d+)?\s*(?:mg|mcg|ml|ui|g)\b",
    r"\b(?:dose|doses|dosagem|posologia|miligramas?)\b",
    r"\b\d+\s*(?:vezes|x) (?:ao|por) dia\b",
    r"\bde \d+ em \d+ horas\b",
)
_PROMISE = (
    r"\bgarant\w*",
    r"\b100\s?%",
    r"\bcura(?:r|do|da|dos|das|s)?\b",
    r"\bsem (?:nenhum )?riscos?\b",
    r"\bresultados? (?:garantid|cert|definitiv|imediat|rapid|assegurad)\w*",
    r"\bmilagr\w*",
    r"\bvoce vai (?:emagrecer|perder|ficar|curar|melhorar|engravidar|sarar)\b",
    r"\b(?:elimina|eliminar|resolve|resolver) (?:de vez|definitivamente|para sempre)\b",
)
_RULES: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    (kind, tuple(re.compile(p) for p in patterns))
    for kind, patterns in (
        ("diagnosis", _DIAGNOSIS),
        ("reassurance", _REASSURANCE),
        ("prescription", _PRESCRIPTION),
        ("dosing", _DOSING),
        ("promise", _PROMISE),
    )
)

_NUMBER = r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_PRICE_RES = (
    re.compile(rf"r\$\s*({_NUMBER})"),
    re.compile(rf"({_NUMBER})\s*(?:mil\s+)?(?:reais|real)\b"),
)
_WORD_PRICE_RE = re.compile(
    r"\b(?:cem|cento|duzentos|trezentos|quatrocentos|quinhentos|seiscentos|setecentos|oitocentos"
    r"|novecentos|mil)\s+(?:e\s+\w+\s+)?reais\b"
)
_LINK_RE = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|br|net|org)(?:\.br)?\b")
_DATE_RE = re.compile(r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b")
_PHONE_RE = re.compile(r"\(?\b\d{2}\)?\s?9?\d{4}[-\s]?\d{4}\b")

# The secretary's brief: nothing internal.
_IDENTIFIER_RE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b|__\w+__")
_CHAT_ID_RE = re.compile(r"@(?:c\.us|s\.whatsapp\.net|lid|g\.us)\b|\bsim-\d+")
_SCORE_RE = re.compile(
    r"\b(?:score|scores|pontuacao|confidence|intent|intents|lead|leads|slot|slots)\b"
    r"|\b0[.,]\d+\b"
)


def _amount(raw: str) -> float | None:
    text = raw.replace(".", "").replace(",", ".") if re.search(r"\.\d{3}", raw) else raw
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def prices(text: str) -> set[float]:
    """The money amounts written in ``text`` (``R$ 600``, ``R$1.200,00``, ``350 reais``)."""
    folded = fold(text)
    found: set[float] = set()
    for pattern in _PRICE_RES:
        for match in pattern.finditer(folded):
            value = _amount(match.group(1))
            if value is not None:
                found.add(value)
    return found


def catalog_texts(catalog: Catalog) -> Iterable[str]:
    """Every text of the catalog a patient may read, facts filled in."""
    clinic = catalog.clinic
    facts = dict(clinic.facts)
    facts.setdefault("nome", clinic.name)
    raw: list[str] = [clinic.name, *facts.values()]
    raw += [value for _key, value in clinic.texts]
    raw += [faq.answer for faq in clinic.faq]
    for script in catalog.scripts:
        raw += [script.title, script.description]
        raw += [faq.answer for faq in script.faq]
        for slot in script.slots:
            raw += [slot.ask, *slot.reprompts, *(o.label for o in slot.options)]
        for state in script.states:
            raw += list(state.say)
            raw += [f.say for f in state.follow_ups]
            if state.menu is not None:
                raw += [state.menu.prompt, *(item.label for item in state.menu.items)]
    for text in raw:
        if text:
            yield render(text, {}, facts)


def _medical(folded: str) -> list[str]:
    out = []
    for kind, patterns in _RULES:
        for pattern in patterns:
            match = pattern.search(folded)
            if match:
                out.append(f"{kind}: {match.group(0).strip()}")
                break
    return out


def check_answer(text: str, catalog: Catalog) -> list[str]:
    """The violations of a generated answer to a patient; empty when it may be sent."""
    folded = fold(text)
    violations = _medical(folded)
    known = "\n".join(fold(t) for t in catalog_texts(catalog))
    known_prices: set[float] = set()
    for t in catalog_texts(catalog):
        known_prices |= prices(t)
    violations += [f"price: {p:g}" for p in sorted(prices(text) - known_prices)]
    if _WORD_PRICE_RE.search(folded):
        violations.append("price: written in words")
    for kind, pattern in (("link", _LINK_RE), ("date", _DATE_RE), ("phone", _PHONE_RE)):
        violations += [f"{kind}: {m}" for m in pattern.findall(folded) if m not in known]
    if len(text) > MAX_ANSWER_CHARS:
        violations.append(f"length: {len(text)} > {MAX_ANSWER_CHARS}")
    if not text.strip():
        violations.append("empty")
    return violations


def check_summary(text: str, catalog: Catalog) -> list[str]:
    """The violations of a generated hand-off summary; empty when it may go in the brief.

    No internal identifiers (snake_case names, chat ids), no scores or confidences, nothing
    that diagnoses or prescribes, no invented prices, at most :data:`MAX_SUMMARY_CHARS`.
    """
    folded = fold(text)
    violations = [v for v in _medical(folded) if not v.startswith("reassurance")]
    violations += [f"identifier: {m}" for m in _IDENTIFIER_RE.findall(text)]
    violations += [f"chat id: {m}" for m in _CHAT_ID_RE.findall(folded)]
    violations += [f"internal: {m}" for m in _SCORE_RE.findall(folded)]
    known_prices: set[float] = set()
    for t in catalog_texts(catalog):
        known_prices |= prices(t)
    violations += [f"price: {p:g}" for p in sorted(prices(text) - known_prices)]
    if len(text) > MAX_SUMMARY_CHARS:
        violations.append(f"length: {len(text)} > {MAX_SUMMARY_CHARS}")
    if not text.strip():
        violations.append("empty")
    return violations


def is_medical(violations: Iterable[str]) -> bool:
    """True when a violation is about health (the ``medical_advice`` text is then the answer)."""
    return any(v.split(":", 1)[0] in MEDICAL_KINDS for v in violations)


__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_SUMMARY_CHARS",
    "MEDICAL_KINDS",
    "catalog_texts",
    "check_answer",
    "check_summary",
    "is_medical",
    "prices",
]
