"""A message cut into the things it says: answers, asides and each question on its own.

"nunca usei. vcs tem estacionamento? eu moro longe" is an answer, a question and an aside;
"Quanto custa a consulta e vocês aceitam Unimed?" is two questions, and so is "queria saber se
dói colocar e quanto custa" (an indirect question: "queria saber se…", "será que…").
Sentences end at ``? ! . ;`` or a line break; inside a sentence, a comma or an "e" followed by
words that open a question ("vocês aceitam…", "quanto…", "qual…", "queria saber…") starts a
new part. Pure functions.
"""

from __future__ import annotations

import re

from clinicflow.text import words


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SENTENCE_RE = re.compile(r"[^?!.;\n]+[?!.;\n]*")
# Words that open a question on their own.
_ASKING = _wordset("quanto quanta quantos quantas qual quais onde como quando sera porque qto qtos")
# "vocês …", "tem …", "aceita …": a question when the sentence ends with "?".
_ASKING_SOFT = _wordset(
    "voces vcs voce vc tem aceita aceitam atende atendem faz fazem posso pode podem da "
    "precisa preciso e existe existem"
)
_JOINT_RE = re.compile(r"\s*,\s*(?:e\s+)?|\s+e\s+", re.IGNORECASE)
# An indirect question: "(eu) queria saber (se)…", "gostaria de saber…", "será que…",
# "tenho uma dúvida…", "me diz/fala/explica…" (folded words, at the start of a part); not
# "quero saber sobre…/mais…", which names a subject.
_INDIRECT_RE = re.compile(
    r"^(?:(?:so|eu|mas|ai|entao|tambem|e)\s+)*(?:"
    r"(?:queria|quero|gostaria|gostava|preciso|precisava)\s+(?:de\s+)?(?:saber|entender)|"
    r"sera\s+que|tenho\s+uma\s+duvida|(?:me|pode\s+me|poderia\s+me)\s+"
    r"(?:diz|dizer|fala|falar|explica|explicar|informa|informar|tira|tirar))\b"
    r"(?!\s+(?:sobre|mais|do|da|dos|das|de)\b)"  # "quero saber sobre o DIU" asks nothing
)


_HELLO = frozenset({"oi", "oie", "oii", "ola", "opa", "hey", "alo"})
_TIMES_OF_DAY = frozenset({"dia", "tarde", "noite"})


def _after_hello(tokens: list[str]) -> list[str]:
    """The words after a greeting that opens a clause ("oi quanto custa" → "quanto custa")."""
    while tokens and tokens[0] in _HELLO:
        tokens = tokens[1:]
    if len(tokens) > 1 and tokens[0] in ("bom", "boa") and tokens[1] in _TIMES_OF_DAY:
        tokens = tokens[2:]
    return tokens


def _opens_question(text: str, sentence_asks: bool) -> bool:
    tokens = _after_hello(words(text))
    if not tokens:
        return False
    if tokens[0] in _ASKING or (sentence_asks and tokens[0] in _ASKING_SOFT):
        return True
    return bool(_INDIRECT_RE.match(" ".join(tokens)))


def core(text: str) -> str:
    """What an indirect question asks, without its lead ("queria saber se dói colocar" →
    "dói colocar"); other text as it is."""
    tokens = words(text)
    match = _INDIRECT_RE.match(" ".join(tokens))
    if match is None:
        return text
    rest = " ".join(tokens)[match.end() :].split()
    if rest and rest[0] == "se":
        rest = rest[1:]
    return " ".join(rest) or text


def is_question(text: str) -> bool:
    """Whether a clause asks something ("?" or a question word first)."""
    return "?" in text or _opens_question(text, False)


def split(text: str) -> list[str]:
    """The parts of a message, in order, as written (one part when there is nothing to cut)."""
    parts: list[str] = []
    for match in _SENTENCE_RE.finditer(text[:2000]):
        sentence = match.group()
        if not words(sentence):
            continue
        asks = "?" in sentence
        start = 0
        for joint in _JOINT_RE.finditer(sentence):
            head, rest = sentence[start : joint.start()], sentence[joint.end() :]
            if words(head) and _opens_question(rest, asks):
                parts.append(_question_mark(head.strip(), asks))
                start = joint.end()
        tail = sentence[start:].strip()
        if words(tail):
            parts.append(tail)
    return parts or [text]


def _question_mark(part: str, sentence_asks: bool) -> str:
    """A part cut from a question keeps asking ("quanto custa a consulta" → "…?")."""
    if sentence_asks and _opens_question(part, True) and not part.endswith("?"):
        return part + "?"
    return part


def clause_questions(parts: list[str]) -> list[bool]:
    """For each part of :func:`split`, whether it asks something."""
    return [is_question(part) for part in parts]
