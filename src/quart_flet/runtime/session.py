"""The session object: :class:`RuntimeSession`, the one object of a browser's
Flet session, and :class:`SyncState`, which it owns: its order of events and
how its sync code shares the control tree with the loop. The event turns
(:meth:`SyncState.take_turn`) keep flet's order: each event of a session
waits for the previous one's turn to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any, Protocol, runtime_checkable

from flet.controls.exceptions import FletPageDisconnectedException
from flet.messaging.session import Session

from quart_flet.runtime import threads

__all__ = ["MAX_EVENTS_IN_LINE", "RuntimeSession", "SyncState", "TooManyEvents", "Turn"]

logger = logging.getLogger("quart_flet")

#: (the previous event's end, or None when nothing waits; this event's end)
Turn = tuple["asyncio.Future[None] | None", "asyncio.Future[None]"]

# A client that sends events much faster than its sync handlers return
# queues them all; past this many waiting, its connection is closed.
MAX_EVENTS_IN_LINE = 1000


class TooManyEvents(Exception):
    """A session has MAX_EVENTS_IN_LINE events waiting already."""


class SyncState:
    """One session's order of events, and how its sync code shares the
    control tree with the loop (why: docs/discussion/handlers.md, "Events in
    order" and "The control tree is not thread-safe").

    - ``tail``: the latest event turn (:meth:`take_turn` / :meth:`end_turn`);
      ``in_line``: turns taken and not yet ended.
    - ``lock``: taken by each sync handler (events, pubsub); ``main`` takes
      neither it nor a turn.
    - ``running``: sync handlers running in threads now; ``deferred``: the
      loop's diffs for this session, made when none runs.
    - ``differ``: the thread that runs a sync pubsub handler of this session
      and diffs its updates itself, as flet's server does (None when none
      does); other threads' diffs wait until it is done.
    - ``loop``: the loop this session's sync code sees in its thread
      (quart_flet.runtime.threads); ``tasks``: the tasks it started there.
    """

    __slots__ = (
        "lock",
        "running",
        "differ",
        "deferred",
        "tail",
        "in_line",
        "executor",
        "session",
        "tasks",
        "_loop",
        "__weakref__",
    )

    def __init__(self, session: Session, executor: Executor | None) -> None:
        # executor None: the loop's default (a plain flet Session, in tests)
        self.lock = asyncio.Lock()
        self.running = 0
        self.differ: int | None = None  # the thread diffing the tree itself now
        self.deferred: list[Callable[[], Any]] = []
        self.tail: asyncio.Future[None] | None = None
        self.in_line = 0  # turns taken and not yet ended
        self.executor = executor
        self.session = weakref.ref(session)
        self.tasks: set[asyncio.Task[Any]] = set()
        self._loop: threads.SessionLoop | None = None

    def take_turn(self) -> Turn:
        """A place in the session's order of events: (the previous one's end, ours)."""
        if self.in_line >= MAX_EVENTS_IN_LINE:
            raise TooManyEvents(f"{self.in_line} events of this session are waiting already")
        previous, mine = self.tail, asyncio.get_running_loop().create_future()
        self.tail = mine
        self.in_line += 1
        return (previous if previous is not None and not previous.done() else None), mine

    def in_turn(self) -> bool:
        """Whether an event of the session is still waiting or being handled."""
        return self.tail is not None and not self.tail.done()

    def end_turn(self, mine: asyncio.Future[None]) -> None:
        """Let the session's next event start (once; later calls do nothing)."""
        if mine.done():
            return
        mine.set_result(None)
        self.in_line -= 1
        if self.tail is mine:
            self.tail = None

    @property
    def loop(self) -> threads.SessionLoop:
        if self._loop is None:
            self._loop = threads.session_loop(
                asyncio.get_running_loop(), threading.get_ident(), self.own_task
            )
        return self._loop

    @contextlib.contextmanager
    def thread_running(self) -> Iterator[None]:
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            if not self.running:
                self.flush()

    def flush(self) -> None:
        deferred, self.deferred = self.deferred, []
        for call in deferred:
            try:
                call()
            except FletPageDisconnectedException:
                pass
            except Exception:
                logger.error("a deferred page update failed", exc_info=True)

    def own_task(self, task: asyncio.Task[Any]) -> None:
        """A task sync code of this session started (on the loop)."""
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        session = self.session()
        if error is None or session is None:
            return
        if isinstance(error, FletPageDisconnectedException):
            logger.debug("a task updated a disconnected page: %s", session.id)
            return
        name = getattr(task.get_coro(), "__qualname__", task.get_name())
        logger.error("Unhandled error in task %s of session %s", name, session.id, exc_info=error)
        text = "".join(traceback.format_exception(error))
        session.error(f"{error}\n{text}")

    def end(self) -> None:
        """The session is over: cancel the tasks its sync code started."""
        for task in list(self.tasks):
            task.cancel()


@runtime_checkable
class Abortable(Protocol):
    """A connection that can be closed from outside its handler
    (quart_flet.session.connection.FletConnection)."""

    def abort(self, code: int, reason: str) -> None: ...


class RuntimeSession(Session):
    """A flet Session with what quart-flet's runtime keeps for it: its
    :class:`SyncState`, the app's pool, the handshake of its latest
    connection and whether its page was shown an error. The one object of a
    session: the connection, the registry and the handlers reach this state
    through it. (Its loop-safe overrides are quart_flet.runtime.loopsafe's.)"""

    def __init__(self, connection: Any, executor: Executor | None) -> None:
        super().__init__(connection)
        self.executor = executor  # the app's pool, also once disconnected
        self.sync = SyncState(self, executor)
        # its latest connection's quart_flet.session.handshake.Handshake, which
        # handshake(page) reads: set by the connection (runtime/ knows no Quart)
        self.handshake: object | None = None
        self.crashed = False  # the page was shown an error (see error)

    def error(self, message: str) -> None:
        self.crashed = True  # on_session_end hears "crashed"
        super().error(message)

    def close(self) -> None:
        super().close()  # type: ignore[no-untyped-call]  # flet's, unannotated
        self.sync.end()  # cancel the tasks its sync code started

    def abort_connection(self, code: int, reason: str) -> None:
        """Close the session's connection (its client broke the protocol)."""
        connection = self.connection
        if isinstance(connection, Abortable):
            connection.abort(code, reason)
