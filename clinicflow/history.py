"""The rows one turn (or one out-of-turn change) writes to the history tables.

Pure functions from the conversation state and the :class:`~clinicflow.dialogue.Turn` to
:class:`~clinicflow.storage.Row` values; the engine writes them in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clinicflow.clock import iso
from clinicflow.dialogue import Conversation, Turn
from clinicflow.llm import LLMCall
from clinicflow.model import Script
from clinicflow.storage import Row

MAX_STORED = 20000  # characters of an inbound message kept in the history


def turn_rows(
    conv: Conversation,
    turn: Turn,
    script: Script | None,
    handoff: Mapping[str, Any] | None,
    *,
    inbound: bool = True,
) -> list[Row]:
    """Everything a turn writes: the messages both ways, events, understanding and LLM
    calls, the hand-off (if any) and the conversation and lead rows.

    ``inbound=False`` for out-of-turn changes (hand-back, follow-up, close): no inbound
    message and no understanding row.
    """
    now = iso(turn.now)
    chat = turn.chat_id
    where = {"script_id": conv.script_id or "", "state": conv.state or ""}
    rows: list[Row] = []
    if inbound:
        rows.append(
            Row(
                "messages",
                {
                    "chat_id": chat,
                    "direction": "in",
                    "text": turn.text[:MAX_STORED],
                    "kind": turn.meta.get("kind", "text"),
                    "channel_message_id": turn.meta.get("message_id"),
                    **where,
                    "at": now,
                },
            )
        )
    kind = turn.meta.get("out_kind", "text")
    rows += [
        Row(
            "messages",
            {"chat_id": chat, "direction": "out", "text": reply, "kind": kind, **where, "at": now},
        )
        for reply in turn.replies
    ]
    rows += [event_row(chat, event.type, event.data, where, now) for event in turn.events]
    u = turn.understanding
    if inbound and u is not None:
        rows.append(
            Row(
                "understanding",
                {
                    "chat_id": chat,
                    "source": u.source,
                    "intent": u.intent,
                    "confidence": round(u.confidence, 4),
                    "purpose": "understand",
                    "at": now,
                },
            )
        )
    rows += [llm_call_row(chat, call, now) for call in turn.llm_calls]
    if handoff is not None:
        rows.append(Row("handoffs", dict(handoff)))
    rows.append(Row("conversations", conversation_row(conv, chat, script, now)))
    rows.append(Row("leads", lead_row(conv, chat, now)))
    return rows


def event_row(
    chat: str, type_: str, data: Mapping[str, Any], where: Mapping[str, str], at: str
) -> Row:
    """One ``events`` row; ``where`` holds the conversation's ``script_id`` and ``state``."""
    return Row(
        "events",
        {
            "chat_id": chat,
            "type": type_,
            "script_id": where.get("script_id") or "",
            "state": where.get("state") or "",
            "data": json.dumps(data, ensure_ascii=False, default=str),
            "at": at,
        },
    )


def llm_call_row(chat: str, call: LLMCall, at: str) -> Row:
    """One ``understanding`` row for an LLM call (model, tokens, ms, outcome)."""
    return Row(
        "understanding",
        {
            "chat_id": chat,
            "source": "llm",
            "purpose": call.purpose,
            "model": call.model,
            "outcome": call.outcome,
            "tokens_in": call.tokens_in,
            "tokens_out": call.tokens_out,
            "ms": round(call.ms, 2),
            "at": at,
        },
    )


def _campaign(origin: str | None) -> str | None:
    return origin if origin not in (None, "", "organic", "ad_referral", "staff") else None


def conversation_row(
    conv: Conversation, chat: str, script: Script | None, now: str
) -> dict[str, Any]:
    """The ``conversations`` row: the state as the staff and reports read it."""
    slots = conv.slots
    name = ""
    if script is not None:
        name_slot = next((s.name for s in script.slots if s.type == "name"), None)
        name = str(slots.get(name_slot, "")) if name_slot else ""
    return {
        "chat_id": chat,
        "script_id": conv.script_id,
        "script_version": conv.version,
        "script_digest": conv.digest,
        "state": conv.state,
        "status": conv.status,
        "lead_status": conv.lead_status,
        "score": conv.score,
        "slots": json.dumps(slots, ensure_ascii=False),
        "patient_name": name or conv.push_name or "",
        "origin": conv.origin or None,
        "campaign_id": _campaign(conv.origin),
        "opted_out": int(conv.opted_out),
        "handoff_reason": conv.handoff_reason,
        "urgent": int(conv.urgent),
        "lost_reason": conv.lost_reason,
        "turns": conv.turns,
        "follow_ups_sent": conv.follow_ups_sent,
        "started_at": conv.started_at or None,
        "updated_at": now,
        "last_inbound_at": conv.last_inbound_at,
        "last_outbound_at": conv.last_outbound_at,
    }


def lead_row(conv: Conversation, chat: str, now: str) -> dict[str, Any]:
    """The ``leads`` row, with the time each lead status was first reached."""
    times = conv.lead_times
    return {
        "chat_id": chat,
        "status": conv.lead_status,
        "score": conv.score,
        "script_id": conv.script_id,
        "campaign_id": _campaign(conv.origin),
        "lost_reason": conv.lost_reason,
        "engaged_at": times.get("engaged"),
        "qualified_at": times.get("qualified"),
        "handed_off_at": times.get("handed_off"),
        "scheduled_at": times.get("scheduled"),
        "lost_at": times.get("lost"),
        "updated_at": now,
    }
