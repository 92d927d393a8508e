"""Several clinics in one runner: the clinics file, and one serve answering two WhatsApp
numbers, each from its own catalog, history and report (SQLite and PostgreSQL)."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from runner_harness import (  # noqa: F401 - fixtures
    STAFF_TOKEN,
    base_config,
    embedder,
    prebuilt,
    until,
    waha,
)

from clinicflow.cli import main
from clinicflow.clinics import (
    ClinicsError,
    clinic_data_dir,
    clinic_database_url,
    load_clinics,
)
from clinicflow.clock import ManualClock
from clinicflow.database import ENV
from clinicflow.loader import bundled_catalog_path
from clinicflow.runner.clinics import CLINIC_APPS, clinic_config, create_clinics_app
from clinicflow.runner.config import ConfigError, RunnerConfig
from clinicflow.spool import Spool
from clinicflow.storage import Store
from clinicflow.testing.fake_waha import FakeWaha

PATIENT = "5511988887777@c.us"
OTHER = "5511977776666@c.us"
AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}
CLINICS_YAML = """\
clinics:
  florescer:
    session: default
    catalog: florescer
  sorriso:
    session: sorriso
    catalog: sorriso
  quebrada:
    session: quebrada
    catalog: quebrada
"""


def _catalogs(root: Path) -> None:
    """Three catalogs: the bundled one, one of another clinic (name, price), one broken."""
    for name in ("florescer", "sorriso", "quebrada"):
        shutil.copytree(bundled_catalog_path(), root / name)
    clinic = root / "sorriso" / "clinic.yaml"
    text = clinic.read_text(encoding="utf-8")
    assert "R$ 600" in text and "Clínica Florescer" in text
    text = text.replace("Clínica Florescer", "Clínica Sorriso").replace("R$ 600", "R$ 450")
    clinic.write_text(text, encoding="utf-8")
    broken = root / "quebrada" / "clinic.yaml"
    broken.write_text(broken.read_text(encoding="utf-8") + "\nhours: [sem: fechar\n")


# -- the clinics file -----------------------------------------------------------------------


def test_clinics_file_read_with_catalogs_relative_to_it(tmp_path: Path) -> None:
    _catalogs(tmp_path)
    (tmp_path / "clinics.yaml").write_text(CLINICS_YAML)
    clinics = load_clinics(tmp_path / "clinics.yaml")
    assert clinics.ids == ("florescer", "sorriso", "quebrada")
    assert clinics.get("sorriso").catalog == (tmp_path / "sorriso").resolve()
    assert clinics.by_session("sorriso") is clinics.get("sorriso")
    assert clinics.by_session("nobody") is None
    with pytest.raises(ClinicsError, match=r"nenhuma clínica 'x'.*florescer, sorriso"):
        clinics.get("x")


def test_clinics_file_problems_all_reported_with_lines(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "clinics.yaml").write_text(
        "clinics:\n"
        "  a:\n    session: s1\n    catalog: a\n    sesion: typo\n"
        "  B!:\n    session: s2\n    catalog: a\n"
        "  c:\n    session: s1\n    catalog: nowhere\n"
        "  d:\n    catalog: a\n"
    )
    with pytest.raises(ClinicsError) as caught:
        load_clinics(tmp_path / "clinics.yaml")
    found = {(p.code, p.line) for p in caught.value.problems}
    assert ("unknown-key", 5) in found  # sesion, with a hint
    assert ("bad-id", 6) in found
    assert ("duplicate-session", 10) in found
    assert ("missing-catalog", 11) in found
    assert ("missing-key", 13) in found
    assert "clinics.yaml:5:" in str(caught.value) and "session" in str(caught.value)


def test_clinics_file_unreadable_or_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ClinicsError, match="não dá para ler"):
        load_clinics(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("clinics: [\n")
    with pytest.raises(ClinicsError) as caught:
        load_clinics(tmp_path / "bad.yaml")
    assert caught.value.problems[0].code == "yaml-syntax"
    (tmp_path / "empty.yaml").write_text("clinics: {}\n")
    with pytest.raises(ClinicsError, match="nenhuma clínica"):
        load_clinics(tmp_path / "empty.yaml")


def test_ids_sharing_a_schema_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "c.yaml").write_text(
        "clinics:\n  a-b:\n    session: s1\n    catalog: a\n"
        "  a_b:\n    session: s2\n    catalog: a\n"
    )
    with pytest.raises(ClinicsError, match="clinic_a_b"):
        load_clinics(tmp_path / "c.yaml")


def test_clinic_namespaces() -> None:
    assert clinic_data_dir("/srv/data", "sorriso") == Path("/srv/data/clinics/sorriso")
    assert clinic_database_url(None, "a") is None
    assert clinic_database_url("sqlite:////x/clinicflow.db", "a") is None
    assert clinic_database_url("postgresql://u:p@h/db", "a-b") == (
        "postgresql://u:p@h/db?options=-csearch_path%3Dclinic_a_b"
    )
    # The deployment's own schema (and other options) kept: the clinic's schema within it.
    assert clinic_database_url(
        "postgresql://h/db?sslmode=disable&options=-c%20statement_timeout%3D5%20-csearch_path%3Dacme",
        "a",
    ) == (
        "postgresql://h/db?sslmode=disable&options=-c%20statement_timeout%3D5%20-csearch_path%3Dacme_a"
    )


def test_clinic_config_takes_the_clinic_s_session_catalog_data_and_key(tmp_path: Path) -> None:
    _catalogs(tmp_path)
    (tmp_path / "clinics.yaml").write_text(
        CLINICS_YAML + "  outra:\n    session: outra\n    catalog: florescer\n"
        "    waha_url: http://waha-2:3000\n    waha_api_key_env: WAHA2_KEY\n"
    )
    clinics = load_clinics(tmp_path / "clinics.yaml")
    config = RunnerConfig(waha_api_key="k1", data_dir=tmp_path / "data", clinics=Path("x"))
    sorriso = clinic_config(config, clinics.get("sorriso"), {})
    assert (sorriso.waha_session, sorriso.catalog) == ("sorriso", (tmp_path / "sorriso").resolve())
    assert sorriso.data_dir == tmp_path / "data" / "clinics" / "sorriso"
    assert (sorriso.waha_api_key, sorriso.waha_url, sorriso.clinics) == (
        "k1",
        config.waha_url,
        None,
    )
    assert (
        sorriso.database_url
        == f"sqlite:///{tmp_path / 'data' / 'clinics' / 'sorriso'}/clinicflow.db"
    )
    # A deployment on one SQLite file named in the environment: each clinic keeps its own.
    env = {"CLINICFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/one.db"}
    assert clinic_config(config, clinics.get("sorriso"), env).database_url == sorriso.database_url
    on_pg = clinic_config(
        config, clinics.get("sorriso"), {"CLINICFLOW_DATABASE_URL": "postgresql://h/db"}
    )
    assert on_pg.database_url == "postgresql://h/db?options=-csearch_path%3Dclinic_sorriso"
    outra = clinic_config(config, clinics.get("outra"), {"WAHA2_KEY": "k2"})
    assert (outra.waha_url, outra.waha_api_key) == ("http://waha-2:3000", "k2")
    with pytest.raises(ConfigError, match="WAHA2_KEY"):
        clinic_config(config, clinics.get("outra"), {})


# -- one serve, several clinics --------------------------------------------------------------


@pytest.fixture
async def served(
    tmp_path: Path, prebuilt: Path, waha: FakeWaha, backend: str
) -> AsyncIterator[dict[str, Any]]:
    _catalogs(tmp_path)
    (tmp_path / "clinics.yaml").write_text(CLINICS_YAML)
    for session in ("sorriso", "quebrada"):
        waha.sessions[session] = "WORKING"
        waha.session_configs[session] = {"webhooks": []}
    data = tmp_path / "data"
    for clinic_id in ("florescer", "sorriso", "quebrada"):  # the index is built once
        shutil.copytree(prebuilt, clinic_data_dir(data, clinic_id))
    clinics = load_clinics(tmp_path / "clinics.yaml")
    app = create_clinics_app(base_config(waha, data, workers=0), clinics, clock=ManualClock())
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield {"app": app, "server": server, "http": http, "root": tmp_path, "data": data}
    await server.close()


def _sent(waha: FakeWaha, session: str, chat: str) -> list[str]:
    return [b["text"] for b in waha.sent if b.get("session") == session and b["chatId"] == chat]


async def _say(waha: FakeWaha, url: str, session: str, chat: str, text: str) -> None:
    request = waha.webhook("message", waha.text_message(chat, text), session=session)
    assert await waha.deliver(url, request, retries=0) == [200]


async def test_two_clinics_each_answered_from_its_own_catalog_and_reported_apart(
    served: dict[str, Any], waha: FakeWaha
) -> None:
    server: TestServer = served["server"]
    shared = str(server.make_url("/webhooks/waha"))
    own = str(server.make_url("/c/sorriso/webhooks/waha"))
    # The same patient writes to both numbers; a second patient to the first one only.
    await _say(waha, shared, "default", PATIENT, "oi, quanto custa a consulta?")
    await _say(waha, own, "sorriso", PATIENT, "oi, quanto custa a consulta?")
    await _say(waha, shared, "default", OTHER, "oi")
    await until(lambda: any("R$ 600" in t for t in _sent(waha, "default", PATIENT)), 30)
    await until(lambda: any("R$ 450" in t for t in _sent(waha, "sorriso", PATIENT)), 30)
    await until(lambda: bool(_sent(waha, "default", OTHER)), 30)
    florescer, sorriso = _sent(waha, "default", PATIENT), _sent(waha, "sorriso", PATIENT)
    assert not any("R$ 450" in t or "Sorriso" in t for t in florescer)
    assert not any("R$ 600" in t or "Florescer" in t for t in sorriso)
    assert _sent(waha, "quebrada", PATIENT) == []

    # Each clinic's staff API sees its own conversations only; the admin token sees each.
    http: aiohttp.ClientSession = served["http"]
    chats = {}
    for clinic_id in ("florescer", "sorriso"):
        async with http.get(
            server.make_url(f"/c/{clinic_id}/staff/conversations?status=all"), headers=AUTH
        ) as r:
            assert r.status == 200
            chats[clinic_id] = {c["chat_id"] for c in (await r.json())["conversations"]}
    assert chats == {"florescer": {PATIENT, OTHER}, "sorriso": {PATIENT}}

    # Each clinic's report counts its own conversations only.
    args = ["report", "--clinics", str(served["root"] / "clinics.yaml"),
            "--data", str(served["data"]),
            "--since", "2026-03-01", "--until", "2026-03-03", "--json"]  # fmt: skip
    counts = {}
    for clinic_id in ("florescer", "sorriso"):
        result = CliRunner().invoke(main, [*args, "--clinic", clinic_id])
        assert result.exit_code == 0, result.output
        counts[clinic_id] = json.loads(result.output)["conversations"]
    assert counts == {"florescer": 2, "sorriso": 1}
    # Without --clinic: every clinic side by side; the broken catalog is said, the others
    # reported all the same (exit code 1 for the one that could not be).
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    side_by_side = json.loads(result.stdout)
    assert side_by_side["florescer"]["conversations"] == 2
    assert side_by_side["sorriso"]["conversations"] == 1
    assert "clinic.yaml" in side_by_side["quebrada"]["error"]
    assert "quebrada" in result.stderr


async def test_a_broken_catalog_stops_its_clinic_only(
    served: dict[str, Any], waha: FakeWaha
) -> None:
    server: TestServer = served["server"]
    http: aiohttp.ClientSession = served["http"]
    broken = str(server.make_url("/c/quebrada/webhooks/waha"))
    # Its webhooks are kept (spooled) for when it starts again; its pages say it is down.
    await _say(waha, broken, "quebrada", PATIENT, "oi")
    await _say(waha, str(server.make_url("/webhooks/waha")), "quebrada", OTHER, "oi")
    assert len(Spool(clinic_data_dir(served["data"], "quebrada") / "inbox.spool")) == 2
    async with http.get(server.make_url("/c/quebrada/inbox")) as r:
        assert r.status == 503
        told = (await r.json())["error"]
    # Anyone is told it is down and the kind of failure; never the server's paths.
    assert told.startswith("clínica fora do ar (ScriptError)") and "/" not in told.split(";")[0]
    assert "clinic.yaml" not in told
    # The others serve.
    await _say(waha, str(server.make_url("/webhooks/waha")), "sorriso", PATIENT, "oi")
    await until(lambda: bool(_sent(waha, "sorriso", PATIENT)), 30)
    async with http.get(server.make_url("/health")) as r:
        health = await r.json()
    assert r.status == 200 and health["status"] == "degraded"
    assert health["clinics"]["quebrada"]["status"] == "down"
    assert "ScriptError" in health["clinics"]["quebrada"]["error"]
    assert "clinic.yaml" not in health["clinics"]["quebrada"]["error"]
    assert health["clinics"]["sorriso"]["status"] == "ok"
    # The administrator's list of clinics; nobody else's.
    async with http.get(server.make_url("/clinics"), headers=AUTH) as r:
        listed = {c["id"]: c for c in (await r.json())["clinics"]}
    assert [listed[c]["status"] for c in ("florescer", "sorriso", "quebrada")] == [
        "up",
        "up",
        "down",
    ]
    assert listed["sorriso"]["webhook"] == "/c/sorriso/webhooks/waha"
    async with http.get(server.make_url("/clinics")) as r:
        assert r.status == 401
    # A session no clinic has is acknowledged and ignored; a body that is no webhook, 400.
    request = waha.webhook("message", waha.text_message(PATIENT, "oi"), session="nobody")
    async with http.post(server.make_url("/webhooks/waha"), data=request.body,
                         headers=request.headers) as r:  # fmt: skip
        assert r.status == 200 and (await r.json())["status"] == "ignored"
    async with http.post(server.make_url("/webhooks/waha"), data=b"{not json") as r:
        assert r.status == 400

    # The catalog fixed and the runner started again: what waited in the spool is answered.
    await server.close()
    assert _sent(waha, "quebrada", PATIENT) == []
    shutil.copy(bundled_catalog_path() / "clinic.yaml", served["root"] / "quebrada" / "clinic.yaml")
    clinics = load_clinics(served["root"] / "clinics.yaml")
    config = base_config(waha, served["data"], workers=0)
    again = TestServer(create_clinics_app(config, clinics, clock=ManualClock()))
    await again.start_server()
    try:
        await until(lambda: bool(_sent(waha, "quebrada", PATIENT)), 30)
        await until(lambda: bool(_sent(waha, "quebrada", OTHER)), 30)
    finally:
        await again.close()
    assert set(served["app"][CLINIC_APPS]) == {"florescer", "sorriso", "quebrada"}


# -- the command line, one clinic at a time ---------------------------------------------------


@pytest.mark.usefixtures("backend")
def test_commands_act_on_one_clinic_with_clinic(tmp_path: Path) -> None:
    _catalogs(tmp_path)
    (tmp_path / "clinics.yaml").write_text(CLINICS_YAML)
    env = {"CLINICFLOW_DATA": str(tmp_path / "data")}
    clinics = ["--clinics", str(tmp_path / "clinics.yaml")]
    runner = CliRunner(env=env)
    added = runner.invoke(
        main, [*clinics, "--clinic", "sorriso", "staff", "add", "Ana", "--role", "secretary",
               "--password-stdin"], input="uma senha bem comprida\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = {
        clinic_id: runner.invoke(main, [*clinics, "--clinic", clinic_id, "staff", "list"])
        for clinic_id in ("sorriso", "florescer")
    }
    assert listed["sorriso"].exit_code == 0 and "Ana" in listed["sorriso"].output
    assert "Ana" not in listed["florescer"].output
    assert (tmp_path / "data" / "clinics" / "sorriso").is_dir()
    # Nothing of the clinic's stays in the environment after the command (the runner of
    # these tests restores only what it was given: CLINICFLOW_DATA).
    assert os.environ.get("WAHA_SESSION") != "sorriso"
    assert os.environ.get("CLINICFLOW_CATALOG") != str((tmp_path / "sorriso").resolve())
    unknown = runner.invoke(main, [*clinics, "--clinic", "nenhuma", "staff", "list"])
    assert unknown.exit_code == 2 and "nenhuma clínica 'nenhuma'" in unknown.output
    alone = runner.invoke(main, ["--clinic", "sorriso", "staff", "list"])
    assert alone.exit_code == 2 and "--clinics" in alone.output


async def test_each_clinic_s_retention_runs_on_its_own_history(
    tmp_path: Path, prebuilt: Path, waha: FakeWaha, backend: str
) -> None:
    # The runner redacts old texts at start (then daily): in each clinic's own database, not in
    # the deployment's (its base schema on PostgreSQL, where none of them lives).
    _catalogs(tmp_path)
    (tmp_path / "clinics.yaml").write_text(CLINICS_YAML.split("  quebrada:")[0])
    data = tmp_path / "data"
    for clinic_id in ("florescer", "sorriso"):
        shutil.copytree(prebuilt, clinic_data_dir(data, clinic_id))
        store = Store(clinic_data_dir(data, clinic_id),
                      clinic_database_url(os.environ.get(ENV), clinic_id))  # fmt: skip
        with store.conn:
            store.conn.execute(
                "INSERT INTO messages (chat_id, direction, text, at) VALUES (?, 'in', ?, ?)",
                (PATIENT, f"meu nome é Ana, da {clinic_id}", "2020-01-02T12:00:00+00:00"),
            )
        store.close()
    clinics = load_clinics(tmp_path / "clinics.yaml")
    app = create_clinics_app(base_config(waha, data, workers=0), clinics, clock=ManualClock())
    server = TestServer(app)
    await server.start_server()
    try:
        for clinic_id in ("florescer", "sorriso"):
            store = Store(clinic_data_dir(data, clinic_id),
                          clinic_database_url(os.environ.get(ENV), clinic_id))  # fmt: skip

            def texts(store: Store = store) -> list[str]:
                rows = store.query("SELECT text FROM messages WHERE chat_id = ?", (PATIENT,))
                return [r["text"] for r in rows]

            await until(lambda texts=texts: texts() == ["[removido]"], 30)
            store.close()
    finally:
        await server.close()


# -- the clinics file, refused when empty or wrong ---------------------------------------------


def test_an_empty_clinics_file_is_refused(tmp_path: Path) -> None:
    for text in ("", "# as clínicas do grupo\n\n", "\n  \n"):
        (tmp_path / "clinics.yaml").write_text(text)
        with pytest.raises(ClinicsError, match="o arquivo de clínicas está vazio") as caught:
            load_clinics(tmp_path / "clinics.yaml")
        assert [(p.code, p.line) for p in caught.value.problems] == [("empty", 1)]
        assert "clinics.yaml:1:1:" in str(caught.value)


def test_clinics_file_catalog_session_url_and_encoding_checked(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "notes.txt").write_text("not a catalog")
    (tmp_path / "clinics.yaml").write_text(
        "clinics:\n"
        "  a:\n    session: ../x\n    catalog: notes.txt\n"  # 3, 4
        "  b:\n    session: duas palavras\n    catalog: a\n"  # 6
        "  c:\n    session: 123\n    catalog: a\n"  # 9
        "  d:\n    session: s-d\n    catalog: a\n    waha_url: waha-2:3000\n"  # 14
        "  e:\n    session: s_e\n    catalog: a\n    waha_url: ftp://waha\n"  # 18
    )
    with pytest.raises(ClinicsError) as caught:
        load_clinics(tmp_path / "clinics.yaml")
    found = {(p.code, p.line): p.message for p in caught.value.problems}
    assert set(found) == {("bad-session", 3), ("missing-catalog", 4), ("bad-session", 6),
                          ("bad-session", 9), ("bad-url", 14), ("bad-url", 18)}  # fmt: skip
    assert "é um arquivo, não uma pasta" in found[("missing-catalog", 4)]
    assert 'session: "123"' in found[("bad-session", 9)]  # YAML would read 007 as 7: quote it
    (tmp_path / "clinics.yaml").write_text(
        'clinics:\n  a:\n    session: "123"\n    catalog: a\n'
        "    waha_url: https://waha-2.example:3000\n"
    )
    clinic = load_clinics(tmp_path / "clinics.yaml").get("a")
    assert (clinic.session, clinic.waha_url) == ("123", "https://waha-2.example:3000")
    (tmp_path / "latin1.yaml").write_bytes("clinics:\n  a:  # clínica\n".encode("latin-1"))
    with pytest.raises(ClinicsError, match="não é um texto UTF-8"):
        load_clinics(tmp_path / "latin1.yaml")


# -- the command line and a clinics file ------------------------------------------------------


def _deployment(tmp_path: Path, *, broken: bool = False) -> list[str]:
    tmp_path.mkdir(exist_ok=True)
    _catalogs(tmp_path)
    text = CLINICS_YAML if broken else CLINICS_YAML.split("  quebrada:")[0]
    (tmp_path / "clinics.yaml").write_text(text)
    return ["--clinics", str(tmp_path / "clinics.yaml")]


@pytest.mark.usefixtures("backend")
def test_clinic_data_is_the_deployment_root_s_and_a_command_data_refused(tmp_path: Path) -> None:
    clinics = _deployment(tmp_path)
    root = tmp_path / "root"
    store = Store(
        clinic_data_dir(root, "sorriso"), clinic_database_url(os.environ.get(ENV), "sorriso")
    )
    with store.conn:
        store.conn.execute(
            "INSERT INTO messages (chat_id, direction, text, at) VALUES (?, 'in', ?, ?)",
            (PATIENT, "meu nome é Ana", "2020-01-02T12:00:00+00:00"),
        )
    store.close()
    runner = CliRunner(env={"CLINICFLOW_DATA": None})
    sorriso = [*clinics, "--data", str(root), "--clinic", "sorriso"]
    export = runner.invoke(main, [*sorriso, "patient", "export", "+55 11 98888-7777"])
    assert export.exit_code == 0, export.output
    assert "meu nome é Ana" in export.output
    added = runner.invoke(main, [*sorriso, "staff", "add", "Bia", "--role", "secretary",
                                 "--password-stdin"], input="uma senha bem comprida\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "Bia" in runner.invoke(main, [*sorriso, "staff", "list"]).output
    assert (
        "Bia"
        not in runner.invoke(
            main, [*clinics, "--data", str(root), "--clinic", "florescer", "staff", "list"]
        ).output
    )
    # A --data after the command is ambiguous (the root? the clinic's folder?): refused, saying
    # where to put it, and nothing is written anywhere.
    phone = "+55 11 98888-7777"
    commands = [
        [
            "staff",
            "add",
            "Carla",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
            str(tmp_path / "sq"),
        ],
        ["patient", "export", phone, f"--data={tmp_path / 'sq'}"],
        ["patient", "erase", phone, "--yes", "--data", str(root)],
    ]
    for command in commands:
        refused = runner.invoke(main, [*clinics, "--clinic", "sorriso", *command],
                                input="uma senha bem comprida\n")  # fmt: skip
        assert refused.exit_code == 2, refused.output
        assert "--data vai antes do comando" in refused.output
        assert "clinics/sorriso" in refused.output
    assert not (tmp_path / "sq").exists()
    again = runner.invoke(main, [*sorriso, "patient", "export", "+55 11 98888-7777"])
    assert "meu nome é Ana" in again.output  # the erase was refused, not run
    # A database URL after the command would bypass the clinic's own: refused too.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    for command in (["db", "migrate", "--database-url", other],
                    ["db", "migrate", f"--database-url={other}"]):  # fmt: skip
        refused = runner.invoke(main, [*sorriso, *command])
        assert refused.exit_code == 2 and "tire o --database-url" in refused.output
    assert not (tmp_path / "other.db").exists()


@pytest.mark.usefixtures("backend")
def test_a_clinics_file_without_clinic_acts_on_all_or_asks_which(tmp_path: Path) -> None:
    clinics = _deployment(tmp_path)
    root = tmp_path / "root"
    runner = CliRunner(env={"CLINICFLOW_DATA": str(root), "CLINICFLOW_CLINICS": None})
    for command in (["staff", "list"], ["db", "migrate"], ["patient", "export", "11988887777"],
                    ["hours"], ["retention", "--days", "30"]):  # fmt: skip
        refused = runner.invoke(main, [*clinics, *command])
        assert refused.exit_code == 2, refused.output
        assert "qual clínica? use --clinic florescer|sorriso" in refused.output
    from_env = CliRunner(env={"CLINICFLOW_DATA": str(root),
                              "CLINICFLOW_CLINICS": str(tmp_path / "clinics.yaml")})  # fmt: skip
    refused = from_env.invoke(main, ["staff", "list"])
    assert refused.exit_code == 2 and "qual clínica?" in refused.output
    assert not (root / "clinicflow.db").exists()
    # What does not touch a clinic's data still works.
    assert from_env.invoke(main, ["--version"]).exit_code == 0
    helped = from_env.invoke(main, ["staff", "add", "--help"])
    assert helped.exit_code == 0 and "--role" in helped.output
    # report acts on every clinic, from the group's option as from the environment...
    for invoked in (runner.invoke(main, [*clinics, "report", "--json"]),
                    from_env.invoke(main, ["report", "--json"])):  # fmt: skip
        assert invoked.exit_code == 0, invoked.output
        assert set(json.loads(invoked.output)) == {"florescer", "sorriso"}
    # ...and on one with --clinic (CLINICFLOW_CLINICS does not make it report every clinic).
    one = from_env.invoke(main, ["--clinic", "sorriso", "report", "--json"])
    assert one.exit_code == 0, one.output
    assert not {"florescer", "sorriso"} & set(json.loads(one.output))


def test_lint_with_a_clinics_file_checks_it_and_every_catalog(tmp_path: Path) -> None:
    runner = CliRunner(env={"CLINICFLOW_CLINICS": None})
    good = runner.invoke(main, [*_deployment(tmp_path / "good"), "lint"])
    assert good.exit_code == 0, good.output
    assert "== florescer (" in good.output and "== sorriso (" in good.output
    clinics = _deployment(tmp_path, broken=True)
    broken = runner.invoke(main, [*clinics, "lint"])
    assert broken.exit_code == 1
    quebrada = broken.output.split("== quebrada (")[1]
    assert "clinic.yaml:" in quebrada and "error" in quebrada
    as_json = runner.invoke(main, [*clinics, "lint", "--json"])
    assert as_json.exit_code == 1
    assert {p["clinic"] for p in json.loads(as_json.output)} == {"quebrada"}
    # The clinics file itself: its problems as file:line:col, exit 1; unreadable, exit 2.
    (tmp_path / "bad.yaml").write_text("clinics:\n  a:\n    session: s\n    catalog: nowhere\n")
    bad = runner.invoke(main, ["--clinics", str(tmp_path / "bad.yaml"), "lint"])
    assert bad.exit_code == 1 and "bad.yaml:4:14: error missing-catalog" in bad.output
    (tmp_path / "empty.yaml").write_text("# nada ainda\n")
    empty = runner.invoke(main, ["--clinics", str(tmp_path / "empty.yaml"), "lint"])
    assert empty.exit_code == 1 and "empty.yaml:1:1: error empty" in empty.output
    missing = runner.invoke(main, ["--clinics", str(tmp_path / "none.yaml"), "lint"])
    assert missing.exit_code == 2 and "none.yaml" in missing.output


async def test_a_webhook_posted_to_another_clinic_s_path_reaches_its_own_clinic(
    served: dict[str, Any], waha: FakeWaha, caplog: pytest.LogCaptureFixture
) -> None:
    # WAHA's webhook of sorriso's number pointed at florescer's path by mistake: sorriso
    # answers it (florescer never does), and the mistake is in the log.
    server: TestServer = served["server"]
    wrong = str(server.make_url("/c/florescer/webhooks/waha"))
    await _say(waha, wrong, "sorriso", PATIENT, "oi, quanto custa a consulta?")
    await until(lambda: any("R$ 450" in t for t in _sent(waha, "sorriso", PATIENT)), 30)
    assert _sent(waha, "default", PATIENT) == []
    assert "event=webhook_misdirected" in caplog.text and "path=/c/florescer/" in caplog.text
    # A session no clinic has, on a clinic's path: not stored, said in the log.
    await _say(waha, wrong, "nobody", OTHER, "oi")
    assert "session=nobody" in caplog.text


async def test_signed_webhooks_are_checked_before_they_are_routed(
    tmp_path: Path, prebuilt: Path, waha: FakeWaha
) -> None:
    # With WAHA_HMAC_KEY, an unsigned caller gets 401 whatever the session: it cannot learn
    # which sessions the deployment serves.
    _catalogs(tmp_path)
    (tmp_path / "clinics.yaml").write_text(CLINICS_YAML.split("  sorriso:")[0])
    shutil.copytree(prebuilt, clinic_data_dir(tmp_path / "data", "florescer"))
    config = base_config(waha, tmp_path / "data", workers=0, waha_hmac_key="hook-key")
    app = create_clinics_app(config, load_clinics(tmp_path / "clinics.yaml"), clock=ManualClock())
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            for session in ("default", "nobody"):
                unsigned = waha.webhook(
                    "message", waha.text_message(PATIENT, "oi"), session=session
                )
                headers = {k: v for k, v in unsigned.headers.items() if k != "X-Webhook-Hmac"}
                async with http.post(server.make_url("/webhooks/waha"), data=unsigned.body,
                                     headers=headers) as r:  # fmt: skip
                    assert r.status == 401
            signed = waha.webhook(
                "message", waha.text_message(PATIENT, "oi"), session="default", hmac_key="hook-key"
            )
            async with http.post(server.make_url("/webhooks/waha"), data=signed.body,
                                 headers=signed.headers) as r:  # fmt: skip
                assert r.status == 200
    finally:
        await server.close()


async def test_each_clinic_s_log_lines_say_which_clinic(
    served: dict[str, Any], waha: FakeWaha, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clinicflow.runner")
    server: TestServer = served["server"]
    await _say(waha, str(server.make_url("/webhooks/waha")), "sorriso", PATIENT, "oi")
    await until(lambda: bool(_sent(waha, "sorriso", PATIENT)), 30)
    turns = [r.getMessage() for r in caplog.records if "event=turn " in r.getMessage()]
    assert turns and all("clinic=sorriso" in line for line in turns)
    # A line of the shared route itself names no clinic.
    await _say(waha, str(server.make_url("/webhooks/waha")), "nobody", OTHER, "oi")
    unknown = [
        r.getMessage() for r in caplog.records if "webhook_unknown_session" in r.getMessage()
    ]
    assert unknown and "clinic=" not in unknown[-1]
