"""Run a short conversation through the engine, offline, on the bundled catalog.

    python examples/quickstart.py

Shows the public API: build an engine, feed it messages, read replies, events, the
conversation's state and the hand-off brief, then hand the chat back to the bot.
"""

from __future__ import annotations

import json
import tempfile

from clinicflow import Engine, ManualClock


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        engine = Engine.from_catalog(data_dir=data_dir, clock=ManualClock())
        chat = "5511987654321@c.us"
        for text in ["Olá! Vi o anúncio do DIU no Instagram", "sou a Ana", "1", "quero marcar"]:
            result = engine.handle(chat, text)
            print(f"paciente> {text}")
            for reply in result.replies:
                print(f"bot> {reply}")
            print(
                f"   [{result.intent} via {result.source} {result.confidence:.2f} | "
                f"{result.script_id}:{result.state} | {result.status} | {result.event_types}]"
            )
        handoff = engine.store.open_handoff(chat)
        assert handoff is not None
        print("brief:", json.dumps(json.loads(handoff["brief"]), ensure_ascii=False, indent=2))
        back = engine.hand_back(chat)  # the secretary returns the chat to the bot
        print("after hand-back:", back.status, back.replies)
        engine.close_resources()


if __name__ == "__main__":
    main()
