"""The typed keys of the runner's aiohttp application, and the state they hold."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from clinicflow.database import Connection
from clinicflow.identity import Resolver, StaffIds
from clinicflow.inbox import Inbox
from clinicflow.outbox import Outbox, Sender
from clinicflow.pseudonyms import Pseudonyms
from clinicflow.runner.config import RunnerConfig
from clinicflow.runner.metrics import Metrics
from clinicflow.runner.processor import Processor
from clinicflow.spool import Spool
from clinicflow.waha import WahaClient
from clinicflow.workers import Turns


@dataclass
class Runtime:
    """What the running app holds between requests (built in ``cleanup_ctx``)."""

    conn: Connection
    inbox: Inbox
    outbox: Outbox
    sender: Sender
    processor: Processor
    metrics: Metrics
    staff: StaffIds
    resolver: Resolver
    alias: Pseudonyms
    spool: Spool | None = None  # webhooks acknowledged while the database was locked
    db_locked_since: float | None = None  # monotonic time a write first found it locked
    waha_status: str = "unknown"  # as last observed by the poller, a webhook or a send
    waha_polled: str = "unknown"  # as the poller last saw it
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    bad_ids_logged: set[str] = field(default_factory=set)


@dataclass
class Standing:
    """Whether one clinic of several started (:mod:`clinicflow.runner.clinics`): when its
    start failed (a broken catalog), ``down`` says why and its webhooks wait in ``spool``
    (replayed when it starts again) while the other clinics serve."""

    down: str | None = None
    spool: Spool | None = None

    @property
    def public(self) -> str:
        """What anyone may be told of a clinic that is down: the kind of failure, not its
        details (paths, the catalog's lines), which are in the log and in ``/clinics``."""
        kind = (self.down or "").split(":", 1)[0]
        return f"clínica fora do ar ({kind}); o motivo está no log do serviço e em /clinics"


CONFIG = web.AppKey("clinicflow_config", RunnerConfig)
ENGINE = web.AppKey("clinicflow_engine", Turns)  # an EnginePool, or a LocalEngine
WAHA = web.AppKey("clinicflow_waha", WahaClient)
RUNTIME = web.AppKey("clinicflow_runtime", Runtime)
#: The path the app is mounted under: "" alone, "/c/<clinic>" as one clinic of several
#: (:mod:`clinicflow.runner.clinics`). Every link, redirect and cookie path starts with it.
BASE = web.AppKey("clinicflow_base", str)
STANDING = web.AppKey("clinicflow_standing", Standing)

__all__ = ["BASE", "CONFIG", "ENGINE", "RUNTIME", "STANDING", "WAHA", "Runtime", "Standing"]
