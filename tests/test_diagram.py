from __future__ import annotations

import re
from pathlib import Path

import pytest

from clinicflow.diagram import dot, edges, mermaid
from clinicflow.loader import bundled_catalog_path, load_catalog, load_script
from clinicflow.model import Branch, Script, State

MIN = Path(__file__).parent / "data" / "catalog_min"


@pytest.fixture
def script() -> Script:
    return load_script(MIN / "consulta.yaml")


def test_mermaid_marks_start_end_and_handoff(script: Script) -> None:
    text = mermaid(script)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> s_inicio" in lines
    assert "    s_no --> [*]" in lines
    assert '    state "agendar → secretária (schedule)" as s_agendar' in lines
    assert "    class s_agendar handoff" in lines
    assert "    s_explica --> s_agendar: 1. Agendar" in lines
    assert "    qualquer_estado --> s_agendar: schedule" in lines
    assert "    s_motivo --> s_explica: motivo = 'rotina'" in lines
    assert "    s_motivo --> s_agendar: sem resposta válida para motivo" in lines
    assert "    s_inicio --> s_motivo" in lines  # plain `next` is unlabeled


def test_mermaid_labels_are_escaped() -> None:
    script = Script(
        id="x",
        title="x",
        version="1",
        start="end",
        states=(
            State("end", when=(Branch('a >= 1 and b == "x;y" {z}: #1', "fim"),), next="fim"),
            State("fim", end=True),
            State("último passo", end=True),
        ),
    )
    text = mermaid(script)
    assert "s_end --> s_fim: a ≥ 1 and b = 'x,y' (z) - nº1" in text
    assert 'state "último passo · fim" as s2' in text
    for line in text.splitlines()[1:]:
        label = line.split(": ", 1)[1] if ": " in line and "-->" in line else ""
        assert not re.search(r'[";{}#<>]', label), line


def test_overlay_counts_and_stops(script: Script) -> None:
    text = mermaid(
        script, counts={("inicio", "motivo"): 7, ("explica", "agendar"): 3}, stops={"explica": 2}
    )
    assert "s_inicio --> s_motivo: 7" in text
    assert "s_explica --> s_agendar: 1. Agendar (3)" in text
    assert "explica — 2 pararam aqui" in text
    assert "2 pararam aqui" in dot(script, stops={"explica": 2})


def test_dot(script: Script) -> None:
    text = dot(script)
    assert text.startswith('digraph "consulta" {')
    assert '"__start__" -> "inicio";' in text
    assert '"motivo" -> "explica" [label="motivo == \'rotina\'"];' in text
    assert 'fillcolor="#fde2e4"' in text
    assert text.rstrip().endswith("}")


def test_edges_cover_every_kind(script: Script) -> None:
    labels = {(e.source, e.target, e.label) for e in edges(script)}
    assert ("motivo", "agendar", "senão") in labels
    assert ("explica", "no", "2. Encerrar") in labels


def test_every_bundled_script_renders() -> None:
    catalog = load_catalog(bundled_catalog_path())
    for item in catalog.scripts:
        text = mermaid(item)
        assert text.startswith("stateDiagram-v2\n")
        assert "[*] -->" in text
        assert dot(item).startswith("digraph")
