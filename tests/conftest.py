"""Both storage backends: a throwaway PostgreSQL cluster, started once per session.

``backend`` is parametrised (through the module-scoped ``module_backend``) over ``sqlite`` and
``postgresql``; a test module that runs on both says
``pytestmark = pytest.mark.usefixtures("backend")``, and a module-scoped fixture that opens an
engine asks for ``module_backend``. With ``postgresql`` every test
gets a schema of its own in one throwaway cluster (``CLINICFLOW_DATABASE_URL`` points at it,
``search_path`` set in the URL), so tests stay as independent as their SQLite data dirs.

The cluster: ``CLINICFLOW_TEST_POSTGRES_URL`` (a server someone started, e.g. CI) or, else,
``initdb`` + ``pg_ctl`` from PATH or Debian's ``/usr/lib/postgresql/*/bin`` into a temporary
directory, on a free local port, as an unprivileged user (``postgres`` when the tests run as
root: PostgreSQL refuses root), stopped at the end. No server binary: the PostgreSQL half is
skipped with that reason, except under ``CI=1``, where it fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_ENV = "CLINICFLOW_TEST_POSTGRES_URL"
TEST_DB = "clinicflow_test"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(command: list[str]) -> list[str]:
    """Run as an unprivileged user when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "1":
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
    pytest.skip(f"PostgreSQL backend not tested: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A base URL of a PostgreSQL server with an empty ``clinicflow_test`` database."""
    given = os.environ.get(SERVER_ENV)
    if given:
        _create_db(given)
        yield given.rsplit("/", 1)[0] + f"/{TEST_DB}"
        return
    bindir = _bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binary (initdb, pg_ctl) on this machine")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run the server")
    root = Path(tempfile.mkdtemp(prefix="clinicflow-pg-"))
    if os.geteuid() == 0:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", _free_port()
    subprocess.run(
        _as_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True, capture_output=True,
    )  # fmt: skip
    # A throwaway cluster: no fsync (tests measure behaviour, not durability).
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    )
    subprocess.run(
        _as_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                  str(root / "log"), "-w", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    base = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        _create_db(base)
        yield f"postgresql://postgres@127.0.0.1:{port}/{TEST_DB}"
    finally:
        subprocess.run(
            _as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _create_db(base: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn, contextlib.suppress(psycopg.errors.DuplicateDatabase):
        conn.execute(f"CREATE DATABASE {TEST_DB}")


def fresh_schema(server: str) -> str:
    """A URL whose tables land in a new, empty schema of the test database."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{server}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend of a whole module (its module-scoped engines included): the parameter."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "sqlite":
            patch.delenv("CLINICFLOW_DATABASE_URL", raising=False)
        else:
            server = request.getfixturevalue("postgres_server")
            patch.setenv("CLINICFLOW_DATABASE_URL", fresh_schema(server))
        yield str(request.param)


@pytest.fixture
def backend(
    module_backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The storage backend of this test: on PostgreSQL, a schema of its own."""
    if module_backend == "postgresql":
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("CLINICFLOW_DATABASE_URL", fresh_schema(server))
    return module_backend
