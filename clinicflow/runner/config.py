"""The runner's configuration: environment variables over an optional TOML/YAML file.

Every setting has one name, used both in the environment and in the file (where lowercase
works too)::

    WAHA_URL                      WAHA's base URL (default http://localhost:3000)
    WAHA_API_KEY                  sent to WAHA as X-Api-Key (a hashed "sha512:..." value is
                                  refused: that is WAHA's side of the key)
    WAHA_API_KEY_PLAIN            the plain key, preferred over WAHA_API_KEY when set (WAHA's
                                  own name for it in a shared .env, where WAHA_API_KEY may
                                  then hold the hashed form)
    WAHA_SESSION                  WAHA session name (default "default")
    WAHA_HMAC_KEY                 when set, webhooks must carry a valid X-Webhook-Hmac; unset,
                                  the runner refuses a non-loopback address unless insecure
    CLINICFLOW_INSECURE           1: accept unsigned webhooks on a non-loopback address
                                  (warned about loudly); same as --insecure
    CLINICFLOW_LOG_KEY            key of the chat-id pseudonyms in logs (default: generated
                                  once and kept in the data directory)
    CLINICFLOW_STAFF_TOKEN        administrator bearer token of the staff API and the
                                  dashboard (header only, never in a URL)
    CLINICFLOW_DATA               data directory (default .clinicflow)
    CLINICFLOW_DATABASE_URL       postgresql://… puts every table in PostgreSQL (default:
                                  SQLite in the data directory); same as --database-url
    CLINICFLOW_CATALOG            catalog folder (default: the bundled one)
    CLINICFLOW_CLINICS            a clinics file: several clinics in one runner, each with its
                                  own WAHA session, catalog and data (clinicflow.clinics);
                                  CLINICFLOW_CATALOG and WAHA_SESSION are then unused
    CLINICFLOW_HOST / _PORT       where to listen (default 127.0.0.1:8080)
    CLINICFLOW_TYPING_DELAY_MAX   cap of the typing pause, seconds (default 3; 0 disables)
    CLINICFLOW_BURST_QUIET        quiet seconds before a burst becomes one turn (default 2; 0 off)
    CLINICFLOW_HUMAN_IDLE         seconds before a `human` chat returns to the bot (default
                                  14400; 0 never)
    CLINICFLOW_URGENT_RENOTIFY    seconds before an urgent hand-off nobody acted on is noticed
                                  again to the whole staff (default 300)
    CLINICFLOW_SEND_RETRY_BASE    first retry delay of the outbox, seconds (default 1)
    CLINICFLOW_SEND_RETRY_MAX     longest retry delay, seconds (default 60)
    CLINICFLOW_STATUS_POLL        how often to ask WAHA for the session status (default 30)
    CLINICFLOW_WORKERS            engine worker processes (default: one per core but one,
                                  1 to 4; 0 runs the engine in the runner's own process)
    CLINICFLOW_STUCK_AFTER        seconds a turn may run before /health calls its worker
                                  stuck (default 60)
    CLINICFLOW_MAX_BODY           largest webhook body accepted, bytes (default 262144)
    CLINICFLOW_CONFIG             the config file, when not given on the command line
    CLINICFLOW_LOG_FORMAT         text (key=value lines, default) or json
    CLINICFLOW_WEBHOOK_URL        the runner's webhook URL as WAHA reaches it (waha setup)
    GEMINI_API_KEY, CLINICFLOW_GEMINI_MODEL, CLINICFLOW_GEMINI_BASE_URL,
    CLINICFLOW_GEMINI_TIMEOUT     Gemini (see clinicflow.llm.LLMConfig)
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clinicflow.errors import ClinicflowError
from clinicflow.llm import LLMConfig
from clinicflow.webhooks import MAX_WEBHOOK_BYTES

ENV_VARS: dict[str, str] = {
    "WAHA_URL": "WAHA's base URL (default http://localhost:3000)",
    "WAHA_API_KEY": "WAHA API key, sent as X-Api-Key (sha512:... refused unless _PLAIN is set)",
    "WAHA_API_KEY_PLAIN": "the plain WAHA API key; preferred over WAHA_API_KEY when set",
    "WAHA_SESSION": "WAHA session name (default: default)",
    "WAHA_HMAC_KEY": "HMAC key WAHA signs webhooks with (X-Webhook-Hmac required when set)",
    "CLINICFLOW_INSECURE": "1: serve unsigned webhooks on a non-loopback address (--insecure)",
    "CLINICFLOW_LOG_KEY": "key of the chat-id pseudonyms in logs (default: kept in the data dir)",
    "CLINICFLOW_STAFF_TOKEN": "administrator bearer token of the staff API (header only)",
    "CLINICFLOW_DATA": "data directory: SQLite history, inbox/outbox, index (.clinicflow)",
    "CLINICFLOW_DATABASE_URL": "postgresql://… keeps every table in PostgreSQL (default: "
    "SQLite in the data dir)",
    "CLINICFLOW_CATALOG": "catalog folder (default: the bundled catalog)",
    "CLINICFLOW_CLINICS": "a clinics file (YAML): several clinics in one runner, each its own "
    "WAHA session, catalog and data (same as --clinics)",
    "CLINICFLOW_HOST": "listen address (default 127.0.0.1)",
    "CLINICFLOW_PORT": "listen port (default 8080)",
    "CLINICFLOW_TYPING_DELAY_MAX": "cap of the typing pause in seconds (default 3, 0 disables)",
    "CLINICFLOW_BURST_QUIET": "quiet seconds before a burst is one turn (default 2, 0 disables)",
    "CLINICFLOW_HUMAN_IDLE": "seconds before a chat in `human` returns to the bot (14400, 0 never)",
    "CLINICFLOW_URGENT_RENOTIFY": "seconds before an unclaimed urgent hand-off is noticed "
    "again to everyone (default 300)",
    "CLINICFLOW_SEND_RETRY_BASE": "first outbox retry delay in seconds (default 1)",
    "CLINICFLOW_SEND_RETRY_MAX": "longest outbox retry delay in seconds (default 60)",
    "CLINICFLOW_STATUS_POLL": "seconds between WAHA session status polls (default 30)",
    "CLINICFLOW_MAX_BODY": f"largest webhook body in bytes (default {MAX_WEBHOOK_BYTES})",
    "CLINICFLOW_WORKERS": "engine worker processes (default: cores - 1, 1 to 4; 0: in-process)",
    "CLINICFLOW_STUCK_AFTER": "seconds a turn may run before /health reports it stuck (60)",
    "CLINICFLOW_CONFIG": "a TOML or YAML file with any of these names",
    "GEMINI_API_KEY": "Gemini API key (unset: local understanding only)",
    "CLINICFLOW_GEMINI_MODEL": "Gemini model (default gemini-2.5-flash)",
    "CLINICFLOW_GEMINI_BASE_URL": "Gemini endpoint override",
    "CLINICFLOW_GEMINI_TIMEOUT": "Gemini timeout per attempt, seconds",
    "CLINICFLOW_LOG_FORMAT": "log lines: text (key=value, default) or json",
    "CLINICFLOW_WEBHOOK_URL": "webhook URL WAHA posts to (default http://HOST:PORT/webhooks/waha)",
}


class ConfigError(ClinicflowError):
    """The runner configuration is invalid (bad number, unreadable file)."""

    exit_code = 2


@dataclass(frozen=True)
class RunnerConfig:
    """Everything the runner needs; build it with :meth:`from_env`."""

    waha_url: str = "http://localhost:3000"
    waha_api_key: str | None = None
    waha_session: str = "default"
    waha_hmac_key: str | None = None
    staff_token: str | None = None
    data_dir: Path = Path(".clinicflow")
    catalog: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    typing_delay_max: float = 3.0
    burst_quiet: float = 2.0
    human_idle: float = 14400.0
    urgent_renotify: float = 300.0
    send_retry_base: float = 1.0
    send_retry_max: float = 60.0
    status_poll: float = 30.0
    max_body: int = MAX_WEBHOOK_BYTES
    llm: LLMConfig = field(default_factory=lambda: LLMConfig(api_key=None))
    insecure: bool = False
    log_key: str | None = None
    log_format: str = "text"
    webhook_url: str | None = None
    workers: int | None = None  # None: default_workers(); 0: the engine in this process
    stuck_after: float = 60.0
    database_url: str | None = None  # None: SQLite in data_dir (clinicflow.database)
    clinics: Path | None = None  # a clinics file (clinicflow.clinics); None: one clinic

    @property
    def loopback(self) -> bool:
        """True when the runner listens on this machine only (127.0.0.1, ::1, localhost)."""
        host = self.host.strip().strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def check_exposure(self) -> str | None:
        """Refuse to serve unsigned webhooks to the network, unless told to.

        Returns:
            A warning to print loudly when webhooks are unsigned on a non-loopback address
            and ``insecure`` allows it; None when all is well.

        Raises:
            ConfigError: ``WAHA_HMAC_KEY`` unset, a non-loopback address, not ``insecure``.
        """
        if self.waha_hmac_key or self.loopback:
            return None
        if not self.insecure:
            raise ConfigError(
                f"WAHA_HMAC_KEY is not set and the runner would listen on {self.host}: anyone "
                "who reaches that address could post fake patient messages. Set WAHA_HMAC_KEY "
                "(the same value as WAHA's WHATSAPP_HOOK_HMAC_KEY), listen on 127.0.0.1, or "
                "accept the risk with --insecure (CLINICFLOW_INSECURE=1)."
            )
        return (
            f"INSECURE: webhooks are not signed (WAHA_HMAC_KEY unset) and the runner listens "
            f"on {self.host}; anyone who reaches it can post messages as any patient."
        )

    @property
    def public_webhook_url(self) -> str:
        """Where WAHA should post webhooks (``CLINICFLOW_WEBHOOK_URL`` or host and port)."""
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.webhook_url or f"http://{host}:{self.port}/webhooks/waha"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
    ) -> RunnerConfig:
        """Read the configuration: the file first, environment variables over it.

        Args:
            environ: the environment (default ``os.environ``).
            config_file: a ``.toml`` or ``.yaml``/``.yml`` file; default ``CLINICFLOW_CONFIG``.

        Raises:
            ConfigError: a number does not parse or the file cannot be read.
        """
        env = dict(os.environ if environ is None else environ)
        path = config_file or env.get("CLINICFLOW_CONFIG")
        merged: dict[str, str] = _read_file(Path(path)) if path else {}
        merged.update({k: v for k, v in env.items() if k in ENV_VARS and v != ""})

        def text(name: str) -> str | None:
            value = merged.get(name, "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, not {raw!r}") from None
            if value < 0:
                raise ConfigError(f"{name} must not be negative, not {raw!r}")
            return value

        def flag(name: str) -> bool:
            raw = (text(name) or "0").lower()
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name} must be 1 or 0, not {raw!r}")

        catalog = text("CLINICFLOW_CATALOG")
        log_format = (text("CLINICFLOW_LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"CLINICFLOW_LOG_FORMAT must be text or json, not {log_format!r}")
        try:
            llm = LLMConfig.from_env(merged)
        except ClinicflowError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            waha_url=text("WAHA_URL") or cls.waha_url,
            waha_api_key=_api_key(text("WAHA_API_KEY_PLAIN"), text("WAHA_API_KEY")),
            waha_session=text("WAHA_SESSION") or cls.waha_session,
            waha_hmac_key=text("WAHA_HMAC_KEY"),
            staff_token=text("CLINICFLOW_STAFF_TOKEN"),
            data_dir=Path(text("CLINICFLOW_DATA") or cls.data_dir),
            database_url=text("CLINICFLOW_DATABASE_URL"),
            catalog=Path(catalog) if catalog else None,
            clinics=Path(clinics) if (clinics := text("CLINICFLOW_CLINICS")) else None,
            host=text("CLINICFLOW_HOST") or cls.host,
            port=int(number("CLINICFLOW_PORT", cls.port)),
            typing_delay_max=number("CLINICFLOW_TYPING_DELAY_MAX", cls.typing_delay_max),
            burst_quiet=number("CLINICFLOW_BURST_QUIET", cls.burst_quiet),
            human_idle=number("CLINICFLOW_HUMAN_IDLE", cls.human_idle),
            urgent_renotify=number("CLINICFLOW_URGENT_RENOTIFY", cls.urgent_renotify)
            or cls.urgent_renotify,
            send_retry_base=number("CLINICFLOW_SEND_RETRY_BASE", cls.send_retry_base),
            send_retry_max=number("CLINICFLOW_SEND_RETRY_MAX", cls.send_retry_max),
            status_poll=number("CLINICFLOW_STATUS_POLL", cls.status_poll) or cls.status_poll,
            max_body=int(number("CLINICFLOW_MAX_BODY", cls.max_body)) or cls.max_body,
            llm=llm,
            insecure=flag("CLINICFLOW_INSECURE"),
            log_key=text("CLINICFLOW_LOG_KEY"),
            log_format=log_format,
            webhook_url=text("CLINICFLOW_WEBHOOK_URL"),
            workers=int(number("CLINICFLOW_WORKERS", -1)) if text("CLINICFLOW_WORKERS") else None,
            stuck_after=number("CLINICFLOW_STUCK_AFTER", cls.stuck_after) or cls.stuck_after,
        )


def _api_key(plain: str | None, key: str | None) -> str | None:
    """The key to send to WAHA: the plain one; a hashed ``sha512:`` value is WAHA's side."""
    for name, value in (("WAHA_API_KEY_PLAIN", plain), ("WAHA_API_KEY", key)):
        if value is None:
            continue
        if value.lower().startswith("sha512:"):
            raise ConfigError(
                f"{name} holds a hashed key (sha512:...), which WAHA accepts for itself but "
                "a client cannot send (every reply would fail with 401). Put the plain key in "
                "WAHA_API_KEY_PLAIN."
            )
        return value
    return None


def _read_file(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    try:
        data: Any = (
            tomllib.loads(raw.decode()) if path.suffix == ".toml" else yaml.safe_load(raw) or {}
        )
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    out: dict[str, str] = {}
    for key, value in data.items():
        name = str(key).upper()
        if name not in ENV_VARS:
            allowed = ", ".join(sorted(ENV_VARS))
            raise ConfigError(f"{path}: unknown setting {key!r}; allowed: {allowed}")
        out[name] = "" if value is None else str(value)
    return out


__all__ = ["ENV_VARS", "ConfigError", "RunnerConfig"]
