"""Fill a data directory with three weeks of realistic front-desk history, for reports.

    python examples/fill_demo.py DATA_DIR [--days-ago 21] [--serve 8080]
    clinicflow report --data DATA_DIR

``--serve PORT`` then serves the dashboard at http://127.0.0.1:PORT/dashboard (demo data,
on this machine only, so without a token)
(the screenshot in docs/dashboard.png is that page, 430 px wide, in headless Chromium).

Every conversation goes through the real engine (bundled catalog, offline): patients from
the Instagram and Google campaigns and organic ones, several procedures, people who stop
answering half-way, opt-outs, hand-offs for booking, for a person, complaints and red flags.
Staff actions go through the engine's API too (take over, hand back, mark scheduled, close).
Two things the runner or the follow-up engine would write are inserted as they would be:
messages typed from the clinic phone (``messages`` rows of kind ``human``), ``follow_up_sent``
events with their message, and the LLM calls of a few turns (``understanding`` rows).

:func:`fill` returns a :class:`Ledger` of what was played, as observed from the engine's
return values and the clock, so tests can compute every figure without reading the database.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clinicflow.clock import ManualClock, iso
from clinicflow.engine import Engine, TurnResult
from clinicflow.storage import Row

# Patient messages of each scenario (taken from tests/conversations, so the engine's path is
# known); a step "…" in a plan below adds the staff side and the silences.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "diu_ad_booking": (
        "Olá! Vi o anúncio do DIU no Instagram e quero saber mais.",
        "Ana",
        "2",
        "não, nunca usei",
        "1",
        "1",
        "de manhã",
    ),
    "diu_ad_quiet_type": ("Olá! Vi o anúncio do DIU no Instagram e quero saber mais.", "Ana"),
    "diu_ad_hello_only": ("Olá! Vi o anúncio do DIU no Instagram e quero saber mais.",),
    "diu_opt_out": ("Vi o anúncio do DIU e queria saber mais", "Ana", "pare de me mandar mensagem"),
    "gineco_google_booking": (
        "Oi, vi vocês no Google e queria saber da consulta ginecológica",
        "Fernanda",
        "2",
        "qual o endereço?",
        "nunca fiz",
        "4",
        "1",
        "de tarde",
    ),
    "gineco_google_quiet": (
        "Oi, vi vocês no Google e queria saber da consulta ginecológica",
        "Fernanda",
        "2",
    ),
    "menopausa_ad_booking": (
        "Olá! Vi o anúncio sobre menopausa e quero saber mais.",
        "Carla",
        "calorões",
        "38",
        "sim, uso gel",
        "3",
        "1",
        "qualquer horário",
    ),
    "menopausa_closed": (
        "acho que estou entrando na menopausa",
        "Rosa",
        "4",
        "tenho 52 anos",
        "não",
        "1",
        "por enquanto é só",
    ),
    "menopausa_quiet_age": ("acho que estou entrando na menopausa", "Rosa", "4"),
    "emagrecimento_ad_booking": (
        "Olá! Vi o anúncio do programa de emagrecimento e quero saber mais.",
        "Renata",
        "vocês garantem resultado?",
        "1",
        "sim",
        "3",
        "1",
        "de manhã cedo",
    ),
    "emagrecimento_ad_closed": (
        "Olá! Vi o anúncio do programa de emagrecimento e quero saber mais.",
        "Sônia",
        "2",
        "não uso",
        "1",
        "3",
    ),
    "emagrecimento_ad_quiet": (
        "Olá! Vi o anúncio do programa de emagrecimento e quero saber mais.",
        "Renata",
        "1",
    ),
    "sop_booking": (
        "Olá! Tenho SOP e queria saber como vocês acompanham",
        "Júlia",
        "4",
        "tenho sim",
        "2",
        "1",
        "à tarde",
    ),
    "cirurgia_person": (
        "vcs fazem ninfoplastia?",
        "Bruna",
        "autoestima",
        "30",
        "qual o valor?",
        "quero falar com a secretária",
    ),
    "person_at_menu": ("oi", "quero falar com uma atendente"),
    "complaint": ("sop", "Bia", "péssimo atendimento, ninguém me responde"),
    "urgent_first": ("socorro, to com uma dor insuportável no pé da barriga",),
    "urgent_mid_script": (
        "oi",
        "2",
        "Ana",
        "estou sangrando muito, já encharquei dois absorventes",
    ),
    "routing_quiet": ("boa tarde",),
}

# (day, hour offset from the start, scenario, staff/silence steps). Steps:
#   take_over:M     a person answers from the clinic phone M minutes later (human_took_over)
#   human:M         a person types a message M minutes later (messages row, kind human)
#   scheduled:M     staff books the patient M minutes later
#   hand_back:M     the chat goes back to the bot M minutes later
#   close:M         staff closes the chat M minutes later
#   follow_up:H     the follow-up engine writes to her H hours after her last message
#   say:M:TEXT      the patient writes again M minutes later
#   llm:TIN:TOUT:MS the last turn used the LLM (an understanding row at the turn's instant)
PLAN: tuple[tuple[int, int, str, tuple[str, ...]], ...] = (
    (0, 9, "diu_ad_booking", ("llm:900:60:850", "take_over:25", "scheduled:40", "close:45")),
    (0, 11, "diu_ad_hello_only", ("follow_up:3",)),
    (0, 14, "menopausa_closed", ()),
    (1, 8, "urgent_first", ("human:4", "take_over:5", "close:60")),
    (1, 10, "gineco_google_booking", ("human:18", "scheduled:30", "hand_back:35")),
    (1, 15, "emagrecimento_ad_quiet", ("follow_up:4", "say:300:sim", "follow_up:5")),
    (2, 9, "diu_ad_quiet_type", ("llm:700:45:1200", "follow_up:2")),
    (2, 13, "person_at_menu", ("take_over:12", "hand_back:50")),
    (2, 16, "sop_booking", ("take_over:95", "scheduled:120", "close:125")),
    (3, 10, "menopausa_ad_booking", ("take_over:40", "scheduled:70", "close:75")),
    (3, 12, "routing_quiet", ()),
    (3, 17, "diu_opt_out", ()),
    (4, 9, "gineco_google_quiet", ("follow_up:2", "say:90:1", "llm:650:40:900")),
    (4, 14, "complaint", ("take_over:8", "hand_back:30")),
    (5, 10, "emagrecimento_ad_closed", ()),
    (5, 11, "diu_ad_booking", ("take_over:180",)),
    (6, 9, "cirurgia_person", ("human:35", "close:90")),
    (6, 15, "menopausa_quiet_age", ("follow_up:6",)),
    (7, 10, "urgent_mid_script", ("take_over:3", "hand_back:40")),
    (7, 13, "diu_ad_hello_only", ()),
    (8, 9, "emagrecimento_ad_booking", ("take_over:22", "scheduled:35", "close:40")),
    (8, 16, "gineco_google_booking", ("take_over:55", "scheduled:80")),
    (9, 11, "menopausa_closed", ()),
    (9, 14, "diu_ad_quiet_type", ()),
    (10, 10, "sop_booking", ("human:240",)),
    (10, 12, "person_at_menu", ()),
    (11, 9, "diu_ad_booking", ("take_over:14", "scheduled:20", "close:22")),
    (11, 15, "emagrecimento_ad_quiet", ("follow_up:3",)),
    (12, 10, "gineco_google_quiet", ()),
    (12, 13, "urgent_first", ("take_over:2", "close:30")),
    (13, 11, "menopausa_ad_booking", ("take_over:65", "scheduled:90")),
    (14, 9, "routing_quiet", ("follow_up:2", "say:30:diu")),
    (14, 16, "emagrecimento_ad_closed", ()),
    (15, 10, "diu_ad_booking", ("llm:820:55:640", "take_over:30", "scheduled:60", "close:61")),
    (15, 14, "complaint", ()),
    (16, 9, "cirurgia_person", ("take_over:28", "hand_back:60")),
    (16, 12, "gineco_google_booking", ("take_over:45",)),
    (17, 10, "menopausa_quiet_age", ()),
    (17, 15, "diu_opt_out", ()),
    (18, 10, "sop_booking", ("take_over:33", "scheduled:50", "close:52")),
    (18, 14, "diu_ad_hello_only", ("follow_up:2",)),
    (20, 9, "gineco_google_quiet", ()),
    (20, 10, "diu_ad_booking", ()),
    (20, 12, "urgent_mid_script", ()),
    (20, 13, "emagrecimento_ad_quiet", ()),
)
DAYS = 21  # the plan covers days 0..20 after the start


_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class Played:
    """What one conversation did, as observed from the engine's results and the clock."""

    chat_id: str
    scenario: str
    origin: str = ""
    started_at: datetime = _NEVER
    inbound: list[datetime] = field(default_factory=list)
    replied: list[datetime] = field(default_factory=list)  # turns the bot answered
    lead_statuses: list[str] = field(default_factory=list)
    status: str = "bot"
    script_id: str | None = None
    state: str | None = None
    handoffs: list[tuple[datetime, str, bool]] = field(default_factory=list)
    human_at: list[datetime] = field(default_factory=list)
    took_over: bool = False
    scheduled: bool = False
    staff_closed: bool = False
    follow_ups: list[datetime] = field(default_factory=list)
    llm: list[tuple[datetime, int, int, float]] = field(default_factory=list)
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # (script, from, to)
    last_at: datetime = _NEVER  # the chat's last recorded instant
    name: str = ""

    def observe(self, result: TurnResult) -> None:
        """Status, place and state transitions (not entries into a script) of a result."""
        self.status, self.script_id, self.state = result.status, result.script_id, result.state
        entering = False
        for event in result.events:
            if event.type == "script_entered":
                entering = True
            elif event.type == "state_changed":
                if not entering and event.data.get("from") and result.script_id:
                    self.moves.append((result.script_id, event.data["from"], event.data["to"]))
                entering = False


@dataclass
class Ledger:
    """Everything :func:`fill` played."""

    start: datetime
    chats: list[Played]

    @property
    def now(self) -> datetime:
        """A good "now" for reports: the day after the plan's last day."""
        return self.start + timedelta(days=DAYS, hours=1)


_NAMES = ("Ana Souza", "Bruna Lima", "Carla Dias", "Débora Reis", "Elaine Castro", "Fabiana")


def fill(data_dir: str | Path, *, start: datetime, embedder: Any = None, seed: int = 7) -> Ledger:
    """Play :data:`PLAN` through a real engine over ``data_dir``, starting at ``start``."""
    rng = random.Random(seed)
    clock = ManualClock(start)
    engine = Engine.from_catalog(None, data_dir=data_dir, clock=clock, embedder=embedder)
    chats = []
    try:
        for number, (day, hour, scenario, steps) in enumerate(PLAN):
            chat = Played(chat_id=f"55119{number:08d}@c.us", scenario=scenario)
            chat.name = _NAMES[number % len(_NAMES)]
            clock.set(start + timedelta(days=day, hours=hour, minutes=rng.randint(0, 50)))
            for text in SCENARIOS[scenario]:
                _say(engine, chat, text, clock.now())
                clock.advance(timedelta(seconds=rng.randint(40, 240)))
            for step in steps:
                _step(engine, chat, step, clock)
            chats.append(chat)
    finally:
        engine.close_resources()
    return Ledger(start, chats)


def _say(engine: Engine, chat: Played, text: str, at: datetime) -> TurnResult:
    result = engine.handle(chat.chat_id, text, push_name=chat.name)
    if not chat.inbound:
        chat.started_at = at
        chat.origin = next(
            e.data["origin"] for e in result.events if e.type == "conversation_started"
        )
    chat.inbound.append(at)
    if result.replies:
        chat.replied.append(at)
    chat.lead_statuses.append(result.lead_status)
    if result.handoff is not None:
        chat.handoffs.append((at, result.handoff.reason, result.handoff.urgent))
    chat.observe(result)
    chat.last_at = at
    return result


def _step(engine: Engine, chat: Played, step: str, clock: ManualClock) -> None:
    kind, _, rest = step.partition(":")
    if kind == "llm":
        tokens_in, tokens_out, ms = rest.split(":")
        at = chat.inbound[-1]
        chat.llm.append((at, int(tokens_in), int(tokens_out), float(ms)))
        engine.store.write([Row("understanding", {
            "chat_id": chat.chat_id, "source": "llm", "purpose": "understand",
            "model": "gemini-2.5-flash", "outcome": "ok", "tokens_in": int(tokens_in),
            "tokens_out": int(tokens_out), "ms": float(ms), "at": iso(at),
        })])  # fmt: skip
        return
    if kind == "say":
        minutes, _, text = rest.partition(":")
        _say(engine, chat, text, clock.advance(timedelta(minutes=int(minutes))))
        return
    if kind == "follow_up":
        at = chat.inbound[-1] + timedelta(hours=int(rest))
        clock.set(max(at, clock.now()))
        at = clock.now()
        chat.follow_ups.append(at)
        chat.last_at = at
        data = {"state": chat.state, "index": len(chat.follow_ups) - 1}
        common = {"chat_id": chat.chat_id, "script_id": chat.script_id or "",
                  "state": chat.state or "", "at": iso(at)}  # fmt: skip
        engine.store.write([
            Row("events", {**common, "type": "follow_up_sent", "data": json.dumps(data)}),
            Row("messages", {**common, "direction": "out", "kind": "follow_up",
                             "text": "Oi! Ainda posso te ajudar com alguma dúvida? 😊"}),
        ])  # fmt: skip
        return
    at = clock.advance(timedelta(minutes=int(rest)))
    chat.last_at = at
    if kind == "take_over":
        engine.take_over(chat.chat_id)
        chat.took_over, chat.status = True, "human"
        chat.human_at.append(at)
    elif kind == "human":
        chat.human_at.append(at)
        engine.store.write([Row("messages", {
            "chat_id": chat.chat_id, "direction": "out", "kind": "human", "at": iso(at),
            "text": "Oi, aqui é a Júlia da recepção! Vou te ajudar.",
            "script_id": chat.script_id or "", "state": chat.state or "",
        })])  # fmt: skip
    elif kind == "scheduled":
        engine.mark_scheduled(chat.chat_id)
        chat.scheduled = True
    elif kind == "hand_back":
        chat.observe(engine.hand_back(chat.chat_id))
    elif kind == "close":
        engine.close(chat.chat_id)
        chat.status, chat.staff_closed = "closed", True
    else:
        raise ValueError(f"unknown step {step!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--days-ago", type=float, default=DAYS, help="start this many days ago")
    parser.add_argument("--serve", type=int, default=None, metavar="PORT", help="serve /dashboard")
    args = parser.parse_args()
    if not (args.data_dir / "clinicflow.db").exists():
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=args.days_ago, hours=1)
        ledger = fill(args.data_dir, start=start)
        print(f"{len(ledger.chats)} conversas gravadas em {args.data_dir}")
    if args.serve is not None:
        from aiohttp import web

        from clinicflow.dashboard import add_dashboard_routes
        from clinicflow.loader import load_catalog
        from clinicflow.storage import Store

        store, catalog = Store(args.data_dir), load_catalog(None)
        app = web.Application()

        async def demo_data_only(request: web.Request) -> None:
            return None  # invented patients, served on 127.0.0.1: no token to type

        add_dashboard_routes(app, get_store=lambda: store, get_catalog=lambda: catalog,
                             staff_token=None, authorize=demo_data_only)  # fmt: skip
        print(f"http://127.0.0.1:{args.serve}/dashboard")
        web.run_app(app, host="127.0.0.1", port=args.serve, print=None)


if __name__ == "__main__":
    main()
