"""Build a :class:`~clinicflow.model.Script` from the nodes of one procedure YAML file.

Reading is lenient on purpose: every problem is recorded in the :class:`Reader` and a
best-effort script is still built, so lint can go on and report graph problems too. The
loader refuses the script afterwards if any error was recorded.
"""

from __future__ import annotations

import re

from clinicflow.durations import BadTimeText, parse_duration
from clinicflow.model import (
    FAQ,
    SLOT_TYPES,
    Branch,
    FollowUp,
    LeadScoring,
    Menu,
    MenuItem,
    OnExhausted,
    Option,
    Pos,
    RedFlag,
    Script,
    Slot,
    SlotType,
    State,
    Triggers,
)
from clinicflow.yamlsrc import ANY_KEY, Reader, YMap, YNode, YScalar, positions

SCRIPT_KEYS = (
    "id",
    "title",
    "version",
    "language",
    "description",
    "triggers",
    "start",
    "on",
    "max_follow_ups",
    "slots",
    "states",
    "faq",
    "red_flags",
    "lead_scoring",
)
STATE_KEYS = (
    "say",
    "collect",
    "menu",
    "on",
    "when",
    "next",
    "handoff",
    "end",
    "follow_ups",
    "llm_answers",
)
SLOT_KEYS = (
    "type",
    "ask",
    "reprompts",
    "max_attempts",
    "on_exhausted",
    "options",
    "min",
    "max",
    "multiple",
)
ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def read_faq(r: Reader, node: YNode | None, where: str) -> tuple[FAQ, ...]:
    """FAQ entries (shared by scripts and clinic.yaml); ids must be unique in the list."""
    out: list[FAQ] = []
    for index, item in enumerate(r.seq(node, f"faq de {where}")):
        what = f"a pergunta frequente nº {index + 1} de {where}"
        entry = r.mapping(
            item, what, ("id", "intent", "questions", "answer"), ("id", "questions", "answer")
        )
        if entry is None:
            continue
        faq_id = r.text(entry.get("id"), f"o id de {what}") or f"faq{index + 1}"
        if any(done.id == faq_id for done in out):
            r.report(
                _pos_of(entry, "id"),
                "duplicate-id",
                f"já existe uma pergunta frequente com id '{faq_id}' em {where}",
            )
        out.append(
            FAQ(
                id=faq_id,
                questions=tuple(r.texts(entry.get("questions"), f"as perguntas de '{faq_id}'")),
                answer=r.text(entry.get("answer"), f"a resposta de '{faq_id}'") or "",
                intent=r.text(entry.get("intent"), f"a intenção de '{faq_id}'"),
                pos=entry.pos,
            )
        )
    return tuple(out)


def read_red_flags(r: Reader, node: YNode | None, where: str) -> tuple[RedFlag, ...]:
    """Red-flag entries (shared by scripts and clinic.yaml)."""
    out: list[RedFlag] = []
    for index, item in enumerate(r.seq(node, f"red_flags de {where}")):
        what = f"o sinal de alerta nº {index + 1} de {where}"
        entry = r.mapping(
            item, what, ("id", "description", "phrases", "category"), ("id", "phrases")
        )
        if entry is None:
            continue
        flag_id = r.text(entry.get("id"), f"o id de {what}") or f"alerta{index + 1}"
        id_node = entry.get("id")
        if any(done.id == flag_id for done in out) and id_node is not None:
            r.report(
                id_node.pos,
                "duplicate-id",
                f"já existe um sinal de alerta com id '{flag_id}' em {where}",
            )
        out.append(
            RedFlag(
                id=flag_id,
                phrases=tuple(r.texts(entry.get("phrases"), f"as frases de '{flag_id}'")),
                description=r.text(entry.get("description"), "a descrição", allow_empty=True) or "",
                category=r.text(entry.get("category"), "a categoria") or None,
                pos=entry.pos,
            )
        )
    return tuple(out)


def read_lead_scoring(r: Reader, node: YNode | None, where: str) -> LeadScoring | None:
    """Lead-scoring weights (intent or event name -> points) and the qualifying score."""
    entry = r.mapping(node, f"lead_scoring de {where}", ("weights", "qualified_at"))
    if entry is None:
        return None
    weights: list[tuple[str, int]] = []
    table = r.mapping(entry.get("weights"), "os pesos (weights)", ANY_KEY)
    for name, value in table.items() if table else ():
        points = r.number(value, f"o peso de '{name}'", integer=True)
        if points is not None:
            weights.append((name, int(points)))
    qualified = r.number(entry.get("qualified_at"), "qualified_at", integer=True)
    return LeadScoring(tuple(weights), 30 if qualified is None else int(qualified), entry.pos)


def _pos_of(entry: YMap, key: str) -> Pos:
    node = entry.get(key)
    return entry.pos if node is None else node.pos


def _on_exhausted(r: Reader, node: YNode | None, slot: str) -> OnExhausted | None:
    if node is None:
        return None
    what = f"on_exhausted do campo '{slot}'"
    if isinstance(node, YScalar) and node.value in ("skip", "handoff"):
        action = str(node.value)
        if action == "skip":
            return OnExhausted("skip", None, node.pos)
        return OnExhausted("handoff", "not_understood", node.pos)
    if isinstance(node, YMap) and len(node.entries) == 1:
        key, value = next(node.items())
        target = r.text(value, f"o destino de {what}")
        if key in ("goto", "handoff") and target is not None:
            return OnExhausted("goto" if key == "goto" else "handoff", target, value.pos)
    r.report(
        node.pos,
        "bad-type",
        f"{what} deveria ser skip, handoff, 'handoff: motivo' ou 'goto: estado'",
    )
    return None


def _slot(r: Reader, name: str, node: YNode) -> Slot:
    what = f"o campo '{name}'"
    entry = r.mapping(node, what, SLOT_KEYS, ("type", "ask"))
    if entry is None:
        return Slot(name, "text", "", pos=node.pos)
    type_node = entry.get("type")
    slot_type = r.text(type_node, f"o tipo de {what}") or "text"
    if slot_type not in SLOT_TYPES and type_node is not None:
        r.report(
            type_node.pos,
            "bad-type",
            f"'{slot_type}' não é um tipo de campo; use um de: {', '.join(SLOT_TYPES)}",
        )
        slot_type = "text"
    options: list[Option] = []
    for index, item in enumerate(r.seq(entry.get("options"), f"as opções de {what}")):
        opt = r.mapping(
            item, f"a opção nº {index + 1} de {what}", ("value", "label", "synonyms"), ("value",)
        )
        if opt is None:
            continue
        value = r.text(opt.get("value"), "o valor (value) da opção") or ""
        if any(done.value == value for done in options):
            r.report(opt.pos, "duplicate-id", f"a opção '{value}' aparece duas vezes em {what}")
        label = r.text(opt.get("label"), "o rótulo (label) da opção")
        synonyms = tuple(r.texts(opt.get("synonyms"), "os sinônimos da opção"))
        options.append(Option(value, label or value, synonyms, opt.pos))
    if slot_type == "choice" and not options:
        r.report(entry.pos, "bad-type", f"{what} é do tipo choice mas não tem opções (options)")
    multiple = bool(r.flag(entry.get("multiple"), f"multiple de {what}"))
    if multiple and slot_type != "choice":
        r.report(_pos_of(entry, "multiple"), "bad-type", f"multiple só vale para choice ({what})")
    low = r.number(entry.get("min"), f"o mínimo de {what}")
    high = r.number(entry.get("max"), f"o máximo de {what}")
    if low is not None and high is not None and low > high:
        r.report(
            _pos_of(entry, "min"),
            "bad-type",
            f"em {what} o mínimo ({low:g}) é maior que o máximo ({high:g})",
        )
    attempts = r.number(entry.get("max_attempts"), "max_attempts", integer=True)
    attempts_node = entry.get("max_attempts")
    if attempts is not None and attempts < 1 and attempts_node is not None:
        r.report(attempts_node.pos, "bad-type", "max_attempts deve ser 1 ou mais")
    return Slot(
        name=name,
        type=_slot_type(slot_type),
        ask=r.text(entry.get("ask"), f"a pergunta (ask) de {what}") or "",
        reprompts=tuple(r.texts(entry.get("reprompts"), f"as repetições de {what}")),
        max_attempts=None if attempts is None else int(attempts),
        on_exhausted=_on_exhausted(r, entry.get("on_exhausted"), name),
        options=tuple(options),
        min=low,
        max=high,
        pos=node.pos,
        multiple=multiple and slot_type == "choice",
    )


def _slot_type(name: str) -> SlotType:
    for slot_type in SLOT_TYPES:
        if slot_type == name:
            return slot_type  # type: ignore[return-value]
    return "text"


def read_on(r: Reader, node: YNode | None, where: str) -> tuple[tuple[str, str], ...]:
    """An ``on: {intent: state}`` mapping, in file order."""
    table = r.mapping(node, f"'on' de {where}", ANY_KEY)
    out: list[tuple[str, str]] = []
    for intent, value in table.items() if table else ():
        target = r.text(value, f"o estado para '{intent}'")
        if target is not None:
            out.append((intent, target))
    return tuple(out)


def _menu(r: Reader, node: YNode | None, where: str) -> Menu | None:
    entry = r.mapping(node, f"o menu de {where}", ("prompt", "options"), ("options",))
    if entry is None:
        return None
    items: list[MenuItem] = []
    for index, item in enumerate(r.seq(entry.get("options"), f"as opções do menu de {where}")):
        opt = r.mapping(
            item,
            f"a opção nº {index + 1} do menu de {where}",
            ("label", "go", "synonyms"),
            ("label", "go"),
        )
        if opt is None:
            continue
        go_node = opt.get("go")
        items.append(
            MenuItem(
                label=r.text(opt.get("label"), "o texto da opção (label)") or "",
                go=r.text(go_node, "o destino (go) da opção") or "",
                synonyms=tuple(r.texts(opt.get("synonyms"), "os sinônimos da opção")),
                pos=go_node.pos if go_node is not None else opt.pos,
            )
        )
    if not items and entry.get("options") is not None:
        r.report(entry.pos, "bad-type", f"o menu de {where} não tem opções")
    prompt = r.text(entry.get("prompt"), f"o texto do menu de {where}") or ""
    return Menu(prompt, tuple(items), entry.pos)


def _state(r: Reader, name: str, node: YNode) -> State:
    where = f"o estado '{name}'"
    entry = r.mapping(node, where, STATE_KEYS)
    if entry is None:
        return State(name, pos=node.pos)
    branches: list[Branch] = []
    for index, item in enumerate(r.seq(entry.get("when"), f"'when' de {where}")):
        branch = r.mapping(
            item, f"a condição nº {index + 1} de {where}", ("if", "go"), ("if", "go")
        )
        if branch is None:
            continue
        cond_node = branch.get("if")
        condition = r.text(cond_node, "a condição (if)")
        go = r.text(branch.get("go"), "o destino (go)")
        if cond_node is not None and condition is not None and go is not None:
            # Point at the condition's first character, inside the quotes if any.
            pos = cond_node.pos
            quoted = isinstance(cond_node, YScalar) and cond_node.quoted
            branches.append(Branch(condition, go, Pos(pos.file, pos.line, pos.col + quoted)))
    follow_ups: list[FollowUp] = []
    for index, item in enumerate(r.seq(entry.get("follow_ups"), f"follow_ups de {where}")):
        follow = r.mapping(
            item, f"o lembrete nº {index + 1} de {where}", ("after", "say"), ("after", "say")
        )
        if follow is None:
            continue
        after_node = follow.get("after")
        after = r.text(after_node, "o tempo (after)")
        seconds = 0
        if after is not None and after_node is not None:
            try:
                seconds = parse_duration(after)
            except BadTimeText as exc:
                r.report(after_node.pos, "bad-duration", str(exc))
        say = r.text(follow.get("say"), f"o texto do lembrete de {where}") or ""
        follow_ups.append(FollowUp(seconds, say, follow.pos))
    return State(
        name=name,
        say=tuple(r.texts(entry.get("say"), f"o texto (say) de {where}")),
        collect=r.text(entry.get("collect"), f"'collect' de {where}"),
        menu=_menu(r, entry.get("menu"), where),
        on=read_on(r, entry.get("on"), where),
        when=tuple(branches),
        next=r.text(entry.get("next"), f"'next' de {where}"),
        handoff=r.text(entry.get("handoff"), f"o motivo do handoff de {where}"),
        end=bool(r.flag(entry.get("end"), f"'end' de {where}")),
        follow_ups=tuple(follow_ups),
        llm_answers=bool(r.flag(entry.get("llm_answers"), f"'llm_answers' de {where}")),
        pos=node.pos,
    )


def read_script(node: YNode | None, file: str, digest: str = "") -> tuple[Script | None, Reader]:
    """Build a script from the root node of its file, recording every problem found.

    Returns:
        The script (``None`` when the file is not a mapping at all) and the reader holding
        the problems.
    """
    r = Reader(file)
    if node is None:
        r.report(Pos(file, 1, 1), "missing-key", "o arquivo está vazio")
        return None, r
    root = r.mapping(node, "o roteiro", SCRIPT_KEYS, ("id", "start", "states"))
    if root is None:
        return None, r
    if "version" not in root.entries:
        r.report(
            root.pos,
            "missing-version",
            "falta 'version' no roteiro; escreva por exemplo "
            'version: "1" e aumente o número a cada mudança',
        )
    id_node = root.get("id")
    script_id = r.text(id_node, "o id do roteiro") or ""
    if id_node is not None and script_id and not ID_RE.match(script_id):
        r.report(
            id_node.pos,
            "bad-id",
            f"o id '{script_id}' só pode ter letras sem acento, números, _ e -",
        )
    slots_map = r.mapping(root.get("slots"), "slots", ANY_KEY)
    states_map = r.mapping(root.get("states"), "states", ANY_KEY)
    triggers = r.mapping(root.get("triggers"), "triggers", ("keywords", "examples"))
    max_follow_ups = r.number(root.get("max_follow_ups"), "max_follow_ups", integer=True)
    where = f"'{script_id}'"
    script = Script(
        id=script_id,
        title=r.text(root.get("title"), "o título") or script_id,
        version=r.text(root.get("version"), "a versão") or "",
        start=r.text(root.get("start"), "o estado inicial (start)") or "",
        states=tuple(_state(r, name, value) for name, value in states_map.items())
        if states_map
        else (),
        language=r.text(root.get("language"), "o idioma") or "pt-BR",
        description=r.text(root.get("description"), "a descrição", allow_empty=True) or "",
        triggers=Triggers(
            tuple(r.texts(triggers.get("keywords"), "as palavras-chave")) if triggers else (),
            tuple(r.texts(triggers.get("examples"), "os exemplos")) if triggers else (),
            triggers.pos if triggers else root.pos,
        ),
        slots=tuple(_slot(r, name, value) for name, value in slots_map.items())
        if slots_map
        else (),
        faq=read_faq(r, root.get("faq"), where),
        red_flags=read_red_flags(r, root.get("red_flags"), where),
        lead_scoring=read_lead_scoring(r, root.get("lead_scoring"), where),
        on=read_on(r, root.get("on"), f"roteiro {where}"),
        max_follow_ups=2 if max_follow_ups is None else max(0, int(max_follow_ups)),
        path=file,
        digest=digest,
        pos=root.pos,
        positions=tuple(positions(root).items()),
    )
    return script, r


__all__ = ["read_faq", "read_lead_scoring", "read_on", "read_red_flags", "read_script"]
