"""What surrounds a symptom: sentences, negation scopes, and the markers that make an alarming
sentence a look-alike (past and over, someone else's history, a hypothetical, a joke).

Everything works on :func:`clinicflow.text.normalize`d words (no accents, abbreviations
expanded: "to" → "estou", "ta" → "esta", "hj" → "hoje"), so the patterns below are written in
that form. Pure functions; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from clinicflow.text import normalize

# A sentence ends at . ! ? ; or a line break; commas stay inside (the context of a clause
# often sits after a comma: "tive hemorragia, 10 anos atrás"). A contrast ("mas", "porém",
# "só que") starts a new one: "tive febre mês passado, mas agora estou sangrando".
_SENTENCE_RE = re.compile(r"[^.!?;\n]+[.!?;\n]*")
_CONTRAST_RE = re.compile(
    r",?\s+\b(?:mas|porem|porém|so que|só que|entretanto)\b\s+", re.IGNORECASE
)
_LAUGH_RE = re.compile(r"(?:k{3,}|(?:ha){2,}|(?:rs){2,}|😂|🤣|😅|😆)", re.IGNORECASE)
# Figures of speech built on alarming words: "sangrando de raiva", "morta de cansaço".
FIGURATIVE_RE = re.compile(
    r"\b(?:sangr\w*|desmai\w*|morr\w*|morta|morto|infart\w*|surt\w*|explod\w*|chor\w*)\b "
    r"(?:de|d[oa]s?) (?:raiva|odio|rir|riso|vergonha|calor|fome|sono|cansaco|cansada|tedio|"
    r"saudade|saudades|curiosidade|ansiedade|preguica|amor|alegria|felicidade|emocao|medo|susto|"
    r"nervoso|frio)\b|\bvou ter um (?:treco|troco|piripaque|ataque|chilique)\b|"
    # "vou me matar de tanto trabalhar", "tô sufocada de tanto trabalho", "morta de trabalho"
    r"\b(?:me matar|matar|morr\w*|morta|morto|sufoc\w*|desmai\w*|explod\w*|infart\w*) de "
    r"(?:tanto|tanta|tantos|tantas) \w+|"
    r"\b(?:sufoc\w*|morta|morto|morrendo) de (?:trabalho|servico|estudo|prova|provas|conta|"
    r"contas|tarefa|tarefas|coisa|coisas)\b|"
    # money and queues: "uma hemorragia de dinheiro", "de dar falta de ar", "quase desmaiei
    # quando vi o valor"
    r"\b(?:hemorragia|sangria|sangrando|infarto) de (?:dinheiro|grana|gastos?)\b|"
    r"\bde dar (?:uma |um )?(?:falta de ar|infarto|desmaio|piripaque|treco)\b|"
    r"\b(?:quase )?(?:desmai\w*|morri|infart\w*|tive um (?:treco|infarto))\b "
    r"(?:quando (?:vi|li|olhei|soube)|ao ver|com) (?:o |a )?(?:valor|preco|orcamento|boleto|"
    r"conta|fatura)\b"
)

NEGATIONS = frozenset(
    {"nao", "nunca", "nem", "jamais", "nenhum", "nenhuma", "ninguem", "sem", "nada"}
)
_SCOPE_WORDS = 4  # words after a negation cue that it governs ("nao quero marcar agora")
_SCOPE_STOP = frozenset({"mas", "porem", "so", "apenas", "e", "que", "porque"})

_NOW = (
    r"\b(?:agora|hoje|desde|neste momento|nesse momento|de repente|acabou de|acabei de|"
    r"ainda|continua|continuo|comecou|comecei|esta (?:\w+ndo|com)|estou|estamos|estao|"
    # "(e) tá muito inchado": a state now, after a story in the past ("operei semana passada")
    r"esta (?:muito |tao |bem |mais |todo |toda )?(?:\w+(?:ado|ada|ido|ida)|quente|roxo|roxa|"
    r"vermelh\w*)|"
    r"aumentando|piorando|piorou|nao para|nao passa|faz (?:\d+|uma|um|duas|dois|tres) "
    r"(?:hora|horas|minuto|minutos|dia|dias)|desde ontem|ontem|essa noite|esta noite|"
    r"de madrugada|de manha|a tarde|a noite)\b"
)
_NOW_RE = re.compile(_NOW)
_PAST_RE = re.compile(
    r"\b(?:mes passado|semana passada|ano passado|anos atras|meses atras|semanas atras|"
    r"tempos atras|ha anos|faz anos|faz (?:\d+|uns|umas|muitos|alguns) (?:anos|meses)|"
    r"ha (?:\d+|uns|umas|muitos|alguns) (?:anos|meses)|antigamente|na epoca|naquela epoca|"
    r"quando (?:eu )?(?:era|tinha)|na gravidez passada|na (?:primeira|outra|ultima) gravidez|"
    r"na gestacao (?:passada|anterior)|no meu parto|no parto|no pos parto|"
    r"outra vez que|na adolescencia|na infancia|na juventude|em (?:19|20)\d\d|(?<!de )uma vez|"
    r"ja tive|eu tive|ja fiquei|ja senti|ja passei|ja aconteceu|aconteceu uma vez)\b"
)
# She says it is over: the symptoms of that clause (and of the story before it) are not now.
_RESOLVED_RE = re.compile(
    r"\b(?:ja passou|ja melhorou|ja melhorei|ja parou|ja resolveu|ja resolvi|ja tratei|"
    r"ja sarou|ja sarei|ja curou|ja estou bem|hoje estou (?:bem|otima|otimo|melhor)|"
    r"estou (?:bem|otima|otimo) agora|agora estou (?:bem|otima|otimo)|"
    r"hoje (?:esta|estou) tudo bem|esta tudo bem agora|hoje esta (?:otima|bem|estavel)|"
    r"gracas a deus passou|passou (?:ja|logo)|esta estavel|foi resolvido|"
    # a symptom that went away ("aquele sangramento que falei já sumiu"); "ele já foi embora"
    # (the aggressor left) or "já sumiu" alone say nothing of a symptom
    r"(?:sangramento|sangue|febre|dor|dores|colica|tontura|inchaco|vomito|enjoo|coceira|"
    r"mancha|manchas)(?: \w+){0,5}? (?:ja sumiu|ja estancou|nao voltou)|"
    r"(?<!nao )esta tudo (?:certo|bem|ok|normal|tranquilo))\b"
    # "já passou pro lençol" (soaked through), "já passou pior": not over
    r"(?!\s+(?:pior|mal|ruim|para|pelo|pela|pelos|pelas|no|na|nos|nas|do|da|dos|das|de|em|"
    r"por)\b)"
)
_OTHERS_RE = re.compile(
    r"\b(?:minha (?:mae|filha|irma|avo|sogra|prima|tia|amiga|vizinha|colega|cunhada|sobrinha|"
    r"chefe|cliente)|meu (?:pai|filho|irmao|marido|namorado|avo|tio|primo|amigo|vizinho|"
    r"sobrinho|cachorro|gato|chefe)|uma (?:amiga|colega|conhecida|paciente)|"
    r"um (?:amigo|colega|conhecido)|a mae dela|a filha dela|ela teve|ele teve)\b"
)
# Someone else, but here and now: "minha mãe tá aqui comigo e a boca dela entortou".
_PRESENT_RE = re.compile(
    r"\b(?:comigo|aqui|ao meu lado|do meu lado|agora|neste momento|de repente|acabou de|"
    r"esta (?:\w+ndo|com|sem)|estao (?:\w+ndo|com)|nao (?:consegue|esta conseguindo)|"
    r"esta (?:muito |tao |bem |mais |todo |toda )?(?:\w+(?:ado|ada|ido|ida)|quente|roxo|roxa|"
    r"vermelh\w*)|piorando|aumentando|nao para|nao passa|"
    # her own state now, in a message someone else asked her to send (or the reverse)
    r"estou (?:com|sem|\w+ndo))\b"
)
# An animal's symptoms are not a patient's ("meu cachorro tá vomitando sem parar"), unless she
# speaks of herself in the same sentence ("meu cachorro me mordeu e tô sangrando muito").
_ANIMAL_RE = re.compile(
    r"\b(?:cachorr[oa]|cachorrinh[oa]|gat[oa]|gatinh[oa]|cao|cadela|pet|bichinh[oa]|"
    r"calopsita|papagaio|coelh[oa]|hamster|passarinho)\b"
)
_HERSELF_RE = re.compile(r"\b(?:eu|me|mim|comigo|estou|sinto|senti|tenho|fiquei)\b")
_HYPOTHETICAL_RE = re.compile(
    r"^(?:e |mas |ai )?se\b|\be se\b|\bsera que\b|\bcaso\b|"
    r"\b(?:medo|pavor|receio|preocupada|preocupacao) (?:de|do|da|dos|das|que|com)\b|"
    r"\bpode (?:dar|ter|causar|acontecer|sangrar|doer|provocar)\b|\bcostuma\b|"
    r"\be (?:normal|comum|perigoso|arriscado|grave)\b|\bcorre risco\b|\btem risco\b|"
    r"\bque risco\b|\bquais os riscos\b|\bo risco de\b|\bcaso (?:eu|ela|de)\b|"
    r"\bse (?:por acaso|acontecer)\b|\bhipoteticamente\b|\bem caso de\b|"
    # a habit, not an event ("ele desmaia quando vê sangue", "toda vez que ...")
    r"\bquando (?:\w+ )?(?:ve|ver|vejo|via)\b|\btoda vez que\b|\bsempre que\b"
)
# A question with none of these asks in general ("sangra muito depois de colocar o DIU?").
_FIRST_PERSON_NOW_RE = re.compile(
    r"\b(?:estou|esta|estao|estava|tenho|tive|senti|sinto|comecei|comecou|fiquei|ficou|"
    r"agora|hoje|desde|minha|meu|me|eu|faco|devo|devemos|fazemos|socorro|saio|acordei|"
    r"levantei|percebi|notei|reparei|apareceu|apareceram|surgiu|surgiram)\b"
)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a message and why its symptoms may not count."""

    text: str  # as written
    norm: str  # normalised words
    past: bool  # speaks of the past, not of now
    other: bool  # about someone else who is not here now
    hypothetical: bool  # a general or "what if" question, or a fear of what might happen
    laugh: bool  # laughs or laughing emojis in it
    resolved: bool = False  # she says it is over

    @property
    def discounted(self) -> bool:
        """Whether a symptom in this sentence is not happening now to her or to someone with
        her (a laugh alone never discounts: nervous laughter is common)."""
        return self.past or self.other or self.hypothetical or self.resolved

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, on in (
                ("past", self.past),
                ("other_person", self.other),
                ("hypothetical", self.hypothetical),
                ("resolved", self.resolved),
            )
            if on
        )


def _clean(part: str) -> str:
    """Normalised words without figures of speech ("sangrando de raiva")."""
    return " ".join(FIGURATIVE_RE.sub(" ", normalize(part)).split())


def _units(text: str) -> list[str]:
    """Sentences, cut again at a contrast ("…, mas agora …")."""
    out: list[str] = []
    for match in _SENTENCE_RE.finditer(text):
        out += [part for part in _CONTRAST_RE.split(match.group()) if part.strip()]
    return out


def _sentence(part: str, norm: str, *, resolved: bool = False) -> Sentence:
    now = bool(_NOW_RE.search(norm))
    question = "?" in part
    return Sentence(
        text=part.strip(),
        norm=norm,
        past=bool(_PAST_RE.search(norm)) and not now,
        other=(bool(_OTHERS_RE.search(norm)) and not _PRESENT_RE.search(norm))
        or (bool(_ANIMAL_RE.search(norm)) and not _HERSELF_RE.search(norm)),
        hypothetical=not now
        and (
            bool(_HYPOTHETICAL_RE.search(norm))
            or (question and not _FIRST_PERSON_NOW_RE.search(norm))
        ),
        laugh=bool(_LAUGH_RE.search(part)),
        resolved=resolved,
    )


def sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` with their context markers.

    A sentence saying it is over ("já passou", "hoje tô ótima") is resolved, and so are the
    clauses before it in that sentence and earlier sentences that do not speak of now ("tive
    febre depois do DIU. Já passou"); clauses after it are read on their own ("já passou a
    dor, agora estou sangrando muito" keeps the bleeding).
    """
    out: list[Sentence] = []
    for part in _units(text):
        norm = _clean(part)
        if not norm:
            continue
        if not _RESOLVED_RE.search(norm):
            out.append(_sentence(part, norm))
            continue
        clauses = [clause for clause in part.split(",") if _clean(clause)]
        last = max(i for i, clause in enumerate(clauses) if _RESOLVED_RE.search(_clean(clause)))
        for index, earlier in enumerate(out):
            if not _NOW_RE.search(earlier.norm):
                out[index] = replace(earlier, resolved=True)
        head = ",".join(clauses[: last + 1])
        out.append(_sentence(head, _clean(head), resolved=True))
        tail = ",".join(clauses[last + 1 :])
        if _clean(tail):
            out.append(_sentence(tail, _clean(tail)))
    return out


def negation_scopes(norm_words: list[str]) -> list[bool]:
    """For each normalised word, whether a negation cue governs it.

    A cue ("não", "nunca", "nem", "sem"…) governs up to four following words, stopping at
    "mas", "só", "e"… — "não quero marcar agora, só pesquisando" negates "quero marcar agora".
    """
    marks: list[bool] = []
    left = 0
    for index, word in enumerate(norm_words):
        # "do nada" (out of nowhere) and "de nada" deny nothing
        idiom = word == "nada" and index > 0 and norm_words[index - 1] in ("do", "de")
        if word in NEGATIONS and not idiom:
            left = _SCOPE_WORDS
            marks.append(False)
            continue
        if word in _SCOPE_STOP:
            left = 0
        marks.append(left > 0)
        left = max(0, left - 1)
    return marks


def mark_negations(norm: str) -> str:
    """``norm`` with every word under a negation prefixed ``NEG_`` (a classifier feature)."""
    tokens = norm.split()
    return " ".join(
        f"NEG_{word}" if negated else word
        for word, negated in zip(tokens, negation_scopes(tokens), strict=True)
    )


def without_negated(norm: str) -> str:
    """``norm`` without the words a negation governs (and without the cues)."""
    tokens = norm.split()
    kept = [
        word
        for word, negated in zip(tokens, negation_scopes(tokens), strict=True)
        if not negated and word not in NEGATIONS
    ]
    return " ".join(kept)
