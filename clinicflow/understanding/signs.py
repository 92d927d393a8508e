"""Alarm signs in patients' own words, by emergency category.

Each sign is a regular expression over :func:`clinicflow.text.normalize`d text (no accents,
abbreviations expanded: "to" → "estou", "ta" → "esta", "mt" → "muito") and a strength:

- ``strong``: on its own, in a sentence about now, it means "get a human now";
- ``weak``: a symptom worth a human only with other evidence (the classifier's probability,
  a second sign), e.g. "febre" alone or "tonta" alone.

They describe what a patient feels ("a garganta tá fechando", "a boca ficou torta"), not a
diagnosis; the categories and their examples come from the clinic's red-flag guidance
(CLINIC_DOMAIN facts: heavy bleeding, fever after a procedure, severe pain, breathing or
allergic reaction, stroke signs, chest pain, thrombosis, fainting, self-harm, pregnancy with
pain or bleeding, surgical wound problems, violence, dehydration on weight-loss medication).
The clinic's and each script's ``red_flags`` phrases are added on top at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Strength = Literal["strong", "weak"]

_BODY_SWELL = r"(?:boca|labio|labios|olho|olhos|lingua|rosto|cara|palpebra|palpebras|garganta)"
_SWELL = r"(?:inchad\w*|inchand\w*|inchou|inchar|inchaco|incharam|estufad\w*)"
_LEG = r"(?:perna|panturrilha|batata da perna|canela|coxa)"
_LEG_SIGN = r"(?:inchad\w*|inchou|vermelh\w*|quente|dura|endurecid\w*|doendo|dolorid\w*|roxa)"
_PAD = r"(?:absorvente|absorventes|modess|calcinha|lencol|roupa)"
_PROCEDURE = (
    r"(?:tirei|coloquei|colocou|colocar|tirar|retirei|depois d[oa]|desde [oa]|apos [oa])"
    r"\s?(?:\w+ )?(?:diu|mirena|kyleena|cirurgia|procedimento|ninfoplastia|biopsia|curetagem|"
    r"histeroscopia|operacao|pontos)"
)
_POSITIVE = (
    r"(?:gravida|teste (?:de gravidez )?(?:deu )?positivo|beta (?:deu )?positivo|positivou|"
    r"(?:2|dois) (?:risquinhos|riscos|tracinhos|listras))"
)
_MANY = (
    r"(?:[5-9]|[1-9]\d|cinco|seis|sete|oito|nove|dez|doze|quinze|vinte|trinta|varios|varias|"
    r"um monte de|uma caixa de|a cartela (?:toda|inteira)|todos os|todas as)"
)
_WOUND_SIGN = (
    r"(?:inchad\w*|inchou|vermelh\w*|quente|pus|fedendo|fedor|cheiro ruim|latejando|abrindo|"
    r"abriu)"
)
_FEVER_HIGH = r"(?:3[89](?:[.,]\d)?|4[01](?:[.,]\d)?)\s?(?:graus|de febre|°|º)?"


@dataclass(frozen=True)
class Sign:
    """One way of describing an alarm sign."""

    id: str
    category: str
    strength: Strength
    pattern: re.Pattern[str]


def _sign(id_: str, category: str, strength: Strength, pattern: str) -> Sign:
    return Sign(id_, category, strength, re.compile(pattern))


SIGNS: tuple[Sign, ...] = (
    # -- heavy bleeding
    _sign(
        "sangrando_muito",
        "bleeding",
        "strong",
        r"\bsangr\w* (?:muito|demais|bastante|horrores|sem parar|muito forte|forte demais|"
        r"igual torneira|que nem torneira|um monte|pra caramba|para caramba)\b",
    ),
    _sign(
        "muito_sangue",
        "bleeding",
        "strong",
        r"\b(?:muito|monte de|tanto|rio de) sangue\b|\bsangue (?:demais|sem parar|nao para)\b|"
        r"\bnao (?:para|parou|paro) de (?:sangrar|descer sangue|sair sangue)\b|"
        r"\bhemorragia\b|\bvazando sangue\b|\bsangue escorrendo\b|"
        r"\b(?:encharcad\w*|ensopad\w*|banhad\w*|cheio|cheia) de sangue\b|"
        # a simile of a flow: "sangue descendo igual torneira aberta", "parece uma cachoeira"
        r"\b(?:sangr\w*|sangue|menstruacao|fluxo)\b.{0,30}\b(?:igual|que nem|como|feito|parece|"
        r"parecendo) (?:a |uma |um )?(?:torneira|cachoeira|rio|mangueira|chuveiro)\b",
    ),
    _sign(
        "absorvente_encharcado",
        "bleeding",
        "strong",
        rf"\b(?:encharc\w*|ensopad\w*|ensop\w*) (?:o |a |um |uma |os |meu |minha )?{_PAD}\b|"
        rf"\b{_PAD} (?:encharcad\w*|ensopad\w*|cheio|cheia)\b|"
        rf"\b(?:enchendo|encho|enchi|trocando|troco|troquei|passando) (?:o |um |uns |de )?"
        rf"{_PAD}.{{0,25}}(?:toda hora|de hora em hora|cada hora|a cada|por hora|"
        rf"meia em meia hora|cada meia hora|varias vezes|sem parar|minutos)",
    ),
    _sign(
        "coagulos",
        "bleeding",
        "strong",
        r"\bcoagul\w* (?:grandes?|enormes?|gigantes?|do tamanho)|"
        r"\b(?:saindo|descendo|soltando) (?:muito |uns |varios )?(?:coagul\w*|pedacos de sangue)",
    ),
    _sign("sangramento", "bleeding", "weak", r"\bsangr\w*|\bsangue\b"),
    # -- fever or infection
    _sign(
        "febre_pos_procedimento",
        "fever_infection",
        "strong",
        rf"\bfebre\b.{{0,60}}{_PROCEDURE}|{_PROCEDURE}.{{0,60}}"
        rf"(?:\bfebre\b|calafri\w*|tremendo de frio|{_FEVER_HIGH})",
    ),
    _sign(
        "febre_com_dor",
        "fever_infection",
        "strong",
        r"\bfebre\b.{0,40}\b(?:dor|dores|colica|doendo)\b|\b(?:dor|colica|doendo)\b.{0,40}"
        r"\bfebre\b",
    ),
    _sign(
        "febre_alta",
        "fever_infection",
        "strong",
        rf"\b(?:termometro|febre|temperatura)\b.{{0,30}}{_FEVER_HIGH}|"
        r"\btremendo de frio\b.{0,40}\bfebre\b|\bfebre\b.{0,40}\btremendo\b",
    ),
    _sign(
        "corrimento_infeccao",
        "fever_infection",
        "weak",
        r"\bcorrimento\b.{0,30}\b(?:cheiro|fedendo|fedor|podre|pus|verde)\b|\bpus\b",
    ),
    _sign("febre", "fever_infection", "weak", r"\bfebre\b|\bcalafri\w*|\btremendo de frio\b"),
    # -- severe pain
    _sign(
        "dor_forte",
        "severe_pain",
        "strong",
        r"\b(?:dor|dores|colica|colicas)\b (?:muito |mais )?(?:forte demais|insuportave\w*|"
        r"horrive\w*|absurda|fortissima|terrive\w*|desesperadora|lancinante|"
        r"que nao passa|que nao para)|"
        r"\b(?:morrendo|chorando|gritando|contorcendo|dobrada|rolando|urrando|desmaiando) de dor\b|"
        r"\bnao (?:aguento|aguentando|consigo aguentar|suporto)\b.{0,15}\bdor\b|"
        r"\b(?:dor|dores|colica|colicas)\b (?:\w+ ){0,2}(?:muito|tao|super|extremamente) "
        r"(?:intensa|intensas|aguda|agudas)\b|"
        r"\b(?:dor|colica|doendo)\b.{0,40}\bnao (?:passa|melhora|alivia|cede|melhorou|passou) "
        r"(?:nem )?(?:com )?(?:nenhum )?(?:remedio|analgesico|buscopan|dipirona|ibuprofeno|"
        r"paracetamol|tylenol|nada)|"
        r"\b(?:dor|dores|colica|doendo)\b.{0,80}\bnao (?:consigo|consegue|conseguimos) "
        r"(?:nem )?(?:me |se )?(?:levantar|andar|ficar em pe|sair da cama|endireitar)|"
        r"\bnao (?:consigo|consegue) (?:nem )?(?:me |se )?(?:levantar|andar|ficar em pe|"
        r"endireitar)\b.{0,40}\b(?:dor|dores|colica|doendo)\b|"
        r"\b(?:remedio|analgesico|buscopan|dipirona)\b.{0,30}\bnao (?:fez efeito|resolveu|"
        r"adiantou|passa)",
    ),
    _sign(
        "muita_dor",
        "severe_pain",
        "strong",
        r"\b(?:com|sentindo|estou com|to com) (?:muita|mta|uma dor muito forte|dor muito forte|"
        r"uma colica muito forte|colica muito forte) (?:dor|colica)?",
    ),
    _sign(
        "dor_barriga",
        "severe_pain",
        "weak",
        r"\b(?:dor|dores|doendo|doi|colica)\b.{0,25}\b(?:barriga|pe da barriga|ventre|pelve|"
        r"utero|ovario|lado direito|lado esquerdo)\b|\bdor forte\b",
    ),
    # -- breathing, allergic reaction
    _sign(
        "falta_de_ar",
        "breathing_allergy",
        "strong",
        r"\bfalta de ar\b|\bfaltando (?:o )?ar\b|\bsem ar\b|\bnao (?:consigo|conseguindo|"
        r"consegue|esta conseguindo) respirar\b|\bdificuldade (?:para|de|pra) respirar\b|"
        r"\brespir\w* (?:com dificuldade|mal|curto)\b|\bsufoc\w*|\bo ar nao (?:entra|vem)\b|"
        r"\bchiado no peito\b|\bpuxando o ar\b",
    ),
    _sign(
        "garganta_fechando",
        "breathing_allergy",
        "strong",
        r"\bgarganta\b.{0,20}\b(?:fechando|fechou|fechada|apertando|apertada|travando|travada|"
        r"inchad\w*|inchou|inchando|estreit\w*)|\bnao consigo engolir\b",
    ),
    _sign(
        "inchaco_rosto",
        "breathing_allergy",
        "strong",
        rf"\b{_BODY_SWELL}\b.{{0,30}}\b{_SWELL}|\b{_SWELL}\b.{{0,20}}\b{_BODY_SWELL}\b",
    ),
    _sign(
        "alergia_pele",
        "breathing_allergy",
        "strong",
        r"\bplacas vermelhas\b|\bempola\w*|\bempolad\w*|\burticaria\b|\bvergoes\b|"
        r"\b(?:bolinhas|manchas|placas|caroco\w*|pipocos?) (?:vermelh\w* )?.{0,30}"
        r"\b(?:corpo todo|todo o corpo|pelo corpo|no corpo|espalhando)|"
        r"\bcoceira\b.{0,20}\b(?:corpo todo|todo o corpo|pelo corpo|no corpo inteiro)|"
        r"\bcocando (?:tudo|o corpo todo|muito o corpo)\b|\breacao alergica\b|"
        r"\bchoque anafilatico\b|\banafila\w*",
    ),
    # -- stroke
    _sign(
        "rosto_torto",
        "stroke",
        "strong",
        r"\b(?:boca|rosto|cara|labio|olho|sorriso)\b.{0,20}\b(?:torta|torto|entortou|caiu|caida|"
        r"caido|desceu|paralisad\w*|repuxad\w*|puxando pro lado|puxando para o lado)\b|"
        r"\bmetade do (?:rosto|corpo|meu rosto|meu corpo)\b|\bum lado do (?:rosto|corpo)\b",
    ),
    _sign(
        "fala_enrolada",
        "stroke",
        "strong",
        r"\b(?:fala|falando|voz|palavras?)\b.{0,15}\b(?:enrolad\w*|embolad\w*|arrastad\w*|"
        r"estranha|estranho|sem sentido|trocad\w*|mole)\b|\bnao consig\w* (?:falar|"
        r"articular|achar as palavras)\b|\bfalando enrolado\b|\blingua enrolada\b",
    ),
    _sign(
        "fraqueza_lado",
        "stroke",
        "strong",
        r"\b(?:braco|mao|perna|lado)\b.{0,25}\b(?:dormente|dormencia|formigando|sem forca|"
        r"nao mexe|paralisad\w*|morto|pesado)\b.{0,40}\b(?:direito|esquerdo|um lado|"
        r"de repente|do nada)\b|\bnao consigo (?:mexer|levantar|sentir) (?:o|a|meu|minha) "
        r"(?:braco|mao|perna|lado)\b",
    ),
    _sign(
        "dor_de_cabeca_subita",
        "stroke",
        "strong",
        r"\bdor de cabeca\b.{0,50}\b(?:vista|visao|enxergar|enxergando)\b|"
        r"\b(?:perdi|perdendo|sumiu|escureceu) a (?:visao|vista)\b|"
        r"\bpior dor de cabeca (?:da|de) (?:minha )?vida\b|\bdor de cabeca (?:muito )?"
        r"(?:subita|do nada|de repente)\b",
    ),
    # -- chest pain
    _sign(
        "dor_no_peito",
        "chest_pain",
        "strong",
        r"\b(?:dor|dores|aperto|pressao|pontada|pontadas|queimacao|peso)\b (?:forte )?"
        r"(?:no|do|em meu|no meu) (?:peito|torax)\b|\bpeito (?:esta |estava )?(?:muito )?"
        r"(?:apertado|apertando|doendo|dolorido|pesado|queimando|esmagando|esmagado)\b|"
        r"\bdoendo o peito\b|\bdor\b.{0,20}\b(?:braco esquerdo|mandibula)\b|"
        r"\b(?:torax|peito)\b.{0,30}\b(?:aperto|pressao|esmagando|queimacao)\b",
    ),
    _sign(
        "coracao_disparado",
        "chest_pain",
        "weak",
        r"\bcoracao (?:disparad\w*|acelerad\w*|batendo muito)\b|\btaquicardia\b|\bpalpitac\w*",
    ),
    # -- thrombosis
    _sign(
        "perna_inchada_vermelha",
        "thrombosis",
        "strong",
        rf"\b{_LEG}\b.{{0,40}}\b{_LEG_SIGN}\b.{{0,30}}\b{_LEG_SIGN}\b",
    ),
    _sign("perna_inchada", "thrombosis", "weak", rf"\b{_LEG}\b.{{0,30}}\b{_LEG_SIGN}\b"),
    _sign("trombose", "thrombosis", "weak", r"\btrombose\b|\bcoagulo na perna\b|\btvp\b"),
    # -- fainting
    _sign(
        "desmaio",
        "fainting",
        "strong",
        r"\bdesmai\w*|\b(?:vou|vai|quase) (?:desmaiar|cair dura)\b|\bperd\w* (?:a consciencia|"
        r"os sentidos)\b|\bapaguei\b|\bcai (?:dura|desacordada)\b|\b(?:vista|visao) "
        r"(?:escurec\w*|apagando|ficando preta)\b|\bescureceu (?:tudo|a vista)\b|"
        r"\bvendo tudo (?:escuro|preto|girando|embacado)\b|\bvou apagar\b",
    ),
    _sign(
        "tontura_com_sangramento",
        "fainting",
        "strong",
        r"\b(?:tont\w*|zonz\w*|fraca|fraqueza)\b.{0,40}\bsangr\w*|\bsangr\w*.{0,60}\b"
        r"(?:tont\w*|zonz\w*|fraca|fraqueza|palida|gelada)\b",
    ),
    _sign("tontura", "fainting", "weak", r"\btont\w*|\bzonz\w*|\bvertigem\b"),
    # -- self-harm
    _sign(
        "autolesao",
        "self_harm",
        "strong",
        # "ele vai me matar" is a threat by someone else (violence), not self-harm.
        r"(?<!\bvai )(?<!\bquer )(?<!\btentou )(?<!\bameacou )(?<!\bameaca )"
        r"(?<!\bameacando )\bme matar\b|"
        r"\b(?:tirar|acabar com|dar fim (?:a|na)) (?:a )?(?:minha )?(?:propria )?vida\b|"
        r"\bnao quero mais viver\b|\b(?:quero|queria|vontade de|pensando em) morrer\b|"
        r"\bme (?:machucar|cortar|cortando|ferir)\b|\bsuicid\w*|\bpensamentos? ruins? de\b|"
        r"\b(?:quero|queria|vontade de) (?:sumir|desaparecer)\b|\bacabar com tudo\b|"
        r"\bnao (?:aguento|suporto) mais (?:viver|essa vida|a vida|existir)\b|"
        r"\b(?:tomar|tomei|engolir|engoli) (?:todos|todas|a cartela|o vidro|uma caixa)\b.{0,30}"
        r"\b(?:remedios|comprimidos|pilulas|caixa|vidro|cartela)?|"
        r"\bsem (?:vontade|motivo|razao) (?:de|para|pra) viver\b|\bnao vejo (?:mais )?sentido\b|"
        r"\bmelhor (?:sem mim|eu sumir|eu morrer)\b|\bnao vou (?:estar|existir) mais\b|"
        r"\bninguem (?:vai sentir|sentiria) (?:a )?(?:minha )?falta\b|\bme despedir\b|"
        r"\b(?:dormir|deitar) e nao acordar\b",
    ),
    _sign(
        "despedida",
        "self_harm",
        "strong",
        # "minha filha mandou uma mensagem de despedida e se trancou no quarto"
        r"\b(?:mensagem|carta|bilhete|video|audio|recado) de despedida\b|"
        r"\bse despediu de (?:todo mundo|todos|nos|mim|todas)\b|"
        r"\b(?:vai|quer|ameacou|ameaca|ameacando|tentou|tentando|falou que vai|disse que vai) "
        r"se matar\b",
    ),
    _sign(
        "superdosagem",
        "self_harm",
        "strong",
        # Many pills at once, on purpose or not: a poisoning (SAMU 192; CVV when it was meant).
        rf"\b(?:tomei|tomou|engoli|engoliu|ela tomou)\b.{{0,20}}\b{_MANY}\b.{{0,20}}"
        r"\b(?:comprimidos?|remedios?|pilulas?|capsulas?|cartelas?|caixas?|vidros?)\b|"
        r"\b(?:overdose|superdosagem|intoxicad\w* (?:com|de) remedio\w*)\b",
    ),
    # -- pregnancy with pain or bleeding
    _sign(
        "gravidez_dor_sangramento",
        "pregnancy",
        "strong",
        r"\b(?:gravida|gestante|gestacao|gravidez|teste (?:deu )?positivo|beta (?:deu )?positivo|"
        r"semanas de gestacao|menstruacao atrasad\w*|atrasad\w* \d+ dias|estou atrasada)\b"
        r".{0,60}\b(?:sangr\w*|sangue|dor|dores|colica|colicas|doendo|manchando|borra)\b|"
        r"\b(?:sangr\w*|sangue|dor forte|muita dor|colica forte)\b.{0,50}\b(?:gravida|gestante|"
        r"gravidez|teste (?:deu )?positivo|beta positivo)\b|\bperdendo (?:o|meu) (?:bebe|nenem)\b|"
        r"\b(?:estou|acho que estou|to) abortando\b|\bgravidez (?:ectopica|tubaria|nas trompas)\b",
    ),
    _sign(
        "trabalho_de_parto_cedo",
        "pregnancy",
        "strong",
        # Contractions or waters breaking in a pregnancy ("só tenho 30 semanas"): now, not at
        # the next appointment.
        r"\b(?:contracao|contracoes|contraindo|bolsa (?:estourou|rompeu|estourando)|"
        r"perdendo (?:muito )?liquido|(?:escorrendo|saindo|descendo|vazando) (?:um |uma )?"
        r"(?:liquido|agua))\b.{0,60}"
        r"\b(?:\d{1,2} semanas?|gravida|gestante|gestacao|bebe|nenem|barriga)\b|"
        r"\b(?:\d{1,2} semanas?|gravida|gestante)\b.{0,60}\b(?:contracao|contracoes|"
        r"bolsa (?:estourou|rompeu)|perdendo (?:muito )?liquido|(?:escorrendo|saindo|descendo|"
        r"vazando) (?:um |uma )?(?:liquido|agua))\b|"
        r"\bcontrac\w* (?:de|a cada) \d{1,2} (?:em \d{1,2} )?min|"
        r"\b(?:\d{1,2} semanas?|gravida|gestante)\b.{0,40}\bbarriga\b.{0,20}\b(?:endurec\w*|"
        r"dura|durinha)\b",
    ),
    _sign(
        "gravida_com_diu",
        "pregnancy",
        "strong",
        rf"\b{_POSITIVE}\b.{{0,40}}\b(?:diu|mirena|kyleena)\b|"
        rf"\b(?:diu|mirena|kyleena)\b.{{0,40}}\b{_POSITIVE}\b",
    ),
    # -- surgical wound
    _sign(
        "ferida_aberta",
        "wound",
        "strong",
        r"\b(?:pontos?|cicatriz|corte|ferida|incisao|cirurgia|sutura|curativo)\b.{0,25}"
        r"\b(?:abri\w*|encharcad\w*|"
        r"abert\w*|estour\w*|soltou|soltaram|rompe\w*|pus|secrec\w*|vazando|liquido amarelo|"
        r"liquido verde|fedendo|cheiro ruim|cheiro forte|sangrando)\b|"
        r"\b(?:abriu|abriram|estouraram|soltaram) (?:os |o |a )?(?:pontos?|cicatriz|corte|sutura)|"
        r"\bpontos?\b.{0,25}\b(?:soltando|abrindo|arrebentando|rasgando)\b",
    ),
    _sign(
        "ferida_infeccionando",
        "wound",
        "strong",
        # After a procedure, two signs of an infection together ("muito inchado, vermelho e
        # quente"): one alone is the usual healing, two are a person's call.
        rf"\b(?:cirurgia|operei|operada|operacao|procedimento|ninfoplastia|pontos?|cicatriz|"
        rf"incisao)\b.{{0,60}}\b{_WOUND_SIGN}\b.{{0,30}}\b{_WOUND_SIGN}\b",
    ),
    _sign(
        "ferida_inflamada",
        "wound",
        "weak",
        r"\b(?:pontos?|cicatriz|corte|ferida|cirurgia|regiao operada)\b.{0,25}\b(?:inchad\w*|"
        r"inchand\w*|vermelh\w*|quente|inflamad\w*|roxo|roxa)\b",
    ),
    # -- violence (told with everyday verbs, in the present: "me bate", "apanhei", "tenho
    # medo dele"; a past habit, "me batia", is left to the model and the context)
    _sign(
        "violencia",
        "violence",
        "strong",
        r"\b(?:fui|me|foi|sofreu|sofri|estou sendo|to sendo) (?:estuprad\w*|violentad\w*|"
        r"abusad\w*|agredid\w*|espancad\w*|ameacad\w*|empurrad\w*|enforcad\w*)\b|"
        r"\bme (?:bate|batendo)\b(?! (?:uma|um|aquela|aquele|mal|forte)\b)|"
        r"\bme (?:estupr\w*|agrediu|agrediram|agride|agredindo|bateu|bateram|"
        r"espancou|espanca|espancando|forcou|forcaram|enforcou|enforca|enforcando|ameacou|"
        r"ameaca|ameacando|ameacaram|violentou|empurrou|empurra|empurrando|empurraram|chutou|"
        r"chuta|chutando|esganou|estrangulou)\b|"
        r"\b(?:bateu|bate|batendo|bateram|levantou a mao) (?:em|pra|para) mim\b|"
        r"\b(?:abusou|abusaram|abusa|abusando) de mim\b|"
        r"\b(?:ameacando|tentando|querendo) (?:entrar|invadir|arrombar)\b|"
        r"\b(?:esmurrando|chutando|socando|forcando) a porta\b|"
        r"\bme (?:deu|deram|dando) (?:um |uns |uma |umas )?(?:soco|socos|tapa|tapas|murro|murros|"
        r"chute|chutes|surra|pontape|empurrao|facada)\b|"
        r"\b(?:estupro|abuso sexual|violencia (?:sexual|domestica)|relacao forcada|"
        r"sexo forcado)\b|\b(?:sofri|sofrendo|sofro) (?:uma )?agressao\b|"
        r"\b(?:apanhei|apanho|apanhando)\b(?! (?:pra|para) )|"
        r"\bvitima de (?:abuso|estupro|violencia|agressao)\b|\bsem (?:o )?meu consentimento\b|"
        r"\b(?:vai|quer|tentou|ameacou|ameaca|ameacando) me matar\b|"
        r"\b(?:padrasto|tio|primo|vizinho|avo|irmao|pai|cunhado|namorado da minha mae|"
        r"marido da minha mae)\b.{0,25}\b(?:entrou no meu quarto|entra no meu quarto|"
        r"mexe comigo|mexeu comigo|me toca|me tocou|me tocando|passa a mao em mim|"
        r"passou a mao em mim)\b|"
        r"\bmedo (?:dele|do meu (?:marido|namorado|ex|companheiro|esposo|padrasto|pai)|"
        r"de (?:voltar|ir) (?:pra|para) casa)\b",
    ),
    # -- dehydration (weight-loss medication)
    _sign(
        "vomito_persistente",
        "dehydration",
        "strong",
        r"\bvomit\w*.{0,30}\b(?:o dia (?:todo|inteiro)|sem parar|toda hora|varias vezes|"
        r"\d+ vezes|a noite toda|desde|nao para|muito)\b|\bnao (?:paro|para|fica|consigo "
        r"manter|segura) nada no estomago\b|\bvomit\w* tudo (?:que|o que) (?:bebo|como|tomo|"
        r"ingiro|bebe|come)\b|\bnao consigo (?:beber|tomar|engolir) (?:agua|"
        r"nada|liquido)\b|\bdesidrat\w*|\b(?:xixi|urina)\b.{0,20}\b(?:escur\w*|pouco|"
        r"quase nada|nao sai)\b",
    ),
    _sign("vomito", "dehydration", "weak", r"\bvomit\w*|\benjoo\b.{0,20}\bmuito\b"),
)
