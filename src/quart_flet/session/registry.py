"""Per-app state: live sessions, held ones with their expiry and their
budget (``max_held_sessions`` per Flet app), the thread pool, pubsub hubs and
temporary files. One registry per Quart app, in
``app.extensions["quart_flet"]``, started once by the extension's
``before_serving`` hook however many Flet apps the app has.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import secrets
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from quart import Quart

from quart_flet.asgi import shutdown
from quart_flet.backends import Backend, MemoryOAuthStateStore, OAuthStateStore
from quart_flet.client.files import WebClient
from quart_flet.compat.flet import start_control_ids_at
from quart_flet.mount import FletMount, SaveHook, SessionEndReason
from quart_flet.options import ignored_env_warnings
from quart_flet.runtime import dispatch
from quart_flet.runtime.loopsafe import LoopSafeSession
from quart_flet.runtime.pubsub import FletPubSub, Receiver
from quart_flet.session.handshake import ClientInfo, Owner
from quart_flet.session.relay import Relay
from quart_flet.session.saved import SavedStates
from quart_flet.stats import STATS, CountingExecutor

logger = logging.getLogger("quart_flet")

EXTENSION_KEY = "quart_flet"

#: where this process's control ids start: flet counts them from 3 in every
#: process, so a page of the server a restart replaced would send its events
#: to the ids the new server gives other controls (a click lands on another
#: button). From a random point in a range of a billion, the ids a page shows
#: are unknown to the next process: its stale events find no control.
CONTROL_ID_RANGE = (1 << 24, 1 << 30)
_ids_spread = False


def spread_control_ids() -> None:
    """Once per process, before the first session: a random first control id."""
    global _ids_spread
    if not _ids_spread:
        _ids_spread = True
        start_control_ids_at(secrets.SystemRandom().randrange(*CONTROL_ID_RANGE))


class Peer(Receiver, Protocol):
    """What the registry (and a pubsub hub) needs of a live connection
    (transport's FletConnection)."""

    mount: FletMount
    session: LoopSafeSession | None
    #: served for a browser whose WebSocket is open in a sibling worker
    relayed: bool

    def abort(self, code: int, reason: str) -> None: ...

    def stop_events(self) -> None:
        """Drop the browser's events from now on (its session is being saved)."""


#: RFC 6455 close codes: the server goes away now / restarts (reconnect soon)
GOING_AWAY, SERVICE_RESTART = 1001, 1012
#: seconds every session's on_session_save gets, in all, when the server stops
SAVE_SECONDS = 3.0


@dataclass
class SessionEntry:
    session: LoopSafeSession
    owner: Owner
    connection: Peer | None = None
    expiry: asyncio.TimerHandle | None = None
    disconnecting: asyncio.Task[None] | None = None
    started: bool = False  # on_session_start ran: on_session_end will too


@dataclass
class FletRegistry:
    """Sessions of every Flet app of one Quart app, keyed by (app name, id)."""

    max_threads: int | None = None
    #: the options QuartFlet(app, ...) gives every Flet app of this app
    app_options: dict[str, Any] = field(default_factory=dict)
    #: the QuartFlet that set this registry up; None when one was made for the app
    extension: Any = None
    sessions: dict[tuple[str, str], SessionEntry] = field(default_factory=dict)
    #: per Flet app, the ids of its held (disconnected) sessions, the
    #: longest-disconnected first: whom max_held_sessions ends first
    held: dict[str, OrderedDict[str, None]] = field(default_factory=dict)
    connections: set[Peer] = field(default_factory=set)
    hubs: dict[str, FletPubSub] = field(default_factory=dict)
    backend: Backend | None = None
    mounts: dict[str, FletMount] = field(default_factory=dict)
    #: the channel to this server's other workers (None in a single process)
    relay: Relay | None = None
    #: where sessions' on_session_save results wait for the next start (set
    #: at startup when a Flet app has the hook)
    saved: SavedStates | None = None
    #: the sessions asked already during this stop
    saved_keys: set[tuple[str, str]] = field(default_factory=set)
    #: the sessions' save under way, or the last one (save_sessions)
    saving: asyncio.Future[None] | None = None
    #: each Flet app's web client files, by the app's name
    webclients: dict[str, WebClient] = field(default_factory=dict)
    oauth_states: OAuthStateStore = field(default_factory=MemoryOAuthStateStore)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    executor: CountingExecutor | None = None
    loop: asyncio.AbstractEventLoop | None = None
    temp_dir: str | None = None
    stop_watching_shutdown: Callable[[], None] | None = None
    #: the prometheus_client CollectorRegistry quart_flet.app.metrics serves, once made
    prometheus: Any = None
    #: Flet apps whose held sessions went over max_held_sessions (warned once)
    over_budget: set[str] = field(default_factory=set)
    started: bool = False
    #: the server began to stop (or the app did): readiness answers 503 from now
    stopping: bool = False
    #: the drain_seconds option: how long open sessions keep working once a
    #: graceful stop began (set at startup)
    drain_seconds: float = 0
    #: Hypercorn's graceful_timeout, once known (None under another server)
    graceful_timeout: float | None = None
    #: the drain under way: open sessions close (1012) when it ends
    draining: asyncio.Task[None] | None = None
    #: during the drain, before the sessions are saved: a browser whose
    #: socket dropped may still take its session back here
    resumable: bool = False

    def holds(self, blueprint: str, session_id: str) -> bool:
        """Whether this process holds the session (live or waiting for its browser)."""
        return (blueprint, session_id) in self.sessions

    def add_mount(self, mount: FletMount) -> None:
        """Serve one more Flet app (its name is new here)."""
        self.mounts[mount.name] = mount
        self.webclients[mount.name] = WebClient(mount.options)

    def waits_for(self, blueprint: str, browsers: Collection[str]) -> bool:
        """While draining, whether a session of the app ``blueprint`` held here
        waits for one of ``browsers`` (its socket dropped): the one WebSocket a
        draining server still takes. A scan, made only while draining."""
        return self.resumable and any(
            key[0] == blueprint and entry.connection is None and entry.owner.browser in browsers
            for key, entry in self.sessions.items()
        )

    @property
    def ready(self) -> bool:
        """Serving, and not stopping: a load balancer may send new users."""
        return self.started and not self.stopping

    async def start(self, backend: Backend | None = None) -> None:
        """Startup, sharing state through ``backend`` when one is given."""
        if self.started:
            return
        self.started = True
        self.stopping = False
        self.over_budget.clear()
        self.saved_keys.clear()
        self.saving = None
        spread_control_ids()
        self.loop = asyncio.get_running_loop()
        # close WebSockets when the server starts to stop, not after its graceful
        # timeout (and, in a worker process, hold SIGTERM from now on)
        self.stop_watching_shutdown = shutdown.on_server_shutdown(
            self.loop, self.server_stopping, self.server_found
        )
        # for user code only (sync handlers, page.run_thread, pubsub): Quart's
        # own sync work, file bodies and getaddrinfo keep the loop's default
        # executor, so a pool busy with handlers never delays a page load
        self.executor = CountingExecutor(self.max_threads, thread_name_prefix="quart_flet")
        self.backend = backend
        if self.backend is not None:
            await self.backend.start()
            self.oauth_states = self.backend.oauth_states
        self.temp_dir = tempfile.mkdtemp(prefix="quart_flet_")
        for warning in ignored_env_warnings():
            logger.warning(warning)
        logger.info("quart-flet started: %s threads", self.executor.max_threads)

    def server_found(self, graceful_timeout: float | None) -> None:
        """Hypercorn serves the app, with this graceful timeout: a drain that
        would outlast it is cut short, with a warning."""
        self.graceful_timeout = graceful_timeout
        if graceful_timeout is not None and self.drain_seconds >= graceful_timeout:
            logger.warning(
                "quart-flet option drain_seconds (%g) is not below Hypercorn's "
                "graceful_timeout (%g): Hypercorn would cancel the sessions before they "
                "close; draining %g s instead (raise --graceful-timeout)",
                self.drain_seconds,
                graceful_timeout,
                self.drain_time(),
            )

    def drain_time(self) -> float:
        """How long open sessions keep working once a stop began: drain_seconds,
        leaving the sessions a second (or half the timeout) of Hypercorn's
        graceful timeout to close in."""
        timeout = self.graceful_timeout
        if timeout is None or self.drain_seconds < timeout:
            return self.drain_seconds
        return max(0.0, timeout - min(1.0, timeout / 2))

    def server_stopping(self) -> None:
        """The server began a graceful stop: readiness off and new sockets
        refused, then drain (docs/discussion/shutdown.md, "Draining") or close at
        once."""
        self.stopping = True
        seconds = self.drain_time()
        if not self.connections or (seconds <= 0 and self.saved is None):
            self.close_connections()
        elif self.draining is None:
            self.draining = self.spawn(self._drain(seconds))

    async def _drain(self, seconds: float) -> None:
        """Sessions keep working ``seconds`` (if above 0), say what to keep
        (on_session_save), then their sockets close."""
        if seconds > 0:
            close = (SERVICE_RESTART, "service restart")
        else:
            close = (GOING_AWAY, "server shutting down")
        try:
            if seconds > 0:
                logger.info(
                    "quart-flet draining: %d Flet connection(s) keep working for %g s, then close",
                    len(self.connections),
                    seconds,
                )
                for connection in list(self.connections):
                    hook, session = connection.mount.on_drain, connection.session
                    if hook is not None and session is not None:
                        self.spawn(dispatch.run_drain(hook, session, seconds))
                self.resumable = True
                await asyncio.sleep(seconds)  # the drain itself: sessions work meanwhile
            self.resumable = False
            # before the sockets close: a browser reconnecting at once to the
            # instance replacing this one finds what its session kept; each
            # saved session's socket closes as soon as its hook returned
            await self.save_sessions(close)
        finally:
            self.resumable = False
            self.close_connections(*close)

    async def save_sessions(self, close: tuple[int, str] | None = None) -> None:
        """Ask each started session whose Flet app has ``on_session_save``
        what to keep, once per stop, within SAVE_SECONDS in all; with
        ``close`` (code, reason), each one's socket closes as soon as its hook
        returns, so an event can only be answered if the saved state has its
        effect. A save under way (the drain's: the server may end the drain
        as the last socket closes) runs to its end, and is waited for first."""
        if self.saving is not None:
            await asyncio.shield(self.saving)
        self.saving = asyncio.ensure_future(self._save_all(close))
        await asyncio.shield(self.saving)

    async def _save_all(self, close: tuple[int, str] | None) -> None:
        saved = self.saved
        if saved is None:
            return
        jobs = []
        gate = asyncio.Semaphore(self.executor.max_threads if self.executor else 1)
        for key, entry in list(self.sessions.items()):
            mount = self.mounts.get(key[0])
            hook = None if mount is None else mount.on_session_save
            if mount is None or hook is None or not entry.started or key in self.saved_keys:
                continue
            self.saved_keys.add(key)
            jobs.append(asyncio.ensure_future(self._save(saved, mount, hook, entry, close, gate)))
        if not jobs:
            return
        started = time.monotonic()
        done, late = await asyncio.wait(jobs, timeout=SAVE_SECONDS)
        for job in late:
            job.cancel()
        kept = sum(job.result() for job in done if not job.cancelled() and not job.exception())
        logger.info(
            "quart-flet saved the state of %d of %d session(s) for the next start in %.2f s%s",
            kept,
            len(jobs),
            time.monotonic() - started,
            f" ({len(late)} took longer than {SAVE_SECONDS:g} s)" if late else "",
        )

    @staticmethod
    async def _save(
        saved: SavedStates,
        mount: FletMount,
        hook: SaveHook,
        entry: SessionEntry,
        close: tuple[int, str] | None,
        gate: asyncio.Semaphore,
    ) -> bool:
        # a session keeps answering until its turn at the gate: then the
        # browser's events are dropped (nobody would answer them, and the saved
        # state would miss them), those received already are handled, the hook
        # runs and the socket closes; the gate, as wide as the thread pool,
        # keeps that window to about one trip through the pool
        async with gate:
            connection = entry.connection
            if connection is not None:
                connection.stop_events()
            previous = entry.session.sync.tail
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            try:
                data = await dispatch.run_session_save(hook, entry.session)
            finally:
                if close is not None and connection is not None:
                    connection.abort(*close)
        if data is None:
            return False
        text = saved.encode(mount, entry.session.page.route or "/", data)
        return text is not None and await saved.put(mount, entry.owner, text)

    def close_connections(
        self, code: int = GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        for connection in list(self.connections):
            connection.abort(code, reason)

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        self.stopping = True
        if self.stop_watching_shutdown is not None:
            self.stop_watching_shutdown()
            self.stop_watching_shutdown = None
        if self.draining is not None:
            self.draining.cancel()  # closes what is still open (1012)
            self.draining = None
        self.resumable = False
        self.close_connections()
        await self.save_sessions()  # those not asked during the drain (held ones)
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        states = [entry.session.sync for entry in self.sessions.values()]
        for key in list(self.sessions):
            self.evict(key, SessionEndReason.SHUTDOWN)
        if self.tasks:  # the handlers a stop runs (on_disconnect, on_session_end...)
            await asyncio.wait(list(self.tasks), timeout=5)
        # a handler that returned in that time is no news; one still running is
        busy = sum(state.running for state in states)
        if busy:
            # threads cannot be stopped: the process exits when these return
            logger.warning("stopping with %d handler(s) still running: waiting for them", busy)
        for task in list(self.tasks):
            task.cancel()
        if self.backend is not None:
            await self.backend.stop()
            self.backend = None
        self.hubs.clear()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None
        if self.executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
        logger.info("quart-flet stopped")

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """A background task the registry keeps alive and awaits at shutdown."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def hub(self, blueprint: str) -> FletPubSub:
        hub = self.hubs.get(blueprint)
        if hub is None:
            assert self.loop is not None and self.executor is not None
            mount = self.mounts.get(blueprint)
            hub = self.hubs[blueprint] = FletPubSub(
                blueprint,
                self.loop,
                self.executor,
                # a session's pubsub messages count against its send buffer
                max_backlog=mount.options.max_send_buffer if mount is not None else None,
                receiver_of=functools.partial(self.connection_of, blueprint),
            )
            if self.backend is not None:
                self.backend.attach(hub)  # shares it across processes if configured
        return hub

    def connection_of(self, blueprint: str, session_id: str) -> Peer | None:
        """The live connection of the session ``session_id``, if it has one."""
        entry = self.sessions.get((blueprint, session_id))
        return entry.connection if entry is not None else None

    def add(self, blueprint: str, session: LoopSafeSession, connection: Peer, owner: Owner) -> None:
        self.sessions[(blueprint, session.id)] = SessionEntry(session, owner, connection)
        logger.debug("new session %s/%s (%d live)", blueprint, session.id, len(self.sessions))

    async def resume(
        self, blueprint: str, session_id: str, connection: Peer, client: ClientInfo
    ) -> LoopSafeSession | None:
        """The session ``session_id`` for ``client``, or None when it is
        unknown, expired, held by another live connection, or another
        browser's. The browser that started it, come back as another user or
        signed out, ends it; any other client leaves it as it was."""
        key = (blueprint, session_id)
        entry = self.sessions.get(key)
        if entry is None:
            logger.info(
                "client asked to resume unknown session %s/%s: it expired, the server "
                "restarted, its worker died, or it lives in another process (across "
                "servers, use sticky sessions); starting a new one",
                blueprint,
                session_id,
            )
            return None
        if not client.is_browser_of(entry.owner):
            # a session id without its browser's cookie: refused, and the
            # session stays its owner's whatever this client claims to be
            logger.info("refused to resume session %s/%s: another browser's", *key)
            return None
        if entry.connection is not None:
            logger.info("refused to resume session %s/%s: it is live elsewhere", *key)
            return None
        if entry.owner.identity != client.handshake.identity:
            # its browser, now another user or signed out: never theirs, and
            # the session ends (so a sign-out ends it)
            logger.info("session %s/%s ended: its user changed", *key)
            self.evict(key)
            return None
        if entry.disconnecting is not None:
            await asyncio.shield(entry.disconnecting)
        if self.sessions.get(key) is not entry:
            return None  # evicted while we waited
        if entry.connection is not None:  # another tab resumed it while we waited
            logger.info("refused to resume session %s/%s: it is live elsewhere", *key)
            return None
        if entry.expiry is not None:
            entry.expiry.cancel()
            entry.expiry = None
        self._held(blueprint).pop(session_id, None)
        entry.connection = connection
        return entry.session

    def disconnect(self, blueprint: str, session: LoopSafeSession, timeout: float) -> None:
        """The client of ``session`` went away: keep it ``timeout`` seconds, or
        until max_held_sessions newer held sessions of its app end it first."""
        key = (blueprint, session.id)
        entry = self.sessions.get(key)
        if entry is None:
            return
        entry.connection = None
        entry.disconnecting = self.spawn(self._disconnect(entry, timeout))
        assert self.loop is not None
        # in a context of its own: the one here (this connection's task) holds
        # the page, and a cancelled handle stays in the loop until its time
        # comes, so an evicted or resumed session's would live up to the timeout
        entry.expiry = self.loop.call_later(
            timeout, self.evict, key, SessionEndReason.EXPIRED, context=contextvars.Context()
        )
        held = self._held(blueprint)
        held.pop(session.id, None)  # the newest held now, whenever it was held before
        held[session.id] = None
        mount = self.mounts.get(blueprint)
        if mount is not None and len(held) > mount.options.max_held_sessions:
            self._evict_over_budget(blueprint, mount.options.max_held_sessions)

    def _held(self, blueprint: str) -> OrderedDict[str, None]:
        held = self.held.get(blueprint)
        if held is None:
            held = self.held[blueprint] = OrderedDict()
        return held

    def _evict_over_budget(self, blueprint: str, budget: int) -> None:
        """End the longest-disconnected held sessions of ``blueprint`` until
        ``budget`` remain; live sessions are never in ``held``."""
        held = self._held(blueprint)
        if blueprint not in self.over_budget:
            self.over_budget.add(blueprint)  # once per app and run: a spike is one event
            logger.warning(
                "Flet app %s holds more than max_held_sessions (%d) disconnected sessions: "
                "ending the longest-disconnected first (on_session_end hears 'evicted')",
                blueprint,
                budget,
            )
        while len(held) > budget:
            session_id = next(iter(held))
            logger.debug("evicting held session %s/%s", blueprint, session_id)
            self.evict((blueprint, session_id), SessionEndReason.EVICTED)

    async def _disconnect(self, entry: SessionEntry, timeout: float) -> None:
        try:
            # flet annotates an int; it adds any number of seconds to a datetime
            await entry.session.disconnect(timeout)  # type: ignore[arg-type]
        except Exception:
            logger.exception("error in the disconnect handler of session %s", entry.session.id)
        finally:
            entry.disconnecting = None

    def evict(
        self, key: tuple[str, str], reason: SessionEndReason = SessionEndReason.CLOSED
    ) -> None:
        """End the session ``key`` for good; ``on_session_end`` hears ``reason``
        (or ``crashed``, when the page showed an error), once."""
        entry = self.sessions.pop(key, None)
        if entry is None:
            return
        held = self.held.get(key[0])
        if held is not None:
            held.pop(key[1], None)
        if entry.expiry is not None:
            entry.expiry.cancel()
        logger.debug("closing session %s/%s (%d left)", *key, len(self.sessions))
        mount = self.mounts.get(key[0])
        if entry.started:
            if entry.session.crashed:
                reason = SessionEndReason.CRASHED
            STATS.session_ends[reason.value] += 1
            if mount is not None and mount.on_session_end is not None:
                self.spawn(dispatch.run_session_end(mount.on_session_end, entry.session, reason))
        try:
            entry.session.close()
        except Exception:
            logger.exception("error closing session %s", entry.session.id)


def get_registry(app: Quart) -> FletRegistry:
    registry = app.extensions.get(EXTENSION_KEY)
    if registry is None:
        raise RuntimeError("no Flet blueprint is registered on this app")
    assert isinstance(registry, FletRegistry)
    return registry
