"""``page.pubsub`` for one Flet app: flet's ``PubSubHub`` API, with handlers
run where the rest of quart-flet runs user code (one session's messages one
at a time, in order), and an optional relay that carries every send to the
other processes of the deployment. flet's ``PubSubClient`` calls only the
public methods below, so this hub replaces ``PubSubHub`` on our connections
without patching flet.

Why and how: docs/discussion/pubsub.md, "In one process" and "Through
Redis"; the backlog bound: docs/discussion/backpressure.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Protocol

from flet.controls.exceptions import FletPageDisconnectedException

from quart_flet.compat.flet import context_page
from quart_flet.runtime.dispatch import runs_in_thread
from quart_flet.runtime.session import RuntimeSession, SyncState
from quart_flet.stats import STATS

logger = logging.getLogger("quart_flet")

Handler = Callable[..., Any]

#: What a send on :class:`FletPubSub` returns: done (result None) once every
#: process sharing the app can get the message (at once with no relay), or
#: failed with :class:`PubSubNotPublished`. Await it with
#: ``asyncio.wrap_future``, or call ``.result(timeout)`` in a thread.
Publication = Future[None]

__all__ = [
    "FletPubSub",
    "Publication",
    "PubSubNotPublished",
    "PubSubRelay",
    "Receiver",
    "message_size",
    "pubsub_hub",
    "settle",
]


class PubSubNotPublished(Exception):
    """A pubsub message reached this process's sessions but not the other
    processes' (Redis unreachable, or the message could not be pickled)."""


class PubSubRelay(Protocol):
    """Carries sends to the hubs of the same name in other processes; they
    call :meth:`FletPubSub.deliver` with what this hub published."""

    def publish(
        self, hub: str, except_session_id: str | None, topic: str | None, message: Any
    ) -> Publication:
        """Queue one send for the other processes; callable from any thread."""


def pubsub_hub(page: Any) -> FletPubSub:
    """The quart-flet hub behind ``page.pubsub``: the same sends, each
    returning its :data:`Publication`.

    >>> sent = pubsub_hub(page).send_all("hello")
    >>> await asyncio.wrap_future(sent)  # raises PubSubNotPublished if Redis was down

    Raises flet's ``FletPageDisconnectedException`` while the page's browser
    is away (its session has no connection then).
    """
    connection = page.session.connection
    if connection is None:
        raise FletPageDisconnectedException("the page is disconnected: no pubsub hub to reach")
    hub = connection.pubsubhub
    if not isinstance(hub, FletPubSub):
        raise TypeError("pubsub_hub(page) needs a page served by quart-flet")
    return hub


_PUBLISHED: Publication = Future()
_PUBLISHED.set_result(None)  # what every send returns without a relay


class Receiver(Protocol):
    """A session's live connection, as the hub sees it (transport's
    FletConnection): the bytes it has yet to send, and what to do when they
    and the session's backlog are too many."""

    @property
    def queued_bytes(self) -> int:
        """Bytes of frames not yet written to the client's socket."""

    def overflow(self) -> None:
        """Close with 1008 and free what waits for the client, this hub's
        backlog of the session included (loop thread)."""


@dataclass(eq=False)
class _Subscription:
    handler: Handler
    context: contextvars.Context
    in_thread: bool
    active: bool = True


# A send's drain tasks start a slice per step of the loop (FletPubSub._slices):
#: the first slice's size, then sized for a step of SLICE_SECONDS, from
#: MIN_SLICE (or 1/MAX_STEPS of the send, if more) to MAX_SLICE
FIRST_SLICE = 16
SLICE_SECONDS = 0.005
MIN_SLICE, MAX_SLICE, MAX_STEPS = 8, 256, 32


class FletPubSub:
    """The pubsub hub of the Flet app ``name`` in this process."""

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        relay: PubSubRelay | None = None,
        *,
        max_backlog: int | None = None,
        receiver_of: Callable[[str], Receiver | None] | None = None,
    ) -> None:
        self.name = name
        self.loop = loop
        self.executor = executor
        self.relay = relay
        #: bytes that may wait for one session, its connection's included (None: no bound)
        self.max_backlog = max_backlog
        #: a session's live connection, if it has one
        self.receiver_of = receiver_of
        # Subscriber tables may change from any thread (sync main, handlers).
        self._lock = threading.Lock()
        self._global: dict[str, dict[Handler, _Subscription]] = {}
        self._topics: dict[str, dict[str, dict[Handler, _Subscription]]] = {}
        self._session_topics: dict[str, set[str]] = {}
        # Per-session delivery queues, touched on the loop thread only.
        self._inboxes: dict[str, deque[_Delivery]] = {}
        self._drains: set[asyncio.Task[None]] = set()
        # bytes of the messages queued or being handled per session (loop
        # thread), and the sessions whose messages are being dropped
        self._backlog: dict[str, int] = {}
        self._dropping: set[str] = set()

    # ---- sending (any thread) ------------------------------------------

    def send_all(self, message: Any) -> Publication:
        return self._send(None, None, message)

    def send_all_on_topic(self, topic: str, message: Any) -> Publication:
        return self._send(None, topic, message)

    def send_others(self, except_session_id: str, message: Any) -> Publication:
        return self._send(except_session_id, None, message)

    def send_others_on_topic(self, except_session_id: str, topic: str, message: Any) -> Publication:
        return self._send(except_session_id, topic, message)

    def _send(self, except_session_id: str | None, topic: str | None, message: Any) -> Publication:
        STATS.pubsub_published += 1
        if self.relay is None:
            self.deliver(except_session_id, topic, message)
            return _PUBLISHED
        # the relay first: its work on the loop then comes before this
        # process's handlers, and the other processes start alongside them
        try:
            return self.relay.publish(self.name, except_session_id, topic, message)
        finally:  # a relay that raises still leaves this process's sessions their message
            self.deliver(except_session_id, topic, message)

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
        size = message_size(message)
        if self._on_loop():
            self._enqueue(targets, size)
        else:
            # one wake-up of the loop per send, however many subscribers
            self.loop.call_soon_threadsafe(self._enqueue, targets, size)

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
    #
    # A session is *busy* while its inbox is in ``_inboxes``: a batch or a
    # drain task owns it, and messages for it wait there, in send order. An
    # idle session's sync deliveries of one send (or of several, once a batch
    # is done) join a batch: one pool job runs them, session after session
    # (see _Batch), instead of one pool job, task and context copy each. The
    # rest (async handlers, a session whose sync handler holds its lock) go
    # through a drain task per session.

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _enqueue(
        self, targets: list[tuple[str, _Subscription, tuple[Any, ...]]], size: int
    ) -> None:
        fresh: dict[str, list[_Delivery]] = {}
        for session_id, subscription, args in targets:
            if not self._admit(session_id, size):
                continue
            inbox = self._inboxes.get(session_id)
            if inbox is not None:
                inbox.append((subscription, args, size))  # busy: delivered in its turn
            else:
                fresh.setdefault(session_id, []).append((subscription, args, size))
        self._dispatch(fresh)

    # ---- the backlog's bound (loop thread) -----------------------------

    def backlog(self, session_id: str) -> int:
        """Bytes of messages waiting for ``session_id``'s handlers, or being handled."""
        return self._backlog.get(session_id, 0)

    def _admit(self, session_id: str, size: int) -> bool:
        """Count a message of ``size`` bytes for ``session_id``, unless it
        takes the session past ``max_backlog`` (one message alone never
        does): then its connection overflows (1008), or, without one, the
        message is dropped."""
        backlog = self._backlog.get(session_id, 0)
        limit = self.max_backlog
        if limit is not None:
            receiver = self.receiver_of(session_id) if self.receiver_of is not None else None
            total = backlog + size + (receiver.queued_bytes if receiver is not None else 0)
            if total > limit and total > size:
                STATS.pubsub_dropped += 1
                if receiver is not None:
                    receiver.overflow()
                elif session_id not in self._dropping:
                    self._dropping.add(session_id)
                    logger.warning(
                        "pubsub: dropping messages for session %s (app %s): %d bytes wait "
                        "for its handlers already (max_send_buffer %d)",
                        session_id,
                        self.name,
                        backlog,
                        limit,
                    )
                return False
        self._backlog[session_id] = backlog + size
        return True

    def _release(self, session_id: str, size: int) -> None:
        """``size`` bytes of ``session_id``'s messages are handled (or dropped)."""
        left = self._backlog.get(session_id, 0) - size
        if left > 0:
            self._backlog[session_id] = left
        else:
            self._backlog.pop(session_id, None)
            self._dropping.discard(session_id)

    def drop_backlog(self, session_id: str) -> None:
        """Drop the messages waiting for ``session_id`` (its connection has
        overflowed); the ones its handlers run already finish."""
        inbox = self._inboxes.get(session_id)
        if inbox:
            self._release(session_id, sum(size for _, _, size in inbox))
            STATS.pubsub_dropped += len(inbox)
            inbox.clear()

    def _dispatch(self, deliveries: dict[str, list[_Delivery]]) -> None:
        """Deliver to idle sessions: a batch for the sync ones that can run
        now, a drain task for each of the others (a slice of them per step of
        the loop). Each becomes busy."""
        batch: list[_Entry] = []
        drains: deque[_Waiting] = deque()
        for session_id, items in deliveries.items():
            inbox: deque[_Delivery] = deque()
            self._inboxes[session_id] = inbox
            entry = self._batchable(session_id, items)
            if entry is not None:
                batch.append(entry)
                continue
            inbox.extend(items)
            drains.append((session_id, inbox, items[0][0]))
        if batch:
            _Batch(self, batch).start()
        if drains:
            self._start_slice(drains, FIRST_SLICE)
        if drains:  # more than one slice: the rest from the next step on,
            # at least 1/MAX_STEPS of them a step: a loop busy with other work
            # still finishes the send in MAX_STEPS steps
            least = max(MIN_SLICE, -(-len(drains) // MAX_STEPS))
            slices = self.loop.create_task(self._slices(drains, least, time.monotonic()))
            self._drains.add(slices)
            slices.add_done_callback(self._drains.discard)

    # A send's drain tasks start a slice per step of the loop: the tasks of one
    # step run in the next, so a send to thousands of async handlers lets the
    # loop write frames, serve other users and pass the send to the relay
    # between slices, instead of running every handler first (the other
    # processes would start last).

    def _start_slice(self, drains: deque[_Waiting], size: int) -> None:
        """A drain task for each of the first ``size`` of ``drains``."""
        for _ in range(min(size, len(drains))):
            session_id, inbox, first = drains.popleft()
            # an async handler first in line runs in the drain task itself
            direct = None if first.in_thread else first
            context = first.context.copy() if direct is not None else None
            drain = self.loop.create_task(self._drain(session_id, inbox, direct), context=context)
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)

    async def _slices(self, drains: deque[_Waiting], least: int, last: float) -> None:
        """Start the rest of a send's drains, a slice per step from the next
        (the first was started with the send, at ``last``), each of at least
        ``least``. Cancelled (the server stops), the sessions still waiting
        lose their messages and are idle again."""
        size = FIRST_SLICE
        try:
            while drains:
                now = time.monotonic()
                took, last = now - last, now
                size = MAX_SLICE if took <= 0 else int(size * SLICE_SECONDS / took)
                size = max(least, min(MAX_SLICE, size))
                self._start_slice(drains, size)
                if drains:
                    await asyncio.sleep(0)
        finally:
            for session_id, inbox, _ in drains:
                if self._inboxes.get(session_id) is inbox:
                    del self._inboxes[session_id]
                self._release(session_id, sum(nbytes for _, _, nbytes in inbox))

    def _batchable(self, session_id: str, items: list[_Delivery]) -> _Entry | None:
        """A batch entry for ``items`` if all are sync and the session's sync
        handlers' lock is free (then taken, and its loop diffs held back, as
        for one sync handler: see runtime.session.SyncState); else None."""
        if not all(subscription.in_thread for subscription, _, _ in items):
            return None
        state = _sync_state(items[0][0].context)
        if state is not None:
            if not _try_acquire(state.lock):
                return None
            state.running += 1
        return _Entry(session_id, state, items)

    def _finished(self, entries: list[_Entry], delivered: int, failed: int) -> None:
        """Batch entries whose handlers have run (loop thread): release each
        session, then deliver what arrived for it meanwhile."""
        STATS.pubsub_delivered += delivered
        STATS.pubsub_failed += failed
        pending: dict[str, list[_Delivery]] = {}
        for entry in entries:
            self._release(entry.session_id, sum(size for _, _, size in entry.items))
            state = entry.state
            if state is not None:
                state.running -= 1
                if not state.running:
                    state.flush()
                state.lock.release()
            inbox = self._inboxes.pop(entry.session_id, None)
            if inbox:
                pending[entry.session_id] = list(inbox)
        if pending:
            self._dispatch(pending)

    async def _drain(
        self,
        session_id: str,
        inbox: deque[_Delivery],
        direct: _Subscription | None = None,
    ) -> None:
        """Deliver ``inbox`` in order; ``direct``'s async deliveries are
        awaited in this task (created in a copy of its context), others get
        a task each."""
        try:
            while inbox:
                subscription, args, size = inbox.popleft()
                try:
                    if subscription.active:
                        await self._call(session_id, subscription, args, subscription is direct)
                finally:
                    self._release(session_id, size)
        finally:
            if self._inboxes.get(session_id) is inbox:
                del self._inboxes[session_id]

    async def _call(
        self,
        session_id: str,
        subscription: _Subscription,
        args: tuple[Any, ...],
        direct: bool = False,
    ) -> None:
        try:
            if direct:
                await _call_async(subscription.handler, args)
            elif subscription.in_thread:
                # a copy per delivery: one Context cannot be entered by two threads at once
                context = subscription.context.copy()
                state = _sync_state(context)  # see runtime.session.SyncState
                async with state.lock if state else contextlib.nullcontext():
                    with state.thread_running() if state else contextlib.nullcontext():
                        await self.loop.run_in_executor(
                            self.executor, context.run, _diffing, state, subscription.handler, args
                        )
            else:
                coro = _call_async(subscription.handler, args)
                await self.loop.create_task(coro, context=subscription.context.copy())
            STATS.pubsub_delivered += 1
        except FletPageDisconnectedException:
            logger.debug("a pubsub handler updated a disconnected page: %s", session_id)
        except Exception as error:
            if isinstance(error, RuntimeError) and "after shutdown" in str(error):
                return  # the app is stopping and its pool with it
            STATS.pubsub_failed += 1
            self.log_failure(session_id)

    def log_failure(self, session_id: str) -> None:
        logger.error(
            "Unhandled error in a pubsub handler of session %s (app %s)",
            session_id,
            self.name,
            exc_info=True,
        )


#: a message for one subscription: (subscription, handler arguments, bytes)
_Delivery = tuple[_Subscription, tuple[Any, ...], int]
#: a busy session whose drain task has yet to start: (session id, inbox, first subscription)
_Waiting = tuple[str, deque[_Delivery], _Subscription]


@dataclass(eq=False)
class _Entry:
    """One session's share of a batch: its deliveries, run in order."""

    session_id: str
    state: SyncState | None
    items: list[_Delivery]


class _Batch:
    """Sync deliveries to many idle sessions, run in the app's pool: one job
    takes the entries in turn, each in the context its subscription was made in
    (no copy: a session is in one batch or drain at a time), and hands the
    finished ones back to the loop together; one more job joins while entries
    wait and none has started for :data:`STALL_SECONDS`
    (docs/discussion/pubsub.md, "In one process")."""

    def __init__(self, hub: FletPubSub, entries: list[_Entry]) -> None:
        self.hub = hub
        self.pending = deque(entries)
        self.started = 0  # entries taken by a job
        self.jobs = 0
        self._lock = threading.Lock()
        self._done: list[_Entry] = []
        self._delivered = self._failed = 0
        self._wakeup_pending = False

    def start(self) -> None:
        # from the next loop step: an unsubscribe right after the send (in the
        # same step) still stops these deliveries
        self.hub.loop.call_soon(self._add_job)
        self.hub.loop.call_later(STALL_SECONDS, self._watch, 0)

    def _add_job(self) -> None:
        self.jobs += 1
        try:
            self.hub.executor.submit(self._run)
        except RuntimeError:  # the pool has shut down: the app is stopping
            # popleft, as the jobs still running do: an entry is taken once
            entries = []
            while True:
                try:
                    entries.append(self.pending.popleft())
                except IndexError:
                    break
            self.hub._finished(entries, 0, 0)

    def _watch(self, started_before: int) -> None:
        if not self.pending:
            return
        if self.started == started_before and self.jobs < _pool_size(self.hub.executor):
            self._add_job()
        self.hub.loop.call_later(STALL_SECONDS, self._watch, self.started)

    def _run(self) -> None:  # in a pool thread
        hub = self.hub
        while True:
            try:
                entry = self.pending.popleft()
            except IndexError:
                return
            self.started += 1
            delivered = failed = 0
            # the session's tree is this thread's while its handlers run (its
            # lock is held, the loop's diffs wait): updates diff here, as on
            # flet's server, instead of a trip to the loop and back each
            for subscription, args, _ in entry.items:
                if not subscription.active:
                    continue
                try:
                    subscription.context.run(_diffing, entry.state, subscription.handler, args)
                    delivered += 1
                except FletPageDisconnectedException:
                    logger.debug(
                        "a pubsub handler updated a disconnected page: %s", entry.session_id
                    )
                except Exception:
                    failed += 1
                    hub.log_failure(entry.session_id)
            self._report(entry, delivered, failed)

    def _report(self, entry: _Entry, delivered: int, failed: int) -> None:
        with self._lock:
            self._done.append(entry)
            self._delivered += delivered
            self._failed += failed
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        try:
            self.hub.loop.call_soon_threadsafe(self._hand_back)
        except RuntimeError:  # the loop is closed: the server has stopped
            pass

    def _hand_back(self) -> None:  # on the loop
        with self._lock:
            done, self._done = self._done, []
            delivered, failed = self._delivered, self._failed
            self._delivered = self._failed = 0
            self._wakeup_pending = False
        self.hub._finished(done, delivered, failed)


#: seconds a batch may go without starting an entry before another job joins it
STALL_SECONDS = 0.05


def _pool_size(executor: Executor) -> int:
    size = getattr(executor, "max_threads", None)  # the app's pool (stats.CountingExecutor)
    return size if isinstance(size, int) else 4


def _try_acquire(lock: asyncio.Lock) -> bool:
    """Take ``lock`` now, from sync code on the loop, if that needs no wait.
    A free lock's ``acquire()`` returns without suspending; one that would
    wait is closed (which takes its waiter out again) and False returned."""
    if lock.locked():
        return False
    attempt = lock.acquire()
    try:
        attempt.send(None)
    except StopIteration:
        return True
    attempt.close()
    return False


#: objects :func:`message_size` looks at, at most, in one message
SIZE_WALK_LIMIT = 1000


def message_size(message: Any) -> int:
    """Roughly the bytes ``message`` keeps alive: ``sys.getsizeof`` of it and
    of what it holds (containers, dataclasses and other objects with a
    ``__dict__``), looking at no more than :data:`SIZE_WALK_LIMIT` objects,
    so a chat line costs a microsecond and a huge message stays cheap."""
    total, stack, seen = 0, [message], 0
    while stack and seen < SIZE_WALK_LIMIT:
        item = stack.pop()
        seen += 1
        total += sys.getsizeof(item, 64)
        if isinstance(item, (str, bytes, bytearray, int, float, bool)) or item is None:
            continue
        room = SIZE_WALK_LIMIT - seen - len(stack)  # never more than the walk will look at
        if isinstance(item, dict):
            stack.extend(itertools.islice(itertools.chain.from_iterable(item.items()), room))
        elif isinstance(item, (list, tuple, set, frozenset, deque)):
            stack.extend(itertools.islice(item, room))
        else:
            attributes = getattr(item, "__dict__", None)
            if isinstance(attributes, dict):
                stack.append(attributes)
    return total


def _diffing(state: SyncState | None, handler: Handler, args: tuple[Any, ...]) -> Any:
    """``handler(*args)`` in a pool thread that holds its session's tree
    (the handler lock is held, the loop's diffs wait): its updates diff here
    (see SyncState.differ)."""
    if state is None:
        return handler(*args)
    state.differ = threading.get_ident()
    try:
        return handler(*args)
    finally:
        state.differ = None


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
        session = page.session if page is not None else None
    except RuntimeError:  # its session has ended
        return None
    return session.sync if isinstance(session, RuntimeSession) else None


def settle(sent: Publication, error: PubSubNotPublished | None) -> None:
    """Complete a send's future (a backend's, once its fate is known); one
    its sender cancelled stays cancelled."""
    try:
        if error is None:
            sent.set_result(None)
        else:
            sent.set_exception(error)
    except InvalidStateError:
        pass
