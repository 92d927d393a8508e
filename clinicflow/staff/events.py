"""Live updates of the staff workspace: an in-process hub the server-sent events read.

The runner publishes a :class:`DeskEvent` whenever something a secretary sees changes (a new
hand-off, a message in a conversation, an assignment); each open ``/inbox/events`` stream
holds a queue here and filters what it may show. Nothing is stored: a page that reconnects
reloads its fragments.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 100


@dataclass(frozen=True)
class DeskEvent:
    """Something changed in a conversation.

    ``type``: ``handoff`` (a new hand-off; ``urgent`` says whether it is), ``message`` (the
    transcript grew), ``assignment`` (claimed, transferred, released) or ``status`` (handed
    back, scheduled, closed).
    """

    type: str
    chat_id: str
    urgent: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class Hub:
    """Fan-out of :class:`DeskEvent` to the open streams (used from the event loop)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[DeskEvent | None]] = set()

    def subscribe(self) -> asyncio.Queue[DeskEvent | None]:
        queue: asyncio.Queue[DeskEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[DeskEvent | None]) -> None:
        self._queues.discard(queue)

    def publish(self, event: DeskEvent) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled page: it reloads everything on the next one
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(DeskEvent("reload", ""))

    def close(self) -> None:
        """Tell every stream to end (shutdown)."""
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    @property
    def listeners(self) -> int:
        return len(self._queues)


__all__ = ["DeskEvent", "Hub"]
