"""The runner outlives a lost PostgreSQL connection (a server restart, a failover)."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import os

import psycopg
import pytest
from runner_harness import (  # noqa: F401 - fixtures
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
)

pytestmark = pytest.mark.usefixtures("backend")

PATIENT = "5511988887777@c.us"


def _cut_every_connection() -> int:
    """What a server restart does to a runner: every session of the database ends."""
    url = os.environ["CLINICFLOW_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


async def test_messages_after_a_lost_connection_are_answered(
    make_live: MakeLive, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no connection to lose")
    live = await make_live()
    assert await live.say(PATIENT, "oi") == [200]
    await live.settle()
    answered = len(live.sent_to(PATIENT))
    assert answered > 0
    assert _cut_every_connection() > 0
    # Acknowledged (stored, or kept in the spool while the connection comes back)...
    assert await live.say(PATIENT, "quanto custa a consulta?") == [200]
    # ...and answered, from the catalog, once.
    await until(lambda: any("R$ 600" in t for t in live.sent_to(PATIENT)), 30)
    async with live.http.get(live.url("/health")) as r:
        body = await r.json()
    assert r.status == 200 and body["database"] == "ok", body
    await live.settle()
    # Each reply sent once: as many texts reached WAHA as the outbox holds rows for her.
    rows = live.runtime.conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE chat_id = ? AND status = 'sent'", (PATIENT,)
    ).fetchone()[0]
    assert len(live.sent_to(PATIENT)) == rows > answered
    # The message was taken once (stored once, turned once).
    inbound = live.runtime.conn.execute(
        "SELECT COUNT(*) FROM inbox WHERE chat_id = ? AND status = 'done'", (PATIENT,)
    ).fetchone()[0]
    assert inbound == 2
