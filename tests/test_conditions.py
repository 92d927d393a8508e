from __future__ import annotations

import pytest

from clinicflow.conditions import (
    And,
    Compare,
    ConditionSyntaxError,
    Filled,
    Not,
    Or,
    evaluate,
    parse,
)


def test_parse_precedence() -> None:
    assert parse("a or b and not c") == Or(
        Filled("a", 1), And(Filled("b", 6), Not(Filled("c", 16)))
    )
    assert parse("(a or b) and c") == And(Or(Filled("a", 2), Filled("b", 7)), Filled("c", 14))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("tipo == 'cobre'", Compare("tipo", "==", "cobre"), id="text"),
        pytest.param('tipo != "cobre"', Compare("tipo", "!=", "cobre"), id="double-quotes"),
        pytest.param("idade >= 45", Compare("idade", ">=", 45.0), id="number"),
        pytest.param("peso < 70,5", Compare("peso", "<", 70.5), id="decimal-comma"),
        pytest.param("fumante == yes", Compare("fumante", "==", True), id="yes"),
        pytest.param("fumante == não", Compare("fumante", "==", False), id="nao"),
        pytest.param("fumante == sim", Compare("fumante", "==", True), id="sim"),
        pytest.param("periodo == tarde", Compare("periodo", "==", "tarde"), id="bare-word"),
    ],
)
def test_parse_comparisons(text: str, expected: Compare) -> None:
    assert parse(text) == expected


def test_slots_in_order_without_repeats() -> None:
    assert parse("idade >= 45 and not tipo or idade < 12").slots() == ("idade", "tipo")


@pytest.mark.parametrize(
    ("text", "col"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param("idade >=", 9, id="missing-value"),
        pytest.param("a b", 3, id="two-names"),
        pytest.param("(a or b", 8, id="unclosed-paren"),
        pytest.param("tipo == 'cobre", 9, id="unclosed-quote"),
        pytest.param("a && b", 3, id="c-operator"),
        pytest.param("and a", 1, id="starts-with-and"),
        pytest.param("a == and", 6, id="keyword-as-value"),
        pytest.param("__import__('os')", 11, id="no-calls"),
    ],
)
def test_syntax_errors_have_columns(text: str, col: int) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse(text)
    assert info.value.col == col


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        pytest.param("nome", {"nome": "Ana"}, True, id="filled"),
        pytest.param("nome", {}, False, id="missing"),
        pytest.param("nome", {"nome": ""}, False, id="empty-text"),
        pytest.param("fumante", {"fumante": False}, False, id="yes-no-false"),
        pytest.param("not fumante", {"fumante": False}, True, id="not-false"),
        pytest.param("idade", {"idade": 0}, True, id="zero-is-filled"),
        pytest.param("tipo == 'Cobre'", {"tipo": "cobre"}, True, id="case"),
        pytest.param("tipo == 'manha'", {"tipo": "manhã"}, True, id="accents"),
        pytest.param("tipo != 'cobre'", {}, True, id="empty-differs"),
        pytest.param("tipo == 'cobre'", {}, False, id="empty-not-equal"),
        pytest.param("idade >= 45", {"idade": 45}, True, id="ge"),
        pytest.param("idade > 45", {"idade": 45.0}, False, id="gt"),
        pytest.param("idade < 45", {"idade": "30"}, True, id="number-as-text"),
        pytest.param("idade < 45", {"idade": "trinta"}, False, id="not-a-number"),
        pytest.param("idade < 45", {}, False, id="empty-no-order"),
        pytest.param("fumante == yes", {"fumante": True}, True, id="yes-true"),
        pytest.param("fumante == no", {"fumante": False}, True, id="no-false"),
        pytest.param("fumante == sim", {"fumante": "sim"}, True, id="sim-text"),
        pytest.param("fumante > yes", {"fumante": True}, False, id="bool-no-order"),
        pytest.param("data >= '2027-01-01'", {"data": "2027-03-12"}, True, id="iso-date"),
        pytest.param("data < '2027-01-01'", {"data": "2027-03-12"}, False, id="iso-date-lt"),
        pytest.param("idade >= 45 and not tipo", {"idade": 50}, True, id="and-not"),
        pytest.param("(a or b) and c", {"b": "x", "c": "y"}, True, id="parens"),
        pytest.param("a or b", {}, False, id="or-false"),
    ],
)
def test_evaluate(text: str, values: dict[str, object], expected: bool) -> None:
    assert evaluate(parse(text), values) is expected
