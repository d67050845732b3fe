"""``page.pubsub`` for one Flet app: flet's ``PubSubHub`` API, with handlers
run where the rest of quart-flet runs user code, and an optional relay that
carries every send to the other processes of the deployment.

- A sync handler runs on the app's thread pool, an async one as a task on the
  loop; both in the context variables of the code that subscribed (a copy per
  delivery), so ``ft.context.page`` is the subscriber's page.
- One session receives its messages one at a time, in the order they were
  sent: a chat shows its lines in order, even with sync handlers on a pool.
- A send delivers to this process's subscribers at once and hands the message
  to the relay (Redis) for the others; a relay failure never stops local delivery.

flet's ``PubSubClient`` calls only the public methods below, so this object
replaces ``PubSubHub`` on our connections without patching flet: any other
Flet host in the process keeps its own, unchanged hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from flet.controls.exceptions import FletPageDisconnectedException

from quart_flet.compat import context_page
from quart_flet.dispatch import SyncState, runs_in_thread, sync_state
from quart_flet.stats import STATS

logger = logging.getLogger("quart_flet")

Handler = Callable[..., Any]

__all__ = ["FletPubSub", "PubSubRelay"]


class PubSubRelay(Protocol):
    """Carries sends to the hubs of the same name in other processes; they
    call :meth:`FletPubSub.deliver` with what this hub published."""

    def publish(
        self, hub: str, except_session_id: str | None, topic: str | None, message: Any
    ) -> None:
        """Queue one send for the other processes; callable from any thread."""


@dataclass(eq=False)
class _Subscription:
    handler: Handler
    context: contextvars.Context
    in_thread: bool
    active: bool = True


class FletPubSub:
    """The pubsub hub of the Flet app ``name`` in this process."""

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        relay: PubSubRelay | None = None,
    ) -> None:
        self.name = name
        self.loop = loop
        self.executor = executor
        self.relay = relay
        # Subscriber tables may change from any thread (sync main, handlers).
        self._lock = threading.Lock()
        self._global: dict[str, dict[Handler, _Subscription]] = {}
        self._topics: dict[str, dict[str, dict[Handler, _Subscription]]] = {}
        self._session_topics: dict[str, set[str]] = {}
        # Per-session delivery queues, touched on the loop thread only.
        self._inboxes: dict[str, deque[tuple[_Subscription, tuple[Any, ...]]]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    # ---- sending (any thread) ------------------------------------------

    def send_all(self, message: Any) -> None:
        self._send(None, None, message)

    def send_all_on_topic(self, topic: str, message: Any) -> None:
        self._send(None, topic, message)

    def send_others(self, except_session_id: str, message: Any) -> None:
        self._send(except_session_id, None, message)

    def send_others_on_topic(self, except_session_id: str, topic: str, message: Any) -> None:
        self._send(except_session_id, topic, message)

    def _send(self, except_session_id: str | None, topic: str | None, message: Any) -> None:
        STATS.pubsub_published += 1
        self.deliver(except_session_id, topic, message)
        if self.relay is not None:
            self.relay.publish(self.name, except_session_id, topic, message)

    def deliver(self, except_session_id: str | None, topic: str | None, message: Any) -> None:
        """Deliver one send to this process's subscribers (any thread)."""
        args: tuple[Any, ...] = (message,) if topic is None else (topic, message)
        with self._lock:
            if topic is None:
                by_session = self._global
            else:
                by_session = self._topics.get(topic, {})
            targets = [
                (session_id, subscription, args)
                for session_id, handlers in by_session.items()
                if session_id != except_session_id
                for subscription in handlers.values()
            ]
        if not targets:
            return
        if self._on_loop():
            self._enqueue(targets)
        else:
            # one wake-up of the loop per send, however many subscribers
            self.loop.call_soon_threadsafe(self._enqueue, targets)

    # ---- subscribing (any thread) --------------------------------------

    def subscribe(self, session_id: str, handler: Handler) -> None:
        subscription = self._subscription(handler)
        with self._lock:
            self._global.setdefault(session_id, {}).setdefault(handler, subscription)

    def subscribe_topic(self, session_id: str, topic: str, handler: Handler) -> None:
        subscription = self._subscription(handler)
        with self._lock:
            sessions = self._topics.setdefault(topic, {})
            sessions.setdefault(session_id, {}).setdefault(handler, subscription)
            self._session_topics.setdefault(session_id, set()).add(topic)

    def unsubscribe(self, session_id: str) -> None:
        with self._lock:
            self._drop(self._global.pop(session_id, None))

    def unsubscribe_topic(self, session_id: str, topic: str) -> None:
        with self._lock:
            self._unsubscribe_topic(session_id, topic)

    def unsubscribe_all(self, session_id: str) -> None:
        with self._lock:
            self._drop(self._global.pop(session_id, None))
            for topic in list(self._session_topics.get(session_id, ())):
                self._unsubscribe_topic(session_id, topic)

    def _unsubscribe_topic(self, session_id: str, topic: str) -> None:
        sessions = self._topics.get(topic)
        if sessions is not None:
            self._drop(sessions.pop(session_id, None))
            if not sessions:
                del self._topics[topic]
        topics = self._session_topics.get(session_id)
        if topics is not None:
            topics.discard(topic)
            if not topics:
                del self._session_topics[session_id]

    @staticmethod
    def _drop(handlers: dict[Handler, _Subscription] | None) -> None:
        # messages already queued for these handlers are skipped
        for subscription in (handlers or {}).values():
            subscription.active = False

    @staticmethod
    def _subscription(handler: Handler) -> _Subscription:
        return _Subscription(handler, contextvars.copy_context(), runs_in_thread(handler))

    # ---- delivering (loop thread) --------------------------------------

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _enqueue(self, targets: list[tuple[str, _Subscription, tuple[Any, ...]]]) -> None:
        for session_id, subscription, args in targets:
            inbox = self._inboxes.get(session_id)
            if inbox is None:
                inbox = self._inboxes[session_id] = deque()
                drain = self.loop.create_task(self._drain(session_id, inbox))
                self._drains.add(drain)
                drain.add_done_callback(self._drains.discard)
            inbox.append((subscription, args))

    async def _drain(
        self, session_id: str, inbox: deque[tuple[_Subscription, tuple[Any, ...]]]
    ) -> None:
        try:
            while inbox:
                subscription, args = inbox.popleft()
                if subscription.active:
                    await self._call(session_id, subscription, args)
        finally:
            if self._inboxes.get(session_id) is inbox:
                del self._inboxes[session_id]

    async def _call(
        self, session_id: str, subscription: _Subscription, args: tuple[Any, ...]
    ) -> None:
        # A copy per delivery: one Context cannot be entered by two threads at once.
        context = subscription.context.copy()
        try:
            if subscription.in_thread:
                state = _sync_state(context)  # see dispatch.SyncState
                async with state.lock if state else contextlib.nullcontext():
                    with state.thread_running() if state else contextlib.nullcontext():
                        await self.loop.run_in_executor(
                            self.executor, context.run, subscription.handler, *args
                        )
            else:
                coro = _call_async(subscription.handler, args)
                await self.loop.create_task(coro, context=context)
            STATS.pubsub_delivered += 1
        except FletPageDisconnectedException:
            logger.debug("a pubsub handler updated a disconnected page: %s", session_id)
        except Exception as error:
            if isinstance(error, RuntimeError) and "after shutdown" in str(error):
                return  # the app is stopping and its pool with it
            STATS.pubsub_failed += 1
            logger.error(
                "Unhandled error in a pubsub handler of session %s (app %s)",
                session_id,
                self.name,
                exc_info=True,
            )


async def _call_async(handler: Handler, args: tuple[Any, ...]) -> None:
    if inspect.isasyncgenfunction(handler):
        async for _ in handler(*args):
            pass
    else:
        await handler(*args)


def _sync_state(context: contextvars.Context) -> SyncState | None:
    """The sync state of the session that subscribed (its page is in the
    context it subscribed from), or None if there is no such session."""
    page = context.get(context_page)
    try:
        return sync_state(page.session) if page is not None else None
    except RuntimeError:  # its session has ended
        return None
