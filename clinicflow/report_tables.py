"""``clinicflow report`` in the terminal: the :class:`~clinicflow.metrics.Report` as rich tables."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from clinicflow.dashboard_svg import fmt_dec, fmt_duration, fmt_int, fmt_money, fmt_pct
from clinicflow.metrics import Report
from clinicflow.metrics_history import ROUTING
from clinicflow.model import HANDOFF_REASON_LABELS


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def print_report(report: Report, names: dict[str, str], console: Console | None = None) -> None:
    """Print every figure of ``report``; ``names`` are script titles by id."""
    out = console or Console()
    r = report
    zone = ZoneInfo(r.timezone)
    first = r.start.astimezone(zone).strftime("%d/%m/%Y")
    last = (r.end - timedelta(microseconds=1)).astimezone(zone).strftime("%d/%m/%Y")
    scope = ", ".join(x for x in (r.script and f"roteiro {r.script}", r.campaign) if x)
    out.print(f"[bold]Período:[/] {first} a {last}" + (f" ({scope})" if scope else ""))

    summary = _table("Resumo", "Indicador", "Valor")
    summary.add_row("Conversas iniciadas", fmt_int(r.conversations))
    summary.add_row(
        "Resolvidas pelo robô (contenção)",
        f"{fmt_pct(r.containment.rate)} ({r.containment.contained} sem secretária, "
        f"{r.containment.with_human} com, {r.containment.in_progress} em andamento)",
    )
    for label, d in (
        ("Tempo até a secretária", r.time_to_handoff),
        ("Resposta da secretária", r.human_response),
        (f"Resposta do robô ({r.bot_response_source})", r.bot_response),
    ):
        summary.add_row(
            label,
            f"mediana {fmt_duration(d.median_s)} · p90 {fmt_duration(d.p90_s)} (n={d.count})",
        )
    summary.add_row(
        "Follow-ups",
        f"{r.follow_ups.sent} enviados, {r.follow_ups.answered} respondidos "
        f"({fmt_pct(r.follow_ups.answered_rate)})",
    )
    summary.add_row(
        "IA (LLM)",
        f"{r.llm.calls} chamadas, {fmt_int(r.llm.tokens_in)} tokens in / "
        f"{fmt_int(r.llm.tokens_out)} out; por conversa "
        f"{fmt_dec(r.llm.calls_per_conversation, 2)} chamadas, "
        f"{fmt_int(r.llm.tokens_per_conversation)} tokens",
    )
    out.print(summary)

    if r.staff_response:
        people = _table("Resposta por pessoa da equipe", "Pessoa", "Passagens", "Mediana", "p90")
        for s in r.staff_response:
            people.add_row(s.name, fmt_int(s.count), fmt_duration(s.median_s),
                           fmt_duration(s.p90_s))  # fmt: skip
        out.print(people)
    if r.appointments:
        booked = _table("Consultas agendadas (dia da consulta)", "Dia", "Consultas")
        for day, count in r.appointments:
            booked.add_row(day, fmt_int(count))
        out.print(booked)

    funnel = _table("Funil", "Etapa", "Conversas", "Da etapa anterior", "Perdidas", "Do total")
    for step in r.funnel:
        funnel.add_row(
            step.label,
            fmt_int(step.count),
            fmt_pct(step.conversion),
            fmt_int(step.drop_off) if step.conversion is not None else "",
            fmt_pct(step.of_started),
        )
    out.print(funnel)

    stops = _table("Onde pararam (sem resposta da paciente)", "Roteiro · etapa", "Conversas")
    for stop in r.drop_off_by_state:
        where = (
            "menu inicial"
            if stop.state == ROUTING or not stop.state
            else f"{names.get(stop.script or '', stop.script or '—')} · {stop.state}"
        )
        stops.add_row(where, fmt_int(stop.count))
    out.print(stops)

    handoffs = _table("Passagens à secretária", "Motivo", "Passagens")
    for reason, count in r.handoffs.by_reason.items():
        handoffs.add_row(HANDOFF_REASON_LABELS.get(reason, reason), fmt_int(count))
    handoffs.add_row("[bold]total[/]", f"{r.handoffs.total} ({r.handoffs.urgent} urgentes)")
    out.print(handoffs)

    campaigns = _table(
        "Campanhas", "Origem", "Leads", "Agendadas", "Custo no período", "Por lead", "Por agendada"
    )
    for c in r.campaigns:
        campaigns.add_row(
            c.name,
            fmt_int(c.leads),
            fmt_int(c.scheduled),
            fmt_money(c.period_cost),
            fmt_money(c.cost_per_lead),
            fmt_money(c.cost_per_scheduled),
        )
    out.print(campaigns)

    days = _table("Conversas por dia", "Dia", "Conversas")
    for day, count in r.per_day[-31:]:
        days.add_row(f"{day[8:10]}/{day[5:7]}", fmt_int(count))
    out.print(days)
    if r.erased:
        out.print(f"Conversas apagadas a pedido da paciente (LGPD) no período: {r.erased}")
