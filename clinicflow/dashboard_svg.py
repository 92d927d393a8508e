"""Number formats (pt-BR), inline SVG charts and the stylesheet of :mod:`clinicflow.dashboard`.

Every number written here goes through :func:`metric`, which wraps it in an element carrying
``data-metric`` (its key in ``clinicflow report --json``, dotted, list items by index) and
``data-value`` (the raw JSON value), so a test can compare the page with the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from html import escape
from typing import Any

PURPLE = "#7b3fa0"
PURPLE_LIGHT = "#e9dcf2"
GREY = "#6b6b76"

CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
 color:#23212b;background:#f6f3f9}
header{background:#7b3fa0;color:#fff;padding:14px 16px}
header h1{margin:0;font-size:1.15rem}header p{margin:2px 0 0;opacity:.85;font-size:.85rem}
main{max-width:1100px;margin:0 auto;padding:12px}
.cards{display:grid;grid-template-columns:repeat(2,1fr);gap:10px;margin-bottom:12px}
.card{background:#fff;border-radius:10px;padding:10px 12px;box-shadow:0 1px 2px #0001}
.card h3{margin:0;font-size:.75rem;font-weight:600;color:#6b6b76;text-transform:uppercase}
.card .big{font-size:1.5rem;font-weight:700;color:#4b2063}
.card .sub{font-size:.8rem;color:#6b6b76}
section{background:#fff;border-radius:10px;padding:12px;margin-bottom:12px;
 box-shadow:0 1px 2px #0001}
section h2{margin:0 0 8px;font-size:1rem}
.grid{display:grid;grid-template-columns:1fr;gap:12px}
svg.chart{width:100%;height:auto;font-size:11px;fill:#23212b}
svg .lbl{font-weight:600}svg .on-bar{fill:#fff;font-weight:700}svg .axis{fill:#6b6b76;font-size:9px}
table{width:100%;border-collapse:collapse;font-size:.85rem}
th,td{padding:6px 4px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}
.queue{list-style:none;margin:0;padding:0}
.queue li{display:flex;justify-content:space-between;gap:8px;padding:8px 0;
 border-bottom:1px solid #eee}
.queue .who{font-weight:600}.queue .meta{font-size:.8rem;color:#6b6b76}
.queue .age{white-space:nowrap}
.badge{display:inline-block;border-radius:999px;padding:1px 8px;font-size:.72rem;
 font-weight:700;background:#e9dcf2;color:#4b2063}
.badge.urgent{background:#c0392b;color:#fff}
.note{font-size:.78rem;color:#6b6b76;margin:6px 0 0}
form{display:flex;flex-wrap:wrap;gap:8px;align-items:end;font-size:.8rem}
form label{display:flex;flex-direction:column}
form input,form select,form button{font:inherit;padding:5px;border:1px solid #ccc;
 border-radius:6px;background:#fff}
form button{background:#7b3fa0;color:#fff;border:0;padding:6px 14px}
@media(max-width:600px){table.stack tr:first-child{display:none}
 table.stack tr{display:block;border-bottom:1px solid #ddd;padding:6px 0}
 table.stack td{display:flex;justify-content:space-between;border:0;padding:2px 0}
 table.stack td:first-child{display:block;font-weight:700}
 table.stack td::before{content:attr(data-label);color:#6b6b76;font-weight:400}}
@media(min-width:720px){.cards{grid-template-columns:repeat(4,1fr)}
 .grid{grid-template-columns:1fr 1fr}}
"""


def fmt_int(value: float | None) -> str:
    """``1.234`` (None: ``—``)."""
    return "—" if value is None else f"{round(value):,}".replace(",", ".")


def fmt_dec(value: float | None, places: int = 2) -> str:
    """``12,50`` with thousands dots (None: ``—``)."""
    if value is None:
        return "—"
    text = f"{value:,.{places}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def fmt_pct(value: float | None) -> str:
    """A share as ``44,2%`` (None: ``—``)."""
    return "—" if value is None else fmt_dec(value * 100, 1) + "%"


def fmt_money(value: float | None) -> str:
    """``R$ 1.036,29`` (None: ``—``)."""
    return "—" if value is None else "R$ " + fmt_dec(value, 2)


def fmt_duration(seconds: float | None) -> str:
    """``45 s``, ``31,1 min``, ``2,5 h`` or, from two days on, ``3,2 dias`` (None: ``—``)."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{fmt_dec(seconds, 0)} s"
    if seconds < 3600:
        return f"{fmt_dec(seconds / 60, 1)} min"
    if seconds < 2 * 86400:
        return f"{fmt_dec(seconds / 3600, 1)} h"
    return f"{fmt_dec(seconds / 86400, 1)} dias"


FORMATS = {
    "int": fmt_int,
    "dec": fmt_dec,
    "pct": fmt_pct,
    "money": fmt_money,
    "duration": fmt_duration,
}


def metric(key: str, value: Any, kind: str = "int", *, tag: str = "span", cls: str = "") -> str:
    """``value`` formatted as ``kind``, inside ``<tag data-metric=key data-value=raw>``."""
    text = FORMATS[kind](value)
    attrs = f' class="{cls}"' if cls else ""
    raw = escape(json.dumps(value), quote=True)
    return (
        f'<{tag}{attrs} data-metric="{escape(key, quote=True)}" data-kind="{kind}" '
        f'data-value="{raw}">{escape(text)}</{tag}>'
    )


def _text(x: float, y: float, body: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{body}</text>'


def funnel_chart(steps: Sequence[Any]) -> str:
    """Horizontal bars, one per funnel step, with count and conversion from the step above."""
    width, row = 360, 46
    top = steps[0].count if steps else 0
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {row * len(steps) + 4}" role="img" '
        'aria-label="Funil das conversas">'
    ]
    for index, step in enumerate(steps):
        y = index * row
        share = step.count / top if top else 0.0
        bar = max(2.0, (width - 4) * share)
        x = (width - bar) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 18}" width="{bar:.1f}" height="22" rx="4" '
            f'fill="{PURPLE}" fill-opacity="{1 - index * 0.14:.2f}"/>'
        )
        parts.append(_text(2, y + 13, escape(step.label), cls="lbl"))
        count = metric(f"funnel.{step.key}.count", step.count, tag="tspan")
        parts.append(_text(width / 2, y + 34, count, anchor="middle", cls="on-bar"))
        if step.conversion is not None:
            conv = metric(f"funnel.{step.key}.conversion", step.conversion, "pct", tag="tspan")
            parts.append(_text(width - 2, y + 13, f"{conv} da etapa anterior", anchor="end"))
    parts.append("</svg>")
    return "".join(parts)


def per_day_chart(per_day: Sequence[tuple[str, int]]) -> str:
    """Vertical bars of conversations per day; each bar carries its day's count."""
    width, height, bottom = 360, 150, 20
    peak = max((count for _, count in per_day), default=0)
    slot = (width - 24) / max(1, len(per_day))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Conversas por dia">',
        f'<line x1="22" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        f'stroke="{GREY}" stroke-width="0.5"/>',
    ]
    if peak:
        parts.append(_text(18, 14, fmt_int(peak), anchor="end", cls="axis"))
    for index, (day, count) in enumerate(per_day):
        usable = height - bottom - 20
        bar = usable * count / peak if peak else 0.0
        x = 24 + index * slot
        label = date.fromisoformat(day).strftime("%d/%m")
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{height - bottom - bar:.1f}" '
            f'width="{max(1.0, slot * 0.7):.1f}" height="{bar:.1f}" fill="{PURPLE}" '
            f'data-metric="per_day.{day}" data-kind="int" data-value="{count}">'
            f"<title>{label}: {count} conversa(s)</title></rect>"
        )
        last = index == len(per_day) - 1
        if index == 0 or last or (len(per_day) > 8 and index % 7 == 0 and index < len(per_day) - 4):
            anchor = "end" if last else "start" if index == 0 else "middle"
            at = x + slot if last else x if index == 0 else x + slot / 2
            parts.append(_text(at, height - 5, label, anchor=anchor, cls="axis"))
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(rows: Sequence[tuple[str, str, float]], *, aria: str) -> str:
    """Labelled horizontal bars: ``(label, metric key, value)``; the value sits at the end."""
    width, row = 360, 34
    peak = max((value for _, _, value in rows), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {row * len(rows) + 2}" role="img" '
        f'aria-label="{escape(aria, quote=True)}">'
    ]
    for index, (label, key, value) in enumerate(rows):
        y = index * row
        bar = max(2.0, (width - 40) * value / peak)
        short = label if len(label) <= 46 else label[:45] + "…"
        parts.append(_text(0, y + 11, escape(short), cls="lbl"))
        parts.append(
            f'<rect x="0" y="{y + 15}" width="{bar:.1f}" height="14" rx="3" fill="{PURPLE}"/>'
        )
        parts.append(_text(bar + 5, y + 27, metric(key, value, tag="tspan")))
    parts.append("</svg>")
    return "".join(parts)
