"""Login sessions of the staff workspace, and the throttle on wrong passwords.

A session is a random 256-bit id in an HttpOnly cookie; the table keeps only its SHA-256, so
a copy of the database opens no session. Each session has its own CSRF token, which every
form of the workspace sends back. A session lasts ``SESSION_TTL_S`` (a working day) and ends
earlier on logout, when the account is disabled or its password is reset (the account's
``epoch`` changed). Table, in the clinic's ``clinicflow.db``::

    staff_sessions   token_hash, account_id, epoch, csrf, created_at, expires_at
                     (unix seconds on the clinic's clock)

:class:`LoginThrottle` counts wrong passwords per account name and per address in memory:
after ``limit`` failures for a name within ``window_s`` that account's attempts are refused
until the window passes, right or wrong; an address (behind a reverse proxy, the whole
clinic's) has a much higher bound and never blocks the right password of an account that is
not locked itself. Time comes from the clock given (a test moves it).
"""

from __future__ import annotations

import hmac
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass

from clinicflow.clock import Clock, SystemClock
from clinicflow.database import Connection
from clinicflow.staff.accounts import Account, Accounts, token_digest

SESSION_TTL_S = 12 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Session:
    """A live session: who, and the CSRF token her forms must carry."""

    account: Account
    csrf: str
    expires_at: float


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of two secrets; a missing or undecodable one is unequal."""
    if not given or not expected:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


class Sessions:
    """The ``staff_sessions`` table.

    Args:
        conn: a connection to the clinic's database.
        accounts: the accounts (a session is valid only while hers is active, same epoch).
        clock: the clinic's clock (expiry).
        ttl_s: how long a session lasts.
    """

    def __init__(
        self,
        conn: Connection,
        accounts: Accounts,
        clock: Clock | None = None,
        ttl_s: float = SESSION_TTL_S,
    ) -> None:
        self.conn = conn
        self.accounts = accounts
        self.clock: Clock = clock or SystemClock()
        self.ttl_s = ttl_s
        with conn:
            conn.executescript(_SCHEMA)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def open(self, account: Account) -> tuple[str, Session]:
        """A new session for ``account``: the cookie value (secret) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._now()
        with self.conn:
            self.conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (now,))
            self.conn.execute(
                "INSERT INTO staff_sessions (token_hash, account_id, epoch, csrf, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token_digest(token), account.id, account.epoch, csrf, now, now + self.ttl_s),
            )
        return token, Session(account, csrf, now + self.ttl_s)

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (unknown, expired, account changed)."""
        if not token:
            return None
        row = self.conn.execute(
            "SELECT account_id, epoch, csrf, expires_at FROM staff_sessions WHERE token_hash = ?",
            (token_digest(token),),
        ).fetchone()
        if row is None or float(row[3]) <= self._now():
            return None
        account = self.accounts.get(int(row[0]))
        if account is None or not account.active or account.epoch != int(row[1]):
            return None
        return Session(account, str(row[2]), float(row[3]))

    def close(self, token: str | None) -> None:
        """Log out: the session ends now."""
        if token:
            with self.conn:
                self.conn.execute(
                    "DELETE FROM staff_sessions WHERE token_hash = ?", (token_digest(token),)
                )


class LoginThrottle:
    """Wrong passwords per account name and per address (see the module docstring).

    Behind a reverse proxy every login comes from the proxy's address, so the address is
    never a reason to refuse the right password of an account that is not locked:

    - an account name is locked (every attempt refused, right or wrong) after ``limit``
      wrong passwords within ``window_s``;
    - an address is slowed after ``address_limit`` wrong passwords within the window (for
      any names): its further wrong passwords are answered 429 instead of 401, while a right
      password of an account that is not locked still logs in.

    Args:
        clock: the time source.
        limit: wrong passwords for one name allowed within the window.
        window_s: the window, seconds.
        address_limit: wrong passwords from one address allowed within the window.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        limit: int = 5,
        window_s: float = 900.0,
        address_limit: int = 100,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.limit = limit
        self.window_s = window_s
        self.address_limit = address_limit
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    @staticmethod
    def _name_key(name: str) -> str:
        return "name:" + name.strip().lower()

    @staticmethod
    def _address_key(address: str) -> str:
        return "addr:" + address

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _wait(self, key: str, limit: int) -> float:
        now = self.clock.now().timestamp()
        times = self._recent(key, now)
        if len(times) >= limit:
            return max(0.0, times[-limit] + self.window_s - now)
        return 0.0

    def account_wait(self, name: str) -> float:
        """Seconds before this account name may try again (0: not locked)."""
        return self._wait(self._name_key(name), self.limit)

    def address_wait(self, address: str) -> float:
        """Seconds before wrong passwords from ``address`` stop being answered 429."""
        return self._wait(self._address_key(address), self.address_limit)

    def failed(self, name: str, address: str) -> None:
        """Count a wrong password for ``name`` from ``address``."""
        now = self.clock.now().timestamp()
        for key in (self._name_key(name), self._address_key(address)):
            self._recent(key, now).append(now)
        if len(self._failures) > 10000:  # a flood of made-up names: keep memory bounded
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]

    def succeeded(self, name: str) -> None:
        """A right password: the account's count starts again (the address's stays)."""
        self._failures.pop(self._name_key(name), None)


__all__ = ["SESSION_TTL_S", "LoginThrottle", "Session", "Sessions", "same_secret"]
