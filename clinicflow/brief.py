"""The hand-off brief: what the secretary reads to act in ten seconds.

Composed from the conversation (slots, events, last messages); with Gemini configured the
summary lines may be generated and checked (see :mod:`clinicflow.gemini`). A brief never shows
internal ids, state names or scores: only what a person at the front desk needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clinicflow import slots as slot_values
from clinicflow.model import Clinic, Script
from clinicflow.phones import display_phone, phone_of_chat_id
from clinicflow.understanding.safety import CALL_FOR_HELP
from clinicflow.understanding.signs import SIGNS

if TYPE_CHECKING:
    from clinicflow.dialogue import Conversation

REASON_LABELS = {
    "schedule": "quer agendar",
    "human_request": "pediu para falar com uma pessoa",
    "urgent": "URGENTE: relatou sintomas de alerta",
    "complaint": "reclamação",
    "not_understood": "o assistente não conseguiu entender",
    "data_request": "pedido sobre os dados pessoais dela (LGPD): ver, corrigir ou apagar",
    "voice_note": "mandou um áudio que o assistente não consegue ouvir: ouça o áudio",
    "other": "outro motivo",
}

#: What each emergency category means, for the secretary (the built-in signs and the model
#: name a category; the catalog's own red flags have their own description).
CATEGORY_LABELS = {
    "bleeding": "Sangramento intenso",
    "fever_infection": "Febre ou sinais de infecção",
    "severe_pain": "Dor forte",
    "breathing_allergy": "Falta de ar ou reação alérgica",
    "stroke": "Sinais de AVC (rosto torto, fala enrolada, fraqueza de um lado)",
    "chest_pain": "Dor no peito",
    "thrombosis": "Sinais de trombose (perna inchada, vermelha, dolorida)",
    "fainting": "Desmaio ou tontura forte",
    "self_harm": "Risco de autolesão / suicídio",
    "pregnancy": "Gravidez com dor ou sangramento",
    "wound": "Problema na ferida da cirurgia",
    "violence": "Violência (agressão, ameaça ou abuso)",
    "dehydration": "Vômitos / desidratação",
}
_OTHER_FLAGS = {
    CALL_FOR_HELP: "Pediu socorro / disse que é urgente (sem dizer o quê)",
    "urgent": "Sinais de alerta sem categoria identificada (ler as mensagens)",
}
_SIGN_CATEGORY = {sign.id: sign.category for sign in SIGNS}


@dataclass(frozen=True)
class Asked:
    """What she asked for, wherever she said it: a period, a day, questions left open."""

    period: str = ""
    when: str = ""
    questions: tuple[str, ...] = ()

    @classmethod
    def of(cls, conv: Conversation, script: Script | None) -> Asked:
        period = conv.period or ""
        if script is not None:
            slot = next((s for s in script.slots if s.type == "period"), None)
            if slot is not None and conv.slots.get(slot.name) is not None:
                period = str(conv.slots[slot.name])
        return cls(period=period, when=conv.when or "", questions=tuple(conv.questions))


@dataclass(frozen=True)
class Brief:
    """The structured brief; :meth:`text` is what is sent to the staff on WhatsApp."""

    patient_name: str
    phone: str
    procedure: str
    reason: str
    urgent: bool
    red_flags: tuple[str, ...]
    collected: tuple[tuple[str, str], ...]
    summary: str
    last_messages: tuple[str, ...]
    period: str = ""  # the period she prefers (manhã, tarde, noite, qualquer)
    when: str = ""  # her words for the day ("semana que vem", "amanhã")
    questions: tuple[str, ...] = ()  # what she asked that the assistant could not answer

    def text(self) -> str:
        head = "🚨 *URGENTE* — " if self.urgent else ""
        lines = [
            f"{head}*Nova conversa para a recepção*",
            f"Paciente: {self.patient_name}",
            f"WhatsApp: {self.phone}",
            f"Assunto: {self.procedure}",
            f"Motivo: {REASON_LABELS.get(self.reason, self.reason)}",
        ]
        if self.red_flags:
            lines.append("Sinais de alerta: " + "; ".join(self.red_flags))
        wants = [w for w in (self.period, self.when) if w]
        if wants:
            lines.append("Prefere: " + ", ".join(wants))
        if self.collected:
            lines.append("Informações: " + "; ".join(f"{k}: {v}" for k, v in self.collected))
        if self.questions:
            lines.append("Perguntas sem resposta: " + "; ".join(self.questions))
        lines.append(f"Resumo: {self.summary}")
        if self.last_messages:
            lines.append("Últimas mensagens:")
            lines.extend(f"  {line}" for line in self.last_messages)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient_name": self.patient_name,
            "phone": self.phone,
            "procedure": self.procedure,
            "reason": self.reason,
            "urgent": self.urgent,
            "red_flags": list(self.red_flags),
            "collected": dict(self.collected),
            "summary": self.summary,
            "last_messages": list(self.last_messages),
            "period": self.period,
            "when": self.when,
            "questions": list(self.questions),
        }


def phone_of(chat_id: str, phone: str | None = None) -> str:
    """A readable phone number: ``phone`` when known, else the one in a ``@c.us`` chat id."""
    digits = phone or phone_of_chat_id(chat_id)
    if digits:
        return display_phone(digits)
    return "não disponível (contato sem número visível)"


def compose(
    *,
    chat_id: str,
    clinic: Clinic,
    script: Script | None,
    slots: Mapping[str, Any],
    reason: str,
    urgent: bool,
    red_flags: Sequence[str],
    messages: Sequence[Mapping[str, Any]],
    push_name: str | None = None,
    summary: str | None = None,
    phone: str | None = None,
    asked: Asked | None = None,
    category: str | None = None,
) -> Brief:
    """The brief of a conversation being handed off (``phone``: her number when the chat id
    does not show it, e.g. an ``@lid`` whose number WhatsApp revealed; ``asked``: the period,
    day and open questions she asked for; ``category``: the emergency category of an urgent
    hand-off, shown when no red flag names it)."""
    asked = asked or Asked()
    collected: list[tuple[str, str]] = []
    name = ""
    if script is not None:
        for slot in script.slots:
            value = slots.get(slot.name)
            if value is None:
                continue
            shown = slot_values.display(slot, value)
            if slot.type == "name" and not name:
                name = shown
                continue
            collected.append((slot.name.replace("_", " "), shown))
    flag_text = tuple(_flag_descriptions(clinic, script, red_flags, category if urgent else None))
    if urgent and not flag_text:
        flag_text = (_OTHER_FLAGS["urgent"],)
    procedure = script.title if script else "ainda não escolhido"
    last = tuple(
        f"{'Paciente' if m['direction'] == 'in' else 'Assistente'}: {_clip(m['text'])}"
        for m in messages[-6:]
    )
    return Brief(
        patient_name=name or push_name or "não informado",
        phone=phone_of(chat_id, phone),
        procedure=procedure,
        reason=reason,
        urgent=urgent,
        red_flags=flag_text,
        collected=tuple(collected),
        summary=summary or local_summary(procedure, reason, urgent, flag_text, collected, messages),
        last_messages=last,
        period=asked.period,
        when=asked.when,
        questions=asked.questions,
    )


def local_summary(
    procedure: str,
    reason: str,
    urgent: bool,
    flags: Sequence[str],
    collected: Sequence[tuple[str, str]],
    messages: Sequence[Mapping[str, Any]],
) -> str:
    """Two or three plain lines built from the facts, used without Gemini."""
    parts = [f"Conversa sobre {procedure}; {REASON_LABELS.get(reason, reason)}."]
    if urgent and flags:
        parts.append("Relatou: " + ", ".join(flags) + ". Orientada a procurar atendimento.")
    if collected:
        parts.append("Já informou " + ", ".join(k for k, _ in collected) + ".")
    last_in = next((m["text"] for m in reversed(messages) if m["direction"] == "in"), "")
    if last_in:
        parts.append(f'Última mensagem: "{_clip(last_in, 120)}"')
    return " ".join(parts[:3])


def _flag_descriptions(
    clinic: Clinic, script: Script | None, ids: Sequence[str], category: str | None = None
) -> list[str]:
    """What the red flags mean, once each: a catalog flag's description, a built-in sign's
    or a category's label; anything else (Gemini's words for a symptom) as it is."""
    flags = {flag.id: flag for flag in clinic.red_flags}
    if script is not None:
        flags.update({flag.id: flag for flag in script.red_flags})
    out: list[str] = []
    for i in ids:
        if i in flags:
            out.append(flags[i].description or flags[i].phrases[0])
        elif i in _SIGN_CATEGORY:
            out.append(CATEGORY_LABELS[_SIGN_CATEGORY[i]])
        elif i in CATEGORY_LABELS:
            out.append(CATEGORY_LABELS[i])
        elif i in _OTHER_FLAGS:
            out.append(_OTHER_FLAGS[i])
        elif i.strip():
            out.append(i.strip())
    if category in CATEGORY_LABELS and not any(CATEGORY_LABELS[category] == text for text in out):
        covered = {flags[i].category for i in ids if i in flags} | {
            _SIGN_CATEGORY.get(i) for i in ids
        }
        if category not in covered:
            out.append(CATEGORY_LABELS[category])
    if "urgent" in ids and len(out) > 1:
        out.remove(_OTHER_FLAGS["urgent"])
    return list(dict.fromkeys(out))


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
