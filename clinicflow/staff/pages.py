"""The server-rendered HTML of the workspace: ``/login``, ``/inbox`` and its fragments.

Plain forms do every action (each carries the session's CSRF token); the one script,
``/inbox/static/inbox.js``, only listens to the server-sent events, reloads the queue and the
open conversation's fragment, and raises a notification and a sound for a new urgent
hand-off. Stylesheet and script are served by the runner itself (no CDN); the pages allow
nothing else (Content-Security-Policy). Laid out for a phone first. Texts in Portuguese.

Every builder takes ``base``: the path the runner is mounted under ("" alone, ``/c/<clinic>``
as one clinic of several). Every link, form action and asset it writes starts with it, and
the page hands it to the script as ``<body data-base>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from clinicflow.brief import REASON_LABELS
from clinicflow.dashboard_svg import fmt_duration
from clinicflow.metrics_history import parse_at
from clinicflow.phones import display_phone
from clinicflow.staff.accounts import Account
from clinicflow.staff.desk import Actor, QueueRow
from clinicflow.staff.transcript import ConversationView, Line

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
STATUS = {
    "waiting_human": "aguardando a equipe",
    "human": "em atendimento",
    "bot": "com o robô",
    "closed": "encerrada",
}
WHO = {"patient": "Paciente", "bot": "Robô", "human": "Equipe", "follow_up": "Robô (lembrete)"}
ACTIONS = {
    "assigned": "atribuída a {to}",
    "claimed": "assumiu",
    "transferred": "transferiu para {to}",
    "released": "devolveu à fila",
    "reply": "respondeu",
    "handback": "devolveu ao robô",
    "scheduled": "marcou como agendada",
    "close": "encerrou",
    "renotified": "alerta repetido a toda a equipe",
}
DONE = {
    "reply": "Mensagem enviada. O robô está pausado nesta conversa.",
    "handback": "Conversa devolvida ao robô.",
    "scheduled": "Marcada como agendada.",
    "close": "Conversa encerrada.",
    "claim": "A conversa agora é sua.",
    "release": "Conversa devolvida à fila.",
    "transfer": "Conversa transferida.",
    "availability": "Disponibilidade atualizada.",
}


def chat_path(chat_id: str, base: str = "") -> str:
    """``<base>/inbox/c/<chat id, percent-encoded>``: one conversation's page."""
    return base + "/inbox/c/" + quote(chat_id, safe="")


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _when(at: str | datetime, zone: ZoneInfo) -> str:
    moment = parse_at(at) if isinstance(at, str) else at
    return moment.astimezone(zone).strftime("%d/%m %H:%M")


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(token)}">'


def document(title: str, body: str, *, chat: str = "", live: bool = False,
             base: str = "") -> str:  # fmt: skip
    """A whole page; ``live`` loads the script that follows the server-sent events.

    The script reads ``base`` from ``<body data-base>`` and builds its URLs from it. Not a
    ``<base href>``: the policy forbids one (``base-uri 'none'``), and it would change how
    every relative URL on the page resolves, not only the script's.
    """
    static = _e(base + "/inbox/static/")
    script = f'<script src="{static}inbox.js" defer></script>' if live else ""
    return (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{static}inbox.css">'
        f"<title>{_e(title)}</title>{script}</head>"
        f'<body data-base="{_e(base)}" data-chat="{_e(chat)}">{body}</body></html>'
    )


def login_page(clinic: str, csrf: str, *, error: str = "", name: str = "", next_: str = "",
               base: str = "") -> str:  # fmt: skip
    alert = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    body = (
        f'<header><h1>{_e(clinic)}</h1><p>Entrada da equipe</p></header><main class="narrow">'
        f'<section><h2>Entrar</h2>{alert}<form method="post" action="{_e(base)}/login" '
        'class="stack">'
        f"{_csrf(csrf)}"
        f'<input type="hidden" name="next" value="{_e(next_)}">'
        f'<label>Nome<input name="name" autocomplete="username" required value="{_e(name)}">'
        "</label>"
        '<label>Senha<input name="password" type="password" autocomplete="current-password" '
        "required></label>"
        '<button type="submit">Entrar</button></form></section></main>'
    )
    return document(f"{clinic} — entrar", body, base=base)


def message_page(title: str, text: str, *, back: str | None = None, base: str = "") -> str:
    """A short page with a link back (``back``; default: the inbox, ``<base>/inbox``)."""
    target = back if back is not None else base + "/inbox"
    body = (
        f"<header><h1>{_e(title)}</h1></header><main class='narrow'><section>"
        f'<p>{_e(text)}</p><p><a href="{_e(target)}">Voltar</a></p></section></main>'
    )
    return document(title, body, base=base)


def _header(clinic: str, actor: Actor, csrf: str, account: Account | None, base: str) -> str:
    switch = ""
    if account is not None and account.role == "secretary":
        state = "Disponível" if account.available else "Indisponível"
        turn = "0" if account.available else "1"
        label = "Ficar indisponível" if account.available else "Ficar disponível"
        switch = (
            f'<form method="post" action="{_e(base)}/inbox/availability" class="inline">'
            f"{_csrf(csrf)}"
            f'<input type="hidden" name="available" value="{turn}">'
            f'<span class="pill {"on" if account.available else "off"}">{state}</span> '
            f'<button class="link" type="submit">{label}</button></form>'
        )
    role = "administradora" if actor.is_admin else "secretária"
    return (
        f'<header><div class="bar"><h1><a href="{_e(base)}/inbox">{_e(clinic)}</a></h1>'
        f'<form method="post" action="{_e(base)}/logout" class="inline">{_csrf(csrf)}'
        '<button class="link" type="submit">Sair</button></form></div>'
        f'<p><span id="me">{_e(actor.name)}</span> · {role} {switch} '
        '<button type="button" id="alerts" class="link">Ativar alertas</button></p></header>'
    )


def queue_fragment(rows: Sequence[QueueRow], *, open_chat: str = "", now: datetime,
                   base: str = "") -> str:  # fmt: skip
    """The queue: urgent first, then the longest waiting (the desk's order)."""
    if not rows:
        return '<p class="note" id="empty">Nenhuma paciente aguardando. 🎉</p>'
    items = []
    for row in rows:
        q = row.item
        badge = '<span class="badge urgent">URGENTE</span> ' if q.urgent else ""
        who = q.patient_name or "Paciente"
        phone = display_phone(row.phone) if row.phone else q.chat_id.split("@")[0]
        if row.mine:
            holder = '<span class="pill mine">com você</span>'
        elif row.holder:
            holder = f'<span class="pill">com {_e(row.holder)}</span>'
        else:
            holder = '<span class="pill queue">na fila</span>'
        age = fmt_duration(max(0.0, (now - q.at).total_seconds()))
        current = ' aria-current="true"' if q.chat_id == open_chat else ""
        items.append(
            f'<li class="{"urgent" if q.urgent else ""}" data-chat="{_e(q.chat_id)}"{current}>'
            f'<a href="{_e(chat_path(q.chat_id, base))}"><div class="who">{badge}{_e(who)}</div>'
            f'<div class="meta">{_e(phone)} · {_e(REASON_LABELS.get(q.reason, q.reason))}</div>'
            f'<div class="meta">{holder} · {_e(STATUS.get(q.status, q.status))} · '
            f"há {_e(age)}</div></a></li>"
        )
    return f'<ul class="queue">{"".join(items)}</ul>'


def _line(line: Line, zone: ZoneInfo) -> str:
    label = WHO.get(line.who, line.who)
    if line.voice:
        label += " · 🎤 áudio transcrito"
    elif line.who == "patient" and line.kind not in ("text", ""):
        label += f" · {line.kind}"
    side = "in" if line.who == "patient" else "out"
    return (
        f'<li class="msg {side} {line.who}"><div class="from">{_e(label)} · '
        f'{_e(_when(line.at, zone))}</div><div class="text">{_e(line.text)}</div></li>'
    )


def conversation_fragment(view: ConversationView, *, holder: str | None, zone: ZoneInfo) -> str:
    """The live part of a conversation: status, brief, collected fields, transcript, actions."""
    conv = view.conversation
    brief = view.brief or {}
    name = brief.get("patient_name") or conv.get("patient_name") or "Paciente"
    urgent = bool(brief.get("urgent") or conv.get("urgent"))
    badge = '<span class="badge urgent">URGENTE</span> ' if urgent else ""
    who_has = f"com {holder}" if holder else "na fila" if view.handoff else "sem responsável"
    head = (
        f'<div class="conv-head"><h2>{badge}{_e(name)}</h2><p class="meta">'
        f"{_e(brief.get('phone') or view.chat_id.split('@')[0])} · "
        f'<span id="status" data-status="{_e(view.status)}">'
        f"{_e(STATUS.get(view.status, view.status))}</span> · {_e(who_has)}</p></div>"
    )
    facts = []
    if brief:
        reason = REASON_LABELS.get(str(brief.get("reason")), str(brief.get("reason") or ""))
        rows = [("Motivo", reason), ("Assunto", brief.get("procedure") or "")]
        if brief.get("red_flags"):
            rows.append(("Sinais de alerta", "; ".join(map(str, brief["red_flags"]))))
        rows.append(("Resumo", brief.get("summary") or ""))
        facts.append(
            '<section id="brief"><h3>Resumo para a recepção</h3><dl>'
            + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
            + "</dl></section>"
        )
    collected: dict[str, Any] = brief.get("collected") or {}
    if not isinstance(collected, dict) or not collected:  # no hand-off: what the bot has
        collected = {k.replace("_", " "): v for k, v in view.slots.items()}
    if collected:
        facts.append(
            '<section id="fields"><h3>Informações coletadas</h3><dl>'
            + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in collected.items())
            + "</dl></section>"
        )
    lines = "".join(_line(line, zone) for line in view.lines)
    transcript = (
        f'<section id="transcript"><h3>Conversa</h3><ol class="chat">{lines}</ol></section>'
    )
    history = ""
    if view.actions:
        entries = "".join(
            f"<li>{_e(_when(a.at, zone))} — {_e(a.actor)} "
            f"{_e(ACTIONS.get(a.action, a.action).format(to=a.data.get('to', '')))}"
            + (f" ({_e(a.via)})" if a.via not in ("inbox", "system") else "")
            + (
                f" · consulta em {_e(_when(a.data['appointment_at'], zone))}"
                if a.data.get("appointment_at")
                else ""
            )
            + "</li>"
            for a in view.actions
        )
        history = f'<section id="actions"><h3>Histórico da equipe</h3><ul>{entries}</ul></section>'
    return head + "".join(facts) + transcript + history


def _forms(view: ConversationView, actor: Actor, csrf: str, people: Sequence[Account],
           mine: bool, held: bool, base: str) -> str:  # fmt: skip
    path = chat_path(view.chat_id, base)
    token = _csrf(csrf)

    def button(action: str, label: str, extra: str = "", cls: str = "") -> str:
        return (
            f'<form method="post" action="{_e(path)}/{action}" class="inline">{token}{extra}'
            f'<button type="submit" name="do" value="{action}"{cls}>{_e(label)}</button></form>'
        )

    closed = view.status == "closed"
    parts = []
    if not closed:
        parts.append(
            f'<form method="post" action="{_e(path)}/reply" class="reply">{token}'
            '<label for="reply-text">Responder à paciente (o robô fica em pausa)</label>'
            '<textarea id="reply-text" name="text" rows="3" required maxlength="4000">'
            '</textarea><button type="submit" name="do" value="reply">Enviar</button></form>'
        )
    row = []
    if not closed and view.status != "bot":
        row.append(button("handback", "Devolver ao robô"))
    if not mine and actor.account_id is not None:
        row.append(button("claim", "Assumir"))
    if held and (mine or actor.is_admin):
        row.append(button("release", "Devolver à fila", cls=' class="secondary"'))
    if not closed:
        row.append(button("close", "Encerrar", cls=' class="danger"'))
    parts.append(f'<div class="buttons">{"".join(row)}</div>')
    parts.append(
        f'<form method="post" action="{_e(path)}/scheduled" class="scheduled">{token}'
        '<label for="appointment">Consulta agendada para</label>'
        '<input type="datetime-local" id="appointment" name="appointment_at" required>'
        '<button type="submit" name="do" value="scheduled">Marcar agendada</button></form>'
    )
    others = [p for p in people if p.active and p.id != actor.account_id]
    if others:
        options = "".join(f'<option value="{_e(p.name)}">{_e(p.name)}</option>' for p in others)
        parts.append(
            f'<form method="post" action="{_e(path)}/transfer" class="inline">{token}'
            f'<label>Transferir para <select name="to">{options}</select></label>'
            '<button type="submit" name="do" value="transfer" class="secondary">Transferir'
            "</button></form>"
        )
    return '<section id="act">' + "".join(parts) + "</section>"


def inbox_page(
    clinic: str,
    actor: Actor,
    csrf: str,
    rows: Sequence[QueueRow],
    *,
    now: datetime,
    zone: ZoneInfo,
    account: Account | None = None,
    view: ConversationView | None = None,
    holder: str | None = None,
    people: Sequence[Account] = (),
    notice: str = "",
    base: str = "",
) -> str:
    """The inbox: the queue and, when one is open, a conversation with its actions."""
    flash = f'<p class="flash" role="status">{_e(notice)}</p>' if notice else ""
    open_chat = view.chat_id if view else ""
    queue = (
        f'<section id="queue-box"><h2>Fila</h2><div id="queue">'
        f"{queue_fragment(rows, open_chat=open_chat, now=now, base=base)}</div></section>"
    )
    header = _header(clinic, actor, csrf, account, base)
    if view is None:
        main = f'<main class="inbox">{flash}{queue}</main>'
        return document(f"{clinic} — recepção", header + main, live=True, base=base)
    mine = holder is not None and holder == actor.name
    conversation = (
        f'<article id="conversation"><p class="back"><a href="{_e(base)}/inbox">← Fila</a></p>'
        f'<div id="live">{conversation_fragment(view, holder=holder, zone=zone)}</div>'
        f"{_forms(view, actor, csrf, people, mine, holder is not None, base)}</article>"
    )
    main = f'<main class="inbox open">{flash}{conversation}{queue}</main>'
    return document(f"{clinic} — conversa", header + main, chat=view.chat_id, live=True,
                    base=base)  # fmt: skip


__all__ = [
    "DONE",
    "HEADERS",
    "chat_path",
    "conversation_fragment",
    "document",
    "inbox_page",
    "login_page",
    "message_page",
    "queue_fragment",
]
