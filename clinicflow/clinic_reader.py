"""Build the :class:`~clinicflow.model.Clinic` from the nodes of ``clinic.yaml``.

Like :mod:`clinicflow.script_reader`, reading records problems and still returns a
best-effort clinic, so one lint run reports everything.
"""

from __future__ import annotations

import difflib

from clinicflow.closures import ClosureError, parse_closure
from clinicflow.durations import BadTimeText, parse_day_hours, weekday
from clinicflow.model import (
    Campaign,
    Clinic,
    Hours,
    IntentDef,
    LeadScoring,
    Pos,
    Privacy,
    Staff,
)
from clinicflow.model import Understanding as UnderstandingModel
from clinicflow.phones import parse_phone, valid_country
from clinicflow.script_reader import read_faq, read_lead_scoring, read_red_flags
from clinicflow.yamlsrc import ANY_KEY, Reader, YNode, positions

CLINIC_KEYS = (
    "clinic",
    "hours",
    "staff",
    "texts",
    "intents",
    "faq",
    "red_flags",
    "lead_scoring",
    "campaigns",
    "understanding",
    "privacy",
)

#: Texts the engine says on its own; clinic.yaml must define them all.
REQUIRED_TEXTS = (
    "welcome",
    "menu_prompt",
    "not_understood",
    "medical_advice",
    "bot_check",
    "urgent",
    "opt_out",
    "handoff",
    "waiting_human",
    "handed_back",
    "goodbye",
    "thanks",
    "media_received",
    "out_of_hours",
    "emergency",
)

_THRESHOLDS = ("intent_accept", "intent_sure", "faq_accept", "route_accept")


_HOURS_KEYS = (
    "timezone",
    "weekly",
    "country",
    "subdivision",
    "optional_holidays",
    "closures",
    "holidays",
)


def _hours(r: Reader, node: YNode | None) -> Hours:
    entry = r.mapping(node, "hours", _HOURS_KEYS)
    if entry is None:
        return Hours()
    weekly: list[tuple[tuple[int, int], ...]] = [() for _ in range(7)]
    table = r.mapping(entry.get("weekly"), "hours.weekly", ANY_KEY)
    for key, value in table.items() if table else ():
        key_pos = table.key_pos[key] if table else value.pos
        text = r.text(value, f"o horário de '{key}'", allow_empty=True)
        try:
            day = weekday(key)
        except BadTimeText as exc:
            r.report(key_pos, "bad-type", str(exc))
            continue
        try:
            weekly[day] = parse_day_hours(text or "")
        except BadTimeText as exc:
            r.report(value.pos, "bad-type", str(exc))
    dated: list[str] = []
    yearly: list[str] = []
    # ``holidays`` is the old name of ``closures`` and is still read the same way.
    for key in ("holidays", "closures"):
        for i, item in enumerate(r.seq(entry.get(key), f"hours.{key}")):
            text = r.text(item, f"o fechamento nº {i + 1} de hours.{key}")
            if text is None:
                continue
            try:
                parsed = parse_closure(text)
            except ClosureError as exc:
                r.report(item.pos, "bad-type", str(exc))
                continue
            if isinstance(parsed, tuple):
                yearly.append(f"{parsed[0]:02d}-{parsed[1]:02d}")
            else:
                dated.append(parsed.isoformat())
    country = r.text(entry.get("country"), "o país (country)")
    subdivision = r.text(entry.get("subdivision"), "o estado (subdivision)")
    return Hours(
        weekly=tuple(weekly),
        holidays=tuple(dict.fromkeys(dated)),
        timezone=r.text(entry.get("timezone"), "o fuso horário") or "America/Sao_Paulo",
        pos=entry.pos,
        country=country.strip().upper() if country and country.strip() else None,
        subdivision=subdivision.strip() if subdivision and subdivision.strip() else None,
        optional_holidays=tuple(
            r.texts(entry.get("optional_holidays"), "os feriados facultativos")
        ),
        yearly_closures=tuple(dict.fromkeys(yearly)),
    )


def _texts(r: Reader, node: YNode | None, root_pos: Pos) -> tuple[tuple[str, str], ...]:
    table = r.mapping(node, "texts", ANY_KEY)
    out: list[tuple[str, str]] = []
    for key, value in table.items() if table else ():
        text = r.text(value, f"o texto '{key}'")
        if text is not None:
            out.append((key, text))
    written = [key for key, _ in out]
    for key in REQUIRED_TEXTS:
        if key not in (table.entries if table else {}):
            close = difflib.get_close_matches(key, written, n=1, cutoff=0.7)
            hint = f" (há um '{close[0]}': erro de digitação?)" if close else ""
            r.report(
                table.pos if table else root_pos,
                "missing-text",
                f"falta o texto '{key}' em texts{hint}",
            )
    return tuple(out)


def _intents(r: Reader, node: YNode | None) -> tuple[IntentDef, ...]:
    table = r.mapping(node, "intents", ANY_KEY)
    out: list[IntentDef] = []
    for name, value in table.items() if table else ():
        entry = r.mapping(value, f"a intenção '{name}'", ("keywords", "examples", "exact"))
        out.append(
            IntentDef(
                name=name,
                examples=tuple(r.texts(entry.get("examples"), "os exemplos")) if entry else (),
                keywords=tuple(r.texts(entry.get("keywords"), "as palavras-chave"))
                if entry
                else (),
                exact=tuple(r.texts(entry.get("exact"), "as mensagens exatas (exact)"))
                if entry
                else (),
                pos=table.key_pos[name] if table else value.pos,
            )
        )
    return tuple(out)


def _staff(r: Reader, node: YNode | None, country: str) -> tuple[Staff, ...]:
    out: list[Staff] = []
    for index, item in enumerate(r.seq(node, "staff")):
        entry = r.mapping(
            item, f"a pessoa nº {index + 1} de staff", ("name", "phone", "role"), ("name", "phone")
        )
        if entry is None:
            continue
        written = r.text(entry.get("phone"), "o telefone") or ""
        phone = parse_phone(written, country)
        if written and phone is None:
            where = entry.get("phone")
            r.report(
                where.pos if where is not None else entry.pos,
                "bad-phone",
                f"'{written}' não é um número de telefone válido (escreva com DDD, por "
                "exemplo +55 11 99999-0001)",
            )
        out.append(
            Staff(
                name=r.text(entry.get("name"), "o nome") or "",
                phone=phone or written,
                role=r.text(entry.get("role"), "a função (role)") or "secretary",
                pos=entry.pos,
            )
        )
    return tuple(out)


def _campaigns(r: Reader, node: YNode | None) -> tuple[Campaign, ...]:
    out: list[Campaign] = []
    for index, item in enumerate(r.seq(node, "campaigns")):
        entry = r.mapping(
            item,
            f"a campanha nº {index + 1}",
            ("id", "name", "channel", "monthly_cost", "patterns"),
            ("id", "name", "channel"),
        )
        if entry is None:
            continue
        campaign_id = r.text(entry.get("id"), "o id da campanha") or ""
        if any(done.id == campaign_id for done in out):
            r.report(entry.pos, "duplicate-id", f"a campanha '{campaign_id}' aparece duas vezes")
        cost = r.number(entry.get("monthly_cost"), "o custo mensal")
        out.append(
            Campaign(
                id=campaign_id,
                name=r.text(entry.get("name"), "o nome da campanha") or "",
                channel=r.text(entry.get("channel"), "o canal") or "",
                monthly_cost=float(cost or 0.0),
                patterns=tuple(r.texts(entry.get("patterns"), "os padrões (patterns)")),
                pos=entry.pos,
            )
        )
    return tuple(out)


def _understanding(r: Reader, node: YNode | None) -> UnderstandingModel:
    entry = r.mapping(node, "understanding", _THRESHOLDS)
    if entry is None:
        return UnderstandingModel()
    values: dict[str, float] = {}
    for key in _THRESHOLDS:
        value = r.number(entry.get(key), key)
        if value is not None:
            values[key] = float(value)
    return UnderstandingModel(pos=entry.pos, **values)


_PRIVACY_KEYS = ("controller", "kept", "requests", "retention_days")


def _privacy(r: Reader, node: YNode | None) -> Privacy | None:
    entry = r.mapping(node, "privacy", _PRIVACY_KEYS, ("controller", "requests"))
    if entry is None:
        return None
    days_node = entry.get("retention_days")
    days = r.number(days_node, "privacy.retention_days (dias)", integer=True)
    if days is not None and days < 1 and days_node is not None:
        r.report(days_node.pos, "bad-type", "privacy.retention_days deve ser 1 dia ou mais")
        days = None
    return Privacy(
        controller=r.text(entry.get("controller"), "o controlador dos dados (controller)") or "",
        requests=r.text(entry.get("requests"), "como pedir os dados (requests)") or "",
        kept=r.text(entry.get("kept"), "o que é guardado (kept)") or "",
        retention_days=int(days) if days is not None else None,
        pos=entry.pos,
    )


def read_clinic(node: YNode | None, file: str) -> tuple[Clinic | None, Reader]:
    """Build the clinic from the root node of ``clinic.yaml``, recording every problem."""
    r = Reader(file)
    if node is None:
        r.report(Pos(file, 1, 1), "missing-key", "o arquivo clinic.yaml está vazio")
        return None, r
    root = r.mapping(node, "clinic.yaml", CLINIC_KEYS, ("clinic", "texts"))
    if root is None:
        return None, r
    info = r.mapping(root.get("clinic"), "clinic", ("name", "facts", "country"), ("name",))
    name = (r.text(info.get("name"), "o nome da clínica") if info else None) or ""
    country = (r.text(info.get("country"), "o país (country)") if info else None) or "BR"
    if not valid_country(country):
        where = info.get("country") if info else None
        r.report(
            where.pos if where is not None else root.pos,
            "bad-type",
            f"'{country}' não é um código de país (use o código ISO de duas letras, como BR)",
        )
        country = "BR"
    facts: list[tuple[str, str]] = []
    table = r.mapping(info.get("facts"), "clinic.facts", ANY_KEY) if info else None
    for key, value in table.items() if table else ():
        text = r.text(value, f"o dado '{key}'")
        if text is not None:
            facts.append((key, text))
    if name and all(key != "nome" for key, _ in facts):
        # {clinica.nome} is used everywhere; the clinic's name is that fact unless overridden.
        facts.insert(0, ("nome", name))
    return (
        Clinic(
            name=name,
            facts=tuple(facts),
            hours=_hours(r, root.get("hours")),
            staff=_staff(r, root.get("staff"), country),
            intents=_intents(r, root.get("intents")),
            texts=_texts(r, root.get("texts"), root.pos),
            faq=read_faq(r, root.get("faq"), "clinic.yaml"),
            red_flags=read_red_flags(r, root.get("red_flags"), "clinic.yaml"),
            lead_scoring=read_lead_scoring(r, root.get("lead_scoring"), "clinic.yaml")
            or LeadScoring(),
            campaigns=_campaigns(r, root.get("campaigns")),
            understanding=_understanding(r, root.get("understanding")),
            privacy=_privacy(r, root.get("privacy")),
            path=file,
            pos=root.pos,
            country=country.upper(),
            positions=tuple(positions(root).items()),
        ),
        r,
    )
