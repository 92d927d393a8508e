"""clinicflow: an open conversation engine for clinics on WhatsApp.

The public API is short; everything else is internal. Heavy parts (LangGraph, LanceDB, the
embedder, google-genai) load only when an :class:`Engine` is built, never at import time.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from clinicflow.clock import Clock, ManualClock, SystemClock
from clinicflow.errors import (
    CatalogNotFound,
    ChannelError,
    ClinicflowError,
    ConversationError,
    LLMError,
    ScriptError,
    SimulationError,
    StorageError,
    WebhookError,
)
from clinicflow.loader import load_catalog
from clinicflow.model import Catalog, Clinic, Script

if TYPE_CHECKING:
    from clinicflow.engine import Engine, TurnResult

try:  # single-sourced: the version is the one in pyproject.toml, as installed
    __version__ = version("clinicflow")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Catalog",
    "CatalogNotFound",
    "ChannelError",
    "Clinic",
    "ClinicflowError",
    "Clock",
    "ConversationError",
    "Engine",
    "LLMError",
    "ManualClock",
    "Script",
    "ScriptError",
    "SimulationError",
    "StorageError",
    "SystemClock",
    "TurnResult",
    "WebhookError",
    "load_catalog",
]


def __getattr__(name: str) -> Any:
    # The engine pulls in LangGraph; import it only when asked for (keeps `clinicflow lint` fast).
    if name in ("Engine", "TurnResult"):
        from clinicflow import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'clinicflow' has no attribute {name!r}")
