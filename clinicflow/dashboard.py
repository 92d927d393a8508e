"""The clinic's dashboard: one server-rendered HTML page at ``/dashboard``.

No JavaScript and nothing fetched from elsewhere: inline CSS, charts drawn as inline SVG by
:mod:`clinicflow.dashboard_svg`, a strict Content-Security-Policy. Laid out for a phone first.
Labels are in Portuguese; every number carries ``data-metric`` with its key in
``clinicflow report --json`` (hand-off queue figures use ``queue.N.*``).

Mounting it in an aiohttp app is one line::

    add_dashboard_routes(app, get_store=lambda: engine.store,
                         get_catalog=lambda: engine.catalog, staff_token=config.staff_token)

Access needs the staff token as ``Authorization: Bearer <token>``, or whatever the
``authorize`` callable accepts (the runner: an administrator's session or token). A token in
the URL (``?token=``) is refused with 400: URLs end up in logs and browser history. Query
parameters: ``since``/``until``
(``YYYY-MM-DD``, the clinic's days, ``until`` inclusive), ``days`` (default 30, when no
``since``), ``script`` and ``campaign``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from clinicflow.clock import Clock, SystemClock
from clinicflow.dashboard_svg import (
    CSS,
    fmt_duration,
    fmt_int,
    funnel_chart,
    hbar_chart,
    metric,
    per_day_chart,
)
from clinicflow.metrics import QueueItem, Report, handoff_queue, parse_day, report
from clinicflow.metrics_history import ROUTING
from clinicflow.model import HANDOFF_REASON_LABELS, Catalog
from clinicflow.storage import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Authorize = Callable[[web.Request], Awaitable[None]]
URL_TOKEN = (
    "o token não é mais aceito na URL (fica no histórico do navegador e nos logs): envie "
    "'Authorization: Bearer <token>' ou entre em /login"
)

REASONS = {reason: label[0].upper() + label[1:] for reason, label in HANDOFF_REASON_LABELS.items()}
MAX_STATES = 15  # rows of the drop-off chart
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _card(title: str, big: str, sub: str = "") -> str:
    return (
        f'<div class="card"><h3>{escape(title)}</h3><div class="big">{big}</div>'
        + (f'<div class="sub">{sub}</div>' if sub else "")
        + "</div>"
    )


def _cards(r: Report) -> str:
    bot_note = "" if r.bot_response_source == "outbox" else " (no histórico)"
    return (
        '<div class="cards">'
        + "".join(
            (
                _card("Conversas", metric("conversations", r.conversations)),
                _card(
                    "Agendadas",
                    metric("funnel.scheduled.count", r.step("scheduled").count),
                    metric("funnel.scheduled.of_started", r.step("scheduled").of_started, "pct")
                    + " das conversas",
                ),
                _card(
                    "Resolvidas pelo robô",
                    metric("containment.rate", r.containment.rate, "pct"),
                    metric("containment.contained", r.containment.contained)
                    + " sem secretária · "
                    + metric("containment.with_human", r.containment.with_human)
                    + " com",
                ),
                _card(
                    "Passadas à secretária",
                    metric("handoffs.total", r.handoffs.total),
                    metric("handoffs.urgent", r.handoffs.urgent) + " urgentes",
                ),
                _card(
                    "Até a secretária",
                    metric("time_to_handoff.median_s", r.time_to_handoff.median_s, "duration"),
                    "mediana · p90 "
                    + metric("time_to_handoff.p90_s", r.time_to_handoff.p90_s, "duration"),
                ),
                _card(
                    "Resposta da secretária",
                    metric("human_response.median_s", r.human_response.median_s, "duration"),
                    "mediana · p90 "
                    + metric("human_response.p90_s", r.human_response.p90_s, "duration"),
                ),
                _card(
                    "Resposta do robô" + bot_note,
                    metric("bot_response.median_s", r.bot_response.median_s, "duration"),
                    "mediana · p90 "
                    + metric("bot_response.p90_s", r.bot_response.p90_s, "duration"),
                ),
                _card(
                    "Follow-ups",
                    metric("follow_ups.sent", r.follow_ups.sent),
                    metric("follow_ups.answered_rate", r.follow_ups.answered_rate, "pct")
                    + " respondidos",
                ),
                _card(
                    "IA por conversa",
                    metric("llm.calls_per_conversation", r.llm.calls_per_conversation, "dec"),
                    metric("llm.tokens_per_conversation", r.llm.tokens_per_conversation)
                    + " tokens · "
                    + metric("llm.calls", r.llm.calls)
                    + " chamadas",
                ),
            )
        )
        + "</div>"
    )


def _where(script: str | None, state: str | None, names: dict[str, str]) -> str:
    if state == ROUTING or (script is None and state is None):
        return "Menu inicial"
    return f"{names.get(script or '', script or '—')} · {state or '—'}"


def _drop_off(r: Report, names: dict[str, str]) -> str:
    rows = [
        (_where(d.script, d.state, names), f"drop_off_by_state.{i}.count", float(d.count))
        for i, d in enumerate(r.drop_off_by_state[:MAX_STATES])
    ]
    if not rows:
        return '<p class="note">Nenhuma conversa parada no período.</p>'
    hours = fmt_int(r.quiet_after_s / 3600)
    return hbar_chart(rows, aria="Onde as pacientes pararam") + (
        f'<p class="note">Conversas com o robô sem resposta da paciente há mais de {hours} h, '
        "pela etapa em que pararam.</p>"
    )


_CAMPAIGN_COLUMNS = (
    ("leads", "Leads", "int"),
    ("scheduled", "Agendadas", "int"),
    ("period_cost", "Custo no período", "money"),
    ("cost_per_lead", "Por lead", "money"),
    ("cost_per_scheduled", "Por agendada", "money"),
)


def _campaigns(r: Report) -> str:
    head = "<tr><th>Origem</th>" + "".join(f"<th>{t}</th>" for _, t, _ in _CAMPAIGN_COLUMNS)
    body = "".join(
        f"<tr><td>{escape(c.name)}</td>"
        + "".join(
            f'<td data-label="{title}">{metric(f"campaigns.{c.id}.{key}", getattr(c, key), kind)}'
            "</td>"
            for key, title, kind in _CAMPAIGN_COLUMNS
        )
        + "</tr>"
        for c in r.campaigns
    )
    return (
        f'<table class="stack">{head}</tr>{body}</table>'
        '<p class="note">Custo mensal proporcional aos dias do período.</p>'
    )


def _handoffs(r: Report) -> str:
    rows = "".join(
        f"<tr><td>{escape(REASONS.get(reason, reason))}</td>"
        f"<td>{metric(f'handoffs.by_reason.{reason}', count)}</td></tr>"
        for reason, count in r.handoffs.by_reason.items()
    )
    return (
        f"<table><tr><th>Motivo</th><th>Passagens</th></tr>{rows}"
        "<tr><td>Marcadas urgentes</td>"
        f"<td>{metric('handoffs.urgent', r.handoffs.urgent)}</td></tr>"
        f"<tr><td>Não urgentes</td><td>{metric('handoffs.not_urgent', r.handoffs.not_urgent)}"
        "</td></tr></table>"
    )


def _staff(r: Report) -> str:
    if not r.staff_response:
        return '<p class="note">Ninguém da equipe respondeu pela caixa de entrada no período.</p>'
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td>"
        f"<td>{metric(f'human_response_by_staff.{i}.count', s.count)}</td>"
        f"<td>{metric(f'human_response_by_staff.{i}.median_s', s.median_s, 'duration')}</td>"
        f"<td>{metric(f'human_response_by_staff.{i}.p90_s', s.p90_s, 'duration')}</td></tr>"
        for i, s in enumerate(r.staff_response)
    )
    return (
        "<table><tr><th>Pessoa</th><th>Passagens</th><th>Mediana</th><th>p90</th></tr>"
        f'{rows}</table><p class="note">'
        + metric("appointments.count", sum(n for _, n in r.appointments))
        + " consultas agendadas com data no período.</p>"
    )


def _queue(queue: Sequence[QueueItem], names: dict[str, str]) -> str:
    if not queue:
        return '<p class="note">Nenhuma paciente aguardando. 🎉</p>'
    items = []
    for i, q in enumerate(queue):
        badge = '<span class="badge urgent">URGENTE</span> ' if q.urgent else ""
        who = escape(q.patient_name or "Paciente") + f" · final {escape(q.chat_id[-9:-5])}"
        status = "em atendimento" if q.status == "human" else "aguardando"
        age = metric(f"queue.{i}.age_s", round(q.age_s, 1), "duration")
        items.append(
            f'<li><div><div class="who">{badge}{who}</div><div class="meta">'
            f"{escape(REASONS.get(q.reason, q.reason))} · "
            f"{escape(_where(q.script_id, q.state, names))} · {status}</div></div>"
            f'<div class="meta age">há {age}</div></li>'
        )
    return f'<ul class="queue">{"".join(items)}</ul>'


def _filters(r: Report, options: dict[str, dict[str, str]]) -> str:
    zone = ZoneInfo(r.timezone)
    since = r.start.astimezone(zone).date().isoformat()
    last = (r.end - timedelta(microseconds=1)).astimezone(zone).date().isoformat()
    fields = [
        f'<label>De<input type="date" name="since" value="{since}"></label>',
        f'<label>Até<input type="date" name="until" value="{last}"></label>',
    ]
    for name, label, chosen in (
        ("script", "Procedimento", r.script),
        ("campaign", "Origem", r.campaign),
    ):
        opts = '<option value="">Todos</option>' + "".join(
            f'<option value="{escape(k, quote=True)}"{" selected" if k == chosen else ""}>'
            f"{escape(v)}</option>"
            for k, v in options.get(name, {}).items()
        )
        fields.append(f'<label>{label}<select name="{name}">{opts}</select></label>')
    return f'<form method="get">{"".join(fields)}<button type="submit">Ver</button></form>'


def render_dashboard(
    report: Report,
    queue: list[QueueItem],
    *,
    title: str = "Painel da recepção",
    names: dict[str, str] | None = None,
    options: dict[str, dict[str, str]] | None = None,
) -> str:
    """The dashboard page for ``report`` and the open hand-offs ``queue``.

    Args:
        report: figures of the period (see :func:`clinicflow.metrics.report`).
        queue: open hand-offs (see :func:`clinicflow.metrics.handoff_queue`).
        title: the clinic's name, shown in the header.
        names: display names of scripts by id.
        options: choices of the filter form, ``{"script": {id: name}, "campaign": {...}}``.

    Returns:
        A complete HTML document (UTF-8), no scripts, no external resources.
    """
    names = names or {}
    zone = ZoneInfo(report.timezone)
    start = report.start.astimezone(zone).strftime("%d/%m/%Y")
    end = (report.end - timedelta(microseconds=1)).astimezone(zone).strftime("%d/%m/%Y")
    scope = " · ".join(
        part
        for part in (
            names.get(report.script, report.script) if report.script else "",
            report.campaign or "",
        )
        if part
    )
    return (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)} — painel</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{start} a {end}"
        + (f" · {escape(scope)}" if scope else "")
        + "</p></header><main>"
        f"<section>{_filters(report, options or {})}</section>"
        f"{_cards(report)}"
        f"<section><h2>Fila da secretária ({metric('queue.length', len(queue))})</h2>"
        f"{_queue(queue, names)}</section>"
        '<div class="grid">'
        f"<section><h2>Funil</h2>{funnel_chart(report.funnel)}</section>"
        f"<section><h2>Conversas por dia</h2>{per_day_chart(report.per_day)}</section>"
        f"<section><h2>Onde pararam</h2>{_drop_off(report, names)}</section>"
        f"<section><h2>Passagens à secretária</h2>{_handoffs(report)}</section>"
        f"<section><h2>Resposta por pessoa</h2>{_staff(report)}</section>"
        "</div>"
        f"<section><h2>Campanhas</h2>{_campaigns(report)}</section>"
        '<p class="note">Números do histórico da clínica; definições em '
        "<code>clinicflow.metrics</code>.</p>"
        "</main></body></html>"
    )


def _authorized(request: web.Request, token: str | None) -> bool:
    given = ""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = header[len("Bearer ") :].strip()
    if not token or not given:
        return False
    # surrogateescape: a header with undecodable bytes ("Bearer \xff") is a wrong token, not
    # an error.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
    )


def _period(query: Any, tz: str, now: datetime) -> tuple[datetime, datetime | None]:
    try:
        if query.get("since"):
            since = parse_day(query["since"], tz)
        else:
            days = max(1, min(400, int(query.get("days") or 30)))
            today = now.astimezone(ZoneInfo(tz)).date()
            since = parse_day((today - timedelta(days=days - 1)).isoformat(), tz)
        until = parse_day(query["until"], tz, end=True) if query.get("until") else None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"período inválido: {exc}") from exc
    return since, until


def dashboard_handler(
    get_store: Callable[[], Store],
    get_catalog: Callable[[], Catalog],
    staff_token: str | None,
    *,
    clock: Clock | None = None,
    authorize: Authorize | None = None,
) -> Handler:
    """An aiohttp handler serving the dashboard page (401 without the staff token).

    Args:
        get_store: returns the history (called per request, e.g. ``lambda: engine.store``).
        get_catalog: returns the current catalog (names, campaigns, time zone).
        staff_token: the token staff use; None or empty refuses everyone (dashboard off).
        clock: the time source (default: the system clock).
        authorize: instead of ``staff_token``: awaited with the request, raises an HTTP
            error (401, 403) to refuse it.
    """
    time_source: Clock = clock or SystemClock()

    async def handle(request: web.Request) -> web.StreamResponse:
        if "token" in request.query:
            raise web.HTTPBadRequest(text=URL_TOKEN)
        if authorize is not None:
            await authorize(request)
        elif not _authorized(request, staff_token):
            raise web.HTTPUnauthorized(
                text="token da equipe necessário",
                headers={"WWW-Authenticate": 'Bearer realm="clinicflow"'},
            )
        catalog = get_catalog()
        now = time_source.now().astimezone(UTC)
        since, until = _period(request.query, catalog.clinic.hours.timezone, now)
        script = request.query.get("script") or None
        campaign = request.query.get("campaign") or None
        store = get_store()

        def compute() -> tuple[Report, list[QueueItem]]:
            figures = report(
                store,
                since=since,
                until=until,
                script=script,
                campaign=campaign,
                catalog=catalog,
                now=now,
            )
            return figures, handoff_queue(store, now=now)

        figures, queue = await asyncio.to_thread(compute)
        names = {s.id: s.title for s in catalog.scripts}
        origins = {c.id: c.name for c in catalog.clinic.campaigns}
        origins["organic"] = "Orgânico"
        html = render_dashboard(
            figures,
            queue,
            title=catalog.clinic.name,
            names=names,
            options={"script": names, "campaign": origins},
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers=HEADERS)

    return handle


def add_dashboard_routes(
    app: web.Application,
    *,
    get_store: Callable[[], Store],
    get_catalog: Callable[[], Catalog],
    staff_token: str | None,
    path: str = "/dashboard",
    clock: Clock | None = None,
    authorize: Authorize | None = None,
) -> None:
    """Serve the dashboard at ``path`` (GET) in ``app`` (see :func:`dashboard_handler`)."""
    handler = dashboard_handler(get_store, get_catalog, staff_token, clock=clock,
                                authorize=authorize)  # fmt: skip
    app.router.add_get(path, handler)


__all__ = ["add_dashboard_routes", "dashboard_handler", "fmt_duration", "render_dashboard"]
