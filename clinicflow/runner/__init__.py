"""The clinicflow runner: a thin aiohttp app between WAHA (WhatsApp) and the engine.

``python -m clinicflow.runner`` or ``clinicflow serve`` starts it; see ``docs/runner.md``. Names are
imported on first use, so ``clinicflow.runner.config`` stays cheap for ``clinicflow --help``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENV_VARS", "ConfigError", "RunnerConfig", "create_app", "run"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run"):
        from clinicflow.runner import app

        return getattr(app, name)
    if name in ("ENV_VARS", "ConfigError", "RunnerConfig"):
        from clinicflow.runner import config

        return getattr(config, name)
    raise AttributeError(name)
