"""clinicflow: an open conversation engine for clinics on WhatsApp."""

from __future__ import annotations

from clinicflow.errors import ClinicflowError, ScriptError

__all__ = ["ClinicflowError", "ScriptError"]
