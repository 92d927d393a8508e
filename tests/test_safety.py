"""The safety detector on its own (signs and context, no model), then with the trained model
through ``Engine.classify`` on the kinds issue 11 names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clinicflow.brief import compose
from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import load_catalog
from clinicflow.model import EMERGENCY_CATEGORIES
from clinicflow.text import fold, normalize
from clinicflow.understanding.context import mark_negations, sentences, without_negated
from clinicflow.understanding.safety import SafetyDetector, guidance_key
from clinicflow.understanding.signs import SIGNS

DETECTOR = SafetyDetector(load_catalog())


def signs_only(text: str, probability: float = 0.0) -> object:
    return DETECTOR.assess(text, probability=probability)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        pytest.param("to enchendo o absorvente noturno de hora em hora", "bleeding", id="pad"),
        pytest.param("tirei o diu ontem e to com 39 de febre", "fever_infection", id="fever-iud"),
        pytest.param("to com uma dor insuportável no pé da barriga", "severe_pain", id="pain"),
        pytest.param("a boca e os olhos tão inchando depois da injeção", "breathing_allergy", id="swelling"),  # noqa: E501
        pytest.param("sinto a garganta fechando", "breathing_allergy", id="throat"),
        pytest.param("a boca dela ficou torta de repente", "stroke", id="face"),
        pytest.param("ela ta falando enrolado", "stroke", id="speech"),
        pytest.param("aperto no peito desde cedo", "chest_pain", id="chest"),
        pytest.param("minha panturrilha ta inchada, vermelha e quente", "thrombosis", id="calf"),
        pytest.param("acabei de desmaiar no banheiro", "fainting", id="fainted"),
        pytest.param("to pensando em tirar minha vida", "self_harm", id="self-harm"),
        pytest.param("to grávida de 8 semanas e sangrando", "pregnancy", id="pregnancy"),
        pytest.param("deu 2 risquinhos e eu uso diu", "pregnancy", id="pregnant-iud"),
        pytest.param("os pontos da cirurgia abriram", "wound", id="wound"),
        pytest.param("meu marido me bateu agora há pouco", "violence", id="violence"),
        pytest.param("vomitei o dia todo e não paro nada no estômago", "dehydration", id="vomit"),
    ],
)  # fmt: skip
def test_each_category_has_signs_in_her_own_words(text: str, category: str) -> None:
    verdict = signs_only(text)
    assert verdict.urgent and verdict.sure, verdict
    assert verdict.category == category


def test_every_sign_names_a_known_category() -> None:
    assert {sign.category for sign in SIGNS} <= set(EMERGENCY_CATEGORIES)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("ano passado tive hemorragia no parto", "past", id="past"),
        pytest.param("tive um desmaio na adolescência", "past", id="adolescence"),
        pytest.param("minha irmã teve trombose", "other_person", id="sister"),
        pytest.param("sangra muito depois de colocar o diu?", "hypothetical", id="general-question"),  # noqa: E501
        pytest.param("e se eu desmaiar na hora?", "hypothetical", id="what-if"),
        pytest.param("tenho pavor dos pontos abrirem", "hypothetical", id="fear"),
        pytest.param("tive febre depois do diu. já passou", "resolved", id="resolved"),
    ],
)  # fmt: skip
def test_context_discounts_a_sign_even_with_a_high_probability(text: str, reason: str) -> None:
    verdict = signs_only(text, probability=0.99)
    assert not verdict.urgent, verdict
    assert verdict.symptom  # still worth Gemini's second look
    assert reason in verdict.discounted


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("não estou sangrando, só queria saber o valor", id="negated"),
        pytest.param("to sangrando de raiva com esse boleto", id="figurative"),
        pytest.param("quase desmaiei de calor na sala de espera kkk", id="figure-of-heat"),
        pytest.param("adoro vcs, dormi super bem depois da consulta", id="substrings"),
    ],
)
def test_look_alikes_raise_no_sign(text: str) -> None:
    assert not signs_only(text).urgent


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("já passou a dor, agora estou sangrando muito", id="resolved-then-now"),
        pytest.param("a febre já passou mas agora estou sangrando muito", id="contrast"),
        pytest.param("ano passado tive trombose. agora a perna ta inchada e vermelha", id="past-then-now"),  # noqa: E501
        pytest.param("minha mãe tá aqui comigo e a boca dela entortou", id="someone-with-her"),
        pytest.param("oi, queria saber o preço... na vdd hj to sangrando mto e tonta", id="buried"),
    ],
)  # fmt: skip
def test_what_happens_now_still_counts(text: str) -> None:
    verdict = signs_only(text)
    assert verdict.urgent, verdict


def test_a_weak_sign_needs_some_probability_and_is_not_sure() -> None:
    assert not signs_only("to ficando tonta", probability=0.05).urgent
    verdict = signs_only("to ficando tonta", probability=0.3)
    assert verdict.urgent and not verdict.sure and verdict.category == "fainting"


def test_the_model_alone_decides_above_its_threshold() -> None:
    verdict = signs_only("nao to bem, preciso de ajuda agora", probability=0.9)
    assert verdict.urgent and verdict.sure and verdict.signs == ()


def test_the_catalog_red_flags_join_the_signs() -> None:
    verdict = signs_only("acho que estou abortando")
    assert verdict.urgent and "gravidez_dor_sangramento" in verdict.signs


def test_guidance_by_category() -> None:
    assert guidance_key("self_harm", "urgent") == "urgent_self_harm"
    assert guidance_key("violence", "emergency") == "emergency_violence"
    assert guidance_key("bleeding", "urgent") == "urgent"
    assert guidance_key(None, "emergency") == "emergency"


def test_negation_scopes() -> None:
    norm = normalize("não quero marcar agora, só pesquisando")
    assert mark_negations(norm) == "nao NEG_quero NEG_marcar NEG_agora so pesquisando"
    assert without_negated(normalize("não quero falar com robô, quero uma pessoa")) == (
        "quero uma pessoa"
    )


def test_sentences_split_at_a_contrast() -> None:
    parts = sentences("tive febre mês passado, mas agora estou sangrando")
    assert [p.past for p in parts] == [True, False]


# -- with the trained model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine.from_catalog(None, data_dir=tmp_path_factory.mktemp("safety"), clock=ManualClock())
    yield eng
    eng.close_resources()


@pytest.mark.parametrize(
    "text",
    [
        "apliquei a canetinha e minha boca e meus olhos tão inchando, ta coçando tudo",
        "tomei o antibiótico e apareceram placas vermelhas e sinto a garganta fechando",
        "tirei o diu hj de manhã e agora to tremendo de frio, o termômetro marcou 39",
        "minha perna esquerda tá inchada, vermelha e doendo desde ontem, tomo hormônio da menopausa",  # noqa: E501
        "to menstruada faz 10 dias e hj ta vindo mto forte, encho o absorvente toda hora e to ficando tonta",  # noqa: E501
    ],
)  # fmt: skip
def test_issue_emergencies_are_urgent(engine: Engine, text: str) -> None:
    u = engine.classify(text)
    assert u.intent == "urgent" and u.safety.urgent, u


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("PARE", "opt_out"),
        ("Sair", "opt_out"),
        ("stop", "opt_out"),
        ("CANCELAR", "opt_out"),
        ("não tenho interesse, por favor não me enviem mais nada", "opt_out"),
        ("quero cancelar minha consulta de quinta", "reschedule_cancel"),
        ("fui cobrada duas vezes no cartão pela consulta e ninguém resolveu", "complaint"),
        ("a moça da recepção foi super grossa comigo", "complaint"),
        ("socorro kkkk quanto custa isso 😂", "ask_price"),
    ],
)
def test_issue_intents(engine: Engine, text: str, intent: str) -> None:
    assert engine.classify(text).intent == intent


@pytest.mark.parametrize(
    "text",
    [
        "não quero marcar agora, só to pesquisando",
        "vou pensar e falar com meu marido, obg",
        "adorei o atendimento de ontem, obrigada!",
    ],
)
def test_issue_not_requests(engine: Engine, text: str) -> None:
    u = engine.classify(text)
    assert u.intent not in ("schedule", "bot_check", "complaint", "human", "urgent"), u


def test_a_greeting_adds_no_confidence(engine: Engine) -> None:
    plain = engine.classify("quero colocar DIU")
    greeted = engine.classify("Oi, quero colocar DIU")
    assert greeted.confidence <= plain.confidence + 0.05
    assert greeted.source != "rule"


def test_the_model_is_trained_once_and_cached(engine: Engine, tmp_path: Path) -> None:
    files = list((engine.data_dir / "models").glob("intents-*.npz"))
    assert len(files) == 1
    again = Engine.from_catalog(None, data_dir=engine.data_dir, clock=ManualClock())
    try:
        assert again.model.digest == engine.model.digest
    finally:
        again.close_resources()


# -- try2 report: violence in everyday words, a bare call for help, figures of speech, the
# category of every urgent verdict, dose questions ---------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("meu marido me bateu ontem", id="bateu-ontem"),
        pytest.param("apanhei do meu namorado e to com medo de voltar pra casa", id="apanhei"),
        pytest.param("meu marido me bate, preciso de ajuda", id="me-bate"),
        pytest.param("ele me empurrou da escada hj", id="empurrou"),
        pytest.param("meu ex me agrediu e to toda roxa", id="agrediu"),
        pytest.param("tenho medo do meu marido, ele me ameaça", id="medo-ameaca"),
        pytest.param("ele tá me espancando", id="espancando"),
        pytest.param("ele disse que vai me matar", id="threat"),
    ],
)  # fmt: skip
def test_violence_told_with_everyday_verbs_is_urgent(text: str) -> None:
    verdict = signs_only(text)
    assert verdict.urgent and verdict.sure, verdict
    assert verdict.category == "violence"
    assert guidance_key(verdict.category, "urgent") == "urgent_violence"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ele nunca me bateu, só queria marcar consulta", id="negated"),
        pytest.param("meu ex me bateu anos atrás, hoje estou bem", id="past-resolved"),
        pytest.param("me bate uma tristeza quando chega a menstruação", id="figure"),
        pytest.param("to apanhando pra entender o app de vcs", id="struggling"),
    ],
)  # fmt: skip
def test_violence_negated_over_or_figurative_is_not_urgent(text: str) -> None:
    assert not signs_only(text).urgent


def test_i_will_kill_myself_stays_self_harm() -> None:
    assert signs_only("vou me matar").category == "self_harm"


@pytest.mark.parametrize(
    "text",
    ["ajuda urgente", "urgente", "Socorro!!!", "É URGENTE", "emergência", "socorro, me ajuda"],
)
def test_a_bare_call_for_help_is_urgent(text: str) -> None:
    verdict = signs_only(text)
    assert verdict.urgent and verdict.red_flags, verdict


@pytest.mark.parametrize(
    "text",
    ["socorro kkkk quanto custa isso 😂", "não é urgente, só queria saber o horário",
     "é urgente marcar? posso esperar o mês que vem?"],
)  # fmt: skip
def test_urgency_words_inside_a_request_are_not_a_call_for_help(text: str) -> None:
    assert "pedido_de_socorro" not in signs_only(text).signs


def test_a_model_only_verdict_keeps_its_likely_category() -> None:
    verdict = DETECTOR.assess(
        "nao to bem, preciso de ajuda agora",
        probability=0.9,
        category_of=lambda text: ("fainting", 0.3),
    )
    assert verdict.urgent and verdict.category is None  # generic guidance
    assert verdict.likely_category == "fainting"
    assert verdict.red_flags == ("fainting",)
    bare = DETECTOR.assess("nao to bem, preciso de ajuda agora", probability=0.9)
    assert bare.red_flags == ("urgent",)


@pytest.mark.parametrize(
    "text",
    [
        "to sangrando de raiva com essa demora kkk",
        "to morta de cansaço",
        "morrendo de rir com vcs",
        "morrendo de saudade da doutora",
    ],
)
def test_figures_of_speech_are_not_urgent_with_the_model(engine: Engine, text: str) -> None:
    u = engine.classify(text)
    assert not u.urgent, u


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("to com 40 de febre", "febre"),
        ("minha boca ficou torta e nao consigo mexer o braço", "avc"),
        ("meu ex me agrediu e to toda roxa", "violencia"),
        ("sofri violencia domestica", "violencia"),
        ("estou com muito sangramento 😭😭", "sangramento"),
        ("coloquei o diu semana passada e agora to com febre de 39 e dor na barriga", "febre"),
        ("meu marido me bateu ontem", "violencia"),
        ("ajuda urgente", "socorro"),
    ],
)
def test_every_urgent_brief_names_what_fired(engine: Engine, text: str, label: str) -> None:
    u = engine.classify(text)
    assert u.urgent and u.red_flags, u
    brief = compose(
        chat_id="5511987650201@c.us",
        clinic=engine.catalog.clinic,
        script=None,
        slots={},
        reason="urgent",
        urgent=True,
        red_flags=u.red_flags,
        messages=[{"direction": "in", "text": text}],
        category=u.safety.category,
    )
    assert brief.red_flags, brief
    assert any(label in fold(flag) for flag in brief.red_flags), brief.red_flags
    assert "Relatou:" in brief.summary


def test_an_urgent_brief_is_never_without_a_red_flag() -> None:
    brief = compose(
        chat_id="5511987650201@c.us",
        clinic=load_catalog().clinic,
        script=None,
        slots={},
        reason="urgent",
        urgent=True,
        red_flags=(),
        messages=[],
    )
    assert brief.red_flags


@pytest.mark.parametrize(
    "text",
    [
        "qual a dose de progesterona que devo tomar na menopausa?",
        "quantos mg de ibuprofeno posso tomar?",
        "qual remédio eu tomo pra cólica?",
    ],
)
def test_dose_questions_are_medical_advice_by_rule(engine: Engine, text: str) -> None:
    u = engine.classify(text)
    assert (u.intent, u.source) == ("medical_advice", "rule"), u


@pytest.mark.parametrize(
    "text", ["posso tomar banho depois da cirurgia?", "devo tomar algum cuidado antes do exame?"]
)
def test_care_questions_are_not_dose_questions(engine: Engine, text: str) -> None:
    assert engine.classify(text).source != "rule"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        pytest.param("tomei 20 comprimidos", "self_harm", id="overdose"),
        pytest.param("engoli uma caixa de remedio pra dormir", "self_harm", id="box"),
        pytest.param("to tendo contração e so tenho 30 semanas", "pregnancy", id="preterm"),
        pytest.param("a bolsa estourou e to de 32 semanas", "pregnancy", id="waters"),
        pytest.param(
            "fiz a cirurgia intima semana passada e ta muito inchado, vermelho e quente",
            "wound", id="wound-infection",
        ),
    ],
)  # fmt: skip
def test_poisoning_preterm_labour_and_an_infected_wound_are_urgent(
    text: str, category: str
) -> None:
    verdict = signs_only(text)
    assert verdict.urgent and verdict.sure, verdict
    assert verdict.category == category


@pytest.mark.parametrize(
    "text",
    [
        "tomei 2 comprimidos de dipirona",
        "tomo 5 remedios por dia",
        "minha irma tomou 20 comprimidos ano passado",
        "a cirurgia foi otima, nada inchado nem vermelho",
        "fiz a cirurgia ano passado e ficou inchado e vermelho uns dias",
        "tirei o diu ontem e nao tenho febre",
        "tive contração ontem mas passou",
    ],
)
def test_a_few_pills_a_healed_wound_or_a_denied_sign_raise_nothing(text: str) -> None:
    assert not signs_only(text).signs


# -- everyday words from a second outside set (tests/data/safety_tune.yaml) -------------------
# Each kind is held by signs and context alone (no model probability), so a model retrained on
# another catalog cannot lose it.


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # soaked through ("já passou pro lençol") is not "já passou" (over)
        pytest.param("to sangrando muito desde cedo la embaixo, ja passou pro lencol e pra calça", "bleeding", id="soaked-through"),  # noqa: E501
        pytest.param("sangue descendo igual torneira aberta, socorro, que faço??", "bleeding", id="simile-tap"),  # noqa: E501
        pytest.param("to perdendo mt sangue, parece uma cachoeira", "bleeding", id="simile-waterfall"),  # noqa: E501
        pytest.param("Ela está com uma dor abdominal muito intensa há umas 4 horas, não melhora com analgésico", "severe_pain", id="intense-no-relief"),  # noqa: E501
        pytest.param("minha mãe ta com dor na barriga e nao consegue se levantar da cama", "severe_pain", id="cannot-get-up"),  # noqa: E501
        pytest.param("Estou com dor no tórax, uma sensação de queimação e aperto que está piorando", "chest_pain", id="thorax"),  # noqa: E501
        # "do nada" (out of nowhere) denies nothing
        pytest.param("agora do nada meu peito ta doendo mt, tipo esmagando", "chest_pain", id="out-of-nowhere"),  # noqa: E501
        # someone asked her to write; the leg is hers, now
        pytest.param("meu marido pediu pra eu mandar: fiz a cirurgia sexta e a perna direita inchou muito, ta quente e doendo", "thrombosis", id="relayed"),  # noqa: E501
        pytest.param("meu marido pediu pra avisar q to com febre alta desde a biopsia", "fever_infection", id="relayed-fever"),  # noqa: E501
        # "de uma vez" (all at once) is not "uma vez" (once, in the past)
        pytest.param("tomei todos os comprimidos da cartela de uma vez pq nao aguento mais", "self_harm", id="all-at-once"),  # noqa: E501
        pytest.param("minha filha mandou uma mensagem de despedida e se trancou no quarto", "self_harm", id="farewell"),  # noqa: E501
        pytest.param("minha irma disse q vai se matar e ta trancada no banheiro", "self_harm", id="threat-by-someone-with-her"),  # noqa: E501
        pytest.param("nao aguento mais, queria dormir e nao acordar nunca mais", "self_harm", id="not-wake-up"),  # noqa: E501
        pytest.param("meu padrasto entrou no meu quarto de novo hj, tenho 16 anos", "violence", id="stepfather"),  # noqa: E501
        pytest.param("ele me deu um soco agora e to com medo de ficar em casa", "violence", id="punch"),  # noqa: E501
        pytest.param("meu ex ta na porta da minha casa ameaçando entrar", "violence", id="at-the-door"),  # noqa: E501
        pytest.param("ta saindo uma agua pelas pernas e nao para, to de 34 semanas", "pregnancy", id="waters-in-words"),  # noqa: E501
        pytest.param("contração de 5 em 5 minutos, to de 38 semana, saio agora?", "pregnancy", id="contractions-interval"),  # noqa: E501
        pytest.param("to de 30 semanas e a barriga ta endurecendo toda hora com dor", "pregnancy", id="hardening"),  # noqa: E501
        pytest.param("minha mae tirou o utero, o curativo ta encharcado de sangue e o corte ta inchado", "bleeding", id="dressing-soaked"),  # noqa: E501
        pytest.param("os pontos da ninfo tao soltando e saindo um liquido amarelado", "wound", id="stitches-loose"),  # noqa: E501
        pytest.param("depois da ozempic vomito tudo que bebo, to fraca", "dehydration", id="throws-up-all"),  # noqa: E501
        pytest.param("to vendo tudo escuro, acho q vou apagar", "fainting", id="going-dark"),
        pytest.param("desmaiei agora na hora de pagar a conta", "fainting", id="fainted-at-the-till"),  # noqa: E501
        pytest.param("to cheia de manchas vermelhas no corpo depois do antibiotico", "breathing_allergy", id="patches"),  # noqa: E501
        # found when scoring tests/data/safety_blind.yaml once (then mended)
        # "ele já foi embora" is the aggressor leaving, not a symptom that passed
        pytest.param("meu ex invadiu minha casa agora de madrugada e abusou de mim ele já foi embora eu tô sozinha tremendo", "violence", id="he-left"),  # noqa: E501
        # a question about the cause after her own account is not a general question
        pytest.param("acordei com metade do rosto dormente e a boca puxando pro lado, isso é do anticoncepcional?", "stroke", id="asks-the-cause"),  # noqa: E501
    ],
)  # fmt: skip
def test_everyday_emergencies_are_urgent_by_signs_alone(text: str, category: str) -> None:
    verdict = signs_only(text)
    assert verdict.urgent and verdict.sure, verdict
    assert verdict.category == category


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("aquele sangramento que falei na consulta ja sumiu, agora queria saber do resultado", id="gone"),  # noqa: E501
        pytest.param("nao, o sangramento nao voltou nao. ta tudo certo", id="not-back"),
        pytest.param("o sangramento ja estancou, obrigada pelo atendimento", id="stanched"),
        pytest.param("minha amiga foi estuprada ha 2 anos e ainda sofre com isso, a dra atende?", id="friend-years-ago"),  # noqa: E501
        pytest.param("vou me matar de tanto trabalhar essa semana, tem vaga no sabado?", id="figure-work"),  # noqa: E501
        pytest.param("to sufocada de tanto trabalho rs, da pra remarcar?", id="figure-suffocated"),
        pytest.param("meu cachorro ta vomitando sem parar, vcs conhecem veterinario?", id="dog"),
        pytest.param("minha cachorra ta sangrando, vcs sabem de veterinario?", id="dog-bleeding"),
        pytest.param("posso levar meu marido na consulta? ele desmaia quando ve sangue kkk", id="habit"),  # noqa: E501
        # figures of speech on money and queues (found by a trial)
        pytest.param("o atendimento de vcs é uma hemorragia de dinheiro kkk", id="money-haemorrhage"),  # noqa: E501
        pytest.param("quase desmaiei quando vi o valor da consulta kkkk", id="fainted-at-price"),
        pytest.param("a fila ai é de dar falta de ar", id="queue-breathless"),
        # the catalog's red-flag phrases obey a negation too
        pytest.param("nao to com febre, so queria saber o horario", id="catalog-phrase-denied"),
    ],
)  # fmt: skip
def test_everyday_look_alikes_are_not_urgent(engine: Engine, text: str) -> None:
    u = engine.classify(text)
    assert not u.urgent, u


def test_an_animal_does_not_discount_her_own_symptom() -> None:
    verdict = signs_only("meu cachorro me mordeu e to sangrando muito")
    assert verdict.urgent and verdict.category == "bleeding", verdict


def test_do_nada_is_not_a_negation() -> None:
    assert mark_negations("do nada estou sangrando") == "do nada estou sangrando"
    assert mark_negations("nada estou sangrando") == "nada NEG_estou NEG_sangrando"


def test_bytes_that_are_not_utf8_do_not_hide_an_emergency(engine: Engine) -> None:
    # A byte read with surrogateescape (the CLI's stdin) or a JSON "\udcff" escape: replaced,
    # and the rest of the message is still read (it used to raise in the embedding).
    u = engine.classify("to sangrando \udcff muito, nao para")
    assert u.urgent, u
    result = engine.handle("5511911112222@c.us", "to sangrando \udcff muito, nao para")
    assert result.handoff is not None and result.handoff.urgent, result
