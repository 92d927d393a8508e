"""WAHA webhook requests: the envelope, the signed bytes and headers, and delivery with retries.

Everything a faithful fake needs to POST an event the way WAHA does: ``evt_`` + ULID ids,
keys in WAHA's order, compact raw-UTF-8 JSON signed with HMAC-SHA512, and identical bytes
and headers on every retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

DEFAULT_VERSION = "2026.7.1"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_ulid() -> str:
    """A 26-character lowercase ULID: 48-bit millisecond time, then 80 random bits."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def envelope(
    event: str,
    payload: dict[str, Any],
    *,
    session: str = "default",
    engine: str = "NOWEB",
    me: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    version: str = DEFAULT_VERSION,
) -> dict[str, Any]:
    """The event envelope, keys in WAHA's order; ``metadata`` is left out when None."""
    env: dict[str, Any] = {
        "id": "evt_" + new_ulid(),
        "timestamp": int(time.time() * 1000),
        "event": event,
        "session": session,
    }
    if metadata is not None:
        env["metadata"] = metadata
    env["me"] = me
    env["payload"] = payload
    env["engine"] = engine
    env["environment"] = {
        "version": version,
        "engine": engine,
        "tier": "CORE",
        "browser": None,
        "platform": "linux/x64",
        "worker": {"id": None},
    }
    return env


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook POST, ready to send (and resend byte for byte on retries)."""

    body: bytes
    headers: dict[str, str]
    envelope: dict[str, Any]


def webhook_request(
    env: dict[str, Any], *, hmac_key: str | None = None, version: str = DEFAULT_VERSION
) -> WebhookRequest:
    """Serialise an envelope like WAHA (compact, raw UTF-8) and add its headers."""
    body = json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode()
    stamp = env.get("timestamp")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"WAHA/{version}",
        "X-Webhook-Request-Id": new_ulid(),
        "X-Webhook-Timestamp": str(stamp if stamp is not None else int(time.time() * 1000)),
    }
    if hmac_key:
        headers["X-Webhook-Hmac"] = hmac.new(hmac_key.encode(), body, hashlib.sha512).hexdigest()
        headers["X-Webhook-Hmac-Algorithm"] = "sha512"
    return WebhookRequest(body, headers, env)


async def post_with_retries(
    client: aiohttp.ClientSession,
    url: str,
    request: WebhookRequest,
    *,
    retries: int = 15,
    retry_delay: float = 0.0,
    timeout_s: float = 30.0,
) -> list[int | None]:
    """POST ``request`` like WAHA: identical bytes and headers on every retry, which happens
    on any non-2xx answer or connection error, ``retries`` times at most.

    Returns:
        The status of every attempt, in order; None for a connection-level failure.
    """
    statuses: list[int | None] = []
    for attempt in range(retries + 1):
        try:
            async with client.post(
                url,
                data=request.body,
                headers=request.headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                await response.read()
                statuses.append(response.status)
        except (aiohttp.ClientError, OSError):
            statuses.append(None)
        last = statuses[-1]
        if last is not None and 200 <= last < 300:
            break
        if attempt < retries and retry_delay > 0:
            await asyncio.sleep(retry_delay)
    return statuses
