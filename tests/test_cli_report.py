# ruff: noqa: F811 - pytest fixtures are imported from metrics_demo by name
"""``clinicflow report`` and ``clinicflow graph --overlay`` over the demo history."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from metrics_demo import TZ, demo  # noqa: F401 - fixture

from clinicflow.cli import main
from clinicflow.loader import load_catalog
from clinicflow.metrics import report
from clinicflow.storage import Store

CATALOG = load_catalog(None)


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def _library(data: Path, **kwargs: Any) -> dict[str, Any]:
    store = Store(data)
    try:
        figures = report(store, catalog=CATALOG, now=datetime.now(UTC), **kwargs)
    finally:
        store.close()
    return figures.as_dict()


@pytest.mark.parametrize(
    ("args", "filters"),
    [
        ((), {}),
        (("--script", "diu"), {"script": "diu"}),
        (("--campaign", "ig_diu"), {"campaign": "ig_diu"}),
        (("--campaign", "organic", "--script", "sop"), {"campaign": "organic", "script": "sop"}),
    ],
)
def test_json_matches_the_library(
    demo: tuple[Path, Any], args: tuple[str, ...], filters: dict[str, str]
) -> None:
    data, _ = demo
    period = ("--since", "2026-03-01", "--until", "2026-03-31")
    result = _cli("report", "--data", str(data), "--json", *period, *args)
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    want = _library(
        data,
        since=datetime(2026, 3, 1, tzinfo=TZ),
        until=datetime(2026, 4, 1, tzinfo=TZ),  # --until is inclusive: the next midnight
        script=filters.get("script"),
        campaign=filters.get("campaign"),
    )
    assert got == want
    assert got["conversations"] > 0
    assert got["period"]["since"] == "2026-03-01T03:00:00.000+00:00"
    assert list(got["per_day"])[-1] == "2026-03-31"


def test_open_period_counts_everything(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    got = json.loads(_cli("report", "--data", str(data), "--json").output)
    assert got["conversations"] == len(ledger.chats)
    assert got["period"]["since"] is None and got["period"]["until"] is None


def test_tables_in_the_terminal(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    result = _cli("report", "--data", str(data), "--since", "2026-03-01", "--until", "2026-03-31")
    assert result.exit_code == 0
    out = result.output
    for title in ("Resumo", "Funil", "Onde pararam", "Passagens à secretária", "Campanhas"):
        assert title in out
    assert re.search(rf"Conversas iniciadas\s+│\s+{len(ledger.chats)}\s+│", out)
    assert "Instagram —" in out and "R$ 1.500,00" in out


def test_bad_input_is_a_clean_error(tmp_path: Path, demo: tuple[Path, Any]) -> None:
    missing = _cli("report", "--data", str(tmp_path / "nothing"))
    assert missing.exit_code != 0 and "não há histórico" in missing.output
    bad = _cli("report", "--data", str(demo[0]), "--since", "ontem")
    assert bad.exit_code == 2 and "data inválida" in bad.output


def test_graph_overlay(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    n = sum(
        1
        for c in ledger.chats
        for move in c.moves
        if move == ("diu", "boas_vindas", "pergunta_tipo")
    )
    plain = _cli("graph", "diu").output
    overlay = _cli("graph", "diu", "--overlay", "--data", str(data))
    assert overlay.exit_code == 0
    assert n > 1 and f"s_boas_vindas --> s_pergunta_tipo: {n}\n" in overlay.output
    assert "pararam aqui" in overlay.output and "pararam aqui" not in plain
    dot = _cli("graph", "diu", "--overlay", "--data", str(data), "--format", "dot").output
    assert f'"boas_vindas" -> "pergunta_tipo" [label="{n}"];' in dot
