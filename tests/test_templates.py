from __future__ import annotations

import pytest

from clinicflow.templates import Placeholder, placeholders, render

FACTS = {"nome": "Clínica Florescer", "preco_consulta": "R$ 600"}


def test_placeholders() -> None:
    found = placeholders("Oi {nome|querida}, {clinica.preco_consulta} {{literal}} { x }")
    assert found == [
        Placeholder("nome", "querida", 3),
        Placeholder("clinica.preco_consulta", None, 19),
        Placeholder("x", None, 56),
    ]
    assert found[1].is_fact and found[1].key == "preco_consulta"
    assert not found[0].is_fact and found[0].key == "nome"


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        pytest.param("Oi, {nome}!", {"nome": "Ana"}, "Oi, Ana!", id="value"),
        pytest.param("Oi {nome|querida}!", {}, "Oi querida!", id="fallback"),
        pytest.param("Oi {nome|querida}!", {"nome": ""}, "Oi querida!", id="empty-fallback"),
        pytest.param("Custa {clinica.preco_consulta}.", {}, "Custa R$ 600.", id="fact"),
        pytest.param("Obrigada, {nome}!", {}, "Obrigada!", id="comma-before-bang"),
        pytest.param("Oi {nome}, tudo bem?", {}, "Oi, tudo bem?", id="space-before-comma"),
        pytest.param("Oi, {nome}, tudo bem?", {}, "Oi, tudo bem?", id="double-comma"),
        pytest.param("{nome}, tudo bem?", {}, "Tudo bem?", id="at-start"),
        pytest.param("Oi {nome} tudo bem", {}, "Oi tudo bem", id="double-space"),
        pytest.param("Até logo, {nome}", {}, "Até logo", id="at-end"),
        pytest.param("Oi {a} {b}, ok", {}, "Oi, ok", id="two-gaps"),
        pytest.param("Linha 1\n{nome}, oi", {}, "Linha 1\nOi", id="line-start"),
        pytest.param("{{nome}} é {nome}", {"nome": "Ana"}, "{nome} é Ana", id="literal-braces"),
        pytest.param("Oi {clinica.inexistente}!", {}, "Oi!", id="unknown-fact-vanishes"),
        pytest.param("Sem placeholders.", {}, "Sem placeholders.", id="plain"),
    ],
)
def test_render(template: str, values: dict[str, str], expected: str) -> None:
    assert render(template, values, FACTS) == expected


@pytest.mark.parametrize(
    "evil",
    [
        pytest.param("{clinica.nome}", id="placeholder"),
        pytest.param("%s %d", id="percent"),
        pytest.param("{0.__class__}", id="format-attr"),
        pytest.param("{{nome}}", id="double-braces"),
        pytest.param(" , ! ", id="punctuation"),
    ],
)
def test_values_are_never_rescanned(evil: str) -> None:
    assert render("Oi, {nome}!", {"nome": evil}, FACTS) == f"Oi, {evil}!"
