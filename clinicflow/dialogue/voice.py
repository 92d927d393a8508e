"""What the patient reads: the catalog's texts rendered with the conversation's slot values.

Every reply goes through :meth:`Voice.say` (:func:`clinicflow.templates.render`, slots shown
as a patient reads them); questions, menus and the routing menu are laid out here too.
"""

from __future__ import annotations

from typing import Any

from clinicflow import slots as slot_values
from clinicflow.dialogue.conversation import Conversation
from clinicflow.dialogue.turn import Turn
from clinicflow.model import Catalog, Script, Slot, State
from clinicflow.templates import render
from clinicflow.understanding.safety import guidance_key

# Texts a catalog may leave out: the bundled wording stands in.
DEFAULT_TEXTS = {
    "corrected": "Certo, corrigi: {correcao} 😊",
    "already_told": "Anotei o que você já tinha me contado: {valor} 😊",
    "date_noted": "Anotei: {quando} 😊",
    "while_waiting": "Até lá, eu respondo por aqui dúvidas sobre valores, endereço, horários e "
    "preparo; o agendamento e o resto ficam com a secretária.",
}


class Voice:
    """Renders and says the catalog's texts (shared, read-only)."""

    def __init__(self, catalog: Catalog, scripts: dict[str, Script]) -> None:
        self.catalog = catalog
        self.clinic = catalog.clinic
        self.scripts = scripts  # by digest, every version still referenced
        self._facts = dict(self.clinic.facts)
        self._facts.setdefault("nome", self.clinic.name)

    def script_of(self, conv: Conversation) -> Script | None:
        return self.scripts.get(conv.digest) if conv.digest else None

    def text(self, key: str) -> str:
        """A clinic text (KeyError when the catalog has none and there is no default)."""
        try:
            return self.clinic.text(key)
        except KeyError:
            if key in DEFAULT_TEXTS:
                return DEFAULT_TEXTS[key]
            raise

    def say(self, conv: Conversation, turn: Turn, template: str, **extra: str) -> None:
        script = self.script_of(conv)
        values: dict[str, str] = dict(extra)
        if script is not None:
            for name, value in conv.slots.items():
                slot = script.slot(name)
                if slot is not None and value is not None:
                    values[name] = slot_values.display(slot, value)
        text = render(template, values, self._facts).strip()
        if text:
            turn.replies.append(text)

    def shown(self, script: Script | None, name: str, value: Any) -> str:
        slot = script.slot(name) if script is not None else None
        return slot_values.display(slot, value) if slot is not None else str(value)

    def guidance(self, base: str, category: str | None) -> str:
        """The clinic's ``<base>_<category>`` text when it has one, else ``<base>``."""
        return self.text_or(guidance_key(category, base), base)

    def text_or(self, key: str, fallback: str) -> str:
        """The clinic's text ``key`` when it has one, else ``fallback``'s."""
        try:
            return self.clinic.text(key)
        except KeyError:
            return self.text(fallback)

    def ask(self, conv: Conversation, turn: Turn, slot: Slot) -> None:
        """Ask for a slot; a choice lists its options with numbers, like a menu."""
        text = slot.ask
        if slot.type == "choice" and slot.options:
            text += "\n" + "\n".join(
                f"{n}. {option.label}" for n, option in enumerate(slot.options, start=1)
            )
        self.say(conv, turn, text)

    def show_menu(self, conv: Conversation, turn: Turn, state: State) -> None:
        assert state.menu is not None
        lines = [state.menu.prompt] if state.menu.prompt else []
        lines += [f"{n}. {item.label}" for n, item in enumerate(state.menu.items, start=1)]
        self.say(conv, turn, "\n".join(lines))

    def introduce(self, conv: Conversation, turn: Turn) -> None:
        """Who the bot is, once per conversation."""
        if not conv.introduced:
            conv.introduced = True
            self.say(conv, turn, self.text("welcome"))

    def routing_menu(self, conv: Conversation, turn: Turn) -> None:
        lines = [self.text("menu_prompt")]
        lines += [f"{n}. {s.title}" for n, s in enumerate(self.catalog.scripts, start=1)]
        self.say(conv, turn, "\n".join(lines))
