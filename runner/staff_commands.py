"""What the staff can do to a conversation, from the staff API or by WhatsApp.

The clinic's staff (``staff`` in clinic.yaml) may send commands to the clinic's own WhatsApp
number, from any of their ids (the phone with or without Brazil's ninth digit, or an
``@lid`` WhatsApp resolves to that phone)::

    #devolver 5511999990001    hand the chat back to the bot (it resumes where it paused)
    #encerrar 5511999990001    close the conversation
    #agendado 5511999990001    mark the lead as scheduled
    #ajuda                     list the commands

The number may be written in any usual way (``+55 (11) 99999-0001``, ``11 99999-0001`` with
the clinic's country, with or without the ninth digit) or as a chat id (``...@c.us``,
``...@lid``); the patient is found under whichever id she wrote from. The ``#`` may be left
out. The staff member gets a one-line confirmation.

Any other message from a staff member ("Bom dia, chego 8h15 hoje") is never handled as a
patient's: it is kept in the inbox and the bot stays silent (the clinic's phone is read by
people, and a robot answering every note among colleagues would be noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from clinicflow.errors import ConversationError
from clinicflow.inbox import InboxItem
from clinicflow.outbox import OutMessage
from clinicflow.phones import display_phone, parse_phone, phone_of_chat_id, well_formed_chat_id
from runner.metrics import log_event

if TYPE_CHECKING:
    from runner.processor import Processor

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

    async def act(self, action: str, chat_id: str) -> list[OutMessage] | None:
        """Run ``handback``, ``close`` or ``scheduled`` on a chat.

        Returns:
            The messages to send (the bot's words after a hand-back), for the caller to
            :meth:`Processor.commit`; None when the chat has no conversation.
        """
        engine = self.processor.engine
        try:
            if action == "handback":
                result = await engine.change("hand_back", chat_id)
                out = self.processor.messages_for(result, None)
            elif action == "close":
                await engine.change("close", chat_id)
                out = []
            elif action == "scheduled":
                await engine.change("mark_scheduled", chat_id)
                out = []
            else:
                raise ValueError(f"unknown staff action {action!r}")
        except ConversationError:
            return None
        log_event("staff_action", action=action, chat=self.processor.alias(chat_id))
        return out

    async def run(self, staff_chat: str, unit: Sequence[InboxItem]) -> None:
        """Execute a WhatsApp command from a staff member and confirm it to them."""
        verb, arg = _verb(unit[0].text)
        action = ACTIONS.get(verb)
        target = self.target_chat(arg) if action and arg else None
        out: list[OutMessage] | None = []
        if action is None or target is None:
            reply = HELP
        elif (out := await self.act(action, target)) is not None:
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
