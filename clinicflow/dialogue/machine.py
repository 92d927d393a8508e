"""The script's state machine as a conversation moves through it: entering a state (its
texts, its question, menu, hand-off or end), leaving it by its ``when`` branches or ``next``,
asking again for what a step waits on, and the routing menu.
"""

from __future__ import annotations

from clinicflow import slots as slot_values
from clinicflow.dialogue.conversation import ROUTING, Conversation
from clinicflow.dialogue.handoff import Desk
from clinicflow.dialogue.turn import Turn
from clinicflow.dialogue.voice import Voice
from clinicflow.flow import Flow
from clinicflow.model import Script, State

MAX_HOPS = 25  # automatic transitions in one turn before the bot gives up (lint finds loops)


class Machine:
    """Moves a conversation through its script's states (shared, read-only)."""

    def __init__(self, voice: Voice, desk: Desk, flows: dict[str, Flow]) -> None:
        self.voice = voice
        self.desk = desk
        self.flows = flows  # by digest, every version still referenced

    def select(self, conv: Conversation, turn: Turn, script: Script) -> None:
        """Put the conversation on ``script`` (keeping slots it shares) without entering it."""
        previous = conv.script_id
        conv.script_id, conv.digest, conv.version = script.id, script.digest, script.version
        conv.attempts = {}
        conv.repairs = 0
        conv.slots = {k: v for k, v in conv.slots.items() if script.slot(k) is not None}
        conv.told = [name for name in conv.told if name in conv.slots]
        if previous and previous != script.id:
            turn.event("script_switched", **{"from": previous, "to": script.id})
        turn.event("script_entered", script=script.id, version=script.version)

    def enter(self, conv: Conversation, turn: Turn, name: str, hops: int = 0) -> None:
        script = self.voice.script_of(conv)
        assert script is not None
        if hops > MAX_HOPS:
            self.desk.hand_off(conv, turn, "not_understood", note="loop")
            return
        previous = conv.state
        conv.state = name
        if previous != name:
            turn.event("state_changed", **{"from": previous, "to": name})
        state = script.state(name)
        for template in state.say:
            self.voice.say(conv, turn, template)
        if state.handoff:
            self.desk.hand_off(conv, turn, state.handoff, announce=not state.say, resume=previous)
            return
        if state.end:
            self.close(conv, turn, "end")
            return
        if state.collect:
            if conv.slots.get(state.collect) is not None:
                self.confirm_told(conv, turn, script, state.collect)
                self.leave(conv, turn, state, hops)
            else:
                conv.attempts[state.collect] = 0
                slot = script.slot(state.collect)
                if slot is not None:
                    self.voice.ask(conv, turn, slot)
            return
        if state.menu:
            self.voice.show_menu(conv, turn, state)
            return
        self.leave(conv, turn, state, hops)

    def confirm_told(self, conv: Conversation, turn: Turn, script: Script, name: str) -> None:
        """A question she answered before it was asked is confirmed, not asked."""
        if name not in conv.told:
            return
        conv.told = [n for n in conv.told if n != name]
        slot = script.slot(name)
        if slot is not None and slot.type != "name":  # the next step greets her by name
            shown = slot_values.display(slot, conv.slots[name])
            self.voice.say(conv, turn, self.voice.text("already_told"), valor=shown)
            turn.event("slot_confirmed", slot=name)

    def leave(self, conv: Conversation, turn: Turn, state: State, hops: int) -> None:
        """Take the state's automatic way out (``when`` branches, then ``next``), if any."""
        assert conv.digest is not None
        target = self.flows[conv.digest].fire(state.name, "advance", conv.slots)
        if target is not None:
            self.enter(conv, turn, target, hops + 1)

    def reprompt(self, conv: Conversation, turn: Turn) -> None:
        """Ask again for what the current step is waiting for."""
        script = self.voice.script_of(conv)
        if conv.state == ROUTING or script is None or conv.state is None:
            self.routing_menu(conv, turn, intro=False)
            return
        state = script.state(conv.state)
        if state.collect:
            slot = script.slot(state.collect)
            # An answer already given is not asked again (after a hand-back, say).
            if slot is not None and conv.slots.get(slot.name) is None:
                self.voice.ask(conv, turn, slot)
        elif state.menu:
            self.voice.show_menu(conv, turn, state)
        elif state.say and state.on:
            self.voice.say(conv, turn, state.say[-1])

    def routing_menu(self, conv: Conversation, turn: Turn, intro: bool = True) -> None:
        conv.state = ROUTING
        if intro:
            self.voice.introduce(conv, turn)
        self.voice.routing_menu(conv, turn)

    def close(self, conv: Conversation, turn: Turn, why: str) -> None:
        conv.status = "closed"
        turn.event("closed", reason=why)
