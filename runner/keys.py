"""The typed keys of the runner's aiohttp application, and the state they hold."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field

from aiohttp import web

from clinicflow.engine import Engine
from clinicflow.inbox import Inbox
from clinicflow.outbox import Outbox, Sender
from clinicflow.waha import WahaClient
from runner.config import RunnerConfig
from runner.metrics import Metrics
from runner.processor import Processor


@dataclass
class Runtime:
    """What the running app holds between requests (built in ``cleanup_ctx``)."""

    conn: sqlite3.Connection
    inbox: Inbox
    outbox: Outbox
    sender: Sender
    processor: Processor
    metrics: Metrics
    staff_chats: frozenset[str]
    waha_status: str = "unknown"
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


CONFIG = web.AppKey("clinicflow_config", RunnerConfig)
ENGINE = web.AppKey("clinicflow_engine", Engine)
WAHA = web.AppKey("clinicflow_waha", WahaClient)
RUNTIME = web.AppKey("clinicflow_runtime", Runtime)

__all__ = ["CONFIG", "ENGINE", "RUNTIME", "WAHA", "Runtime"]
