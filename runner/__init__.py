"""The clinicflow runner: a thin aiohttp app between WAHA (WhatsApp) and the engine.

``python -m runner`` or ``clinicflow serve`` starts it; see ``docs/runner.md``.
"""

from __future__ import annotations

from runner.app import create_app, run
from runner.config import ENV_VARS, ConfigError, RunnerConfig

__all__ = ["ENV_VARS", "ConfigError", "RunnerConfig", "create_app", "run"]
