"""Staff accounts: people with a role, a password, an optional phone and API tokens.

Two roles: ``secretary`` (sees and acts on the conversations assigned to her and on the
unassigned queue) and ``admin`` (everything, and the dashboard). Passwords are hashed with
Argon2id (``argon2-cffi``); personal API tokens are random 256-bit strings kept only as their
SHA-256 (a token is as long as a key, so a slow hash would add nothing). Tables, in the
clinic's ``clinicflow.db``::

    staff_accounts   id, name (unique, any case), role, phone (E.164 digits), password_hash,
                     active, available (her on-duty switch), epoch (bumped when her password
                     is reset or she is disabled: older sessions end), created_at, updated_at
    staff_tokens     id, account_id, token_hash, label, created_at, last_used_at, revoked_at

Every SQL statement on these two tables lives here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.database import Connection
from clinicflow.errors import ClinicflowError

ROLES = ("secretary", "admin")
MIN_PASSWORD = 8
TOKEN_PREFIX = "cfs_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL,
    phone TEXT,
    password_hash TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    available INTEGER NOT NULL DEFAULT 1,
    epoch INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS staff_tokens (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
"""
_COLUMNS = "id, name, role, phone, active, available, epoch, created_at"


class AccountError(ClinicflowError):
    """A staff account cannot be created or changed (unknown name, bad role, weak password)."""

    exit_code = 2


@dataclass(frozen=True)
class Account:
    """A person of the clinic's staff."""

    id: int
    name: str
    role: str
    phone: str | None
    active: bool
    available: bool
    epoch: int
    created_at: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def token_digest(token: str) -> str:
    """The stored form of a random token (SHA-256 hex); undecodable text never raises."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class Accounts:
    """The ``staff_accounts`` and ``staff_tokens`` tables.

    Args:
        conn: a connection to the clinic's database.
        clock: the time of creations and changes; default the system clock.
        hasher: the Argon2 hasher (default parameters of argon2-cffi: Argon2id, 64 MiB).
    """

    def __init__(
        self,
        conn: Connection,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.conn = conn
        self.clock: Clock = clock or SystemClock()
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        with conn:
            conn.executescript(_SCHEMA)

    # -- reading ---------------------------------------------------------------------------

    def _row(self, where: str, params: tuple[object, ...]) -> Account | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM staff_accounts WHERE {where}", params
        ).fetchone()
        return None if row is None else _account(row)

    def get(self, account_id: int) -> Account | None:
        return self._row("id = ?", (account_id,))

    def by_name(self, name: str) -> Account | None:
        # lower() on both sides: the column's NOCASE collation is SQLite's only.
        return self._row("lower(name) = lower(?)", (name.strip(),))

    def by_phone(self, phone: str) -> Account | None:
        """The active account with this phone (E.164 digits), if any."""
        return self._row("phone = ? AND active = 1 ORDER BY id LIMIT 1", (phone,))

    def all(self) -> list[Account]:
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM staff_accounts ORDER BY name")
        return [_account(r) for r in rows.fetchall()]

    def active(self, role: str | None = None) -> list[Account]:
        return [a for a in self.all() if a.active and (role is None or a.role == role)]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM staff_accounts").fetchone()[0])

    # -- changes ---------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, phone: str | None = None) -> Account:
        """Create an account (raises AccountError for a taken name, a bad role or password)."""
        name = " ".join(name.split())
        if not name or len(name) > 80:
            raise AccountError("o nome deve ter de 1 a 80 caracteres")
        if role not in ROLES:
            raise AccountError(f"função desconhecida {role!r}; use {' ou '.join(ROLES)}")
        digest = self._hash(password)
        if self.by_name(name) is not None:
            raise AccountError(f"já existe uma conta chamada {name!r}")
        now = iso(self.clock.now())
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO staff_accounts (name, role, phone, password_hash, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (name, role, phone, digest, now, now),
            )
            new_id = int(cursor.fetchone()[0])
        account = self.get(new_id)
        assert account is not None
        return account

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"a senha precisa de pelo menos {MIN_PASSWORD} caracteres")
        return self.hasher.hash(password)

    def _require(self, name: str) -> Account:
        account = self.by_name(name)
        if account is None:
            raise AccountError(f"não há conta chamada {name!r}")
        return account

    def _update(self, account_id: int, sets: str, params: tuple[object, ...]) -> None:
        with self.conn:
            self.conn.execute(
                f"UPDATE staff_accounts SET {sets}, updated_at = ? WHERE id = ?",
                (*params, iso(self.clock.now()), account_id),
            )

    def reset_password(self, name: str, password: str) -> Account:
        """A new password; her open sessions end."""
        account = self._require(name)
        self._update(account.id, "password_hash = ?, epoch = epoch + 1", (self._hash(password),))
        return self._require(name)

    def set_active(self, name: str, active: bool) -> Account:
        """Disable (sessions end, tokens refused, no assignment) or enable an account."""
        account = self._require(name)
        self._update(account.id, "active = ?, epoch = epoch + 1", (int(active),))
        return self._require(name)

    def set_available(self, account_id: int, available: bool) -> None:
        """Her on-duty switch (new hand-offs are assigned only to available secretaries)."""
        self._update(account_id, "available = ?", (int(available),))

    def set_phone(self, name: str, phone: str | None) -> Account:
        account = self._require(name)
        self._update(account.id, "phone = ?", (phone,))
        return self._require(name)

    # -- credentials -----------------------------------------------------------------------

    def check_password(self, name: str, password: str) -> Account | None:
        """The active account when ``password`` is hers; None otherwise (same cost either way).

        The three steps (:meth:`credentials`, :meth:`verify`, :meth:`logged_in`) are public so
        a server can run the slow hash in a worker thread and the SQL on its own thread.
        """
        found = self.credentials(name)
        if not self.verify(found[1] if found else None, password) or found is None:
            return None
        return self.logged_in(found[0], found[1], password)

    def credentials(self, name: str) -> tuple[int, str] | None:
        """``(id, password hash)`` of the active account ``name``."""
        row = self.conn.execute(
            "SELECT id, password_hash FROM staff_accounts WHERE name = ? AND active = 1",
            (name.strip(),),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row is not None and row[1] else None

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (None: an unknown name, checked against a
        dummy hash so that it takes as long)."""
        try:
            self.hasher.verify(stored or self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def logged_in(self, account_id: int, stored: str, password: str) -> Account | None:
        """After a right password: rehash it if the parameters changed; the account."""
        if self.hasher.check_needs_rehash(stored):
            with self.conn:
                self.conn.execute(
                    "UPDATE staff_accounts SET password_hash = ? WHERE id = ?",
                    (self.hasher.hash(password), account_id),
                )
        return self.get(account_id)

    def _dummy_hash(self) -> str:
        # An unknown name costs one verification too, so timing does not tell names apart.
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def issue_token(self, name: str, label: str = "") -> str:
        """A new personal API token for ``name``; shown once, stored as its SHA-256."""
        account = self._require(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.conn:
            self.conn.execute(
                "INSERT INTO staff_tokens (account_id, token_hash, label, created_at) "
                "VALUES (?, ?, ?, ?)",
                (account.id, token_digest(token), label, iso(self.clock.now())),
            )
        return token

    def revoke_tokens(self, name: str) -> int:
        """Revoke every token of ``name``; returns how many were live."""
        account = self._require(name)
        with self.conn:
            cursor = self.conn.execute(
                "UPDATE staff_tokens SET revoked_at = ? WHERE account_id = ? "
                "AND revoked_at IS NULL",
                (iso(self.clock.now()), account.id),
            )
        return cursor.rowcount

    def by_token(self, token: str) -> Account | None:
        """The active account a live personal token belongs to."""
        row = self.conn.execute(
            "SELECT id, account_id FROM staff_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_digest(token),),
        ).fetchone()
        if row is None:
            return None
        account = self.get(int(row[1]))
        if account is None or not account.active:
            return None
        with self.conn:
            self.conn.execute(
                "UPDATE staff_tokens SET last_used_at = ? WHERE id = ?",
                (iso(self.clock.now()), row[0]),
            )
        return account

    def live_tokens(self, account_id: int) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM staff_tokens WHERE account_id = ? AND revoked_at IS NULL",
            (account_id,),
        ).fetchone()
        return int(row[0])


def _account(row: tuple[object, ...]) -> Account:
    id_, name, role, phone, active, available, epoch, created = row
    return Account(
        id=int(str(id_)),
        name=str(name),
        role=str(role),
        phone=str(phone) if phone else None,
        active=bool(active),
        available=bool(available),
        epoch=int(str(epoch)),
        created_at=str(created),
    )


__all__ = ["MIN_PASSWORD", "ROLES", "Account", "AccountError", "Accounts", "token_digest"]
