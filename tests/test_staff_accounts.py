"""Staff accounts, sessions and the login throttle as a library, and ``clinicflow staff``."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinicflow.cli import main
from clinicflow.clock import ManualClock
from clinicflow.staff.accounts import AccountError, Accounts
from clinicflow.staff.sessions import LoginThrottle, Sessions
from clinicflow.storage import DB_NAME, connect


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / DB_NAME)


def test_passwords_are_argon2_and_checked(conn: sqlite3.Connection) -> None:
    accounts = Accounts(conn)
    ana = accounts.add("  Ana   Souza ", "secretary", "senha-boa-123", "5511990000011")
    assert ana.name == "Ana Souza" and ana.available and ana.active
    stored = conn.execute("SELECT password_hash FROM staff_accounts").fetchone()[0]
    assert stored.startswith("$argon2id$") and "senha-boa-123" not in stored
    assert accounts.check_password("ana souza", "senha-boa-123") == ana
    assert accounts.check_password("Ana Souza", "senha-errada") is None
    assert accounts.check_password("Ninguém", "senha-boa-123") is None
    assert accounts.by_phone("5511990000011") == ana


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        pytest.param("Ana", "secretary", "curta", "8 caracteres", id="short-password"),
        pytest.param("Ana", "boss", "senha-boa-123", "função", id="unknown-role"),
        pytest.param("", "admin", "senha-boa-123", "nome", id="no-name"),
        pytest.param("ANA", "admin", "senha-boa-123", "já existe", id="taken-any-case"),
    ],
)
def test_bad_accounts_are_refused(
    conn: sqlite3.Connection, name: str, role: str, password: str, message: str
) -> None:
    accounts = Accounts(conn)
    accounts.add("Ana", "secretary", "senha-boa-123")
    with pytest.raises(AccountError, match=message):
        accounts.add(name, role, password)


def test_tokens_are_hashed_personal_and_revocable(conn: sqlite3.Connection) -> None:
    accounts = Accounts(conn)
    accounts.add("Ana", "secretary", "senha-boa-123")
    token = accounts.issue_token("Ana", "n8n")
    assert token not in str(conn.execute("SELECT * FROM staff_tokens").fetchall())
    assert accounts.by_token(token).name == "Ana"  # type: ignore[union-attr]
    assert accounts.by_token(token + "x") is None and accounts.by_token("\udcff") is None
    accounts.set_active("Ana", False)
    assert accounts.by_token(token) is None  # disabled: refused
    accounts.set_active("Ana", True)
    assert accounts.revoke_tokens("Ana") == 1 and accounts.by_token(token) is None


def test_sessions_expire_and_end_on_reset_or_disable(conn: sqlite3.Connection) -> None:
    clock = ManualClock()
    accounts = Accounts(conn, clock)
    ana = accounts.add("Ana", "secretary", "senha-boa-123")
    sessions = Sessions(conn, accounts, clock)
    cookie, session = sessions.open(ana)
    assert sessions.get(cookie) == session and session.csrf
    assert cookie not in str(conn.execute("SELECT * FROM staff_sessions").fetchall())
    clock.advance(timedelta(hours=12))
    assert sessions.get(cookie) is None  # a working day
    cookie, _ = sessions.open(accounts.get(ana.id))  # type: ignore[arg-type]
    accounts.reset_password("Ana", "outra-senha-456")
    assert sessions.get(cookie) is None
    cookie, _ = sessions.open(accounts.get(ana.id))  # type: ignore[arg-type]
    sessions.close(cookie)
    assert sessions.get(cookie) is None and sessions.get(None) is None


def test_the_throttle_locks_the_account_not_everyone_behind_its_address() -> None:
    # Behind the reverse proxy every login comes from one address: wrong passwords for one
    # name lock that account only.
    clock = ManualClock()
    throttle = LoginThrottle(clock, limit=3, window_s=600, address_limit=10)
    for _ in range(3):
        assert throttle.account_wait("ana") == 0
        throttle.failed("Ana", "10.0.0.1")
    assert throttle.account_wait("ANA ") == 600  # her name, from anywhere
    assert throttle.account_wait("bia") == 0  # another account behind that address
    assert throttle.address_wait("10.0.0.1") == 0  # far below the address's bound
    clock.advance(601)
    assert throttle.account_wait("ana") == 0


def test_the_address_bound_is_much_higher_and_counts_every_name() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock, limit=5, window_s=900)
    assert throttle.address_limit >= 10 * throttle.limit
    for i in range(throttle.address_limit):
        assert throttle.address_wait("10.0.0.1") == 0
        throttle.failed(f"nome-{i}", "10.0.0.1")  # one guess per made-up name
    assert throttle.address_wait("10.0.0.1") == 900
    assert throttle.address_wait("10.0.0.2") == 0
    assert throttle.account_wait("ana") == 0, "the address bound locks no account"
    clock.advance(60)
    throttle.failed("nome-x", "10.0.0.1")
    clock.advance(841)  # the first failures leave the window, the later one stays
    assert throttle.address_wait("10.0.0.1") == 0


def test_staff_commands(tmp_path: Path) -> None:
    cli = CliRunner()
    data = ["--data", str(tmp_path)]
    added = cli.invoke(main, ["staff", "add", "Ana", "--role", "secretary", "--phone",
                              "(11) 99999-0001", "--password-stdin", *data],
                       input="senha-boa-123\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "5511999990001" in added.output
    listed = cli.invoke(main, ["staff", "list", *data])
    assert "Ana\tsecretary\t5511999990001\tativa" in listed.output
    token = cli.invoke(main, ["staff", "token", "Ana", *data])
    assert token.exit_code == 0 and token.output.startswith("cfs_")
    weak = cli.invoke(main, ["staff", "reset", "Ana", "--password-stdin", *data], input="x\n")
    assert weak.exit_code == 2 and "8 caracteres" in weak.output
    assert cli.invoke(main, ["staff", "disable", "Ana", *data]).exit_code == 0
    assert "desativada" in cli.invoke(main, ["staff", "list", *data]).output
    unknown = cli.invoke(main, ["staff", "disable", "Bia", *data])
    assert unknown.exit_code == 2 and "Bia" in unknown.output
    bad_phone = cli.invoke(main, ["staff", "add", "Bia", "--role", "admin", "--phone", "12",
                                  "--password-stdin", *data], input="senha-boa-123\n")  # fmt: skip
    assert bad_phone.exit_code == 2
    prompted = cli.invoke(main, ["staff", "add", "Carla", "--role", "admin", *data],
                          input="senha-boa-123\nsenha-boa-123\n")  # fmt: skip
    assert prompted.exit_code == 0, prompted.output
    conn = connect(tmp_path / DB_NAME)
    try:
        assert Accounts(conn).check_password("Carla", "senha-boa-123") is not None
    finally:
        conn.close()


@pytest.mark.usefixtures("backend")
def test_staff_commands_use_the_database_the_runner_reads(tmp_path: Path, backend: str) -> None:
    # On a PostgreSQL deployment the accounts are in PostgreSQL: an account added there is the
    # one the runner checks, and disabling a dismissed secretary disables her real account.
    from clinicflow.database import user_version
    from clinicflow.schema import SCHEMA_VERSION
    from clinicflow.storage import Store

    cli = CliRunner()
    data = ["--data", str(tmp_path)]
    added = cli.invoke(main, ["staff", "add", "Ana", "--role", "secretary", "--password-stdin",
                              *data], input="senha-boa-123\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert cli.invoke(main, ["staff", "disable", "Ana", *data]).exit_code == 0
    store = Store(tmp_path)  # the data dir's database, as the runner resolves it
    try:
        assert user_version(store.conn) == SCHEMA_VERSION
        ana = Accounts(store.conn).by_name("Ana")
        assert ana is not None and not ana.active
    finally:
        store.close()
    assert (tmp_path / DB_NAME).exists() == (backend == "sqlite")
