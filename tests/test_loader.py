from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from clinicflow.durations import BadTimeText, parse_day_hours, parse_duration, weekday
from clinicflow.errors import CatalogNotFound, ScriptError
from clinicflow.loader import (
    bundled_catalog_path,
    load_catalog,
    load_clinic,
    load_script,
    read_files,
)
from clinicflow.model import OnExhausted
from clinicflow.yamlsrc import YMap, parse

DATA = Path(__file__).parent / "data"
MIN = DATA / "catalog_min"


def _script_files() -> list[Path]:
    folders = [bundled_catalog_path(), MIN]
    return [
        path
        for folder in folders
        for path in sorted(folder.glob("*.yaml"))
        if path.name != "clinic.yaml" and not path.name.startswith("_")
    ]


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in _script_files()]
)
def test_round_trip_of_every_catalog_script(path: Path) -> None:
    script = load_script(path)
    node, problems = parse(path.read_text(encoding="utf-8"), str(path))
    assert not problems
    assert isinstance(node, YMap)
    states = node.get("states")
    slots = node.get("slots")
    assert isinstance(states, YMap)
    assert [state.name for state in script.states] == list(states.entries)
    assert [slot.name for slot in script.slots] == (
        list(slots.entries) if isinstance(slots, YMap) else []
    )
    assert script.has_state(script.start)
    assert script.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert script.version
    for state in script.states:
        assert state.pos.file == str(path) and state.pos.line > 0


def test_bundled_catalog_loads() -> None:
    catalog = load_catalog()
    assert catalog.clinic.name
    assert Path(catalog.root) == bundled_catalog_path()
    assert len({script.id for script in catalog.scripts}) == len(catalog.scripts)


def test_min_catalog_values() -> None:
    catalog = load_catalog(MIN)
    script = catalog.scripts[0]
    assert script.id == "consulta"
    # `no` is a state name and an option value, never a boolean.
    assert script.state("no").end
    motivo = script.slot("motivo")
    assert motivo is not None
    assert [option.value for option in motivo.options] == ["rotina", "no"]
    assert motivo.options[1].synonyms == ("outro", "on")
    assert motivo.on_exhausted is not None
    assert motivo.on_exhausted == OnExhausted("goto", "agendar", motivo.on_exhausted.pos)
    nome = script.slot("nome")
    assert nome is not None and nome.on_exhausted is not None
    assert nome.on_exhausted.action == "skip"
    explica = script.state("explica")
    assert explica.follow_ups[0].after_seconds == 7200
    assert explica.menu is not None and [i.go for i in explica.menu.items] == ["agendar", "no"]
    assert script.on == (("schedule", "agendar"),)
    clinic = catalog.clinic
    assert clinic.fact("nome") == "Clínica Teste"  # the clinic's name is a fact by default
    assert clinic.hours.weekly[0] == ((480, 720), (780, 1080))
    assert clinic.hours.weekly[6] == ()
    assert clinic.hours.holidays == ("2026-12-25",)
    assert clinic.text("welcome").startswith("Olá")


def test_catalog_digest_follows_content(tmp_path: Path) -> None:
    copy = tmp_path / "cat"
    shutil.copytree(MIN, copy)
    first = load_catalog(copy).digest
    assert load_catalog(copy).digest == first
    (copy / "_rascunho.yaml").write_text("isto: [não é lido\n", encoding="utf-8")
    assert load_catalog(copy).digest == first  # files starting with _ are ignored
    path = copy / "consulta.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Até breve!", "Tchau!"), "utf-8")
    assert load_catalog(copy).digest != first


def test_errors_are_collected_not_first_only(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "id: x\ntitle: X\nstart: a\nstates:\n  a:\n    nxt: b\n    say: ''\n", encoding="utf-8"
    )
    with pytest.raises(ScriptError) as info:
        load_script(path)
    codes = {problem.code for problem in info.value.problems}
    assert {"missing-version", "unknown-key", "empty-text", "dead-end"} <= codes
    assert str(path) in str(info.value)


def test_missing_catalog_is_catalog_not_found(tmp_path: Path) -> None:
    with pytest.raises(CatalogNotFound) as info:
        load_catalog(tmp_path / "nada")
    assert info.value.exit_code == 2
    with pytest.raises(CatalogNotFound):
        load_catalog(tmp_path)  # a folder without clinic.yaml
    with pytest.raises(CatalogNotFound):
        load_clinic(tmp_path / "clinic.yaml")


def test_load_clinic_and_script_alone() -> None:
    assert load_clinic(MIN / "clinic.yaml").name == "Clínica Teste"
    assert load_script(MIN / "consulta.yaml").id == "consulta"


def test_script_alone_reads_sibling_clinic_for_reference() -> None:
    reading = read_files([MIN / "consulta.yaml"])
    assert reading.clinic is not None
    assert reading.files == (str(MIN / "consulta.yaml"),)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30m", 1800, id="minutes"),
        pytest.param("2h", 7200, id="hours"),
        pytest.param("1d", 86400, id="day"),
        pytest.param("1h30m", 5400, id="mixed"),
        pytest.param("1h 30min", 5400, id="spaced"),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 horas", "0m", "h", "30s", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadTimeText):
        parse_duration(text)


def test_hours() -> None:
    assert parse_day_hours("08:00-12:00, 13:00-18:00") == ((480, 720), (780, 1080))
    assert parse_day_hours("8-12") == ((480, 720),)
    assert parse_day_hours("Fechado") == ()
    assert parse_day_hours("closed") == ()
    assert weekday("sáb") == 5 and weekday("mon") == 0 and weekday("domingo") == 6
    for bad in ("12:00-08:00", "08:00", "25:00-26:00"):
        with pytest.raises(BadTimeText):
            parse_day_hours(bad)
    with pytest.raises(BadTimeText):
        weekday("feriado")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        pytest.param("25:00-18:00", "25:00 não é uma hora do dia", id="hour-25"),
        pytest.param("08:00-24:30", "24:30 não é uma hora do dia", id="after-midnight"),
        pytest.param("08:75-12:00", "08:75 não é uma hora do dia", id="minute-75"),
        pytest.param("18:00-08:00", "abre depois de fechar", id="closes-before-opening"),
    ],
)
def test_an_hour_that_is_not_an_hour_says_so(text: str, said: str) -> None:
    with pytest.raises(BadTimeText, match=said):
        parse_day_hours(text)
    assert parse_day_hours("08:00-24:00") == ((480, 1440),)
