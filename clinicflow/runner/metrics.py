"""Prometheus metrics and structured log lines for the runner.

:class:`Metrics` keeps the runner's series in its own ``prometheus_client`` registry (one per
app, nothing global), with the process and platform collectors, and renders the text
exposition for ``/metrics``. Names follow Prometheus conventions: ``clinicflow_`` prefix,
``_total`` for counters, base units (``_seconds``). :func:`log_event` writes one
``key=value`` line per event (``CLINICFLOW_LOG_FORMAT=json`` turns the same fields into JSON,
see :mod:`clinicflow.runner.logs`); message bodies never go to INFO, chat ids only as pseudonyms
(callers pass ``Pseudonyms(chat_id)``), and every value is escaped (no control or bidi
characters reach the log raw, long values are cut) before either format sees it.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from clinicflow.pseudonyms import hide_numbers, printable

logger = logging.getLogger("clinicflow.runner")

#: Upper bounds of the turn-duration histogram, in seconds.
TURN_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Counters by short name (``inc("webhooks", outcome=...)``): help text and label names.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "messages_in": ("Inbound patient messages stored (after dedupe).", ()),
    "messages_out": ("Messages WAHA accepted (sendText 2xx).", ()),
    "duplicates_dropped": ("Inbound webhooks dropped as duplicates.", ()),
    "webhooks": ("Webhooks received, by outcome.", ("outcome",)),
    "turns": ("Engine turns run.", ()),
    "llm_calls": ("Language-model calls made by turns and transcriptions.", ()),
    "handoffs": ("Hand-offs to the staff, by reason.", ("reason",)),
    "send_failures": ("Failed send attempts, by outcome (retry or failed).", ("outcome",)),
    "takeovers": ("Chats taken over from the clinic phone.", ()),
    "reloads": ("Catalog reloads, by outcome (ok or refused).", ("outcome",)),
    "texts_redacted": ("Message texts redacted by the retention job (LGPD).", ()),
}

#: Gauges read at scrape time (``metrics.gauges[name] = callable``), with their help.
GAUGES: dict[str, str] = {
    "clinicflow_outbox_depth": "Messages waiting in the outbox.",
    "clinicflow_inbox_pending": "Inbound messages stored and not yet processed.",
    "clinicflow_last_webhook_timestamp_seconds": "Unix time of the last webhook received.",
    "clinicflow_catalog_loaded_timestamp_seconds": "Unix time the catalog was last loaded.",
}


#: The clinic whose work is running (one runner of several clinics): every line logged in its
#: tasks says ``clinic=<id>``. Set by the clinic's start and by its webhooks; the tasks they
#: create inherit it (contextvars).
CLINIC: contextvars.ContextVar[str | None] = contextvars.ContextVar("clinic", default=None)


def log_event(event: str, level: int = logging.INFO, /, **fields: object) -> None:
    """One structured line: ``event=<name> key=value ...`` (values quoted when needed), with
    ``clinic=<id>`` first when the line comes from one clinic of several (:data:`CLINIC`).

    Text values are :func:`~clinicflow.pseudonyms.printable` and carry no number of eight
    digits or more (:func:`~clinicflow.pseudonyms.hide_numbers`); numbers stay numbers.
    """
    if not logger.isEnabledFor(level):
        return
    clinic = CLINIC.get()
    if clinic is not None and "clinic" not in fields:
        fields = {"clinic": clinic, **fields}
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = printable(value, 300)
        if not isinstance(value, int | float):  # bool is an int: True/False stay as they are
            text = hide_numbers(text)  # no phone number in a log line, whatever the value
        if not text or any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    logger.log(level, " ".join(parts))


class Metrics:
    """The runner's counters, turn-duration histogram and scrape-time gauges.

    Args:
        gauges: callables read at scrape time, by metric name (outbox depth, ...).
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, gauges: dict[str, Callable[[], float]] | None = None) -> None:
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.gauges = dict(gauges or {})
        self.registry.register(_Gauges(self.gauges))
        self._counters: dict[str, Counter] = {}
        for name in COUNTERS:
            self._counter(name, ())
        self.turn_seconds = Histogram(
            "clinicflow_turn_duration_seconds",
            "Engine turn duration in seconds.",
            buckets=TURN_BUCKETS_S,
            registry=self.registry,
        )

    def _counter(self, name: str, labels: tuple[str, ...]) -> Counter:
        counter = self._counters.get(name)
        if counter is None:
            text, declared = COUNTERS.get(name, (f"{name.replace('_', ' ')}.", labels))
            counter = Counter(f"clinicflow_{name}", text, declared, registry=self.registry)
            self._counters[name] = counter
        return counter

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter (``name`` without the ``clinicflow_`` prefix and ``_total``).

        A name not in :data:`COUNTERS` gets a counter of its own on first use.
        """
        counter = self._counter(name, tuple(sorted(labels)))
        (counter.labels(**labels) if labels else counter).inc(amount)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value, summed over the labels not given (tests, bench)."""
        total = 0.0
        for metric in self.registry.collect():
            if metric.name != f"clinicflow_{name}":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total") and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def observe_turn(self, ms: float) -> None:
        """Record one turn's duration, given in milliseconds (the engine's unit)."""
        self.turn_seconds.observe(ms / 1000.0)

    def render(self) -> str:
        """The Prometheus text exposition."""
        return generate_latest(self.registry).decode("utf-8")


class _Gauges(Collector):
    """The scrape-time gauges; a failing one reads NaN instead of breaking the scrape."""

    def __init__(self, gauges: dict[str, Callable[[], float]]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, read in sorted(self.gauges.items()):
            try:
                value = float(read())
            except Exception:
                value = float("nan")
            yield GaugeMetricFamily(name, GAUGES.get(name, name), value=value)


__all__ = ["COUNTERS", "GAUGES", "TURN_BUCKETS_S", "Metrics", "log_event"]
