"""What the staff can do to a conversation, from the staff API or by WhatsApp.

The clinic's staff (``staff`` in clinic.yaml) may send commands to the clinic's own WhatsApp
number, from any of their ids (the phone with or without Brazil's ninth digit, or an
``@lid`` WhatsApp resolves to that phone)::

    #devolver 5511999990001    hand the chat back to the bot (it resumes where it paused)
    #encerrar 5511999990001    close the conversation
    #agendado 5511999990001    mark the lead as scheduled
    #ajuda                     list the commands

With staff accounts (``clinicflow staff add``), a command acts as the person whose phone sent
it: it is recorded under her name, and a secretary acts only on her conversations and the
unassigned queue. A phone listed in clinic.yaml without an account acts as before, on any
conversation.

The number may be written in any usual way (``+55 (11) 99999-0001``, ``11 99999-0001`` with
the clinic's country, with or without the ninth digit) or as a chat id (``...@c.us``,
``...@lid``); the patient is found under whichever id she wrote from. The ``#`` may be left
out. The staff member gets a one-line confirmation.

Any other message from a staff member ("Bom dia, chego 8h15 hoje") is never handled as a
patient's: it is kept in the inbox and the bot stays silent (the clinic's phone is read by
people, and a robot answering every note among colleagues would be noise).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from clinicflow.clock import iso
from clinicflow.errors import ConversationError
from clinicflow.inbox import InboxItem
from clinicflow.outbox import OutMessage
from clinicflow.phones import (
    chat_id_forms,
    display_phone,
    parse_phone,
    phone_of_chat_id,
    well_formed_chat_id,
)
from clinicflow.runner.metrics import log_event
from clinicflow.staff.desk import SYSTEM, Actor, DeskError
from clinicflow.staff.transcript import record_human_message

if TYPE_CHECKING:
    from clinicflow.runner.processor import Processor

ACTIONS = {"devolver": "handback", "encerrar": "close", "agendado": "scheduled"}
HELP = (
    "Comandos: #devolver <número> (devolve ao robô), #encerrar <número> (encerra), "
    "#agendado <número> (marca como agendado)."
)
_HELP_WORDS = ("ajuda", "comandos", "help")
_DONE = {
    "handback": "✅ Conversa {chat} devolvida ao robô.",
    "close": "✅ Conversa {chat} encerrada.",
    "scheduled": "✅ Conversa {chat} marcada como agendada.",
}


def is_command(text: str) -> bool:
    """True when a staff message is a command: it starts with ``#``, or with a command word
    (``devolver 11 99999-0001``, ``ajuda``)."""
    stripped = text.strip()
    if stripped.startswith("#"):
        return True
    words = stripped.split(None, 1)
    first = words[0].lstrip("/!").rstrip(":").lower() if words else ""
    return first in ACTIONS or (first in _HELP_WORDS and len(words) == 1)


def _verb(text: str) -> tuple[str, str]:
    words = text.strip().split(None, 1)
    verb = words[0].lstrip("#/!").rstrip(":").lower() if words else ""
    return verb, words[1] if len(words) > 1 else ""


class StaffCommands:
    """Staff actions on conversations, with their replies routed through the outbox."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    def target_chat(self, arg: str) -> str | None:
        """The conversation a command names: the identity of the person with that phone or
        chat id (any form), else the chat id the words spell; None if they spell nothing."""
        engine = self.processor.engine
        arg = arg.strip()
        found = self.processor.identities.find(arg, engine.catalog.clinic.country)
        if found is not None:
            return found
        if "@" in arg:
            return arg if well_formed_chat_id(arg) else None
        phone = parse_phone(arg, engine.catalog.clinic.country)
        return f"{phone}@c.us" if phone else None

    async def act(
        self,
        action: str,
        chat_id: str,
        actor: Actor = SYSTEM,
        *,
        appointment_at: datetime | None = None,
    ) -> list[OutMessage] | None:
        """Run ``handback``, ``close`` or ``scheduled`` on a chat, as ``actor``.

        Returns:
            The messages to send (the bot's words after a hand-back), for the caller to
            :meth:`Processor.commit`; None when the chat has no conversation.

        Raises:
            DeskError: a secretary acting on a conversation that is not hers nor queued.
        """
        engine = self.processor.engine
        desk = self.processor.desk
        if desk is not None:
            if engine.store.conversation(chat_id) is None:
                return None
            desk.before(actor, chat_id)
        data: dict[str, object] = {}
        try:
            if action == "handback":
                result = await engine.change("hand_back", chat_id)
                out = self.processor.messages_for(result, None)
            elif action == "close":
                await engine.change("close", chat_id)
                out = []
            elif action == "scheduled":
                await engine.change("mark_scheduled", chat_id, appointment_at)
                data = {"appointment_at": iso(appointment_at)} if appointment_at else {}
                out = []
            else:
                raise ValueError(f"unknown staff action {action!r}")
        except ConversationError:
            return None
        if desk is not None:
            desk.after(actor, chat_id, action, **data)
        log_event("staff_action", action=action, chat=self.processor.alias(chat_id),
                  via=actor.via)  # fmt: skip
        return out

    async def reply(self, actor: Actor, chat_id: str, text: str) -> OutMessage | None:
        """A person of the clinic writes to the patient: through the outbox, as a human
        message, and the bot pauses in that chat as when the clinic's phone answers.

        Returns:
            The outbox row (already committed), or None when the chat has no conversation.

        Raises:
            DeskError: not hers to answer.
        """
        processor = self.processor
        engine = processor.engine
        if engine.store.conversation(chat_id) is None:
            return None
        if processor.desk is not None:
            processor.desk.before(actor, chat_id)
        processor.record_human(chat_id)
        await engine.change("take_over", chat_id)
        now = iso(engine.clock.now())
        await asyncio.to_thread(record_human_message, engine.store, chat_id, text, now)
        to = processor.identities.reply_to(chat_id)
        message = OutMessage(to, text, "human", "human:" + secrets.token_hex(8))
        processor.commit((), [message])
        if processor.desk is not None:
            processor.desk.after(actor, chat_id, "reply", chars=len(text))
        log_event("staff_reply", chat=processor.alias(chat_id), via=actor.via)
        return message

    def actor_of(self, staff_chat: str) -> Actor:
        """Who sent a WhatsApp command: her account (by any form of her phone), else the
        clinic.yaml staff entry, else an unnamed member of the staff."""
        phone = self.processor.identities.phone_of(staff_chat) or phone_of_chat_id(staff_chat)
        desk = self.processor.desk

        def same(candidate: str | None) -> bool:
            if not candidate:
                return False
            return candidate == phone or staff_chat in chat_id_forms(candidate)

        if desk is not None:
            for account in desk.accounts.active():
                if same(account.phone):
                    return Actor.of(account, "whatsapp")
        for staff in self.processor.engine.catalog.clinic.staff:
            if same(staff.phone):
                return Actor(staff.name, "admin", via="whatsapp", phone=staff.phone)
        return Actor("equipe", "admin", via="whatsapp", phone=phone)

    async def run(self, staff_chat: str, unit: Sequence[InboxItem]) -> None:
        """Execute a WhatsApp command from a staff member and confirm it to them."""
        verb, arg = _verb(unit[0].text)
        action = ACTIONS.get(verb)
        target = self.target_chat(arg) if action and arg else None
        out: list[OutMessage] | None = []
        if action is None or target is None:
            reply = HELP
        else:
            try:
                out = await self.act(action, target, self.actor_of(staff_chat))
            except DeskError as exc:
                out, reply = [], f"❌ {exc}"
            else:
                if out is not None:
                    reply = _DONE[action].format(chat=self._shown(target))
                else:
                    reply = f"❌ Não encontrei conversa com {self._shown(target)}."
        batch_id = unit[0].message_id
        to = self.processor.identities.reply_to(staff_chat)
        ack = OutMessage(to, reply, "staff_ack", batch_id, (unit[0].message_id,))
        self.processor.commit(unit, [*(out or []), ack])

    def _shown(self, chat_id: str) -> str:
        """How the staff recognise the patient: her phone when known, else the id's digits."""
        phone = self.processor.identities.phone_of(chat_id) or phone_of_chat_id(chat_id)
        return display_phone(phone) if phone else chat_id.split("@")[0]


__all__ = ["ACTIONS", "HELP", "StaffCommands", "is_command"]
