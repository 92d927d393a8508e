"""Counters, one histogram and structured log lines for the runner.

``/metrics`` renders :class:`Metrics` in the Prometheus text format (0.0.4) by hand: the
runner needs a dozen series, not a client library. :func:`log_event` writes one
``key=value`` line per event; message bodies never go to INFO, chat ids only as pseudonyms
(callers pass ``Pseudonyms(chat_id)``), and every value is escaped (no control or bidi
characters reach the log raw, long values are cut).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from clinicflow.pseudonyms import printable

logger = logging.getLogger("clinicflow.runner")

TURN_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)

_HELP = {
    "clinicflow_messages_in_total": "Inbound patient messages stored (after dedupe).",
    "clinicflow_messages_out_total": "Messages WAHA accepted (sendText 2xx), by kind.",
    "clinicflow_duplicates_dropped_total": "Inbound webhooks dropped as duplicates.",
    "clinicflow_webhooks_total": "Webhooks received, by outcome.",
    "clinicflow_turns_total": "Engine turns run.",
    "clinicflow_llm_calls_total": "Language-model calls made by turns.",
    "clinicflow_handoffs_total": "Hand-offs to the staff, by reason.",
    "clinicflow_send_failures_total": "Failed send attempts, by kind (retry or failed).",
    "clinicflow_takeovers_total": "Chats taken over from the clinic phone.",
}


def log_event(event: str, level: int = logging.INFO, /, **fields: object) -> None:
    """One structured line: ``event=<name> key=value ...`` (values quoted when needed)."""
    if not logger.isEnabledFor(level):
        return
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = printable(value, 300)
        if not text or any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    logger.log(level, " ".join(parts))


class Metrics:
    """Process-wide counters and the turn latency histogram.

    Args:
        gauges: callables read at scrape time, by metric name (outbox depth, ...).
    """

    def __init__(self, gauges: dict[str, Callable[[], float]] | None = None) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.gauges = dict(gauges or {})
        self._buckets = [0] * len(TURN_BUCKETS_MS)
        self._turn_count = 0
        self._turn_sum = 0.0

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter (``name`` without the ``clinicflow_`` prefix and ``_total``)."""
        key = tuple(sorted(labels.items()))
        self.counters[f"clinicflow_{name}_total"][key] += amount

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (tests, bench)."""
        series = self.counters.get(f"clinicflow_{name}_total", {})
        if labels:
            return series.get(tuple(sorted(labels.items())), 0.0)
        return sum(series.values())

    def observe_turn(self, ms: float) -> None:
        """Record one turn's latency in milliseconds."""
        self._turn_count += 1
        self._turn_sum += ms
        for i, bound in enumerate(TURN_BUCKETS_MS):
            if ms <= bound:
                self._buckets[i] += 1

    def render(self) -> str:
        """The Prometheus text exposition."""
        lines: list[str] = []
        for name in sorted(set(_HELP) | set(self.counters)):
            lines.append(f"# HELP {name} {_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            series = self.counters.get(name) or {(): 0.0}
            for labels, value in sorted(series.items()):
                lines.append(f"{name}{_labels(labels)} {_num(value)}")
        name = "clinicflow_turn_latency_ms"
        lines.append(f"# HELP {name} Engine turn latency in milliseconds.")
        lines.append(f"# TYPE {name} histogram")
        for bound, count in zip(TURN_BUCKETS_MS, self._buckets, strict=True):
            lines.append(f'{name}_bucket{{le="{_num(bound)}"}} {count}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self._turn_count}')
        lines.append(f"{name}_sum {_num(self._turn_sum)}")
        lines.append(f"{name}_count {self._turn_count}")
        for gauge, read in sorted(self.gauges.items()):
            lines.append(f"# TYPE {gauge} gauge")
            try:
                lines.append(f"{gauge} {_num(read())}")
            except Exception:  # a failing gauge must not break the scrape
                lines.append(f"{gauge} NaN")
        return "\n".join(lines) + "\n"


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    items = [f'{k}="{_escape(v)}"' for k, v in labels]
    return "{" + ",".join(items) + "}" if items else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


__all__ = ["TURN_BUCKETS_MS", "Metrics", "log_event"]
