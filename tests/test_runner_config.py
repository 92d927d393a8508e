"""The runner's configuration: WAHA's API key forms, and refusing unsigned webhooks on the
network unless the operator says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clinicflow.cli import main
from clinicflow.runner.__main__ import main as runner_main
from clinicflow.runner.config import ConfigError, RunnerConfig


def test_plain_api_key_is_preferred() -> None:
    env = {"WAHA_API_KEY": "sha512:" + "ab" * 64, "WAHA_API_KEY_PLAIN": "segredo"}
    assert RunnerConfig.from_env(env).waha_api_key == "segredo"
    assert RunnerConfig.from_env({"WAHA_API_KEY": "segredo"}).waha_api_key == "segredo"
    assert RunnerConfig.from_env({}).waha_api_key is None


@pytest.mark.parametrize("name", ["WAHA_API_KEY", "WAHA_API_KEY_PLAIN"])
def test_a_hashed_api_key_is_refused_with_a_clear_message(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_env({name: "SHA512:" + "ab" * 64})
    assert "WAHA_API_KEY_PLAIN" in str(info.value) and "401" in str(info.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("[::1]", True),
     ("0.0.0.0", False), ("192.168.0.10", False), ("", False), ("clinica.local", False)],
)  # fmt: skip
def test_unsigned_webhooks_only_on_loopback_unless_insecure(host: str, loopback: bool) -> None:
    config = RunnerConfig(host=host)
    assert config.loopback is loopback
    if loopback:
        assert config.check_exposure() is None
    else:
        with pytest.raises(ConfigError) as info:
            config.check_exposure()
        assert "WAHA_HMAC_KEY" in str(info.value) and "--insecure" in str(info.value)
        warning = RunnerConfig(host=host, insecure=True).check_exposure()
        assert warning is not None and warning.startswith("INSECURE")
    assert RunnerConfig(host=host, waha_hmac_key="k").check_exposure() is None


def test_insecure_from_the_environment() -> None:
    assert RunnerConfig.from_env({"CLINICFLOW_INSECURE": "1"}).insecure is True
    assert RunnerConfig.from_env({"CLINICFLOW_INSECURE": "no"}).insecure is False
    with pytest.raises(ConfigError):
        RunnerConfig.from_env({"CLINICFLOW_INSECURE": "talvez"})


def test_serve_refuses_to_start_exposed_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WAHA_HMAC_KEY", "CLINICFLOW_INSECURE", "CLINICFLOW_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "WAHA_HMAC_KEY" in result.output and "--insecure" in result.output
    monkeypatch.setenv("CLINICFLOW_HOST", "0.0.0.0")
    assert runner_main([]) == 2


def test_serve_documents_the_insecure_flag() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert "--insecure" in result.output and "WAHA_API_KEY_PLAIN" in result.output


def test_serve_refuses_an_address_in_use_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    for name in ("WAHA_HMAC_KEY", "CLINICFLOW_INSECURE", "CLINICFLOW_CONFIG", "CLINICFLOW_CLINICS"):
        monkeypatch.delenv(name, raising=False)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["serve", "--port", str(port), "--data", str(tmp_path / "data")]
        )
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{port}" in result.output and "porta" in result.output
    assert not (tmp_path / "data").exists()  # nothing opened, nothing recovered
