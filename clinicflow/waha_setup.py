"""Registering the runner's webhook in WAHA, and reading back how the session is doing.

``clinicflow waha setup`` writes one entry in the session's ``config.webhooks`` (``PUT
/api/sessions/{session}``): the runner's URL, the events it needs, the HMAC key it checks and a
retry policy. Other webhooks and settings of the session are kept. ``--check`` only compares.

The same values can be given to WAHA once for all sessions through its environment
(:func:`waha_environment`, used by ``compose.yaml``); do one or the other, not both, or every
event is posted twice (the runner drops the copy, but it is wasted work).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clinicflow.waha import WahaClient

__all__ = [
    "EVENTS",
    "Retries",
    "SessionReport",
    "WebhookSpec",
    "check_webhook",
    "register_webhook",
    "session_report",
    "waha_environment",
]

#: What the runner needs: messages, the clinic phone's own messages (take-over), status; then
#: edits, deletions, reactions and calls (most engines also send those inside ``message``, but
#: WEBJS shows an edit only as ``message.edited``; see docs/runner.md).
EVENTS: tuple[str, ...] = (
    "message",
    "message.any",
    "session.status",
    "message.edited",
    "message.revoked",
    "message.reaction",
    "call.received",
)


@dataclass(frozen=True)
class Retries:
    """WAHA's retry policy for a webhook (exponential: 2, 4, 8... seconds)."""

    policy: str = "exponential"
    delay_seconds: int = 2
    attempts: int = 10

    def as_waha(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "delaySeconds": self.delay_seconds,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class WebhookSpec:
    """The webhook the runner wants in WAHA."""

    url: str
    hmac_key: str | None = None
    events: tuple[str, ...] = EVENTS
    retries: Retries = field(default_factory=Retries)

    def as_waha(self) -> dict[str, Any]:
        """The ``WebhookConfig`` object of WAHA's API."""
        hook: dict[str, Any] = {
            "url": self.url,
            "events": list(self.events),
            "retries": self.retries.as_waha(),
        }
        if self.hmac_key:
            hook["hmac"] = {"key": self.hmac_key}
        return hook


def waha_environment(spec: WebhookSpec) -> dict[str, str]:
    """The same webhook as WAHA's global ``WHATSAPP_HOOK_*`` environment variables."""
    env = {
        "WHATSAPP_HOOK_URL": spec.url,
        "WHATSAPP_HOOK_EVENTS": ",".join(spec.events),
        "WHATSAPP_HOOK_RETRIES_POLICY": spec.retries.policy,
        "WHATSAPP_HOOK_RETRIES_DELAY_SECONDS": str(spec.retries.delay_seconds),
        "WHATSAPP_HOOK_RETRIES_ATTEMPTS": str(spec.retries.attempts),
    }
    if spec.hmac_key:
        env["WHATSAPP_HOOK_HMAC_KEY"] = spec.hmac_key
    return env


def _hooks(info: dict[str, Any]) -> list[dict[str, Any]]:
    config = info.get("config")
    hooks = config.get("webhooks") if isinstance(config, dict) else None
    return [hook for hook in hooks or [] if isinstance(hook, dict)]


def check_webhook(info: dict[str, Any], spec: WebhookSpec) -> list[str]:
    """How the session's webhook differs from ``spec`` (empty: as wanted).

    Args:
        info: the session's SessionInfo (``GET /api/sessions/{session}``).
        spec: the webhook wanted.
    """
    mine = [hook for hook in _hooks(info) if hook.get("url") == spec.url]
    if not mine:
        urls = ", ".join(str(hook.get("url")) for hook in _hooks(info)) or "nenhum"
        return [
            f"não há webhook para {spec.url} na sessão (webhooks: {urls}); se o WAHA usa "
            "WHATSAPP_HOOK_URL no ambiente, isso é esperado"
        ]
    hook = mine[0]
    problems: list[str] = []
    events = set(hook.get("events") or [])
    missing = [event for event in spec.events if event not in events and "*" not in events]
    if missing:
        problems.append(f"faltam os eventos {', '.join(missing)}")
    key = (hook.get("hmac") or {}).get("key") if isinstance(hook.get("hmac"), dict) else None
    if (key or None) != (spec.hmac_key or None):
        problems.append(
            "a chave HMAC não confere com WAHA_HMAC_KEY"
            if spec.hmac_key
            else "WAHA assina os webhooks, mas WAHA_HMAC_KEY não está configurada"
        )
    found = hook.get("retries")
    retries: dict[str, Any] = found if isinstance(found, dict) else {}
    wanted = spec.retries.as_waha()
    if any(retries.get(k) != v for k, v in wanted.items()):
        problems.append(f"tentativas diferentes: {retries or 'padrão do WAHA'} (quero {wanted})")
    if len(mine) > 1:
        problems.append(f"{len(mine)} webhooks iguais: cada evento chegaria {len(mine)} vezes")
    return problems


async def register_webhook(client: WahaClient, spec: WebhookSpec) -> dict[str, Any]:
    """Put ``spec`` in the session's webhooks, keeping every other setting and webhook.

    Returns:
        The session's config as WAHA now holds it.

    Raises:
        ChannelError: WAHA is unreachable, refuses the key, or does not know the session.
    """
    info = await client.session_info()
    config = dict(info.get("config") or {})
    others = [hook for hook in _hooks(info) if hook.get("url") != spec.url]
    config["webhooks"] = [*others, spec.as_waha()]
    updated = await client.update_session(config)
    return dict(updated.get("config") or config)


@dataclass(frozen=True)
class SessionReport:
    """What ``clinicflow waha status`` prints: WAHA's side and the runner's side."""

    session: str
    status: str
    me: str | None
    webhooks: tuple[str, ...]
    problems: tuple[str, ...]
    runner: dict[str, Any] | None  # the runner's /health, None when unreachable

    @property
    def ok(self) -> bool:
        reached = self.runner is not None and (self.runner.get("webhooks") or {}).get("received")
        return self.status == "WORKING" and (not self.problems or bool(reached))

    def lines(self) -> list[str]:
        out = [
            f"Sessão {self.session}: {self.status}"
            + (f" (número {self.me})" if self.me else " (sem número conectado)"),
        ]
        out += [f"  webhook: {hook}" for hook in self.webhooks] or ["  nenhum webhook na sessão"]
        out += [f"  atenção: {problem}" for problem in self.problems]
        if self.runner is None:
            out.append("Runner: não respondeu em /health")
            return out
        seen = self.runner.get("webhooks") or {}
        if seen.get("received"):
            out.append(
                f"Runner: {seen['received']} webhooks recebidos; o último há "
                f"{seen.get('seconds_ago')} s (HTTP {seen.get('last_status')})"
            )
        else:
            out.append("Runner: nenhum webhook recebido desde que começou")
        waha = self.runner.get("waha") or {}
        out.append(f"Runner vê a sessão como: {waha.get('status', '?')}")
        return out


def session_report(
    info: dict[str, Any], spec: WebhookSpec, runner_health: dict[str, Any] | None
) -> SessionReport:
    """Put WAHA's SessionInfo and the runner's /health together."""
    me = info.get("me") if isinstance(info.get("me"), dict) else None
    hooks = tuple(
        f"{hook.get('url')} [{', '.join(map(str, hook.get('events') or []))}]"
        + (" com HMAC" if hook.get("hmac") else "")
        for hook in _hooks(info)
    )
    return SessionReport(
        session=str(info.get("name") or ""),
        status=str(info.get("status") or "?"),
        me=str(me.get("id")) if me and me.get("id") else None,
        webhooks=hooks,
        problems=tuple(check_webhook(info, spec)),
        runner=runner_health,
    )
