"""The engine's public API through the real engine: SQLite, LanceDB and embeddings, no LLM.

One engine over the bundled catalog serves the module (building one costs ~2 s); the hot-reload
tests build a second one over a copy of the catalog, sharing the embedder so it is cheap.
Each test uses its own chat ids.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clinicflow import lead
from clinicflow.cli import main
from clinicflow.clock import ManualClock
from clinicflow.embeddings import USEEmbedder
from clinicflow.engine import Engine, TurnResult
from clinicflow.errors import ConversationError, ScriptError
from clinicflow.loader import bundled_catalog_path

SOURCES = ("choice", "rule", "model", "llm", "fallback")
STATUSES = ("bot", "waiting_human", "human", "closed")
LEAD_STATUSES = ("new", "engaged", "qualified", "handed_off", "scheduled", "lost")
HANDOFF_REASONS = ("schedule", "human_request", "urgent", "complaint", "not_understood", "other")


@pytest.fixture(scope="module")
def embedder() -> USEEmbedder:
    return USEEmbedder()


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, embedder: USEEmbedder, clock: ManualClock
) -> Iterator[Engine]:
    eng = Engine.from_catalog(
        None, data_dir=tmp_path_factory.mktemp("engine-data"), embedder=embedder, clock=clock
    )
    yield eng
    eng.close_resources()


def talk(engine: Engine, chat: str, *texts: str) -> list[TurnResult]:
    return [engine.handle(chat, text) for text in texts]


def to_menu(engine: Engine, chat: str) -> TurnResult:
    """A DIU conversation up to its main menu."""
    results = talk(engine, chat, "Vi o anúncio do DIU e queria saber mais", "Ana", "1", "não")
    assert results[-1].state == "menu_principal", results[-1]
    return results[-1]


def columns(engine: Engine, table: str) -> set[str]:
    return {row["name"] for row in engine.store.query(f"PRAGMA table_info({table})")}


# -- result fields ----------------------------------------------------------------------------


def test_result_fields_of_a_first_message(engine: Engine) -> None:
    chat = "5511900000101@c.us"
    r = engine.handle(chat, "Olá! Vi o anúncio do DIU no Instagram e quero saber mais.")
    assert isinstance(r, TurnResult)
    assert r.chat_id == chat
    assert isinstance(r.replies, tuple) and r.replies and all(isinstance(t, str) for t in r.replies)
    assert r.script_id == "diu"
    assert r.state == "boas_vindas"
    assert r.slots == {}
    assert r.status == "bot"
    assert r.lead_status in LEAD_STATUSES
    assert r.source in SOURCES
    assert 0.0 <= r.confidence <= 1.0
    assert r.handoff is None
    assert r.ms > 0
    assert r.llm_calls == 0
    types = r.event_types
    for wanted in ("conversation_started", "message_in", "script_entered", "state_changed"):
        assert wanted in types
    entered = next(e for e in r.events if e.type == "script_entered")
    assert entered.data["script"] == "diu"


def test_result_fields_through_slots_faq_and_handoff(engine: Engine) -> None:
    chat = "5511900000102@c.us"
    talk(engine, chat, "Vi o anúncio do DIU e queria saber mais")
    r = engine.handle(chat, "Ana")
    assert r.slots == {"nome": "Ana"}
    assert "slot_filled" in r.event_types
    r = engine.handle(chat, "qual o valor?")
    assert r.intent == "ask_price" and r.source in ("rule", "model")
    assert "faq_answered" in r.event_types
    assert r.state == "pergunta_tipo"  # the digression returns to the step it was on
    r = engine.handle(chat, "quero falar com a secretária")
    assert r.status == "waiting_human"
    assert r.handoff is not None and r.handoff["reason"] == "human_request"
    assert r.handoff["urgent"] is False
    assert "handoff_requested" in r.event_types
    assert r.lead_status == "handed_off"


def test_choice_answer_reports_choice_source(engine: Engine) -> None:
    chat = "5511900000103@c.us"
    talk(engine, chat, "oi")
    r = engine.handle(chat, "3")
    assert r.source == "choice" and r.confidence == 1.0
    assert r.script_id == "diu"


def test_state_of(engine: Engine) -> None:
    chat = "5511900000104@c.us"
    assert engine.state_of(chat) is None
    talk(engine, chat, "diu", "Ana")
    state = engine.state_of(chat)
    assert state is not None
    assert state["script_id"] == "diu" and state["state"] == "pergunta_tipo"
    assert state["slots"] == {"nome": "Ana"}
    json.dumps(state)  # the checkpointed state is JSON-plain


def test_classify(engine: Engine) -> None:
    u = engine.classify("quanto custa a consulta?")
    assert u.intent == "ask_price" and u.source in SOURCES and 0 <= u.confidence <= 1
    urgent = engine.classify("estou sangrando muito")
    assert urgent.intent == "urgent"
    for look_alike in ("adoro vocês", "sou vendedor", "dói colocar o DIU?"):
        assert engine.classify(look_alike).intent != "urgent", look_alike


# -- storage ----------------------------------------------------------------------------------


def test_storage_tables_and_columns(engine: Engine) -> None:
    wanted = {
        "conversations": {
            "chat_id",
            "script_id",
            "script_version",
            "state",
            "status",
            "lead_status",
            "score",
            "slots",
            "opted_out",
            "handoff_reason",
            "turns",
            "started_at",
            "updated_at",
        },
        "messages": {"chat_id", "direction", "text", "kind", "channel_message_id", "at"},
        "events": {"chat_id", "type", "data", "at"},
        "leads": {
            "chat_id",
            "status",
            "score",
            "engaged_at",
            "qualified_at",
            "handed_off_at",
            "scheduled_at",
            "lost_at",
        },
        "handoffs": {"chat_id", "reason", "urgent", "brief", "status", "at", "resolved_at"},
        "understanding": {
            "chat_id",
            "source",
            "intent",
            "confidence",
            "tokens_in",
            "tokens_out",
            "ms",
        },
    }
    for table, cols in wanted.items():
        missing = cols - columns(engine, table)
        assert not missing, f"{table} lacks {missing}"
    mode = engine.store.query("PRAGMA journal_mode")[0]
    assert next(iter(mode.values())).lower() == "wal"


def test_messages_are_stored_in_both_directions(engine: Engine) -> None:
    chat = "5511900000105@c.us"
    r1 = engine.handle(chat, "oi", message_id="wamid.IN1")
    r2 = engine.handle(chat, "3", message_id="wamid.IN2")
    rows = engine.store.messages(chat)
    inbound = [m for m in rows if m["direction"] == "in"]
    outbound = [m for m in rows if m["direction"] == "out"]
    assert [m["text"] for m in inbound] == ["oi", "3"]
    assert [m["channel_message_id"] for m in inbound] == ["wamid.IN1", "wamid.IN2"]
    assert [m["text"] for m in outbound] == list(r1.replies) + list(r2.replies)


def test_events_understanding_and_conversation_rows(engine: Engine) -> None:
    chat = "5511900000106@c.us"
    results = talk(engine, chat, "diu", "Ana", "qual o valor?")
    events = engine.store.events(chat)
    assert [e["type"] for e in events] == [t for r in results for t in r.event_types]
    understanding = engine.store.query("SELECT * FROM understanding WHERE chat_id = ?", (chat,))
    assert len(understanding) == 3
    assert all(row["source"] in SOURCES for row in understanding)
    assert understanding[-1]["intent"] == "ask_price"
    conv = engine.store.conversation(chat)
    assert conv is not None
    assert conv["script_id"] == "diu" and conv["state"] == "pergunta_tipo"
    assert conv["slots"] == {"nome": "Ana"} and conv["status"] == "bot" and conv["turns"] == 3


def test_handoff_row_and_brief_have_no_internal_names(engine: Engine) -> None:
    chat = "5511988887777@c.us"
    talk(engine, chat, "Vi o anúncio do DIU e queria saber mais", "Ana", "2")
    r = engine.handle(chat, "quero falar com uma atendente")
    assert r.handoff is not None
    rows = engine.store.query("SELECT * FROM handoffs WHERE chat_id = ?", (chat,))
    assert len(rows) == 1
    row = rows[0]
    assert row["reason"] == "human_request" and row["status"] == "open" and row["urgent"] == 0
    brief = json.loads(row["brief"])
    text = r.handoff["brief"]
    assert "Ana" in text and "DIU" in text and "+55 11 98888-7777" in text
    script = engine.catalog.script("diu")
    assert script is not None
    state_names = {s.name for s in script.states if "_" in s.name}
    # What people read: the WhatsApp text and the human-facing fields of the stored brief.
    readable = [
        brief["patient_name"],
        brief["procedure"],
        brief["summary"],
        *brief["last_messages"],
        *(f"{k}: {v}" for k, v in brief["collected"].items()),
    ]
    for shown in (text, "\n".join(readable)):
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", shown), shown  # no snake_case ids
        for name in state_names | {"__routing__", "human_request", "waiting_human", "nao_sei"}:
            assert name not in shown
        assert "score" not in shown.lower() and "pontua" not in shown.lower()
        assert "{" not in text and "}" not in text
    assert "score" not in brief and "state" not in brief


def test_urgent_handoff_row(engine: Engine) -> None:
    chat = "5511900000107@c.us"
    talk(engine, chat, "menopausa", "Vera")
    r = engine.handle(chat, "estou com falta de ar")
    assert r.status == "waiting_human"
    assert r.handoff is not None and r.handoff["reason"] == "urgent" and r.handoff["urgent"] is True
    assert "192" in " ".join(r.replies)
    assert "red_flag" in r.event_types
    row = engine.store.open_handoff(chat)
    assert row is not None and row["urgent"] == 1 and row["reason"] == "urgent"
    assert "URGENTE" in r.handoff["brief"]


# -- hand-off, silence and hand-back ----------------------------------------------------------


def test_waiting_human_is_silent_but_recorded(engine: Engine) -> None:
    chat = "5511900000108@c.us"
    talk(engine, chat, "sop", "Nina", "quero falar com uma pessoa")
    before = len(engine.store.messages(chat))
    r = engine.handle(chat, "oi? alguém?")
    assert r.replies == () and r.status == "waiting_human"
    rows = engine.store.messages(chat)
    assert len(rows) == before + 1 and rows[-1]["direction"] == "in"


def test_hand_back_resumes_exactly_where_it_paused(engine: Engine) -> None:
    chat = "5511900000109@c.us"
    talk(engine, chat, "menopausa", "Clara", "2")
    paused = engine.state_of(chat)
    assert paused is not None and paused["state"] == "pergunta_idade"
    r = engine.handle(chat, "quero falar com uma atendente")
    assert r.status == "waiting_human"
    engine.handle(chat, "oi?")
    back = engine.hand_back(chat)
    assert back.status == "bot"
    assert back.state == "pergunta_idade"
    assert back.slots == {"nome": "Clara", "incomodo": ["sono_humor"]}
    assert "handed_back" in back.event_types
    assert any("idade" in reply for reply in back.replies)
    assert engine.store.open_handoff(chat) is None  # resolved
    r = engine.handle(chat, "49")
    assert r.slots["idade"] == 49 and r.state == "pergunta_hormonio"


def test_take_over_close_and_unknown_chats(engine: Engine) -> None:
    chat = "5511900000110@c.us"
    talk(engine, chat, "diu")
    engine.take_over(chat)
    r = engine.handle(chat, "Ana")
    assert r.replies == () and r.status == "human"
    engine.close(chat)
    state = engine.state_of(chat)
    assert state is not None and state["status"] == "closed"
    for call in (engine.hand_back, engine.close, engine.mark_scheduled):
        with pytest.raises(ConversationError):
            call("5511000000000@c.us")
    # Staff writing first from the clinic phone: the chat starts in the person's hands.
    engine.take_over("5511000000001@c.us")
    taken = engine.state_of("5511000000001@c.us")
    assert taken is not None and taken["status"] == "human"
    assert engine.handle("5511000000001@c.us", "oi, obrigada!").replies == ()
    with pytest.raises(ConversationError):
        engine.start("5511900000111@c.us", "nao_existe")
    with pytest.raises(ConversationError):
        engine.handle("", "oi")


# -- lead score and status --------------------------------------------------------------------


def test_lead_score_is_recomputed_from_stored_events(engine: Engine) -> None:
    chat = "5511900000112@c.us"
    talk(
        engine,
        chat,
        "Vi o anúncio do DIU e queria saber mais",
        "Ana",
        "qual o valor?",
        "2",
        "aceita convênio?",
        "sim",
        "1",
        "1",
        "de manhã",
    )
    events = engine.store.events(chat)
    scoring = lead.effective(engine.catalog.clinic.lead_scoring, None)
    expected = lead.score(((e["type"], e["data"]) for e in events), scoring)
    conv = engine.store.conversation(chat)
    row = engine.store.query("SELECT * FROM leads WHERE chat_id = ?", (chat,))[0]
    assert conv is not None and expected > 0
    assert conv["score"] == expected
    assert row["score"] == expected


def test_lead_status_progression(engine: Engine) -> None:
    chat = "5511900000113@c.us"
    seen = [
        r.lead_status
        for r in talk(
            engine,
            chat,
            "Vi o anúncio do DIU e queria saber mais",
            "Ana",
            "qual o valor?",
            "onde fica a clínica?",
            "1",
            "não",
            "quero agendar",
        )
    ]
    assert seen[0] == "new"
    assert "engaged" in seen
    order = [LEAD_STATUSES.index(s) for s in seen]
    assert order == sorted(order), seen  # never backwards
    assert seen[-1] == "handed_off"
    row = engine.store.query("SELECT * FROM leads WHERE chat_id = ?", (chat,))[0]
    assert row["engaged_at"] and row["handed_off_at"]
    engine.mark_scheduled(chat)
    row = engine.store.query("SELECT * FROM leads WHERE chat_id = ?", (chat,))[0]
    assert row["status"] == "scheduled" and row["scheduled_at"]


def test_qualified_after_enough_interest(engine: Engine) -> None:
    chat = "5511900000114@c.us"
    results = talk(
        engine,
        chat,
        "Vi o anúncio do DIU e queria saber mais",
        "Ana",
        "qual o valor?",
        "onde fica a clínica?",
        "aceita convênio?",
    )
    assert results[-1].lead_status == "qualified"


# -- opt-out ----------------------------------------------------------------------------------


def test_opt_out_is_honoured_and_remembered(engine: Engine) -> None:
    chat = "5511900000115@c.us"
    talk(engine, chat, "diu", "Ana")
    r = engine.handle(chat, "pare de me mandar mensagem")
    assert r.intent == "opt_out" and r.replies and r.status == "closed"
    assert r.lead_status == "lost" and "opted_out" in r.event_types
    for text in ("oi", "ok", "?", "obrigada"):
        later = engine.handle(chat, text)
        assert later.replies == (), text
    conv = engine.store.conversation(chat)
    assert conv is not None and conv["opted_out"] == 1 and conv["lost_reason"] == "opt_out"
    row = engine.store.query("SELECT * FROM leads WHERE chat_id = ?", (chat,))[0]
    assert row["status"] == "lost" and row["lost_at"]


# -- red flags and look-alikes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "adoro vocês, o atendimento é ótimo",
        "sou vendedora de planos de saúde",
        "tenho dormido mal",
        "dói colocar o DIU?",
        "a colocação é dolorida?",
    ],
)
def test_dor_look_alikes_never_hand_off(engine: Engine, text: str) -> None:
    chat = f"lookalike-{abs(hash(text)) % 10**8}@c.us"
    to_menu(engine, chat)
    r = engine.handle(chat, text)
    assert r.status == "bot", (r.intent, r.source, r.replies)
    assert r.handoff is None
    assert "red_flag" not in r.event_types
    assert not any("192" in reply for reply in r.replies)


@pytest.mark.parametrize(
    "text",
    [
        "estou com muita dor na barriga",
        "estou com dor forte depois do diu",
        "estou sangrando muito",
    ],
)
def test_real_red_flags_hand_off_urgently(engine: Engine, text: str) -> None:
    chat = f"redflag-{abs(hash(text)) % 10**8}@c.us"
    to_menu(engine, chat)
    r = engine.handle(chat, text)
    assert r.status == "waiting_human"
    assert r.handoff is not None and r.handoff["urgent"] is True
    assert any("192" in reply for reply in r.replies)


# -- bad input --------------------------------------------------------------------------------


BAD = [
    "",
    None,
    "   ",
    "😊",
    "🙏🙏🙏",
    "{}",
    "%s %d",
    "{{clinica.nome}}",
    "{nome}",
    "${x}",
    "a" * 10_000,
    "quero saber do DIU " * 600,
    "\x00\x01",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("text", BAD, ids=lambda t: repr(t)[:20])
def test_bad_input_never_raises_and_keeps_history(engine: Engine, text: Any) -> None:
    chat = f"bad-{abs(hash(repr(text))) % 10**8}@c.us"
    to_menu(engine, chat)
    before = engine.store.messages(chat)
    r = engine.handle(chat, text)
    assert r.status in STATUSES
    for reply in r.replies:
        assert "{" not in reply and "}" not in reply and "%s" not in reply
        assert "__" not in reply and "None" not in reply
        assert len(reply) < 1500
    after = engine.store.messages(chat)
    assert after[: len(before)] == before  # nothing stored is lost
    assert after[len(before)]["direction"] == "in"
    assert engine.state_of(chat) is not None


def test_huge_message_is_stored_whole(engine: Engine) -> None:
    chat = "5511900000116@c.us"
    text = "quero saber do DIU " + "x" * 9_980
    engine.handle(chat, text)
    stored = engine.store.messages(chat)[0]
    assert stored["text"] == text


def test_unknown_chat_hand_back_is_a_conversation_error(engine: Engine) -> None:
    with pytest.raises(ConversationError):
        engine.hand_back("ninguem@c.us")


# -- size per turn ----------------------------------------------------------------------------


def _db_bytes(engine: Engine) -> int:
    conn = sqlite3.connect(str(engine.store.path))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return engine.store.size_bytes()


def test_bytes_per_turn_stay_small(engine: Engine) -> None:
    """100 turns in one chat: the database grows linearly and by well under 4 KB a turn."""
    chat = "5511900000117@c.us"
    to_menu(engine, chat)
    questions = ["qual o endereço?", "abre sábado?", "tem estacionamento?", "qual o horário?"]
    for n in range(10):
        engine.handle(chat, questions[n % len(questions)])
    start = _db_bytes(engine)
    for n in range(100):
        engine.handle(chat, questions[n % len(questions)])
    end = _db_bytes(engine)
    state = engine.state_of(chat)
    assert state is not None and state["status"] == "bot", "the chat should stay with the bot"
    per_turn = (end - start) / 100
    assert per_turn < 4096, f"{per_turn:.0f} bytes per turn"


# -- hot reload -------------------------------------------------------------------------------


OLD_ASK = "Você já tem em mente qual DIU prefere?"
NEW_ASK = "Qual DIU você gostaria de conhecer melhor?"


@pytest.fixture(scope="module")
def reload_setup(
    tmp_path_factory: pytest.TempPathFactory, embedder: USEEmbedder
) -> Iterator[tuple[Engine, Path]]:
    catalog = tmp_path_factory.mktemp("catalog") / "catalogo"
    shutil.copytree(bundled_catalog_path(), catalog, ignore=shutil.ignore_patterns("__*"))
    eng = Engine.from_catalog(
        catalog,
        data_dir=tmp_path_factory.mktemp("reload-data"),
        embedder=embedder,
        clock=ManualClock(),
    )
    yield eng, catalog
    eng.close_resources()


def test_hot_reload_keeps_conversations_on_their_version(
    reload_setup: tuple[Engine, Path],
) -> None:
    engine, catalog = reload_setup
    old = engine.handle("old@c.us", "quero saber do DIU")
    assert old.script_id == "diu"
    old_version = engine.catalog.script("diu").version  # type: ignore[union-attr]

    path = catalog / "diu.yaml"
    source = path.read_text("utf-8")
    assert OLD_ASK in source
    edited = source.replace(OLD_ASK, NEW_ASK)
    edited = re.sub(r'^version: "[^"]*"', f'version: "{old_version}-novo"', edited, flags=re.M)
    path.write_text(edited, "utf-8")
    engine.reload()
    assert engine.catalog.script("diu").version == f"{old_version}-novo"  # type: ignore[union-attr]

    # In flight: keeps the old text.
    r = engine.handle("old@c.us", "Ana")
    assert any(OLD_ASK in reply for reply in r.replies), r.replies
    assert not any(NEW_ASK in reply for reply in r.replies)
    conv = engine.store.conversation("old@c.us")
    assert conv is not None and conv["script_version"] == old_version

    # A new chat gets the new text.
    talk(engine, "new@c.us", "quero saber do DIU")
    r = engine.handle("new@c.us", "Bia")
    assert any(NEW_ASK in reply for reply in r.replies), r.replies

    # Handed back, the old conversation moves to the new version at the same step.
    engine.handle("old@c.us", "quero falar com uma atendente")
    back = engine.hand_back("old@c.us")
    assert back.state == "pergunta_tipo"
    assert any(NEW_ASK in reply for reply in back.replies), back.replies
    conv = engine.store.conversation("old@c.us")
    assert conv is not None and conv["script_version"] == f"{old_version}-novo"


def test_reload_with_errors_keeps_the_current_catalog(reload_setup: tuple[Engine, Path]) -> None:
    engine, catalog = reload_setup
    path = catalog / "sop.yaml"
    source = path.read_text("utf-8")
    try:
        path.write_text(source.replace("start: boas_vindas", "start: nao_existe"), "utf-8")
        with pytest.raises(ScriptError) as info:
            engine.reload()
        assert info.value.problems
        r = engine.handle("after-bad-reload@c.us", "sop")
        assert r.script_id == "sop" and r.state == "boas_vindas"
    finally:
        path.write_text(source, "utf-8")


# -- a broken catalog -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    catalog = tmp_path_factory.mktemp("broken") / "catalogo"
    shutil.copytree(bundled_catalog_path(), catalog, ignore=shutil.ignore_patterns("__*"))
    path = catalog / "diu.yaml"
    path.write_text(
        path.read_text("utf-8").replace("start: boas_vindas", "start: nao_existe"), "utf-8"
    )
    return catalog


def _start_line(path: Path) -> int:
    lines = path.read_text("utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith("start:"))


def test_from_catalog_with_errors_raises_script_error(
    broken_catalog: Path, tmp_path: Path, embedder: USEEmbedder
) -> None:
    with pytest.raises(ScriptError) as info:
        Engine.from_catalog(broken_catalog, data_dir=tmp_path, embedder=embedder)
    problems = info.value.problems
    assert problems
    assert any(
        p.file.endswith("diu.yaml")
        and p.line == _start_line(broken_catalog / "diu.yaml")
        and p.severity == "error"
        for p in problems
    ), problems


def test_cli_chat_refuses_a_broken_catalog_without_traceback(
    broken_catalog: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        ["chat", "--catalog", str(broken_catalog), "--data", str(tmp_path), "--llm", "none"],
        input="oi\n/sair\n",
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    where = f"{broken_catalog / 'diu.yaml'}:{_start_line(broken_catalog / 'diu.yaml')}:"
    assert where in result.output, result.output
    assert "nao_existe" in result.output


@pytest.mark.parametrize(
    "question",
    [
        "doi colocar o diu",
        "doi colocar o diu?",
        "a insercao do diu e dolorida",
        "colocar diu doi muito",
    ],
)
def test_a_faq_asked_without_accents_is_found_like_the_accented_one(
    engine: Engine, question: str
) -> None:
    """Patients mostly skip accents; the FAQ is found as surely as when typed with them."""
    hits = engine.index.search(engine.index.embed(question), kinds=("faq",), scopes=("diu",), k=1)
    assert hits[0].entry.key == "dor_insercao"
    assert hits[0].score >= engine.understander.thresholds.faq_accept, hits[0]


def test_a_voice_note_nobody_could_hear_goes_to_a_person(engine: Engine) -> None:
    """Without a transcription the bot cannot know what she said (an emergency, a booking):
    it says so, and a person is asked to listen; a photo only gets the honest text."""
    heard = engine.handle("5511900009901@c.us", None, kind="voice")
    assert engine.catalog.clinic.text("audio_received") in heard.replies
    assert heard.status == "waiting_human" and heard.handoff is not None
    assert heard.handoff.reason == "voice_note" and not heard.handoff.urgent
    seen = engine.handle("5511900009902@c.us", None, kind="image")
    assert engine.catalog.clinic.text("media_received") in seen.replies
    assert seen.status == "bot" and seen.handoff is None


def test_a_weak_guess_of_a_bot_check_or_a_data_request_is_still_honoured(engine: Engine) -> None:
    """Saying it is a virtual assistant, or passing a data request to a person, costs little
    when the guess is wrong; missing either breaks a promise (honesty, LGPD)."""
    asked = engine.handle("5511900009903@c.us", "vc é humana ou robo? quero falar com a dra")
    assert asked.intent == "bot_check"
    assert any(reply.startswith("Sou a assistente virtual") for reply in asked.replies)
    erase = engine.handle("5511900009904@c.us", "quero que apaguem meus dados")
    assert erase.handoff is not None and erase.handoff.reason == "data_request"
