"""Fakes of clinicflow's outside services, speaking their real wire protocols on 127.0.0.1.

Use them to test your own scripts with no network and no keys:

- :class:`FakeGemini` — the Gemini REST API the ``google-genai`` SDK talks to
  (see :mod:`clinicflow.testing.fake_gemini`);
- :class:`FakeWaha` — the WAHA WhatsApp gateway (see :mod:`clinicflow.testing.fake_waha`).

Imports are lazy: ``import clinicflow.testing`` costs nothing until a fake is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinicflow.testing.fake_gemini import FakeGemini, GeminiRequest
    from clinicflow.testing.fake_waha import FakeWaha

_EXPORTS = {
    "FakeGemini": "clinicflow.testing.fake_gemini",
    "GeminiRequest": "clinicflow.testing.fake_gemini",
    "FakeWaha": "clinicflow.testing.fake_waha",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["FakeGemini", "FakeWaha", "GeminiRequest"]
