"""The deployment files: Dockerfile, compose.yaml, .env.example, the systemd unit.

Images cannot be built here, so this checks what can be: the files parse, every variable they
give clinicflow is one the runner reads (``clinicflow.runner.config.ENV_VARS``), WAHA's webhook
settings
say what ``clinicflow waha setup`` would register, and the image's command and both health
checks are run for real against a ``clinicflow serve`` started the way the image starts it.
"""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from runner_harness import API_KEY, embedder, prebuilt, waha  # noqa: F401 - fixtures

from clinicflow.runner.config import ENV_VARS
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.waha_setup import WebhookSpec, waha_environment

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
SERVICES = COMPOSE["services"]
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")
#: WAHA's own settings that .env.example may list besides the runner's.
WAHA_OWN = {"WHATSAPP_DEFAULT_ENGINE"}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final stage, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    steps = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, step in enumerate(steps) if step[0] == "FROM")
    return [(step[0], step[1] if len(step) > 1 else "") for step in steps[last_from:]]


def instruction(name: str) -> list[str]:
    return [args for step, args in dockerfile() if step == name]


def env_example() -> dict[str, list[str]]:
    """Each variable of .env.example with the comment lines just above it."""
    found: dict[str, list[str]] = {}
    comments: list[str] = []
    for line in (ROOT / ".env.example").read_text("utf-8").splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line)
        if match:
            found[match.group(1)] = list(comments)
        elif line.startswith("#") and not line.startswith("# ---"):
            comments.append(line)
            continue
        comments = [] if not match else comments
    return found


def interpolated(node: Any) -> set[str]:
    """The .env variables a compose node interpolates (``${NAME}``, ``${NAME:-x}``...)."""
    return {match[0] for match in INTERPOLATION.findall(json.dumps(node))}


# -- the files ------------------------------------------------------------------------------


def test_compose_has_waha_clinicflow_and_an_optional_postgres() -> None:
    assert set(SERVICES) == {"waha", "clinicflow", "postgres"}
    assert SERVICES["waha"]["image"].startswith("devlikeapro/waha")
    assert SERVICES["postgres"]["profiles"] == ["postgres"]
    assert "profiles" not in SERVICES["clinicflow"] and "profiles" not in SERVICES["waha"]
    assert SERVICES["clinicflow"]["volumes"][0].endswith(":/data")
    assert "DATABASE_URL" in (ROOT / "compose.yaml").read_text("utf-8"), "the commented variable"


def test_every_variable_compose_gives_clinicflow_is_read_by_the_runner() -> None:
    environment = SERVICES["clinicflow"]["environment"]
    assert set(environment) <= set(ENV_VARS), set(environment) - set(ENV_VARS)
    assert environment["WAHA_URL"] == "http://waha:3000"
    assert environment["WAHA_API_KEY_PLAIN"].startswith("${WAHA_API_KEY_PLAIN")
    assert SERVICES["waha"]["environment"]["WAHA_API_KEY"].startswith("${WAHA_API_KEY:")


def test_wahas_webhook_variables_are_what_waha_setup_registers() -> None:
    waha_env = SERVICES["waha"]["environment"]
    ours = SERVICES["clinicflow"]["environment"]
    hmac = "${WAHA_HMAC_KEY}"
    expected = waha_environment(WebhookSpec(ours["CLINICFLOW_WEBHOOK_URL"], hmac_key=hmac))
    got = {k: str(v) for k, v in waha_env.items() if k.startswith("WHATSAPP_HOOK_")}
    # The same .env variable signs (WAHA) and checks (clinicflow) the webhooks.
    assert INTERPOLATION.match(got.pop("WHATSAPP_HOOK_HMAC_KEY"))[1] == "WAHA_HMAC_KEY"  # type: ignore[index]
    assert INTERPOLATION.match(ours["WAHA_HMAC_KEY"])[1] == "WAHA_HMAC_KEY"  # type: ignore[index]
    expected.pop("WHATSAPP_HOOK_HMAC_KEY")
    assert got == expected


def test_env_example_lists_every_variable_with_its_meaning() -> None:
    listed = env_example()
    compose_vars = interpolated(COMPOSE)
    for name in [*ENV_VARS, *compose_vars]:
        assert name in listed, f"{name} is missing from .env.example"
    for name, comments in listed.items():
        assert comments, f"{name} has no comment saying what it is"
        assert name in ENV_VARS or name in compose_vars or name in WAHA_OWN, name


def test_the_image_is_slim_non_root_with_a_data_volume_and_a_health_check() -> None:
    [base] = instruction("FROM")
    assert base.startswith("python:3.11-slim")
    [user] = instruction("USER")
    assert user not in ("root", "0")
    assert instruction("VOLUME") == ['["/data"]']
    assert json.loads(instruction("CMD")[0]) == ["clinicflow", "serve"]
    env = " ".join(instruction("ENV"))
    names = set(re.findall(r"([A-Z][A-Z0-9_]+)=", env))
    assert {n for n in names if n.startswith(("CLINICFLOW_", "WAHA_"))} <= set(ENV_VARS)
    [health] = instruction("HEALTHCHECK")
    assert "/health" in health
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert ".clinicflow" in ignored and ".git" in ignored


def test_the_systemd_unit_runs_clinicflow_serve_unprivileged() -> None:
    entries = [
        tuple(line.split("=", 1))
        for line in (ROOT / "deploy" / "clinicflow.service").read_text("utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    ]
    values: dict[str, list[str]] = {}
    for key, value in entries:
        values.setdefault(key, []).append(value)
    program, *args = values["ExecStart"][0].split()
    assert (Path(program).name, args) == ("clinicflow", ["serve"])
    assert values["User"] == ["clinicflow"]
    assert "-HUP" in values["ExecReload"][0]
    assigned = {value.split("=", 1)[0] for value in values["Environment"]}
    assert assigned <= set(ENV_VARS)
    assert values["EnvironmentFile"] and values["NoNewPrivileges"] == ["true"]


# -- the image's command and the health checks, for real ------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resolve(value: str, env: dict[str, str]) -> str:
    return INTERPOLATION.sub(lambda m: env.get(m.group(1)) or m.group(2) or "", value)


def _compose_env(waha: FakeWaha, data: Path, port: int) -> dict[str, str]:
    """clinicflow's environment as compose gives it, pointed at the fake WAHA and a tmp dir."""
    dotenv = {
        "WAHA_API_KEY_PLAIN": API_KEY,
        "WAHA_API_KEY": "sha512:" + "0" * 128,
        "WAHA_HMAC_KEY": "hmac-key",
        "CLINICFLOW_STAFF_TOKEN": "token",
    }
    env = {k: _resolve(str(v), dotenv) for k, v in SERVICES["clinicflow"]["environment"].items()}
    for step, args in dockerfile():
        if step == "ENV":
            env = {**dict(re.findall(r"(\w+)=(\S+)", args)), **env}
    env.update(WAHA_URL=waha.url, CLINICFLOW_DATA=str(data), CLINICFLOW_HOST="127.0.0.1",
               CLINICFLOW_PORT=str(port))  # fmt: skip
    return {**dotenv, **env}


async def _run(argv: list[str], env: dict[str, str], timeout: float = 30) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, env=env)
    return await asyncio.wait_for(proc.wait(), timeout)


async def test_the_image_command_serves_and_both_health_checks_pass(
    waha: FakeWaha, prebuilt: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(prebuilt, data)
    port = _free_port()
    env = {**os.environ, **_compose_env(waha, data, port)}
    env.pop("CLINICFLOW_CONFIG", None)
    command = json.loads(instruction("CMD")[0])
    executable = Path(sys.executable).parent / command[0]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([str(executable), *command[1:]], env=env, stdout=log, stderr=log)
    try:
        docker_argv = json.loads(instruction("HEALTHCHECK")[0].split("CMD", 1)[1])
        compose_test = SERVICES["clinicflow"]["healthcheck"]["test"]
        assert compose_test[0] == "CMD"
        compose_argv = [a.replace("8080", str(port)) for a in compose_test[1:]]
        healthy = False
        for _ in range(240):
            if proc.poll() is not None:
                break
            if await _run(compose_argv, env) == 0:
                healthy = True
                break
            await asyncio.sleep(0.5)
        assert healthy, (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
        assert await _run(docker_argv, env) == 0
        logged = (tmp_path / "serve.log").read_text(errors="replace")
        started = [json.loads(line) for line in logged.splitlines() if '"event": "started"' in line]
        assert started, "compose asks for JSON logs"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung runner
            proc.kill()
        log.close()
    assert proc.returncode == 0, "clinicflow serve stops cleanly on SIGTERM"


@pytest.mark.parametrize("service", ["clinicflow", "postgres"])
def test_compose_health_checks_are_commands(service: str) -> None:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and len(test) >= 2
