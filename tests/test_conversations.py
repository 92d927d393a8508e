"""The conversation tests in tests/conversations/, run through the library and the CLI.

Every conversation of every file is one pytest param (id ``file:name``), played through a real
:class:`~clinicflow.engine.Engine` over the bundled catalog (real SQLite, LanceDB and
embeddings, no LLM) with a :class:`~clinicflow.clock.ManualClock`. One engine serves the
whole module: building it costs ~2 s. The expectations in the YAML files describe what the
clinic wants (issue 3), not whatever the bot happens to do.

Then ``clinicflow simulate`` itself is run once over the folder through click's CliRunner
(exit code, ``--json`` records, ``--coverage``), and over small files in
tests/data/simulate/ that are invalid (exit 2 with file:line) or fail an expectation (exit 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from clinicflow import simulate as sim
from clinicflow.cli import main
from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.errors import SimulationError
from clinicflow.loader import load_catalog

HERE = Path(__file__).parent
CONVERSATIONS = HERE / "conversations"
SIMULATE_DATA = HERE / "data" / "simulate"
FILES = sorted(CONVERSATIONS.glob("*.yaml"))


def _conversation_params() -> list[Any]:
    params = []
    for path in FILES:
        for conversation in sim.load_file(path):
            params.append(pytest.param(conversation, id=f"{path.name}:{conversation.name}"))
    return params


PARAMS = _conversation_params()


@pytest.fixture(scope="session")
def sim_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, ManualClock]]:
    clock = ManualClock()
    engine = Engine.from_catalog(
        None, data_dir=tmp_path_factory.mktemp("conversations-data"), clock=clock, llm=None
    )
    yield engine, clock
    engine.close_resources()


def _diff(records: list[sim.TurnRecord]) -> str:
    lines = []
    for record in records:
        where = f"{Path(record.file).name}:{record.line}"
        lines.append(f"{where} ({record.conversation}) paciente: {record.user!r}")
        lines.extend(f"    - {failure}" for failure in record.failures)
        lines.append(f"    replies: {record.replies!r}")
        lines.append(
            f"    got intent={record.intent} source={record.source} "
            f"state={record.state} status={record.status}"
        )
    return "\n".join(lines)


# -- the conversations ------------------------------------------------------------------------


@pytest.mark.parametrize("conversation", PARAMS)
def test_conversation(
    sim_engine: tuple[Engine, ManualClock], conversation: sim.SimConversation
) -> None:
    engine, clock = sim_engine
    records = sim.run(engine, clock, [conversation])
    assert len(records) == len(conversation.turns)
    failed = [record for record in records if record.failures]
    assert not failed, "\n" + _diff(failed)


def test_there_are_conversation_files() -> None:
    assert FILES, "tests/conversations/ has no .yaml files"
    assert len(PARAMS) >= 50


def test_conversation_names_are_unique_per_file() -> None:
    # The simulated chat id derives from (file, name): a repeated name would share a chat.
    for path in FILES:
        names = [conversation.name for conversation in sim.load_file(path)]
        assert len(names) == len(set(names)), f"{path.name}: repeated conversation names"


def _expected(conversation: sim.SimConversation, key: str) -> list[Any]:
    return [turn.expect[key] for turn in conversation.turns if key in turn.expect]


@pytest.mark.parametrize("script_id", [s.id for s in load_catalog(None).scripts])
def test_every_catalog_script_is_covered_end_to_end(script_id: str) -> None:
    """Each script has its own file with a conversation from the opener to a booking hand-off."""
    path = CONVERSATIONS / f"{script_id}.yaml"
    assert path.exists(), f"no conversation file for script {script_id!r}"
    end_to_end = []
    for conversation in sim.load_file(path):
        scripts = _expected(conversation, "script")
        handoffs = _expected(conversation, "handoff")
        slots = _expected(conversation, "slots")
        first = conversation.turns[0].expect
        if (
            first.get("script") == script_id
            and any(isinstance(h, dict) and h.get("reason") == "schedule" for h in handoffs)
            and any("nome" in s for s in slots)
            and len(scripts) >= 1
        ):
            end_to_end.append(conversation.name)
    assert end_to_end, f"{path.name} has no opener → name → … → schedule hand-off conversation"


# -- the command line -------------------------------------------------------------------------


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", "--llm", "none", *args], catch_exceptions=True)


@pytest.fixture(scope="module")
def folder_run() -> Result:
    """One run of ``clinicflow simulate tests/conversations --json --coverage``."""
    return _invoke(str(CONVERSATIONS), "--json", "--coverage")


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_cli_simulate_folder_passes(folder_run: Result) -> None:
    assert not isinstance(folder_run.exception, Exception) or isinstance(
        folder_run.exception, SystemExit
    ), folder_run.output
    failed = [r for r in _json_lines(folder_run.output) if r.get("passed") is False]
    summary = "\n".join(
        f"{Path(r['file']).name}:{r['line']} {r['user']!r}: {'; '.join(r['failures'])}"
        for r in failed
    )
    assert folder_run.exit_code == 0, f"{len(failed)} turns failed:\n{summary}"


def test_cli_simulate_json_records(folder_run: Result) -> None:
    records = _json_lines(folder_run.output)
    turns = [r for r in records if "kind" in r]
    stats = [r for r in records if r.get("stats")]
    expected_turns = sum(len(c.turns) for path in FILES for c in sim.load_file(path))
    assert len(turns) == expected_turns
    for record in turns:
        for key in ("intent", "source", "confidence", "state", "replies", "ms", "llm_calls"):
            assert key in record, f"--json record without {key!r}: {record}"
        assert isinstance(record["replies"], list)
        assert record["llm_calls"] == 0  # --llm none: never an LLM call
        if record["kind"] == "user":
            assert record["source"] in ("choice", "rule", "model", "llm", "fallback")
            assert 0.0 <= record["confidence"] <= 1.0
    assert len(stats) == 1 and stats[0]["llm_calls"] == 0
    assert stats[0]["user_turns"] == sum(1 for r in turns if r["kind"] == "user")


def test_cli_simulate_coverage(folder_run: Result) -> None:
    lines = [line for line in folder_run.output.splitlines() if not line.startswith("{")]
    for script in load_catalog(None).scripts:
        matching = [line for line in lines if line.startswith(f"{script.id}: ")]
        assert len(matching) == 1, f"no coverage line for {script.id}: {lines[-10:]}"
        states = matching[0].split("estados ")[1].split(",")[0]
        covered, total = (int(n) for n in states.split("/"))
        assert total == len(script.states)
        # every script is played end to end, so most of its states are visited
        assert covered >= total // 2, matching[0]


INVALID = [
    ("chave_expect_desconhecida.yaml", 6, "replys_contains"),
    ("sem_conversations.yaml", 1, "conversations"),
    ("dois_tipos_de_turno.yaml", 7, "exactly one"),
    ("espera_invalida.yaml", 6, "amanhã"),
    ("sem_turnos.yaml", 3, "turns"),
    ("yaml_quebrado.yaml", 6, "YAML"),
    ("chave_de_conversa_desconhecida.yaml", 3, "turnos"),
]


@pytest.mark.parametrize(
    ("name", "line", "words"), [pytest.param(*case, id=case[0]) for case in INVALID]
)
def test_cli_simulate_invalid_file_exits_2_with_file_and_line(
    name: str, line: int, words: str
) -> None:
    path = SIMULATE_DATA / name
    result = _invoke(str(path))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert f"{path}:{line}:" in result.output, result.output
    assert words in result.output


@pytest.mark.parametrize(
    ("name", "line"), [pytest.param(case[0], case[1], id=case[0]) for case in INVALID]
)
def test_load_file_raises_simulation_error_with_line(name: str, line: int) -> None:
    with pytest.raises(SimulationError) as info:
        sim.load_file(SIMULATE_DATA / name)
    assert info.value.line == line
    assert info.value.file == str(SIMULATE_DATA / name)


def test_cli_simulate_failing_expectation_exits_1_with_diff() -> None:
    path = SIMULATE_DATA / "falha_esperada.yaml"
    result = _invoke(str(path))
    assert result.exit_code == 1, result.output
    assert f"FALHOU {path}:5 (expectativa impossível)" in result.output
    assert "reply should contain 'texto que o robô nunca diz'" in result.output
    assert "replies were [" in result.output
    assert "1 falharam de 1" in result.output
