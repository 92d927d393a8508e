"""``clinicflow waha setup|status`` against the fake WAHA (PUT/GET /api/sessions/{session})."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from runner_harness import (  # noqa: F401 - fixtures
    API_KEY,
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    waha,
)

from clinicflow.cli import main
from clinicflow.errors import ChannelError
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.waha import WahaClient
from clinicflow.waha_setup import (
    EVENTS,
    WebhookSpec,
    check_webhook,
    register_webhook,
    waha_environment,
)

SPEC = Path(__file__).parents[2] / "shared" / "waha" / "openapi.json"
HOOK = "http://clinicflow:8080/webhooks/waha"
HMAC_KEY = "hmac-test-key"


async def test_register_keeps_other_webhooks_and_settings(waha: FakeWaha) -> None:
    other = {"url": "http://n8n:5678/hook", "events": ["message"]}
    waha.session_configs["default"] = {"metadata": {"clinic": "florescer"}, "webhooks": [other]}
    spec = WebhookSpec(HOOK, HMAC_KEY)
    async with WahaClient(waha.url, API_KEY) as client:
        assert check_webhook(await client.session_info(), spec)
        config = await register_webhook(client, spec)
        again = await register_webhook(client, spec)  # idempotent: still one entry for us
        info = await client.session_info()
    assert config == again == waha.session_configs["default"]
    assert config["metadata"] == {"clinic": "florescer"}
    assert config["webhooks"] == [other, spec.as_waha()]
    assert check_webhook(info, spec) == []
    [put] = [c for c in waha.calls if c.method == "PUT"][:1]
    assert put.path == "/api/sessions/default" and put.headers["X-Api-Key"] == API_KEY
    assert put.json["name"] == "default"


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        pytest.param(None, "não há webhook", id="missing"),
        pytest.param({"url": HOOK, "events": ["message"]}, "faltam os eventos", id="events"),
        pytest.param(
            {"url": HOOK, "events": list(EVENTS), "hmac": {"key": "other"}},
            "chave HMAC",
            id="hmac",
        ),
        pytest.param(
            {"url": HOOK, "events": ["*"], "hmac": {"key": HMAC_KEY}},
            "tentativas diferentes",
            id="retries",
        ),
    ],
)
def test_check_names_what_differs(hook: dict[str, Any] | None, expected: str) -> None:
    info = {"name": "default", "status": "WORKING", "config": {"webhooks": [hook] if hook else []}}
    problems = check_webhook(info, WebhookSpec(HOOK, HMAC_KEY))
    assert any(expected in problem for problem in problems), problems


async def test_fake_waha_validates_the_session_update(waha: FakeWaha) -> None:
    async with WahaClient(waha.url, API_KEY) as client:
        with pytest.raises(ChannelError) as bad:
            await client.update_session({"webhooks": [{"events": ["message"]}]})
        assert bad.value.status == 400 and "url" in str(bad.value)
    async with WahaClient(waha.url, API_KEY, session="nope") as client:
        with pytest.raises(ChannelError) as missing:
            await client.session_info()
        assert missing.value.status == 404
    async with WahaClient(waha.url, "wrong") as client:
        with pytest.raises(ChannelError) as denied:
            await client.update_session({"webhooks": []})
        assert denied.value.status == 401


def test_the_webhook_we_send_matches_wahas_openapi() -> None:
    if not SPEC.exists():
        pytest.skip("WAHA's openapi.json is not beside the repository")
    schemas = json.loads(SPEC.read_text("utf-8"))["components"]["schemas"]
    hook = WebhookSpec(HOOK, HMAC_KEY).as_waha()
    webhook = schemas["WebhookConfig"]
    assert set(webhook["required"]) <= set(hook) <= set(webhook["properties"])
    retries = schemas["RetriesConfiguration"]["properties"]
    assert set(hook["retries"]) <= set(retries)
    assert hook["retries"]["policy"] in retries["policy"]["enum"]
    assert set(hook["hmac"]) <= set(schemas["HmacConfiguration"]["properties"])
    assert "config" in schemas["SessionUpdateRequest"]["properties"]
    assert "webhooks" in schemas["SessionConfig"]["properties"]


def test_waha_environment_says_the_same_as_the_api() -> None:
    env = waha_environment(WebhookSpec(HOOK, HMAC_KEY))
    assert env["WHATSAPP_HOOK_URL"] == HOOK
    assert env["WHATSAPP_HOOK_EVENTS"] == (
        "message,message.any,session.status,message.edited,message.revoked,message.reaction,"
        "call.received"
    )
    assert env["WHATSAPP_HOOK_HMAC_KEY"] == HMAC_KEY
    assert env["WHATSAPP_HOOK_RETRIES_POLICY"] == "exponential"


def _env(waha: FakeWaha, **extra: str) -> dict[str, str]:
    return {
        "WAHA_URL": waha.url,
        "WAHA_API_KEY_PLAIN": API_KEY,
        "WAHA_API_KEY": "sha512:" + "0" * 128,
        "WAHA_HMAC_KEY": HMAC_KEY,
        "CLINICFLOW_WEBHOOK_URL": HOOK,
        "CLINICFLOW_CONFIG": "",
        **extra,
    }


async def _cli(args: list[str], env: dict[str, str]) -> Result:
    # The command runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(CliRunner().invoke, main, args, env=env)


async def test_cli_setup_registers_then_check_passes(waha: FakeWaha) -> None:
    env = _env(waha)
    before = await _cli(["waha", "setup", "--check"], env)
    assert before.exit_code == 1 and "não há webhook" in before.output
    done = await _cli(["waha", "setup"], env)
    assert done.exit_code == 0, done.output
    assert f"Webhook registrado: {HOOK} na sessão default" in done.output
    assert waha.session_configs["default"]["webhooks"] == [WebhookSpec(HOOK, HMAC_KEY).as_waha()]
    after = await _cli(["waha", "setup", "--check"], env)
    assert after.exit_code == 0 and "confere" in after.output
    moved = await _cli(["waha", "setup", "--check", "--url", "http://other/webhooks/waha"], env)
    assert moved.exit_code == 1


async def test_cli_setup_with_waha_down_is_a_clean_error(waha: FakeWaha) -> None:
    await waha.down()
    result = await _cli(["waha", "setup"], _env(waha))
    assert result.exit_code == 1 and result.output.startswith("Erro: GET /api/sessions/default")


async def test_cli_status_reports_the_session_and_the_runner(make_live: MakeLive) -> None:
    live = await make_live()
    env = _env(live.waha)
    runner_url = live.url("/").rstrip("/")
    quiet = await _cli(["waha", "status", "--runner", runner_url], env)
    assert "Sessão default: WORKING" in quiet.output
    assert "Runner: nenhum webhook recebido" in quiet.output
    assert quiet.exit_code == 1, "no webhook configured and none arrived"
    await _cli(["waha", "setup"], env)
    await live.say("5511988887777@c.us", "oi")
    good = await _cli(["waha", "status", "--runner", runner_url], env)
    assert good.exit_code == 0, good.output
    assert f"webhook: {HOOK} [{', '.join(EVENTS)}] com HMAC" in good.output
    assert "message.any, session.status, message.edited" in good.output
    assert "Runner: 1 webhooks recebidos" in good.output and "(HTTP 200)" in good.output
    live.waha.set_status("SCAN_QR_CODE")
    scan = await _cli(["waha", "status", "--runner", runner_url], env)
    assert scan.exit_code == 1 and "SCAN_QR_CODE" in scan.output
    gone = await _cli(["waha", "status", "--runner", "http://127.0.0.1:9"], env)
    assert "Runner: não respondeu" in gone.output


def test_every_command_is_documented() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text("utf-8")
    for name, command in main.commands.items():
        assert command.help, name
        assert f"`clinicflow {name}" in readme, f"clinicflow {name} is not in README's table"
