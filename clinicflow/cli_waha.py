"""``clinicflow waha setup|status``: the runner's webhook in WAHA, and whether it arrives.

Thin commands over :mod:`clinicflow.waha_setup`; the settings are the runner's own
(``WAHA_URL``, ``WAHA_API_KEY_PLAIN``/``WAHA_API_KEY``, ``WAHA_SESSION``, ``WAHA_HMAC_KEY``,
``CLINICFLOW_WEBHOOK_URL``; see ``clinicflow serve --help``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from clinicflow.cli import clean_errors

_CONFIG = click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None,
    help="Arquivo TOML ou YAML com as configurações do serve (CLINICFLOW_CONFIG).",
)  # fmt: skip
_URL = click.option(
    "--url", default=None,
    help="URL do webhook como o WAHA a alcança (CLINICFLOW_WEBHOOK_URL; "
    "padrão http://HOST:PORTA/webhooks/waha).",
)  # fmt: skip


def _setup(config_file: Path | None, url: str | None) -> tuple[Any, Any]:
    from clinicflow.runner.config import RunnerConfig
    from clinicflow.waha import WahaClient
    from clinicflow.waha_setup import WebhookSpec

    config = RunnerConfig.from_env(config_file=config_file)
    spec = WebhookSpec(url=url or config.public_webhook_url, hmac_key=config.waha_hmac_key)
    client = WahaClient(config.waha_url, config.waha_api_key, config.waha_session, timeout_s=15)
    return config, (client, spec)


@click.group()
def waha() -> None:
    """O WAHA (gateway do WhatsApp): registrar o webhook do runner e ver o estado da sessão."""


@waha.command()
@_CONFIG
@_URL
@click.option("--check", is_flag=True, help="Só confere; sai com 1 se o webhook não está certo.")
@clean_errors
def setup(config_file: Path | None, url: str | None, check: bool) -> None:
    """Registra (ou confere) o webhook do runner na sessão do WAHA.

    URL, eventos (message, message.any, session.status, edições, apagadas, reações e
    chamadas), chave HMAC (WAHA_HMAC_KEY) e tentativas. Os outros webhooks e ajustes da
    sessão são mantidos; o WAHA reinicia a sessão (não é preciso ler o QR de novo).
    """
    from clinicflow.waha_setup import check_webhook, register_webhook

    config, (client, spec) = _setup(config_file, url)

    async def go() -> list[str]:
        async with client:
            if check:
                return check_webhook(await client.session_info(), spec)
            await register_webhook(client, spec)
            return check_webhook(await client.session_info(), spec)

    problems = asyncio.run(go())
    for problem in problems:
        click.echo(f"atenção: {problem}")
    if problems:
        sys.exit(1)
    verb = "confere" if check else "registrado"
    click.echo(f"Webhook {verb}: {spec.url} na sessão {config.waha_session}.")


@waha.command()
@_CONFIG
@_URL
@click.option(
    "--runner", "runner_url", default=None,
    help="Endereço do runner (padrão http://HOST:PORTA do serve).",
)  # fmt: skip
@clean_errors
def status(config_file: Path | None, url: str | None, runner_url: str | None) -> None:
    """Mostra o estado da sessão no WAHA e se os webhooks estão chegando ao runner.

    Sai com 0 quando a sessão está WORKING e o webhook está certo (ou já chegou algum), 1 se não.
    """
    from clinicflow.waha_setup import session_report

    config, (client, spec) = _setup(config_file, url)
    host = "localhost" if config.host in ("0.0.0.0", "::", "") else config.host
    health_url = (runner_url or f"http://{host}:{config.port}").rstrip("/") + "/health"

    async def go() -> tuple[dict[str, Any], dict[str, Any] | None]:
        import aiohttp

        async with client:
            info = await client.session_info()
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(health_url, timeout=aiohttp.ClientTimeout(total=5)) as r,
            ):
                body = await r.json(content_type=None)
                return info, body if isinstance(body, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return info, None

    info, health = asyncio.run(go())
    report = session_report(info, spec, health)
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.ok else 1)


COMMANDS = (waha,)
