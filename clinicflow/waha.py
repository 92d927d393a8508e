"""The WAHA REST client: the calls the runner makes to reply on WhatsApp.

One :class:`WahaClient` wraps one ``aiohttp.ClientSession`` (passed in, or opened by
``start()`` / ``async with``). Every failure is a :class:`~clinicflow.errors.ChannelError`
whose ``retryable`` tells the outbox whether trying again later can help::

    401/403 wrong API key, 400 bad request, 404 unknown session/file   -> retryable=False
    422 session not WORKING, 408/429, 5xx, refused, reset, timeout     -> retryable=True
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from clinicflow._wamessage import normalize_chat_id
from clinicflow.errors import ChannelError

MAX_MEDIA_BYTES = 32 * 1024 * 1024


class WahaClient:
    """Async client for the WAHA endpoints clinicflow uses.

    Args:
        base_url: WAHA's address, e.g. ``http://waha:3000``.
        api_key: sent as ``X-Api-Key``; None when WAHA runs without a key.
        session: the WAHA session name.
        timeout_s: total time allowed for each request.
        client_session: an ``aiohttp.ClientSession`` to use; the client then never closes it.
            Without one, ``start()`` (or ``async with``) opens one and ``close()`` closes it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        session: str = "default",
        timeout_s: float = 10,
        *,
        client_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.session = session
        self.timeout_s = timeout_s
        self._http = client_session
        self._owns_http = False

    async def start(self) -> None:
        """Open the HTTP session if none was passed in (idempotent)."""
        if self._http is None or (self._owns_http and self._http.closed):
            self._http = aiohttp.ClientSession()
            self._owns_http = True

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._owns_http and self._http is not None:
            await self._http.close()
        if self._owns_http:
            self._http = None
            self._owns_http = False

    async def __aenter__(self) -> WahaClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send_seen(
        self, chat_id: str, message_ids: list[str] | None = None, participant: str | None = None
    ) -> None:
        """Mark messages of a chat as read (``POST /api/sendSeen``).

        Args:
            chat_id: the chat as received.
            message_ids: the WAHA message ids; None marks every unread message.
            participant: the sender, for group chats only.
        """
        body: dict[str, Any] = {"session": self.session, "chatId": chat_id}
        if message_ids:
            body["messageIds"] = list(message_ids)
        if participant:
            body["participant"] = participant
        await self._call("POST", "/api/sendSeen", body)

    async def start_typing(self, chat_id: str) -> None:
        """Show "typing..." in a chat (``POST /api/startTyping``)."""
        await self._call("POST", "/api/startTyping", {"session": self.session, "chatId": chat_id})

    async def stop_typing(self, chat_id: str) -> None:
        """Clear the typing indicator (``POST /api/stopTyping``)."""
        await self._call("POST", "/api/stopTyping", {"session": self.session, "chatId": chat_id})

    async def send_text(
        self,
        chat_id: str,
        text: str,
        reply_to: str | None = None,
        *,
        message_id: str | None = None,
    ) -> str | None:
        """Send a text message (``POST /api/sendText``).

        Args:
            chat_id: the chat as received (``@c.us`` or ``@lid``).
            text: the message.
            reply_to: a WAHA message id to quote.
            message_id: a pre-generated WhatsApp message id (``id`` in the body; see
                :func:`new_message_id`). Sending again with the same id never makes a second
                message, so a retry after a timeout or a crash is safe.

        Returns:
            The sent message's WAHA id (``true_<chat>_<id>``) when the response shows it, else
            None. Engines answer in different shapes, and any 2xx means WAHA accepted it.
        """
        body: dict[str, Any] = {"session": self.session, "chatId": chat_id, "text": text}
        if reply_to:
            body["reply_to"] = reply_to
        if message_id:
            body["id"] = message_id
        _, raw = await self._call("POST", "/api/sendText", body)
        return sent_message_id(_json_or_none(raw), chat_id)

    async def session_status(self) -> str | None:
        """The WAHA session status (``WORKING``, ``SCAN_QR_CODE``, ...), or None if unknown.

        Never raises: an unreachable WAHA or an unexpected answer gives None.
        """
        try:
            _, raw = await self._call("GET", f"/api/sessions/{self.session}", None)
        except ChannelError:
            return None
        info = _json_or_none(raw)
        status = info.get("status") if isinstance(info, dict) else None
        return status if isinstance(status, str) and status else None

    async def lid_phone(self, lid: str) -> str | None:
        """The phone chat id (``<digits>@c.us``) behind an ``@lid``, when WhatsApp shows it.

        ``GET /api/{session}/lids/{lid}`` answers ``{"lid", "pn"}``; ``pn`` is null when the
        person keeps her number hidden.

        Raises:
            ChannelError: WAHA unreachable or refusing (the caller may try again later).
        """
        path = f"/api/{quote(self.session, safe='')}/lids/{quote(lid, safe='')}"
        _, raw = await self._call("GET", path, None)
        body = _json_or_none(raw)
        pn = body.get("pn") if isinstance(body, dict) else None
        return normalize_chat_id(pn) if isinstance(pn, str) and "@" in pn else None

    async def session_info(self) -> dict[str, Any]:
        """The session's SessionInfo (``GET /api/sessions/{session}``): status, me, config.

        Raises:
            ChannelError: WAHA unreachable, wrong key, unknown session, or not a JSON object.
        """
        _, raw = await self._call("GET", f"/api/sessions/{self.session}", None)
        info = _json_or_none(raw)
        if not isinstance(info, dict):
            raise ChannelError(f"GET /api/sessions/{self.session}: not a session", retryable=False)
        return info

    async def update_session(self, config: dict[str, Any]) -> dict[str, Any]:
        """Replace the session's config (``PUT /api/sessions/{session}``); WAHA restarts it.

        Raises:
            ChannelError: WAHA refused the config (400), the key or the session is wrong.
        """
        body = {"name": self.session, "config": config}
        _, raw = await self._call("PUT", f"/api/sessions/{self.session}", body)
        info = _json_or_none(raw)
        return info if isinstance(info, dict) else {}

    async def download_media(self, url: str, *, max_bytes: int = MAX_MEDIA_BYTES) -> bytes:
        """Download a media file WAHA announced in a webhook (``media.url``).

        ``/api/files/...`` URLs are always fetched from ``base_url``: WAHA often announces
        them under a host only it can reach (``localhost:3000``), and the API key must never go
        to a host named by an inbound payload. Other URLs must share ``base_url``'s origin.

        Raises:
            ChannelError: 404 (the file expired) and foreign URLs are not retryable.
        """
        target = self._media_target(url)
        _, raw = await self._call("GET", target, None, max_bytes=max_bytes)
        return raw

    def _media_target(self, url: str) -> str:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.path.startswith("/api/files/"):
            return path
        base = urlsplit(self.base_url)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and parts.path:
            return path
        raise ChannelError(f"refusing media URL outside WAHA: {url[:200]}", retryable=False)

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None, *, max_bytes: int = 1 << 22
    ) -> tuple[int, bytes]:
        if self._http is None or self._http.closed:
            raise ChannelError("WahaClient is not started", retryable=False)
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        what = f"{method} {path.split('?', 1)[0]}"
        try:
            async with self._http.request(
                method,
                self.base_url + path,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                raw = await _read_capped(response, max_bytes)
                status = response.status
        except TimeoutError:
            raise ChannelError(f"{what}: timed out after {self.timeout_s}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ChannelError(f"{what}: {type(exc).__name__}: {exc}") from None
        if 200 <= status < 300:
            if len(raw) > max_bytes:
                raise ChannelError(f"{what}: response over {max_bytes} bytes", retryable=False)
            return status, raw
        raise _error_for(what, status, raw)


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, stopping one byte past ``max_bytes`` so a huge file cannot fill memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)


def _error_for(what: str, status: int, raw: bytes) -> ChannelError:
    detail = _error_detail(_json_or_none(raw[:65536]))
    message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
    if status == 422:
        # "Session status is not as expected" passes; "not implemented by the engine" won't.
        return ChannelError(message, status=status, retryable="not implemented" not in detail)
    retryable = status >= 500 or status in (408, 425, 429)
    return ChannelError(message, status=status, retryable=retryable)


def _error_detail(body: Any) -> str:
    """A short reason from WAHA's error shapes (NestJS ``message``/``error``, files ``error``)."""
    if not isinstance(body, dict):
        return ""
    for key in ("message", "error"):
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("key")
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        if isinstance(value, str) and value:
            return value[:300]
    return ""


def new_message_id() -> str:
    """A fresh WhatsApp message id in the form phones and Baileys use (``3EB0`` + 16 hex)."""
    return "3EB0" + secrets.token_hex(8).upper()


def _json_or_none(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def sent_message_id(body: Any, chat_id: str) -> str | None:
    """The WAHA id of a message we sent, read from any engine's ``sendText`` answer.

    NOWEB answers Baileys-style ``{"key": {"remoteJid", "fromMe", "id"}}``; WEBJS answers
    ``{"id": {"_serialized": ...}}``; others a plain ``{"id": "true_..."}``; some versions an
    empty body. Unknown shapes give None.
    """
    if not isinstance(body, dict):
        return None
    key = body.get("key")
    if isinstance(key, dict) and isinstance(key.get("id"), str) and key["id"]:
        remote = key.get("remoteJid")
        chat = normalize_chat_id(remote) if isinstance(remote, str) and remote else chat_id
        from_me = "false" if key.get("fromMe") is False else "true"
        return f"{from_me}_{chat}_{key['id']}"
    ident = body.get("id")
    if isinstance(ident, dict):
        serialized = ident.get("_serialized")
        if isinstance(serialized, str) and serialized:
            return serialized
        inner, remote = ident.get("id"), ident.get("remote")
        if isinstance(inner, str) and inner:
            chat = remote if isinstance(remote, str) and remote else chat_id
            return f"{'false' if ident.get('fromMe') is False else 'true'}_{chat}_{inner}"
        return None
    return ident if isinstance(ident, str) and ident else None


__all__ = ["MAX_MEDIA_BYTES", "WahaClient", "new_message_id", "sent_message_id"]
