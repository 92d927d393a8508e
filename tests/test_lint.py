"""Every lint rule has a small broken file under tests/data/lint/ that triggers it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clinicflow.lint import lint_paths, summary
from clinicflow.loader import bundled_catalog_path
from clinicflow.problems import Problem

LINT = Path(__file__).parent / "data" / "lint"
MIN = Path(__file__).parent / "data" / "catalog_min"

# (files, code, severity, line, col); col None when only the line is meaningful.
CASES = [
    ("yaml_syntax.yaml", "yaml-syntax", "error", 10, 4),
    ("unknown_key.yaml", "unknown-key", "error", 10, 5),
    ("missing_key.yaml", "missing-key", "error", 9, 5),
    ("duplicate_state.yaml", "duplicate-id", "error", 12, 3),
    ("duplicate_faq_id.yaml", "duplicate-id", "error", 14, 9),
    ("dup_script_id_a.yaml,dup_script_id_b.yaml", "duplicate-id", "error", 1, 5),
    ("undefined_state.yaml", "undefined-state", "error", 10, 11),
    ("on_exhausted_goto.yaml", "undefined-state", "error", 12, 26),
    ("unreachable_state.yaml", "unreachable-state", "warning", 10, 3),
    ("dead_end.yaml", "dead-end", "error", 11, 3),
    ("undefined_slot.yaml", "undefined-slot", "error", 9, None),
    ("undefined_slot.yaml", "undefined-slot", "error", 10, 14),
    ("undefined_slot.yaml", "undefined-slot", "error", 12, 14),
    ("unknown_intent.yaml", "unknown-intent", "error", 11, 7),
    ("clinic_unknown_intent", "unknown-intent", "error", 33, 3),
    ("unknown_reason.yaml", "unknown-reason", "error", 10, 14),
    ("collect_without_limit.yaml", "collect-without-limit", "warning", 13, 14),
    ("cycle_without_exit.yaml", "cycle-without-exit", "error", 10, 3),
    ("empty_text.yaml", "empty-text", "error", 9, 10),
    ("duplicate_faq_question.yaml", "duplicate-faq-question", "error", 15, 17),
    ("missing_version.yaml", "missing-version", "error", 1, 1),
    ("bad_condition.yaml", "bad-condition", "error", 17, 23),
    ("bad_duration.yaml", "bad-duration", "error", 12, 16),
    ("bad_type.yaml", "bad-type", "error", 9, 5),
    ("bad_type.yaml", "bad-type", "error", 16, 10),
    ("bad_type.yaml", "bad-type", "error", 22, 11),
    ("bad_type.yaml", "bad-type", "error", 29, 10),
    ("clinic_bad_hours", "bad-type", "error", 10, 10),
    ("clinic_bad_hours", "bad-type", "error", 11, 5),
    ("clinic_missing_text", "missing-text", "error", 17, 3),
    ("unknown_fact.yaml", "unknown-fact", "error", 9, None),
    ("no_triggers.yaml", "no-triggers", "warning", 1, None),
    ("follow_ups_disabled.yaml", "follow-ups-disabled", "warning", 13, None),
    ("when_without_next.yaml", "when-without-next", "warning", 17, None),
    ("conflicting_keys.yaml", "conflicting-keys", "error", 8, 3),
    ("unused_slot.yaml", "unused-slot", "warning", 8, 3),
    ("bad_id.yaml", "bad-id", "error", 1, 5),
    ("clinic_no_staff", "no-staff", "warning", 13, None),
    ("clinic_bad_phone", "bad-phone", "error", 15, 12),
]


def _lint(files: str) -> list[Problem]:
    return lint_paths([LINT / name for name in files.split(",")])


@pytest.mark.parametrize(
    ("files", "code", "severity", "line", "col"),
    [pytest.param(*case, id=f"{case[1]}@{case[0].split(',')[0]}:{case[3]}") for case in CASES],
)
def test_rule_is_found_where_it_is(
    files: str, code: str, severity: str, line: int, col: int | None
) -> None:
    problems = _lint(files)
    found = [(p.code, p.severity, p.line) + ((p.col,) if col else ()) for p in problems]
    assert (code, severity, line) + ((col,) if col else ()) in found, "\n".join(map(str, problems))


def test_every_fixture_is_used_and_focused() -> None:
    """Each fixture's errors are only the rules it is about (plus known side effects)."""
    expected: dict[str, set[str]] = {}
    for files, code, *_ in CASES:
        expected.setdefault(files, set()).add(code)
    side_effects = {"bad_type.yaml": {"dead-end"}, "unknown_key.yaml": {"dead-end"}}
    for files, codes in expected.items():
        errors = {p.code for p in _lint(files) if p.severity == "error"}
        allowed = codes | side_effects.get(files, set())
        assert errors <= allowed, (files, errors - allowed)
    used = {name for files in expected for name in files.split(",")}
    on_disk = {p.name for p in LINT.glob("*.yaml") if p.name != "clinic.yaml"}
    on_disk |= {p.name for p in LINT.iterdir() if p.is_dir()}
    assert on_disk == used


def test_messages_name_allowed_keys_and_closest_match() -> None:
    (problem,) = [p for p in _lint("unknown_key.yaml") if p.code == "unknown-key"]
    assert "'nxt'" in problem.message and "'next'" in problem.message
    assert "say, collect, menu" in problem.message


def test_undefined_state_suggests_closest() -> None:
    (problem,) = [p for p in _lint("undefined_state.yaml") if p.code == "undefined-state"]
    assert "'fimm'" in problem.message and "'fim'" in problem.message


def test_problem_format_and_order() -> None:
    problems = _lint("bad_type.yaml")
    assert problems == sorted(problems)
    assert str(problems[0]).startswith(f"{LINT / 'bad_type.yaml'}:9:5: error bad-type: ")


def test_valid_catalog_has_no_problems() -> None:
    assert lint_paths([MIN]) == []


def test_yes_no_on_off_are_names() -> None:
    """A state called `no` and an option `on` are not booleans (catalog_min uses both)."""
    assert not [p for p in lint_paths([MIN / "consulta.yaml"]) if p.severity == "error"]


def test_bundled_catalog_has_no_errors_and_is_fast() -> None:
    start = time.perf_counter()
    problems = lint_paths([bundled_catalog_path()])
    elapsed = time.perf_counter() - start
    assert [str(p) for p in problems if p.severity == "error"] == []
    # Under a second on a quiet machine (speed is measured, not asserted); this bound only
    # catches a pathological slowdown, and holds on a machine shared with other work.
    assert elapsed < 10.0


@pytest.mark.parametrize(
    ("codes", "files", "expected"),
    [
        pytest.param([], 1, "0 erros, 0 avisos em 1 arquivo", id="none"),
        pytest.param(["error", "warning"], 7, "1 erro, 1 aviso em 7 arquivos", id="one-each"),
        pytest.param(
            ["error"] * 3 + ["warning"] * 2, 2, "3 erros, 2 avisos em 2 arquivos", id="plural"
        ),
    ],
)
def test_summary(codes: list[str], files: int, expected: str) -> None:
    problems = [Problem("f", 1, 1, sev, "x", "m") for sev in codes]  # type: ignore[arg-type]
    assert summary(problems, files) == expected


def test_staff_phones_are_normalised_at_load() -> None:
    from clinicflow.clinic_reader import read_clinic
    from clinicflow.loader import load_catalog
    from clinicflow.yamlsrc import parse

    node, _ = parse((LINT / "clinic_bad_phone" / "clinic.yaml").read_text(), "clinic.yaml")
    clinic, reader = read_clinic(node, "clinic.yaml")
    assert clinic is not None
    assert [s.phone for s in clinic.staff] == ["+55 (11) 1234", "5511990000001"]
    assert [p.code for p in reader.problems] == ["bad-phone"]
    assert clinic.country == "BR"
    assert [s.phone for s in load_catalog(MIN).clinic.staff] == ["5511999990000"]
