"""The one exception tree of clinicflow.

Every error the library raises on purpose derives from :class:`ClinicflowError`, so a caller
can catch them all with one ``except``. Errors carry data, not only a message. The errors
defined beside the code that raises them are drawn here too::

    ClinicflowError                 root; ``exit_code`` tells the CLI how to exit
    ├── ScriptError                 a catalog file is broken (``problems``: file:line:col list)
    │   └── CatalogNotFound         the catalog folder or a file in it cannot be read at all
    ├── ConditionSyntaxError        a ``when`` condition does not parse (conditions.py; ``col``)
    ├── BadTimeText                 a duration or opening-hours text is wrong (durations.py)
    ├── HoursError                  no opening found in the hours and holidays (hours.py)
    ├── ClosureError                a closure or the holiday calendar is unusable (closures.py)
    ├── PatientNotFound             no data about a patient to export or erase (privacy.py)
    ├── ConfigError                 the runner's configuration is invalid (runner/config.py)
    ├── SimulationError             a ``clinicflow simulate`` test file is invalid
    ├── ConversationError           a turn cannot be processed (unknown chat, bad state)
    ├── StorageError                the SQLite history or the LanceDB index failed
    │   └── BackupError             a backup or restore cannot be made (backup.py)
    ├── LLMError                    a language-model call failed (never reaches the patient)
    └── ChannelError                the WhatsApp gateway (WAHA) refused or failed a call
        └── WebhookError            an inbound webhook is unacceptable (``status``: HTTP code)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinicflow.problems import Problem


class ClinicflowError(Exception):
    """Root of every clinicflow error."""

    exit_code: int = 1


class ScriptError(ClinicflowError):
    """A script or clinic file has errors; ``problems`` lists them with file:line:col."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems)


class CatalogNotFound(ScriptError):
    """A catalog path does not exist or cannot be read."""

    exit_code = 2


class SimulationError(ClinicflowError):
    """A conversation test file is invalid (carries file and line)."""

    exit_code = 2

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        super().__init__(f"{file}:{line}: {message}" if file else message)
        self.file = file
        self.line = line


class ConversationError(ClinicflowError):
    """A turn could not be processed for a reason the caller can act on."""


class StorageError(ClinicflowError):
    """The SQLite history or the LanceDB index could not be read or written."""


class DatabaseUnavailable(StorageError):
    """The database cannot be used right now (SQLite's write lock held by another process,
    PostgreSQL out of reach); nothing was written, and trying again later is the remedy."""


class LLMError(ClinicflowError):
    """A language-model call failed; the engine falls back to local understanding."""

    def __init__(self, message: str, outcome: str = "error") -> None:
        super().__init__(message)
        self.outcome = outcome


class ChannelError(ClinicflowError):
    """The WhatsApp gateway refused or failed a request."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class WebhookError(ChannelError):
    """An inbound webhook is unacceptable; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status, retryable=False)


__all__ = [
    "CatalogNotFound",
    "ChannelError",
    "ClinicflowError",
    "ConversationError",
    "DatabaseUnavailable",
    "LLMError",
    "ScriptError",
    "SimulationError",
    "StorageError",
    "WebhookError",
]
