"""``clinicflow lint``: checks a clinic secretary can act on, each with a stable code.

The loader already reports what is wrong with the shape of a file (``yaml-syntax``,
``unknown-key``, ``missing-key``, ``bad-type``, ``empty-text``, ``bad-duration``,
``missing-version``, ``missing-text``, …). This module checks meaning: states that do not
exist or cannot be reached, dead ends, endless automatic loops, unknown slots, intents, reasons
and facts, and FAQ questions written twice. Messages are in Portuguese, for the secretary.

This module must stay light: ``clinicflow lint`` imports it and nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from clinicflow import conditions
from clinicflow.clock import Clock, SystemClock
from clinicflow.lint_flow import Report, check_graph, edges, hint
from clinicflow.loader import Reading, check
from clinicflow.model import (
    EMERGENCY_CATEGORIES,
    FAQ,
    HANDOFF_REASONS,
    INTENTS,
    Clinic,
    Pos,
    RedFlag,
    Script,
    State,
)
from clinicflow.problems import Problem
from clinicflow.templates import placeholders
from clinicflow.text import normalize

#: Lead-scoring weights may name these events besides the intents.
SCORE_EVENTS = ("message", "slot_filled", "faq_answered", "menu_choice")


def _check_intent(rep: Report, intent: str, pos: Pos, extra: tuple[str, ...] = ()) -> None:
    if intent not in INTENTS and intent not in extra:
        rep.add(
            pos,
            "unknown-intent",
            f"'{intent}' não é uma intenção conhecida"
            f"{hint(intent, INTENTS + extra)} (veja a lista em docs/script-language.md)",
        )


def _check_red_flags(rep: Report, flags: Iterable[RedFlag]) -> None:
    for i, flag in enumerate(flags):
        if flag.category is not None and flag.category not in EMERGENCY_CATEGORIES:
            rep.add(
                rep.at(f"red_flags.{i}.category", f"red_flags.{i}"),
                "unknown-category",
                f"'{flag.category}' não é uma categoria de emergência conhecida"
                f"{hint(flag.category, EMERGENCY_CATEGORIES)} "
                f"(categorias: {', '.join(EMERGENCY_CATEGORIES)})",
            )


def _check_texts(
    rep: Report, texts: Iterable[tuple[str, Pos]], slots: set[str] | None, clinic: Clinic | None
) -> None:
    """Placeholders of texts: slots must exist (when known), facts must be in clinic.yaml."""
    for text, pos in texts:
        for ph in placeholders(text):
            if ph.is_fact:
                if clinic is not None and clinic.fact(ph.key) is None:
                    known = [key for key, _ in clinic.facts]
                    rep.add(
                        pos,
                        "unknown-fact",
                        f"{{{ph.name}}}: não há o dado '{ph.key}' em "
                        f"clinic.yaml (clinic.facts){hint(ph.key, known)}",
                    )
            elif slots is not None and ph.name not in slots:
                rep.add(
                    pos,
                    "undefined-slot",
                    f"{{{ph.name}}}: o campo '{ph.name}' não existe "
                    f"em slots deste roteiro{hint(ph.name, slots)}",
                )


def _script_texts(script: Script, rep: Report) -> Iterator[tuple[str, Pos]]:
    for state in script.states:
        base = f"states.{state.name}"
        for i, text in enumerate(state.say):
            yield text, rep.at(f"{base}.say.{i}", f"{base}.say")
        if state.menu is not None:
            yield state.menu.prompt, rep.at(f"{base}.menu.prompt")
        for i, follow in enumerate(state.follow_ups):
            yield follow.say, rep.at(f"{base}.follow_ups.{i}.say")
    for slot in script.slots:
        yield slot.ask, rep.at(f"slots.{slot.name}.ask")
        for i, text in enumerate(slot.reprompts):
            yield text, rep.at(f"slots.{slot.name}.reprompts.{i}", f"slots.{slot.name}.reprompts")
    for i, faq in enumerate(script.faq):
        yield faq.answer, rep.at(f"faq.{i}.answer")


def _check_states(script: Script, rep: Report) -> None:
    names = [state.name for state in script.states]
    slots = {slot.name for slot in script.slots}

    def known(target: str, pos: Pos) -> None:
        if target not in names:
            rep.add(
                pos,
                "undefined-state",
                f"o estado '{target}' não existe neste roteiro{hint(target, names)}",
            )

    if script.start:
        known(script.start, rep.at("start"))
    for intent, target in script.on:
        _check_intent(rep, intent, rep.at(f"on.{intent}#key"))
        known(target, rep.at(f"on.{intent}"))
    for slot in script.slots:
        action = slot.on_exhausted
        if action is not None and action.action == "goto":
            known(action.target or "", action.pos)
        if (
            action is not None
            and action.action == "handoff"
            and action.target not in HANDOFF_REASONS
        ):
            rep.add(
                action.pos,
                "unknown-reason",
                f"'{action.target}' não é um motivo de "
                f"encaminhamento; use um de: {', '.join(HANDOFF_REASONS)}",
            )
    for state in script.states:
        base = f"states.{state.name}"
        for target, pos, kind in edges(script, state, rep):
            if kind != "exhausted":  # checked once per slot above
                known(target, pos)
        for intent, _ in state.on:
            _check_intent(rep, intent, rep.at(f"{base}.on.{intent}#key"))
        if state.collect and state.collect not in slots:
            rep.add(
                rep.at(f"{base}.collect"),
                "undefined-slot",
                f"o campo '{state.collect}' não existe em slots{hint(state.collect, slots)}",
            )
        if state.handoff is not None and state.handoff not in HANDOFF_REASONS:
            rep.add(
                rep.at(f"{base}.handoff"),
                "unknown-reason",
                f"'{state.handoff}' não é um "
                f"motivo de encaminhamento; use um de: {', '.join(HANDOFF_REASONS)}",
            )
        doing = [
            key
            for key, on in (
                ("collect", state.collect),
                ("menu", state.menu),
                ("handoff", state.handoff),
                ("end", state.end),
            )
            if on
        ]
        if len(doing) > 1:
            rep.add(
                rep.at(f"{base}#key"),
                "conflicting-keys",
                f"o estado '{state.name}' usa "
                f"{' e '.join(doing)} ao mesmo tempo; escolha um (crie outro estado)",
            )
        _check_conditions(state, slots, rep)


def _check_conditions(state: State, slots: set[str], rep: Report) -> None:
    for branch in state.when:
        pos = branch.pos
        try:
            cond = conditions.parse(branch.condition)
        except conditions.ConditionSyntaxError as exc:
            where = Pos(pos.file, pos.line, pos.col + exc.col - 1)
            rep.add(
                where,
                "bad-condition",
                f"a condição '{branch.condition}' tem um erro na coluna {exc.col}: {exc.reason}",
            )
            continue
        for name, col in _slot_uses(cond):
            if name not in slots:
                rep.add(
                    Pos(pos.file, pos.line, pos.col + col - 1),
                    "undefined-slot",
                    f"a condição usa o campo '{name}', que não existe em slots{hint(name, slots)}",
                )


def _slot_uses(cond: conditions.Condition) -> Iterator[tuple[str, int]]:
    if isinstance(cond, conditions.Filled | conditions.Compare):
        yield cond.slot, cond.col
    elif isinstance(cond, conditions.Not):
        yield from _slot_uses(cond.operand)
    else:
        yield from _slot_uses(cond.left)
        yield from _slot_uses(cond.right)


def _check_script_misc(script: Script, clinic: Clinic | None, rep: Report) -> None:
    slots = {slot.name for slot in script.slots}
    _check_texts(rep, _script_texts(script, rep), slots, clinic)
    _check_red_flags(rep, script.red_flags)
    if not script.triggers.keywords and not script.triggers.examples:
        rep.add(
            rep.at("triggers", "id"),
            "no-triggers",
            "o roteiro não tem triggers (keywords "
            "ou examples): nenhuma primeira mensagem vai chegar a ele sozinha",
            "warning",
        )
    collected = {state.collect for state in script.states if state.collect}
    for state in script.states:
        slot = script.slot(state.collect) if state.collect else None
        if slot is not None and (slot.max_attempts is None or slot.on_exhausted is None):
            rep.add(
                rep.at(f"states.{state.name}.collect"),
                "collect-without-limit",
                f"o campo "
                f"'{slot.name}' não tem max_attempts e on_exhausted: a pergunta se repetiria "
                "sem fim (o sistema para em 3)",
                "warning",
            )
    for slot in script.slots:
        if slot.name not in collected:
            rep.add(
                rep.at(f"slots.{slot.name}#key"),
                "unused-slot",
                f"o campo '{slot.name}' nunca é perguntado (nenhum estado tem collect dele)",
                "warning",
            )
    _check_faq_intents(script.faq, rep)
    if script.lead_scoring is not None:
        for event, _ in script.lead_scoring.weights:
            _check_intent(rep, event, rep.at(f"lead_scoring.weights.{event}#key"), SCORE_EVENTS)


def _check_faq_intents(faqs: Iterable[FAQ], rep: Report) -> None:
    for i, faq in enumerate(faqs):
        if faq.intent is not None:
            _check_intent(rep, faq.intent, rep.at(f"faq.{i}.intent"))


def check_script(script: Script, clinic: Clinic | None = None) -> list[Problem]:
    """Meaning checks of one script (``clinic`` known: facts are checked too)."""
    rep = Report(script.positions, script.pos)
    _check_states(script, rep)
    check_graph(script, rep)
    _check_script_misc(script, clinic, rep)
    return rep.problems


def _today(clinic: Clinic, clock: Clock | None) -> date:
    now = (clock or SystemClock()).now()
    try:
        return now.astimezone(ZoneInfo(clinic.hours.timezone)).date()
    except (ValueError, LookupError):
        return now.date()


def _check_hours(clinic: Clinic, rep: Report, today: date) -> None:
    """The holiday calendar exists and covers the next twelve months."""
    from clinicflow.closures import calendar_problems, coverage_gap

    hours = clinic.hours
    for field, code, message in calendar_problems(hours, today):
        rep.add(rep.at(f"hours.{field}", "hours"), code, message)
    gap = coverage_gap(hours, today)
    if gap is not None:
        where = rep.at("hours.closures", "hours.holidays", "hours")
        rep.add(where, "holidays-not-covered", gap, "warning")


def _check_privacy(clinic: Clinic, rep: Report) -> None:
    """The privacy section and its notice go together (LGPD: tell her, and say how to ask)."""
    if clinic.privacy is not None and clinic.privacy_notice is None:
        rep.add(
            rep.at("privacy#key", "privacy"),
            "privacy-without-notice",
            "há a seção privacy mas falta o texto texts.privacy_notice, o aviso que a "
            "paciente recebe no primeiro contato",
            "warning",
        )
    if clinic.privacy is None and clinic.privacy_notice is not None:
        rep.add(
            rep.at("texts.privacy_notice"),
            "notice-without-privacy",
            "há o texto privacy_notice mas falta a seção privacy (controller, requests, "
            "retention_days)",
            "warning",
        )


def check_clinic(clinic: Clinic, clock: Clock | None = None) -> list[Problem]:
    """Meaning checks of ``clinic.yaml``: intents, weights, facts in texts, staff, calendar.

    ``clock`` is "today" for the check that the closed days cover the next twelve months.
    """
    rep = Report(clinic.positions, clinic.pos)
    _check_hours(clinic, rep, _today(clinic, clock))
    _check_privacy(clinic, rep)
    for intent in clinic.intents:
        _check_intent(rep, intent.name, intent.pos)
    for event, _ in clinic.lead_scoring.weights:
        _check_intent(rep, event, rep.at(f"lead_scoring.weights.{event}#key"), SCORE_EVENTS)
    _check_faq_intents(clinic.faq, rep)
    _check_red_flags(rep, clinic.red_flags)
    texts = [(text, rep.at(f"texts.{key}")) for key, text in clinic.texts]
    texts += [(faq.answer, rep.at(f"faq.{i}.answer")) for i, faq in enumerate(clinic.faq)]
    _check_texts(rep, texts, None, clinic)
    if not clinic.staff:
        rep.add(
            rep.at("staff", "clinic"),
            "no-staff",
            "não há ninguém em staff para receber os encaminhamentos da conversa",
            "warning",
        )
    return rep.problems


def _duplicate_questions(clinic: Clinic | None, scripts: Iterable[Script]) -> list[Problem]:
    owners: list[tuple[Iterable[tuple[str, Pos]], tuple[FAQ, ...], Pos]] = []
    if clinic is not None:
        owners.append((clinic.positions, clinic.faq, clinic.pos))
    owners.extend((script.positions, script.faq, script.pos) for script in scripts)
    seen: dict[str, Pos] = {}
    problems: list[Problem] = []
    for positions, faqs, fallback in owners:
        rep = Report(positions, fallback)
        for i, faq in enumerate(faqs):
            for j, question in enumerate(faq.questions):
                pos = rep.at(f"faq.{i}.questions.{j}", f"faq.{i}")
                key = normalize(question)
                first = seen.setdefault(key, pos)
                if first is not pos and key:
                    rep.add(
                        pos,
                        "duplicate-faq-question",
                        f"a pergunta '{question}' já está em outra pergunta frequente ({first})",
                    )
        problems.extend(rep.problems)
    return problems


def check_reading(reading: Reading, clock: Clock | None = None) -> list[Problem]:
    """Meaning checks over what :func:`clinicflow.loader.read_files` read."""
    problems: list[Problem] = []
    clinic = reading.clinic
    if clinic is not None and clinic.path in reading.files:
        problems.extend(check_clinic(clinic, clock))
    for script in reading.scripts:
        problems.extend(check_script(script, clinic))
    problems.extend(_duplicate_questions(clinic, reading.scripts))
    # A clinic read only for reference (a script linted alone) is not reported on.
    return [p for p in problems if p.file in reading.files]


def lint_paths(paths: Iterable[str | Path], clock: Clock | None = None) -> list[Problem]:
    """Lint catalog files and/or folders.

    Args:
        paths: files and/or catalog folders.
        clock: "today" for the holiday-calendar coverage check (default the system clock).

    Returns:
        Every problem, sorted by file and position (warnings included).
    """
    return check(paths, clock)


def summary(problems: Iterable[Problem], files: int) -> str:
    """One line such as ``3 erros, 1 aviso em 7 arquivos``."""
    items = list(problems)
    errors = sum(problem.severity == "error" for problem in items)
    warnings = len(items) - errors
    return (
        f"{errors} {'erro' if errors == 1 else 'erros'}, "
        f"{warnings} {'aviso' if warnings == 1 else 'avisos'} em "
        f"{files} {'arquivo' if files == 1 else 'arquivos'}"
    )
