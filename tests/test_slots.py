from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from clinicflow.model import SLOT_TYPES, Option, Slot, SlotType
from clinicflow.slots import PERIODS, SlotValue, display, extract, parse, validate

# A Wednesday: "sexta" is 2026-05-22, "segunda" 2026-05-25, "hoje" never means next week.
TODAY = dt.date(2026, 5, 20)

DIU_OPTIONS = (
    Option("hormonal", "DIU hormonal (Mirena ou Kyleena)", ("mirena", "kyleena", "hormonio")),
    Option("cobre", "DIU de cobre", ("cobre", "sem hormonio")),
    Option("nao_sei", "Ainda não sei"),
)


def make(kind: SlotType, name: str | None = None, **kwargs: Any) -> Slot:
    return Slot(name=name or kind, type=kind, ask="?", **kwargs)


TIPO = make("choice", "tipo", options=DIU_OPTIONS)
IDADE = make("number", "idade", min=12, max=100)
SCRIPT_SLOTS = (
    make("name", "nome"),
    make("period", "periodo"),
    TIPO,
    IDADE,
    make("date", "data"),
    make("yes_no", "fumante"),
    make("email", "email"),
    make("phone", "telefone"),
    make("text", "observacao"),
)


def check(kind: SlotType, text: str, expected: SlotValue | None, **kwargs: Any) -> None:
    value = parse(make(kind, **kwargs), text, TODAY)
    assert value == expected
    assert type(value) is type(expected)


# --- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Tenho alergia a látex", "Tenho alergia a látex", id="sentence"),
        pytest.param("  ok  \n", "ok", id="stripped"),
        pytest.param("42", "42", id="digits"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param("😊👍", None, id="emoji-only"),
        pytest.param("...?!", None, id="punctuation-only"),
        pytest.param("a" * 600, "a" * 500, id="capped-at-500"),
    ],
)
def test_text(text: str, expected: str | None) -> None:
    check("text", text, expected)


# --- name ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Ana", "Ana", id="bare"),
        pytest.param("ana paula", "Ana Paula", id="lower-case"),
        pytest.param("ANA PAULA", "Ana Paula", id="upper-case"),
        pytest.param("sou a Ana", "Ana", id="sou-a"),
        pytest.param("Sou o João", "João", id="sou-o"),
        pytest.param("me chamo Ana Paula", "Ana Paula", id="me-chamo"),
        pytest.param("meu nome é Ana", "Ana", id="meu-nome-e"),
        pytest.param("meu nome eh ana", "Ana", id="meu-nome-eh"),
        pytest.param("nome: ana", "Ana", id="nome-colon"),
        pytest.param("aqui é a Ana", "Ana", id="aqui-e-a"),
        pytest.param("é a Bia, tudo bem?", "Bia", id="e-a-at-start"),
        pytest.param("Oi, sou a Ana, prefiro de manhã", "Ana", id="stops-at-comma"),
        pytest.param("me chamo ana e prefiro de manhã", "Ana", id="stops-at-e"),
        pytest.param("pode me chamar de Bia", "Bia", id="pode-me-chamar-de"),
        pytest.param("maria da silva", "Maria da Silva", id="particle-da"),
        pytest.param("MARIA DOS SANTOS", "Maria dos Santos", id="particle-dos"),
        pytest.param("sou a Ana da clínica", "Ana", id="trailing-particle-dropped"),
        pytest.param("Ana 😊", "Ana", id="emoji-removed"),
        pytest.param("Oi! Ana aqui", "Ana", id="greeting-and-aqui"),
        pytest.param("bom dia, ana", "Ana", id="greeting-clause"),
        pytest.param("ana, 32 anos", "Ana", id="first-clause"),
        pytest.param("d'ávila", "D'Ávila", id="apostrophe"),
        pytest.param("Maria das Dores", "Maria das Dores", id="name-that-is-a-word"),
        pytest.param("oi", None, id="greeting"),
        pytest.param("oi tudo bem", None, id="greeting-sentence"),
        pytest.param("bom dia", None, id="bom-dia"),
        pytest.param("sim", None, id="sim"),
        pytest.param("não", None, id="nao"),
        pytest.param("ok", None, id="ok"),
        pytest.param("kkkkk", None, id="laughter"),
        pytest.param("quero saber do diu", None, id="request"),
        pytest.param("42", None, id="number"),
        pytest.param("Ana2", None, id="digits-in-name"),
        pytest.param("Eu gostaria de marcar uma consulta", None, id="sentence"),
        pytest.param("Ana Paula Souza Lima Costa", None, id="too-long-without-marker"),
        pytest.param("sou casada", None, id="sou-adjective"),
        pytest.param("sou a mãe da Ana", None, id="sou-a-mae"),
        pytest.param("😊", None, id="emoji-only"),
    ],
)
def test_name(text: str, expected: str | None) -> None:
    check("name", text, expected)


# --- phone --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("11 98765-4321", "5511987654321", id="ddd-dash"),
        pytest.param("+55 (11) 98765-4321", "5511987654321", id="plus55-parens"),
        pytest.param("(11)987654321", "5511987654321", id="parens-no-space"),
        pytest.param("5511987654321", "5511987654321", id="already-normalised"),
        pytest.param("011 98765-4321", "5511987654321", id="long-distance-zero"),
        pytest.param("meu cel é 11 9 8765 4321", "5511987654321", id="in-sentence"),
        pytest.param("(21) 3456-7890", "552134567890", id="landline"),
        pytest.param("98765-4321", None, id="no-ddd"),
        pytest.param("(11) 8765-4321", None, id="old-mobile-without-9"),
        pytest.param("(01) 98765-4321", None, id="bad-ddd"),
        pytest.param("123.456.789-09", None, id="cpf"),
        pytest.param("11 98765-4321 ou 21 99876-5432", None, id="two-numbers"),
        pytest.param("+1 415 555 2671", None, id="foreign"),
        pytest.param("sim", None, id="no-digits"),
    ],
)
def test_phone(text: str, expected: str | None) -> None:
    check("phone", text, expected)


# --- email --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Ana.Silva@Gmail.com", "ana.silva@gmail.com", id="lower-cased"),
        pytest.param("meu email: ana @ gmail.com.br", "ana@gmail.com.br", id="spaces-around-at"),
        pytest.param("é ana_p+diu@clinica.med.br.", "ana_p+diu@clinica.med.br", id="final-dot"),
        pytest.param("joão@gmail.com", None, id="accented-local-part"),
        pytest.param("ana@@x.com", None, id="double-at"),
        pytest.param("ana..b@x.com", None, id="double-dot"),
        pytest.param("a@b.c", None, id="one-letter-tld"),
        pytest.param("ana@gmail", None, id="no-tld"),
        pytest.param("a@x.com b@y.com", None, id="two-addresses"),
        pytest.param("arroba", None, id="no-address"),
    ],
)
def test_email(text: str, expected: str | None) -> None:
    check("email", text, expected)


# --- date ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("12/03", "2027-03-12", id="past-rolls-to-next-year"),
        pytest.param("25/12", "2026-12-25", id="future-this-year"),
        pytest.param("20/05", "2026-05-20", id="today-without-year"),
        pytest.param("12/03/2027", "2027-03-12", id="full-year"),
        pytest.param("12-03-27", "2027-03-12", id="dashes-two-digit-year"),
        pytest.param("12.03.2027", "2027-03-12", id="dots"),
        pytest.param("01/02/1980", "1980-02-01", id="explicit-past-year-kept"),
        pytest.param("dia 12", "2026-06-12", id="dia-past-day-next-month"),
        pytest.param("dia 25", "2026-05-25", id="dia-this-month"),
        pytest.param("15", "2026-06-15", id="bare-day"),
        pytest.param("dia 12 de março", "2027-03-12", id="month-name"),
        pytest.param("12 de marco de 2027", "2027-03-12", id="month-name-year"),
        pytest.param("1º de junho", "2026-06-01", id="ordinal-day"),
        pytest.param("10 dez", "2026-12-10", id="month-abbreviation"),
        pytest.param("hoje", "2026-05-20", id="hoje"),
        pytest.param("hj", "2026-05-20", id="hj"),
        pytest.param("amanhã", "2026-05-21", id="amanha"),
        pytest.param("amanha de manha", "2026-05-21", id="amanha-de-manha"),
        pytest.param("depois de amanhã", "2026-05-22", id="depois-de-amanha"),
        pytest.param("segunda", "2026-05-25", id="segunda"),
        pytest.param("na terça", "2026-05-26", id="na-terca"),
        pytest.param("quarta", "2026-05-27", id="same-weekday-is-next-week"),
        pytest.param("sexta-feira", "2026-05-22", id="sexta-feira"),
        pytest.param("sábado", "2026-05-23", id="sabado"),
        pytest.param("sexta que vem", "2026-05-22", id="weekday-que-vem"),
        pytest.param("sexta da semana que vem", "2026-05-29", id="weekday-next-week"),
        pytest.param("amanhã, dia 21", "2026-05-21", id="consistent-forms"),
        pytest.param("semana que vem", None, id="semana-que-vem-vague"),
        pytest.param("hoje ou amanhã", None, id="two-dates"),
        pytest.param("amanhã, dia 25", None, id="conflicting-forms"),
        pytest.param("31/02", None, id="impossible"),
        pytest.param("12/13", None, id="month-13"),
        pytest.param("dia 32", None, id="day-32"),
        pytest.param("1,65", None, id="decimal"),
        pytest.param("11 98765-4321", None, id="phone"),
        pytest.param("quando der", None, id="vague"),
    ],
)
def test_date(text: str, expected: str | None) -> None:
    check("date", text, expected)


def test_date_29_february_rolls_to_leap_year() -> None:
    assert parse(make("date"), "29/02", TODAY) == "2028-02-29"


# --- period -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("manhã", "manhã", id="manha"),
        pytest.param("de manha", "manhã", id="de-manha-no-accent"),
        pytest.param("pela manhã", "manhã", id="pela-manha"),
        pytest.param("cedo", "manhã", id="cedo"),
        pytest.param("tarde", "tarde", id="tarde"),
        pytest.param("à tarde", "tarde", id="a-tarde"),
        pytest.param("de tarde", "tarde", id="de-tarde"),
        pytest.param("depois do almoço", "tarde", id="depois-do-almoco"),
        pytest.param("noite", "noite", id="noite"),
        pytest.param("à noite", "noite", id="a-noite"),
        pytest.param("depois do trabalho", "noite", id="depois-do-trabalho"),
        pytest.param("qualquer horário", "qualquer", id="qualquer-horario"),
        pytest.param("tanto faz", "qualquer", id="tanto-faz"),
        pytest.param("qualquer um", "qualquer", id="qualquer-um"),
        pytest.param("manhã ou tarde, tanto faz", "qualquer", id="tanto-faz-wins"),
        pytest.param("qualquer", "qualquer", id="qualquer-alone"),
        pytest.param("qualquer dia de manhã", "manhã", id="qualquer-dia-is-not-a-period"),
        pytest.param("as 9h", "manhã", id="9h"),
        pytest.param("10 horas", "manhã", id="10-horas"),
        pytest.param("às 14h30", "tarde", id="14h30"),
        pytest.param("12h", "tarde", id="noon"),
        pytest.param("depois das 18h", "noite", id="18h"),
        pytest.param("às 19:30", "noite", id="colon-time"),
        pytest.param("às 8 da noite", "noite", id="word-beats-hour"),
        pytest.param("Boa tarde, prefiro de manhã", "manhã", id="greeting-ignored"),
        pytest.param("não posso de manhã, só à tarde", "tarde", id="negated-period"),
        pytest.param("PREFIRO DE MANHÃ 🙏", "manhã", id="caps-emoji"),
        pytest.param("boa tarde", None, id="greeting-only"),
        pytest.param("boa noite!", None, id="boa-noite"),
        pytest.param("mais tarde", None, id="mais-tarde"),
        pytest.param("manhã ou tarde", None, id="two-periods"),
        pytest.param("de manhã não posso", None, id="negated-only"),
        pytest.param("há 2 horas", None, id="duration"),
        pytest.param("às 3", None, id="ambiguous-small-hour"),
        pytest.param("amanhã", None, id="amanha-is-not-manha"),
    ],
)
def test_period(text: str, expected: str | None) -> None:
    check("period", text, expected)


# --- choice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1", "hormonal", id="number"),
        pytest.param("opção 2", "cobre", id="opcao-n"),
        pytest.param("opcao dois", "cobre", id="opcao-word"),
        pytest.param("nº 2", "cobre", id="numero-sign"),
        pytest.param("quero a 2, por favor", "cobre", id="fillers"),
        pytest.param("a segunda", "cobre", id="ordinal"),
        pytest.param("a última", "nao_sei", id="ultima"),
        pytest.param("2️⃣", "cobre", id="keycap-emoji"),
        pytest.param("3", "nao_sei", id="last-number"),
        pytest.param("mirena", "hormonal", id="synonym"),
        pytest.param("Kyleena!", "hormonal", id="synonym-caps"),
        pytest.param("o de cobre", "cobre", id="value"),
        pytest.param("quero o diu de cobre", "cobre", id="label-in-sentence"),
        pytest.param("DIU hormonal", "hormonal", id="label-without-parenthesis"),
        pytest.param("sem hormônio", "cobre", id="longer-phrase-wins"),
        pytest.param("hormonio", "hormonal", id="nested-synonym-alone"),
        pytest.param("ainda nao sei", "nao_sei", id="label-no-accent"),
        pytest.param("não sei", "nao_sei", id="value-words"),
        pytest.param("1 - mirena", "hormonal", id="number-and-word-agree"),
        pytest.param("não quero hormônio", None, id="negated"),
        pytest.param("não quero o hormonal, prefiro o de cobre", "cobre", id="negated-and-chosen"),
        pytest.param("o de cobre, nem pensar no hormonal", "cobre", id="negated-after"),
        pytest.param("4", None, id="out-of-range"),
        pytest.param("0", None, id="zero"),
        pytest.param("cobre ou mirena", None, id="ambiguous"),
        pytest.param("2 mirena", None, id="number-and-word-disagree"),
        pytest.param("1 e 2", None, id="two-numbers"),
        pytest.param("diu", None, id="shared-word"),
        pytest.param("recobrem", None, id="not-a-whole-word"),
        pytest.param("sim", None, id="yes"),
    ],
)
def test_choice(text: str, expected: str | None) -> None:
    assert parse(TIPO, text, TODAY) == expected


def test_choice_distinctive_label_word() -> None:
    menu = make(
        "choice",
        options=(
            Option("valor", "Valores e formas de pagamento"),
            Option("colocacao", "Como é a colocação"),
        ),
    )
    assert parse(menu, "quanto são os valores?", TODAY) == "valor"
    assert parse(menu, "colocação e valores", TODAY) is None


def test_choice_without_options() -> None:
    assert parse(make("choice"), "1", TODAY) is None


# --- yes / no -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("sim", True, id="sim"),
        pytest.param("Sim!", True, id="sim-caps"),
        pytest.param("s", True, id="s"),
        pytest.param("siiiim", True, id="stretched"),
        pytest.param("claro", True, id="claro"),
        pytest.param("com certeza", True, id="com-certeza"),
        pytest.param("aham", True, id="aham"),
        pytest.param("uhum", True, id="uhum"),
        pytest.param("isso", True, id="isso"),
        pytest.param("pode ser", True, id="pode-ser"),
        pytest.param("quero", True, id="quero"),
        pytest.param("tenho sim", True, id="tenho-sim"),
        pytest.param("claro que sim", True, id="claro-que-sim"),
        pytest.param("acho que sim", True, id="acho-que-sim"),
        pytest.param("👍", True, id="thumbs-up"),
        pytest.param("👍🏽", True, id="thumbs-up-skin-tone"),
        pytest.param("não", False, id="nao"),
        pytest.param("nao", False, id="nao-no-accent"),
        pytest.param("n", False, id="n"),
        pytest.param("nãooo", False, id="stretched-nao"),
        pytest.param("nunca", False, id="nunca"),
        pytest.param("de jeito nenhum", False, id="de-jeito-nenhum"),
        pytest.param("não, obrigada", False, id="nao-obrigada"),
        pytest.param("não quero", False, id="nao-quero"),
        pytest.param("não tenho", False, id="nao-tenho"),
        pytest.param("claro que não", False, id="claro-que-nao"),
        pytest.param("👎", False, id="thumbs-down"),
        pytest.param("não sei", None, id="nao-sei"),
        pytest.param("talvez", None, id="talvez"),
        pytest.param("sim e não", None, id="both"),
        pytest.param("👍👎", None, id="both-emoji"),
        pytest.param("qual o preço?", None, id="unrelated"),
    ],
)
def test_yes_no(text: str, expected: bool | None) -> None:
    assert parse(make("yes_no"), text, TODAY) is expected


# --- number -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("42", 42, id="digits"),
        pytest.param("42 anos", 42, id="unit"),
        pytest.param("42anos", 42, id="glued-unit"),
        pytest.param("tenho 42", 42, id="tenho"),
        pytest.param("quarenta e dois", 42, id="words"),
        pytest.param("vinte e um anos", 21, id="vinte-e-um"),
        pytest.param("dezesseis", 16, id="teen"),
        pytest.param("cento e vinte e três", 123, id="hundreds"),
        pytest.param("novecentos e noventa e nove", 999, id="max-words"),
        pytest.param("zero", 0, id="zero"),
        pytest.param("um", 1, id="um-alone"),
        pytest.param("tenho um filho", 1, id="um-count-noun"),
        pytest.param("1,65", 1.65, id="decimal-comma"),
        pytest.param("1,65m", 1.65, id="decimal-unit"),
        pytest.param("1.650", 1650, id="thousands-dot"),
        pytest.param("tenho uma dúvida", None, id="article"),
        pytest.param("entre 40 e 45", None, id="two-numbers"),
        pytest.param("12/03", None, id="date"),
        pytest.param("11 98765-4321", None, id="phone"),
        pytest.param("não sei", None, id="no-number"),
        pytest.param("9" * 30, None, id="too-many-digits"),
    ],
)
def test_number(text: str, expected: float | None) -> None:
    check("number", text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("12", 12, id="at-min"),
        pytest.param("100", 100, id="at-max"),
        pytest.param("11", None, id="below-min"),
        pytest.param("cento e um", None, id="above-max"),
    ],
)
def test_number_bounds(text: str, expected: int | None) -> None:
    assert parse(IDADE, text, TODAY) == expected


# --- extract ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expecting", "expected"),
    [
        pytest.param(
            "sou a Ana, prefiro de manhã",
            None,
            {"nome": "Ana", "periodo": "manhã"},
            id="name-and-period-unasked",
        ),
        pytest.param(
            "Ana, tenho 42 anos e quero o de cobre",
            "nome",
            {"nome": "Ana", "idade": 42, "tipo": "cobre"},
            id="asked-name-plus-age-and-choice",
        ),
        pytest.param("Ana, 32 anos", "nome", {"nome": "Ana", "idade": 32}, id="clause-age"),
        pytest.param("tenho 32anos", None, {"idade": 32}, id="glued-age"),
        pytest.param("tenho quarenta anos", None, {"idade": 40}, id="age-in-words"),
        pytest.param("tenho 7 anos", None, {}, id="age-out-of-bounds"),
        pytest.param("qualquer dia", None, {}, id="qualquer-dia"),
        pytest.param("2", "tipo", {"tipo": "cobre"}, id="number-only-for-asked"),
        pytest.param("2", "nome", {}, id="bare-number-never-unasked"),
        pytest.param("Ana", None, {}, id="bare-name-never-unasked"),
        pytest.param("sim", "nome", {}, id="yes-never-unasked"),
        pytest.param("amanhã", "nome", {}, id="relative-date-never-unasked"),
        pytest.param(
            "ana@x.com, 11 98765-4321, dia 12/03",
            None,
            {"email": "ana@x.com", "telefone": "5511987654321", "data": "2027-03-12"},
            id="typed-values",
        ),
        pytest.param("3.5", None, {}, id="dotted-quantity-is-not-a-date"),
        pytest.param("há 2 anos uso diu", None, {}, id="duration-is-not-age"),
        pytest.param("2 anos atrás coloquei", None, {}, id="anos-atras"),
        pytest.param("acordei cedo com dor hoje", None, {}, id="cedo-not-unasked"),
        pytest.param("ontem à noite tive dor", None, {}, id="ontem-a-noite"),
        pytest.param("sou casada", None, {}, id="sou-adjective"),
        pytest.param("Sou Ana", None, {"nome": "Ana"}, id="sou-capitalised"),
        pytest.param("sou ana", None, {}, id="sou-lower-case-unasked"),
        pytest.param("sou ana", "nome", {"nome": "Ana"}, id="sou-lower-case-asked"),
        pytest.param("Não quero hormônio", None, {}, id="negated-choice-unasked"),
        pytest.param(
            "Tenho 42 anos", "observacao", {"observacao": "Tenho 42 anos", "idade": 42}, id="text"
        ),
        pytest.param("1", "fumante", {}, id="asked-but-no-value"),
    ],
)
def test_extract(text: str, expecting: str | None, expected: dict[str, SlotValue]) -> None:
    assert extract(SCRIPT_SLOTS, text, TODAY, expecting) == expected


def test_extract_two_unasked_slots_of_one_type_stay_empty() -> None:
    slots = (make("date", "data_consulta"), make("date", "nascimento"), make("name", "nome"))
    assert extract(slots, "me chamo Ana, dia 12/03", TODAY, None) == {"nome": "Ana"}
    assert extract(slots, "12/03", TODAY, "nascimento") == {"nascimento": "2027-03-12"}


def test_extract_unknown_expecting_is_all_unasked() -> None:
    assert extract(SCRIPT_SLOTS, "2", TODAY, "nao_existe") == {}


# --- display ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "value", "expected"),
    [
        pytest.param(TIPO, "cobre", "DIU de cobre", id="choice-label"),
        pytest.param(TIPO, "sumiu", "sumiu", id="choice-unknown-value"),
        pytest.param(make("date"), "2027-03-12", "12/03/2027", id="date"),
        pytest.param(make("date"), "amanhã", "amanhã", id="date-not-iso"),
        pytest.param(make("yes_no"), True, "sim", id="yes"),
        pytest.param(make("yes_no"), False, "não", id="no"),
        pytest.param(make("period"), "manhã", "manhã", id="period"),
        pytest.param(make("number"), 42, "42", id="int"),
        pytest.param(make("number"), 42.0, "42", id="float-integral"),
        pytest.param(make("number"), 1.65, "1,65", id="float-decimal-comma"),
        pytest.param(make("number"), 0.1 + 0.2, "0,3", id="float-noise"),
        pytest.param(make("number"), float("nan"), "nan", id="nan"),
        pytest.param(make("name"), "Ana Paula", "Ana Paula", id="name"),
        pytest.param(make("phone"), "5511987654321", "5511987654321", id="phone"),
    ],
)
def test_display(slot: Slot, value: SlotValue, expected: str) -> None:
    assert display(slot, value) == expected


# --- validate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "value", "expected"),
    [
        pytest.param(make("text"), "qualquer coisa", True, id="text"),
        pytest.param(make("text"), "   ", False, id="text-blank"),
        pytest.param(make("text"), "a" * 501, False, id="text-too-long"),
        pytest.param(make("name"), "Ana Paula da Silva", True, id="name"),
        pytest.param(make("name"), "Ana 2", False, id="name-digit"),
        pytest.param(make("name"), "", False, id="name-empty"),
        pytest.param(make("phone"), "5511987654321", True, id="phone"),
        pytest.param(make("phone"), "11987654321", False, id="phone-without-55"),
        pytest.param(make("phone"), "+5511987654321", False, id="phone-with-plus"),
        pytest.param(make("email"), "ana@gmail.com", True, id="email"),
        pytest.param(make("email"), "Ana@gmail.com", False, id="email-not-lower"),
        pytest.param(make("email"), "ana@gmail", False, id="email-no-tld"),
        pytest.param(make("date"), "2027-03-12", True, id="date"),
        pytest.param(make("date"), "2027-02-30", False, id="date-impossible"),
        pytest.param(make("date"), "20270312", False, id="date-compact"),
        pytest.param(make("date"), "12/03/2027", False, id="date-br"),
        pytest.param(make("period"), "tarde", True, id="period"),
        pytest.param(make("period"), "manha", False, id="period-no-accent"),
        pytest.param(TIPO, "cobre", True, id="choice"),
        pytest.param(TIPO, "DIU de cobre", False, id="choice-label-not-value"),
        pytest.param(make("yes_no"), True, True, id="yes-no"),
        pytest.param(make("yes_no"), "sim", False, id="yes-no-text"),
        pytest.param(make("yes_no"), 1, False, id="yes-no-int"),
        pytest.param(IDADE, 42, True, id="number"),
        pytest.param(IDADE, 1.5e1, True, id="number-float"),
        pytest.param(IDADE, 101, False, id="number-above-max"),
        pytest.param(IDADE, True, False, id="number-bool"),
        pytest.param(IDADE, "42", False, id="number-text"),
        pytest.param(make("number"), float("inf"), False, id="number-inf"),
        pytest.param(make("number"), float("nan"), False, id="number-nan"),
    ],
)
def test_validate(slot: Slot, value: object, expected: bool) -> None:
    assert validate(slot, value) is expected


@pytest.mark.parametrize("period", PERIODS)
def test_parsed_values_validate(period: str) -> None:
    assert validate(make("period"), period)


# --- hostile input ------------------------------------------------------------------------------

HOSTILE = [
    pytest.param("", id="empty"),
    pytest.param("{}", id="braces"),
    pytest.param("{nome}", id="template"),
    pytest.param("%s %d %(x)s", id="percent-format"),
    pytest.param("\x00\x1b[31m\u202e", id="control-chars"),
    pytest.param("ａｎａ ＠ｇｍａｉｌ．ｃｏｍ", id="fullwidth"),
    pytest.param("🙂" * 2000, id="emoji-flood"),
    pytest.param("a" * 10_000, id="10k-letters"),
    pytest.param("9" * 10_000, id="10k-digits"),
    pytest.param("1/" * 5_000, id="10k-slashes"),
    pytest.param("sim não " * 1_250, id="10k-words"),
    pytest.param("@" * 10_000, id="10k-at"),
    pytest.param("(11) " * 2_000, id="10k-phone-pieces"),
    pytest.param("e " * 5_000, id="10k-e"),
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("kind", SLOT_TYPES)
def test_hostile_input_never_raises(kind: SlotType, text: str) -> None:
    slot = TIPO if kind == "choice" else make(kind)
    value = parse(slot, text, TODAY)
    assert value is None or validate(slot, value)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_extract_never_raises(text: str) -> None:
    for name, value in extract(SCRIPT_SLOTS, text, TODAY, "nome").items():
        slot = next(slot for slot in SCRIPT_SLOTS if slot.name == name)
        assert validate(slot, value)
