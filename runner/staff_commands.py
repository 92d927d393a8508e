"""What the staff can do to a conversation, from the staff API or by WhatsApp.

The clinic's staff numbers (``staff`` in clinic.yaml) may send commands to the clinic's own
WhatsApp number; any other message from them is treated like a patient's::

    #devolver 5511999990001    hand the chat back to the bot (it resumes where it paused)
    #encerrar 5511999990001    close the conversation
    #agendado 5511999990001    mark the lead as scheduled
    #ajuda                     list the commands

The number may be written with spaces, dashes or a leading ``+``; a full chat id
(``...@c.us`` or ``...@lid``) works too. The staff member gets a one-line confirmation.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clinicflow.errors import ConversationError
from clinicflow.inbox import InboxItem
from clinicflow.outbox import OutMessage
from runner.metrics import log_event

if TYPE_CHECKING:
    from runner.processor import Processor

ACTIONS = {"devolver": "handback", "encerrar": "close", "agendado": "scheduled"}
HELP = (
    "Comandos: #devolver <número> (devolve ao robô), #encerrar <número> (encerra), "
    "#agendado <número> (marca como agendado)."
)
_DONE = {
    "handback": "✅ Conversa {chat} devolvida ao robô.",
    "close": "✅ Conversa {chat} encerrada.",
    "scheduled": "✅ Conversa {chat} marcada como agendada.",
}


def staff_chat_ids(phones: Sequence[str]) -> frozenset[str]:
    """The chat ids staff write from (``<digits>@c.us``)."""
    return frozenset(re.sub(r"\D", "", phone) + "@c.us" for phone in phones if phone)


def is_command(text: str) -> bool:
    """True when a staff message is a command (starts with ``#``)."""
    return text.lstrip().startswith("#")


def target_chat(arg: str) -> str | None:
    """The chat id a command names: a full chat id, or a phone number in any spelling."""
    arg = arg.strip()
    if "@" in arg:
        return arg
    digits = re.sub(r"\D", "", arg)
    return f"{digits}@c.us" if len(digits) >= 8 else None


class StaffCommands:
    """Staff actions on conversations, with their replies routed through the outbox."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    async def act(self, action: str, chat_id: str) -> list[OutMessage] | None:
        """Run ``handback``, ``close`` or ``scheduled`` on a chat.

        Returns:
            The messages to send (the bot's words after a hand-back), for the caller to
            :meth:`Processor.commit`; None when the chat has no conversation.
        """
        engine = self.processor.engine
        try:
            if action == "handback":
                result = await asyncio.to_thread(engine.hand_back, chat_id)
                out = self.processor.messages_for(result, None)
            elif action == "close":
                await asyncio.to_thread(engine.close, chat_id)
                out = []
            elif action == "scheduled":
                await asyncio.to_thread(engine.mark_scheduled, chat_id)
                out = []
            else:
                raise ValueError(f"unknown staff action {action!r}")
        except ConversationError:
            return None
        log_event("staff_action", action=action, chat=chat_id)
        return out

    async def run(self, staff_chat: str, unit: Sequence[InboxItem]) -> None:
        """Execute a WhatsApp command from a staff number and confirm it to them."""
        words = unit[0].text.strip().split(None, 1)
        verb = words[0].lstrip("#").lower() if words else ""
        action = ACTIONS.get(verb)
        target = target_chat(words[1]) if action and len(words) > 1 else None
        out: list[OutMessage] | None = []
        if action is None or target is None:
            reply = HELP
        elif (out := await self.act(action, target)) is not None:
            reply = _DONE[action].format(chat=target.split("@")[0])
        else:
            reply = f"❌ Não encontrei conversa com {target.split('@')[0]}."
        batch_id = unit[0].message_id
        ack = OutMessage(staff_chat, reply, "staff_ack", batch_id, (unit[0].message_id,))
        self.processor.commit(unit, [*(out or []), ack])


__all__ = ["ACTIONS", "HELP", "StaffCommands", "is_command", "staff_chat_ids", "target_chat"]
