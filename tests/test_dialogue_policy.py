"""The dialogue policy fed hand-built understanding results: no model, no index, no engine.

Each test puts a conversation on a step of the bundled catalog, gives the policy what the
understanding would have said (an :class:`Understanding`, and for a message cut into clauses
its :class:`Part` values) and checks what the bot does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clinicflow.dialogue import (
    ROUTING,
    Conversation,
    Dialogue,
    Handoff,
    Part,
    Turn,
    answers,
    clauses,
    filling,
)
from clinicflow.flow import Flow
from clinicflow.loader import load_catalog
from clinicflow.model import FAQ, Catalog
from clinicflow.text import fold
from clinicflow.understanding import Understanding

NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # a Monday, 10:00 in São Paulo


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(None)


@pytest.fixture(scope="module")
def dialogue(catalog: Catalog) -> Dialogue:
    scripts = {s.digest: s for s in catalog.scripts}
    flows = {s.digest: Flow(s) for s in catalog.scripts}
    return Dialogue(catalog, scripts, flows)


def _faq(catalog: Catalog, faq_id: str) -> FAQ:
    return next(f for f in catalog.clinic.faq if f.id == faq_id)


def _u(intent: str | None = None, source: str = "model", **kw: object) -> Understanding:
    kw.setdefault("sure", True)
    return Understanding(intent, float(kw.pop("confidence", 0.9)), source, **kw)  # type: ignore[arg-type]


def _on(dialogue: Dialogue, script_id: str, state: str, **slots: object) -> Conversation:
    script = dialogue.catalog.script(script_id)
    assert script is not None
    conv = Conversation(status="bot", introduced=True, slots=dict(slots))
    conv.script_id, conv.digest, conv.version = script.id, script.digest, script.version
    conv.state = state
    return conv


def _turn(conv: Conversation, text: str, u: Understanding, *parts: Part) -> Turn:
    turn = Turn(chat_id="t@c.us", text=text, now=NOW, conv=conv, understanding=u)
    turn.parts = parts
    return turn


def _said(turn: Turn) -> str:
    return fold("\n".join(turn.replies))


def test_a_one_word_goodbye_guess_does_not_end_the_conversation(dialogue: Dialogue) -> None:
    conv = _on(dialogue, "diu", "preferencia", nome="Ana")
    turn = _turn(conv, "amanhã", _u("goodbye", confidence=0.7))
    dialogue.step(conv, turn)
    assert conv.status == "bot" and conv.state == "preferencia"
    assert conv.when == "amanha" and "anotei: amanha" in _said(turn)
    assert "manha ou tarde" in _said(turn)


def test_a_goodbye_said_with_its_word_ends_it(dialogue: Dialogue) -> None:
    conv = _on(dialogue, "diu", "preferencia", nome="Ana")
    dialogue.step(conv, _turn(conv, "tchau", _u("goodbye", confidence=0.7)))
    assert conv.status == "closed" and conv.state == "despedida"


def test_an_intent_is_not_a_yes_no_answer(dialogue: Dialogue) -> None:
    conv = _on(dialogue, "diu", "pergunta_ja_usou", nome="Ana", tipo="hormonal")
    turn = _turn(conv, "quero marcar", _u("schedule", confidence=0.95))
    dialogue.step(conv, turn)
    assert "ja_usou" not in conv.slots
    assert isinstance(turn.handoff, Handoff) and turn.handoff.reason == "schedule"


def test_an_answer_with_a_question_fills_answers_and_moves_on(
    dialogue: Dialogue, catalog: Catalog
) -> None:
    conv = _on(dialogue, "menopausa", "pergunta_hormonio", nome="Rosa", idade=50)
    where = _faq(catalog, "endereco")
    turn = _turn(
        conv,
        "nunca usei. vcs tem estacionamento?",
        _u("ask_location", faq=where, faq_score=0.8),
        Part("nunca usei.", _u("deny"), False),
        Part("vcs tem estacionamento?", _u("ask_location", faq=where, faq_score=0.8), True),
    )
    dialogue.step(conv, turn)
    assert conv.slots["usa_hormonio"] is False
    assert conv.state == "menu_principal"
    assert "estacionamento conveniado" in fold(turn.replies[0])


def test_several_questions_get_every_answer_in_order(dialogue: Dialogue, catalog: Catalog) -> None:
    conv = _on(dialogue, "diu", "pergunta_tipo", nome="Ana")
    price, insurance = _faq(catalog, "preco_consulta"), _faq(catalog, "convenio")
    turn = _turn(
        conv,
        "quanto custa a consulta e vocês aceitam unimed?",
        _u("ask_price", faq=price, faq_score=0.9),
        Part("quanto custa a consulta?", _u("ask_price", faq=price, faq_score=0.9), True),
        Part("vocês aceitam unimed?", _u("ask_insurance", faq=insurance, faq_score=0.9), True),
    )
    dialogue.step(conv, turn)
    assert "R$ 600" in turn.replies[0] and "particular" in turn.replies[1]
    assert "qual DIU prefere" in turn.replies[2]
    assert conv.state == "pergunta_tipo"


def test_a_question_nobody_answered_is_kept_for_the_brief(dialogue: Dialogue) -> None:
    conv = _on(dialogue, "diu", "pergunta_tipo", nome="Ana")
    dialogue.step(conv, _turn(conv, "tem wifi na sala de espera?", _u("ask_info")))
    assert conv.questions == ["tem wifi na sala de espera?"]


@pytest.mark.parametrize(
    ("state", "slots", "text", "slot", "value"),
    [
        pytest.param(
            "pergunta_tipo", {"nome": "Ana"}, "não, meu nome é Bia", "nome", "Bia", id="name"
        ),
        pytest.param(
            "pergunta_ja_usou",
            {"nome": "Ana", "tipo": "hormonal"},
            "errei, é DIU de cobre",
            "tipo",
            "cobre",
            id="choice",
        ),
        pytest.param(
            "pergunta_tipo",
            {"nome": "Ana", "periodo": "manhã"},
            "não, prefiro à tarde",
            "periodo",
            "tarde",
            id="period",
        ),
    ],
)
def test_a_correction_replaces_the_value_and_says_so(
    dialogue: Dialogue, state: str, slots: dict[str, object], text: str, slot: str, value: str
) -> None:
    conv = _on(dialogue, "diu", state, **slots)
    turn = _turn(conv, text, _u(None))
    dialogue.step(conv, turn)
    assert conv.slots[slot] == value
    assert conv.state == state
    assert "corrigi" in _said(turn)


def test_no_at_a_yes_no_question_is_an_answer_not_a_correction(dialogue: Dialogue) -> None:
    conv = _on(dialogue, "diu", "pergunta_ja_usou", nome="Ana", tipo="hormonal")
    conv.last_filled = "tipo"
    turn = _turn(conv, "não uso", _u("deny", source="choice"))
    dialogue.step(conv, turn)
    assert conv.slots["ja_usou"] is False and conv.slots["tipo"] == "hormonal"
    assert "corrigi" not in _said(turn)


@pytest.mark.parametrize(
    ("text", "state"),
    [("dois", "proximo_passo"), ("a segunda", "proximo_passo"), ("5", "preferencia")],
)
def test_a_menu_takes_number_words_and_ordinals(dialogue: Dialogue, text: str, state: str) -> None:
    conv = _on(dialogue, "diu", "menu_principal", nome="Ana")
    choice = 5 if text == "5" else None
    dialogue.step(conv, _turn(conv, text, _u(None, source="choice", choice=choice)))
    assert conv.state == state


@pytest.mark.parametrize(
    ("text", "script"), [("três", "diu"), ("a segunda", "consulta_ginecologica")]
)
def test_the_routing_menu_takes_number_words_and_ordinals(
    dialogue: Dialogue, text: str, script: str
) -> None:
    conv = Conversation(status="bot", introduced=True, state=ROUTING)
    turn = _turn(conv, text, _u(None))
    dialogue.step(conv, turn)
    assert conv.script_id == script
    assert "assistente virtual" not in _said(turn)  # introduced once, on the first message


def test_the_first_message_fills_the_choice_it_names(dialogue: Dialogue) -> None:
    conv = Conversation(status="bot")
    text = "tenho muito calorão e não durmo direito"
    turn = _turn(conv, text, _u(None, scripts=("menopausa",)))
    dialogue.step(conv, turn)
    assert conv.slots["incomodo"] == ["caloroes", "sono_humor"]
    assert "assistente virtual" in _said(turn) and conv.introduced
    turn = _turn(conv, "Rosa", _u(None))
    dialogue.step(conv, turn)
    assert conv.state == "pergunta_idade"
    assert "anotei o que voce ja tinha me contado" in _said(turn)


def test_conversation_checkpoint_round_trip_and_old_forms() -> None:
    conv = Conversation(status="bot", slots={"nome": "Ana"}, questions=["wifi?"], when="amanha")
    again = Conversation.from_checkpoint(conv.to_checkpoint())
    assert again == conv
    old = {"status": "waiting_human", "slots": {"nome": "Ana"}, "turns": "3", "unknown": 1}
    loaded = Conversation.from_checkpoint(old)
    assert loaded.status == "waiting_human" and loaded.turns == 3 and loaded.introduced
    assert loaded.questions == [] and loaded.lead_status == "new"
    assert Conversation.from_checkpoint(None).is_new


def test_handoff_reads_like_the_dict_it_replaced() -> None:
    handoff = Handoff(reason="urgent", urgent=True, red_flags=("a",), notify_at=None)
    assert handoff["reason"] == "urgent" and handoff["red_flags"] == ["a"]
    assert handoff.get("brief") is None and handoff.get("nope", 1) == 1
    with pytest.raises(KeyError):
        handoff["nope"]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            "Quanto custa a consulta e vocês aceitam Unimed?",
            ["Quanto custa a consulta?", "vocês aceitam Unimed?"],
        ),
        (
            "nunca usei. vcs tem estacionamento? eu moro longe",
            ["nunca usei.", "vcs tem estacionamento?", "eu moro longe"],
        ),
        ("tenho muito calorão e não durmo direito", ["tenho muito calorão e não durmo direito"]),
        ("sou a Ana, prefiro de manhã", ["sou a Ana, prefiro de manhã"]),
    ],
)
def test_clauses_split_answers_from_questions(text: str, parts: list[str]) -> None:
    assert clauses.split(text) == parts


def test_when_and_firm_goodbye_are_pure() -> None:
    assert filling.when("tem horário semana que vem de manhã?") == "semana que vem"
    assert filling.when("quero marcar") is None
    assert not answers.firm_goodbye(_u("goodbye", confidence=0.7), "amanhã", ("tchau",))
    assert answers.firm_goodbye(_u("goodbye", source="rule"), "amanhã", ("tchau",))
    assert answers.firm_goodbye(_u("goodbye", confidence=0.7), "até mais tarde", ("tchau",))


# -- try2: booking with a day, questions at the name step, indirect questions -----------------


@pytest.mark.parametrize(
    "text",
    ["posso ir amanha de manha?", "tem horario sexta a tarde?", "dá pra ir sábado de manhã?"],
)
def test_a_request_to_come_on_a_day_is_booking(text: str) -> None:
    assert filling.booking_request(text, NOW.date())


@pytest.mark.parametrize(
    "text",
    [
        "qual o horario de sabado?",
        "não quero marcar amanhã",
        "preciso remarcar pra sexta",
        "amanhã",
    ],
)
def test_hours_a_refusal_or_a_reschedule_is_not_a_booking_request(text: str) -> None:
    assert not filling.booking_request(text, NOW.date())


def test_posso_ir_amanha_de_manha_at_the_name_step_hands_off_with_the_day(
    dialogue: Dialogue,
) -> None:
    conv = _on(dialogue, "consulta_ginecologica", "boas_vindas")
    turn = _turn(conv, "posso ir amanha de manha?", _u(None, "fallback", confidence=0.21))
    dialogue.step(conv, turn)
    assert turn.handoff is not None and turn.handoff.reason == "schedule"
    assert conv.when == "amanha" and conv.period == "manhã"
    assert "nao entendi" not in _said(turn) and "nao consegui entender" not in _said(turn)


@pytest.mark.parametrize("text", ["cade vcs???", "alguem ai?", "que horas vcs abrem?"])
def test_a_question_at_the_name_step_is_not_her_name_and_spends_no_attempt(
    dialogue: Dialogue, text: str
) -> None:
    conv = _on(dialogue, "diu", "boas_vindas")
    for _ in range(3):  # nome allows 2 attempts, then skips: a question never exhausts it
        turn = _turn(conv, text, _u(None, "fallback", confidence=0.3))
        dialogue.step(conv, turn)
        if conv.status != "bot":
            break
        assert conv.state == "boas_vindas" and conv.slots.get("nome") is None
        assert "prazer" not in _said(turn)
    assert conv.attempts.get("nome", 0) == 0


def test_a_booking_with_the_procedure_hands_off_once_she_gives_her_name(
    dialogue: Dialogue,
) -> None:
    conv = _on(dialogue, "consulta_ginecologica", "boas_vindas")
    conv.booking = True
    turn = _turn(conv, "Ana", _u(None, confidence=0.9))
    dialogue.step(conv, turn)
    assert conv.slots["nome"] == "Ana"
    assert turn.handoff is not None and turn.handoff.reason == "schedule"
    assert conv.booking is False and "o que te traz" not in _said(turn)


def test_indirect_questions_are_cut_and_asked() -> None:
    text = "meu nome é maria, tenho 32 anos e queria saber se doi colocar o diu e quanto custa"
    parts = clauses.split(text)
    assert parts == [
        "meu nome é maria, tenho 32 anos",
        "queria saber se doi colocar o diu",
        "quanto custa",
    ]
    assert clauses.clause_questions(parts) == [False, True, True]
    assert clauses.clause_questions(
        clauses.split("nao estou sangrando, so queria saber o preco")
    ) == [
        False,
        True,
    ]
    assert clauses.clause_questions(["Quero saber sobre o DIU"]) == [False]
    assert clauses.core("queria saber se dói colocar o DIU") == "doi colocar o diu"
