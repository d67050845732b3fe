"""Pubsub and OAuth between the workers of one server, without Redis.

With ``--workers N`` and no ``redis_url``, each worker's sessions would only
hear the pubsub of their own worker, and an OAuth callback that the kernel
hands to another worker would find neither its pending state nor its
session. :class:`SiblingsBackend` is the backend (quart_flet.backends.base)
for that case: a ``send_all`` is delivered here at once, as always, and
written to every sibling worker over the workers' relay sockets
(quart_flet.session.relay), which delivers it to its own subscribers; pending
OAuth states are files in the workers' private directory, taken at most once
by whichever worker the callback reaches, and the sign-in's result is handed
to every sibling, so the one holding the session completes it.

Only the workers of one server on one host meet this way; processes on
several hosts (or several servers) share pubsub through Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from quart_flet.backends.base import OAuthHandler
from quart_flet.runtime.pubsub import FletPubSub, Publication, PubSubNotPublished, settle
from quart_flet.runtime.threads import call_on_loop
from quart_flet.session.filestore import FileStore
from quart_flet.session.relay import Relay, write_bus
from quart_flet.stats import STATS

__all__ = ["SiblingsBackend"]

logger = logging.getLogger("quart_flet")

#: seconds a sibling gets to take a batch before its link is dropped (its
#: sessions miss that batch; the link is made again for the next)
SEND_TIMEOUT = 5.0

_Outgoing = tuple[str, str, bytes, Publication]  # kind, app, payload, its future
_Message = tuple[str, str, bytes]  # kind, app, payload
#: bytes that may wait for one sibling: past it, what waits is dropped (and
#: logged once), as a browser past max_send_buffer is
LINK_BUFFER = 16 * 1024 * 1024


class SiblingsBackend:
    """Pubsub of every Flet app, and OAuth results, to the other workers."""

    def __init__(self, relay: Relay, on_oauth: OAuthHandler, *, max_queued: int = 10_000) -> None:
        self.relay = relay
        self.on_oauth = on_oauth
        self.max_queued = max_queued
        self.oauth_states = FileStore(relay.directory / "oauth")
        self.hubs: dict[str, FletPubSub] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[_Outgoing] | None = None
        self._links: dict[Path, _Link] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self.relay.on_bus = self._on_message
        self._task = asyncio.create_task(self._send_forever())

    async def stop(self) -> None:
        outbox = self._outbox
        if outbox is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outbox.join(), 2)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.relay.on_bus = None
        links = list(self._links.values())
        with contextlib.suppress(TimeoutError):  # what is queued, briefly
            await asyncio.wait_for(asyncio.gather(*(link.flushed() for link in links)), 2)
        for link in links:
            link.close()
        self._links.clear()
        self.hubs.clear()

    def attach(self, hub: FletPubSub) -> None:
        self.hubs[hub.name] = hub
        hub.relay = self

    # ---- sending -------------------------------------------------------

    def publish(
        self, hub: str, except_session_id: str | None, topic: str | None, message: Any
    ) -> Publication:
        sent: Publication = Future()
        if not self.relay.siblings():  # one worker alone: nothing to pickle
            settle(sent, None)
            return sent
        try:
            # now, in the sender's thread: what was sent, not what it became later
            payload = pickle.dumps((except_session_id, topic, message), pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            _lost(sent, hub, f"cannot pickle {message!r:.100}: {error}", self.loop)
            return sent
        self._queue_from_any_thread(("pubsub", hub, payload, sent))
        return sent

    async def complete_oauth(self, hub: str, session_id: str, record: str) -> None:
        """Hand a sign-in's result to every sibling: the one holding
        ``session_id`` completes it."""
        sent: Publication = Future()
        self._queue_from_any_thread(("oauth", hub, record.encode(), sent))
        await asyncio.wrap_future(sent)

    def _queue_from_any_thread(self, item: _Outgoing) -> None:
        loop = self.loop
        if loop is None:
            _lost(item[3], item[1], "the workers' bus is not running")
            return
        call_on_loop(loop, self._queue, item)

    def _queue(self, item: _Outgoing) -> None:
        assert self._outbox is not None
        if self._outbox.qsize() >= self.max_queued:
            _lost(item[3], item[1], f"more than {self.max_queued} messages wait", self.loop)
            return
        self._outbox.put_nowait(item)

    async def _send_forever(self) -> None:
        """One dispatcher keeps the order of sends and hands each batch to
        every sibling's link, which writes on its own: a sibling that is slow
        or hangs holds up only what is for it."""
        assert self._outbox is not None
        outbox = self._outbox
        while True:
            batch = [await outbox.get()]
            while not outbox.empty() and len(batch) < 500:
                batch.append(outbox.get_nowait())
            try:
                messages = [(kind, hub, payload) for kind, hub, payload, _ in batch]
                siblings = self.relay.siblings()
                for path in set(self._links) - set(siblings):  # a worker that is gone
                    self._links.pop(path).close()
                for path in siblings:
                    link = self._links.get(path)
                    if link is None:
                        link = self._links[path] = _Link(self.relay, path)
                    link.put(messages)
                for *_, sent in batch:
                    settle(sent, None)
            finally:
                for _ in batch:
                    outbox.task_done()

    # ---- receiving -----------------------------------------------------

    def _on_message(self, kind: str, hub: str, payload: bytes) -> None:
        if kind == "oauth":
            self.on_oauth(hub, payload.decode())
            return
        if kind != "pubsub":
            return
        target = self.hubs.get(hub)
        if target is None:  # no session of that app here yet
            return
        except_session_id, topic, message = pickle.loads(payload)
        target.deliver(except_session_id, topic, message)


class _LossLog:
    """Messages not sent to the other workers, logged at most once a second
    (a burst past max_queued is one line with its count, not thousands);
    what a quiet second leaves unlogged is logged a second later."""

    def __init__(self) -> None:
        self.unlogged = 0
        self.last = 0.0
        self.why = ""
        self.flush_at: asyncio.TimerHandle | None = None
        self.lock = threading.Lock()

    def __call__(self, sent: Publication, hub: str, why: str, loop: Any = None) -> None:
        STATS.pubsub_failed += 1
        settle(sent, PubSubNotPublished(f"not sent to the other workers ({why})"))
        with self.lock:
            self.unlogged += 1
            self.why = f"Flet app {hub!r}: {why}"
            if time.monotonic() - self.last >= 1.0:
                self._log()
            elif loop is not None and self.flush_at is None:
                with contextlib.suppress(RuntimeError):  # a closed loop: the server stopped
                    loop.call_soon_threadsafe(self._later, loop)

    def _later(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:
            if self.flush_at is None:
                self.flush_at = loop.call_later(1.0, self.flush)

    def flush(self) -> None:
        with self.lock:
            self.flush_at = None
            if self.unlogged:
                self._log()

    def _log(self) -> None:
        logger.error(
            "%d message(s) NOT sent to the other workers (%s): their sessions will not get them",
            self.unlogged,
            self.why,
        )
        self.unlogged, self.last = 0, time.monotonic()


_lost = _LossLog()


class _Link:
    """The messages for one sibling worker and the task writing them."""

    def __init__(self, relay: Relay, path: Path) -> None:
        self.relay = relay
        self.path = path
        self.queue: deque[_Message] = deque()
        self.size = 0
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.dropped = 0  # not yet logged
        self.logged = 0.0

    def put(self, messages: list[_Message]) -> None:
        size = sum(len(payload) for _, _, payload in messages)
        if self.size + size > LINK_BUFFER:
            self._drop(len(messages), "more than 16 MiB wait for it (a worker that hangs?)")
            return
        self.queue.extend(messages)
        self.size += size
        self.idle.clear()
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._write_forever())

    async def flushed(self) -> None:
        await self.idle.wait()

    async def _write_forever(self) -> None:
        while self.queue:
            messages = list(self.queue)
            self.queue.clear()
            self.size = 0
            try:
                if self.writer is None or self.writer.is_closing():
                    self.writer = await self.relay.open_bus(self.path)
                write_bus(self.writer, messages)
                await asyncio.wait_for(self.writer.drain(), SEND_TIMEOUT)
            except (OSError, TimeoutError) as error:
                self._drop(len(messages), str(error) or type(error).__name__)
        self.idle.set()

    def _drop(self, count: int, why: str) -> None:
        """Lose what waits for this sibling, at once and whole: nothing of it
        reaches the sibling later, out of order."""
        count += len(self.queue)
        self.queue.clear()
        self.size = 0
        if self.writer is not None:
            self.writer.transport.abort()  # the unsent buffer goes with it
            self.writer = None
        STATS.pubsub_failed += count
        self.dropped += count
        now = time.monotonic()
        if now - self.logged < 1.0:  # a worker that keeps refusing: a line a second
            return
        logger.warning(
            "%d message(s) for another worker (%s) not sent, its sessions miss them: %s",
            self.dropped,
            self.path.stem,
            why,
        )
        self.dropped, self.logged = 0, now

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None
        self.idle.set()
