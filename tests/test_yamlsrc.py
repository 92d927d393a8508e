from __future__ import annotations

import pytest

from clinicflow.model import Pos
from clinicflow.yamlsrc import Reader, YMap, YScalar, YSeq, parse, positions


def _scalar(text: str) -> object:
    node, problems = parse(f"v: {text}\n", "f.yaml")
    assert not problems
    assert isinstance(node, YMap)
    value = node.get("v")
    assert isinstance(value, YScalar)
    return value.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("yes", "yes", id="yes-is-text"),
        pytest.param("no", "no", id="no-is-text"),
        pytest.param("on", "on", id="on-is-text"),
        pytest.param("off", "off", id="off-is-text"),
        pytest.param("Y", "Y", id="y-is-text"),
        pytest.param("true", True, id="true-is-bool"),
        pytest.param("False", False, id="false-is-bool"),
        pytest.param("2026-12-25", "2026-12-25", id="date-stays-text"),
        pytest.param("2026-12-25T10:00:00", "2026-12-25T10:00:00", id="timestamp-stays-text"),
        pytest.param("42", 42, id="int"),
        pytest.param("1.5", 1.5, id="float"),
        pytest.param("~", None, id="null"),
        pytest.param('"3"', "3", id="quoted-number-is-text"),
    ],
)
def test_scalars_are_not_coerced(text: str, expected: object) -> None:
    assert _scalar(text) == expected
    assert type(_scalar(text)) is type(expected)


def test_keys_keep_their_text() -> None:
    node, _ = parse("no: 1\non: 2\n1: 3\n", "f.yaml")
    assert isinstance(node, YMap)
    assert list(node.entries) == ["no", "on", "1"]


def test_positions_are_one_based() -> None:
    node, _ = parse("states:\n  inicio:\n    next: fim\n    say: [a, b]\n", "f.yaml")
    assert node is not None
    where = positions(node)
    assert where["states.inicio.next"] == Pos("f.yaml", 3, 11)
    assert where["states.inicio.next#key"] == Pos("f.yaml", 3, 5)
    assert where["states.inicio.say.1"] == Pos("f.yaml", 4, 14)


def test_quoted_flag() -> None:
    node, _ = parse("a: 'x'\nb: x\n", "f.yaml")
    assert isinstance(node, YMap)
    a, b = node.get("a"), node.get("b")
    assert isinstance(a, YScalar) and a.quoted
    assert isinstance(b, YScalar) and not b.quoted


def test_duplicate_keys_are_reported() -> None:
    node, problems = parse("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert [(p.code, p.line, p.col) for p in problems] == [("duplicate-id", 3, 1)]
    assert isinstance(node, YMap)
    first = node.get("a")
    assert isinstance(first, YScalar) and first.value == 1


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        pytest.param('a: "x\nb: 1\n', 3, 1, id="unclosed-quote"),
        pytest.param("a: x: y\n", 1, 5, id="colon-in-text"),
        pytest.param("a:\n  b: 1\n c: 2\n", 3, 2, id="bad-indent"),
        pytest.param("a: [1, 2\n", 2, 1, id="unclosed-list"),
    ],
)
def test_syntax_errors_have_position(text: str, line: int, col: int) -> None:
    node, problems = parse(text, "f.yaml")
    assert node is None
    assert [(p.code, p.line, p.col) for p in problems] == [("yaml-syntax", line, col)]
    assert "YAML" in problems[0].message


def test_empty_document() -> None:
    assert parse("", "f.yaml") == (None, [])
    assert parse("# só comentário\n", "f.yaml") == (None, [])


def test_unknown_tag_is_reported() -> None:
    _, problems = parse("a: !!python/object:os.system x\n", "f.yaml")
    assert [p.code for p in problems] == ["yaml-syntax"]


def test_reader_unknown_key_names_closest_match() -> None:
    node, _ = parse("nxt: a\nsay: b\n", "f.yaml")
    reader = Reader("f.yaml")
    reader.mapping(node, "o estado", ("say", "next"), ("say", "end"))
    codes = [(p.code, p.line) for p in reader.problems]
    assert codes == [("unknown-key", 1), ("missing-key", 1)]
    assert "'next'" in reader.problems[0].message
    assert "say, next" in reader.problems[0].message


def test_reader_types() -> None:
    node, _ = parse("t: [a]\nn: x\nf: yes\nl: texto\ne: ''\n", "f.yaml")
    assert isinstance(node, YMap)
    reader = Reader("f.yaml")
    assert reader.text(node.get("t"), "t") is None
    assert reader.number(node.get("n"), "n") is None
    assert reader.flag(node.get("f"), "f") is None
    assert reader.texts(node.get("l"), "l") == ["texto"]
    assert reader.text(node.get("e"), "e") == ""
    assert [p.code for p in reader.problems] == ["bad-type"] * 3 + ["empty-text"]
    assert isinstance(node.get("t"), YSeq)
