"""One WebSocket <-> one flet Session: the frame codec, the receive loop, a
thread-safe bounded send queue, and the close codes for bad input.

Frames are ``[type:u8][payload]``: 0 msgpack ``[action, body]``, 1 a data
channel's ``[channel_id:u32 LE][bytes]``. Why and how:
docs/discussion/click.md, "On the wire"; the close codes:
docs/reference/limits.md, "Bad input".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from typing import Any

import msgpack
from flet.controls.base_control import BaseControl
from flet.messaging.connection import Connection
from flet.messaging.protocol import (
    Message,
    MessageAction,
    RegisterClientResponseBody,
    configure_encode_object_for_msgpack,
    decode_ext_from_msgpack,
)
from quart import abort, websocket

from quart_flet.client import browserid
from quart_flet.compat.flet import (
    ProtocolMuxedDataChannel,
    deliver_to_channel,
    set_context_page,
    trigger_page_event,
)
from quart_flet.compat.quart import current_websocket, websocket_queues
from quart_flet.errors import NOT_STARTED, STOPPING, json_error
from quart_flet.http import headers, uploads
from quart_flet.mount import FletMount, path_for
from quart_flet.runtime import dispatch
from quart_flet.runtime.loopsafe import LoopSafeSession
from quart_flet.runtime.session import TooManyEvents, Turn
from quart_flet.session import oauth, relay
from quart_flet.session.handshake import ClientInfo, Handshake
from quart_flet.session.registry import FletRegistry
from quart_flet.stats import STATS

logger = logging.getLogger("quart_flet")

_encode_default = configure_encode_object_for_msgpack(BaseControl)

_REGISTER = MessageAction.REGISTER_CLIENT.value
_EVENT = MessageAction.CONTROL_EVENT.value
_PROPS = MessageAction.UPDATE_CONTROL_PROPS.value
_INVOKE = MessageAction.INVOKE_METHOD.value

CLOSE_TIMEOUT = 5.0  # seconds

# RFC 6455 close codes we use
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED_DATA = 1000, 1001, 1002, 1003
INVALID_PAYLOAD, POLICY_VIOLATION, MESSAGE_TOO_BIG, INTERNAL_ERROR = 1007, 1008, 1009, 1011
SERVICE_RESTART = 1012  # the server is stopping: reconnect (to the instance replacing it)


def _check_page(page: dict[str, Any], target: Any) -> None:
    """Refuse, before anything is applied, what a client has no business
    setting at register: flet's patch sets any ``_``-prefixed attribute (its
    private state), and the page's controls (``views``, ``overlay``)."""
    stack: list[Any] = [page]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str) or key.startswith("_"):
                    raise ProtocolError(
                        INVALID_PAYLOAD, f"bad page in register: {key!r} is not a page property"
                    )
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    if target is not None:
        for key, value in page.items():
            current = getattr(target, key, None)
            if isinstance(current, list) or (
                isinstance(current, BaseControl) and not isinstance(value, dict)
            ):
                raise ProtocolError(
                    INVALID_PAYLOAD, f"bad page in register: {key!r} is not the client's to set"
                )


class ProtocolError(Exception):
    """The client broke the protocol; close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode_message(message: Message) -> bytes:
    packed: bytes = msgpack.packb([message.action, message.body], default=_encode_default)
    return b"\x00" + packed


class Relayed(Exception):
    """The session a register asks for lives in another worker, which now
    serves it through ``wire``."""

    def __init__(self, wire: relay.RelayWire) -> None:
        self.wire = wire


class RelayEnded(ProtocolError):
    """The worker holding a relayed session closed it with this code."""


def decode_frame(data: bytes) -> tuple[int, Any]:
    """Split a client frame into (type, payload); raise ProtocolError if bad."""
    if not data:  # the receive loop skips empty frames; anyone else gets a clear error
        raise ProtocolError(INVALID_PAYLOAD, "empty frame")
    kind = data[0]
    if kind == 0:
        try:
            return 0, msgpack.unpackb(data[1:], ext_hook=decode_ext_from_msgpack)
        except Exception as error:
            raise ProtocolError(INVALID_PAYLOAD, f"undecodable msgpack: {error}") from None
    if kind == 1:
        if len(data) < 5:
            raise ProtocolError(INVALID_PAYLOAD, "data-channel frame shorter than its header")
        return 1, data
    raise ProtocolError(UNSUPPORTED_DATA, f"unknown packet type 0x{kind:02x}")


def answered_call(data: bytes) -> tuple[int, str] | None:
    """(control_id, call_id) of the method call a message frame answers, read
    from its head without decoding the (large) result; None if it is not one."""
    if data[:1] != b"\x00":
        return None
    unpacker = msgpack.Unpacker(max_buffer_size=len(data), ext_hook=decode_ext_from_msgpack)
    unpacker.feed(data[1:])
    try:
        if unpacker.read_array_header() != 2 or unpacker.unpack() != _INVOKE:
            return None
        fields: dict[str, Any] = {}
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key in ("control_id", "call_id"):
                fields[key] = unpacker.unpack()
            else:
                unpacker.skip()
    except Exception:  # not msgpack, or not of that shape
        return None
    control_id, call_id = fields.get("control_id"), fields.get("call_id")
    if isinstance(control_id, int) and isinstance(call_id, str):
        return control_id, call_id
    return None


def _field(body: dict[str, Any], name: str, kinds: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if not isinstance(value, kinds) or isinstance(value, bool) and kinds is int:
        raise ProtocolError(PROTOCOL_ERROR, f"field {name!r} is missing or of the wrong type")
    return value


class FletConnection(Connection):
    """The flet ``Connection`` of one WebSocket. ``send_message`` may be called
    from any thread; frames reach the client in the order each thread sent them."""

    def __init__(
        self, mount: FletMount, registry: FletRegistry, websocket: Any, client: ClientInfo
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # flet's, unannotated
        assert registry.loop is not None and registry.executor is not None
        self.mount = mount
        self.registry = registry
        self.websocket = websocket
        self.client = client
        # served for a browser connected to a sibling worker, which counts
        # the browser's WebSocket (quart_flet.session.relay)
        self.relayed = isinstance(websocket, relay.RelayWire)
        self.loop = registry.loop
        self.executor = registry.executor
        # flet's PubSubHub interface, safe from any thread (quart_flet.runtime.pubsub)
        self.hub = registry.hub(mount.name)
        self.pubsubhub = self.hub  # type: ignore[assignment]
        self.page_url = client.page_url
        self.page_name = client.page_name
        self.session: LoopSafeSession | None = None
        self._data_channels: dict[int, Any] = {}
        self._loop_thread = threading.get_ident()
        # frames not yet sent, and the task sending them: both exist only
        # while there is something to send (an idle connection holds neither:
        # ~2 KiB less per session than a deque and a send loop waiting)
        self._outbox: deque[bytes] | None = None
        # bytes of the frames in the outbox, of the one the server is writing
        # to the socket, and of those other threads have sent on their way
        # to the loop: with the session's pubsub backlog, what waits for the
        # client, bounded by max_send_buffer
        self._outbox_bytes = self._sending = self._crossing = 0
        self._crossing_lock = threading.Lock()
        self._sender: asyncio.Task[None] | None = None
        self._accepted = False
        self._closed = False
        self._close_code: tuple[int, str] | None = None
        self._handler: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._events_stopped = False  # the session is being saved for a restart

    # ---- lifecycle -----------------------------------------------------

    async def serve(self, accept_headers: dict[str, str] | None = None) -> None:
        """Run until the client leaves, breaks the protocol, or we shut down;
        ``accept_headers`` go with the handshake's answer."""
        self._handler = asyncio.current_task()
        self.registry.connections.add(self)
        await self.websocket.accept(accept_headers)
        self._accepted = True
        if self._outbox:
            self._start_sender()
        close: tuple[int, str] | None = None
        try:
            await self._receive_loop()
        except RelayEnded as ended:  # the worker holding the session closed it
            close = (ended.code, ended.reason)
        except ProtocolError as error:
            logger.info("closing a Flet connection (%d): %s", error.code, error.reason)
            close = (error.code, error.reason)
        except relay.WireClosed:
            pass  # a relayed session's browser went away: as a client leaving
        except asyncio.CancelledError:
            if self._close_code is None:
                raise  # the client went away
            close = self._close_code
        except Exception:
            logger.exception("error in a Flet connection")
            close = (INTERNAL_ERROR, "internal error")
        finally:
            self._closed = True
            STATS.closes["client" if close is None else str(close[0])] += 1
            if self._sender is not None:
                self._sender.cancel()
            self.registry.connections.discard(self)
            if self.session is not None:
                self.registry.disconnect(
                    self.mount.name, self.session, self.mount.options.session_timeout_seconds
                )
            self._outbox = None
            self._outbox_bytes = self._sending = 0
        if close is not None:
            try:
                # a peer that stopped reading would block the close frame forever
                await asyncio.wait_for(self.websocket.close(*close), CLOSE_TIMEOUT)
            except TimeoutError:
                logger.info("a Flet client did not take its close frame in %s s", CLOSE_TIMEOUT)
            except asyncio.CancelledError:
                # a server that cancels its handlers as it stops (Granian) may
                # do so while this close is under way: the socket goes anyway
                if not self.registry.stopping:
                    raise

    def abort(self, code: int, reason: str) -> None:
        """Close this connection from outside its handler (loop thread only)."""
        if self._close_code is None and self._handler is not None and not self._closed:
            self._close_code = (code, reason)
            self._handler.cancel()

    def stop_events(self) -> None:
        """The session is being saved for the next start (on_session_save):
        the browser's events and prop changes from now on are dropped, since
        their effect would be in neither the saved state nor an answer."""
        self._events_stopped = True

    # ---- receiving -----------------------------------------------------

    def _queues(self) -> tuple[Any, Any]:
        """The receive and send of this connection's WebSocket (or of the
        relay from the worker the browser is connected to)."""
        if isinstance(self.websocket, relay.RelayWire):
            return self.websocket.receive, self.websocket.send
        return websocket_queues(self.websocket)

    async def _receive_loop(self) -> None:
        limit = self.mount.options.max_message_size
        # Websocket.receive() re-runs accept() (a Headers object and two awaits)
        # on every frame; serve() accepted already, so read Quart's queue directly
        receive, _ = self._queues()
        while True:
            # no local of this loop keeps the last frame (or what it decoded
            # to) alive while an idle client sends nothing
            await self._on_frame(await receive(), limit)

    async def _on_frame(self, data: bytes | str | None, limit: int) -> None:
        if isinstance(data, str):
            raise ProtocolError(UNSUPPORTED_DATA, "text frames are not part of the Flet protocol")
        if not data:
            return  # an empty frame carries nothing: ignored by rule
        stats = STATS
        stats.frames_in += 1
        stats.bytes_in += len(data)
        if len(data) > limit:
            self._refuse_oversized(data, limit)
            return
        kind, payload = decode_frame(data)
        if kind == 0:
            try:
                await self._on_message(payload)
            except Relayed as relayed:  # its session lives in another worker
                receive, send = self._queues()
                limit = self.mount.options.max_send_buffer
                ended = await relay.pump(relayed.wire, data, receive, send, limit)
                if ended[0] == POLICY_VIOLATION:  # over max_send_buffer here
                    logger.warning("a Flet client stopped reading; disconnecting it")
                raise RelayEnded(*ended) from None
        else:
            channel = self._data_channels.get(int.from_bytes(payload[1:5], "little"))
            if channel is not None:
                deliver_to_channel(channel, payload[5:])

    def _refuse_oversized(self, data: bytes, limit: int) -> None:
        """A message over ``max_message_size``: before register, close with
        1009; after, drop it and keep the connection, failing the method call
        it answers (a file picked with its data, say) with a clear error, so
        the handler that waits for it hears why instead of waiting forever."""
        text = (
            f"a message of {len(data)} bytes from the browser exceeds max_message_size "
            f"({limit} bytes): raise the max_message_size option"
        )
        if self.session is None:
            raise ProtocolError(MESSAGE_TOO_BIG, text)
        call = answered_call(data)
        if call is not None:
            logger.warning("session %s: %s; the method call fails", self.session.id, text)
            with contextlib.suppress(RuntimeError):  # its control is gone
                self.session.handle_invoke_method_results(*call, None, text)
        else:
            logger.warning("session %s: %s; dropped", self.session.id, text)

    async def _on_message(self, message: Any) -> None:
        if (
            not isinstance(message, (list, tuple))
            or len(message) != 2
            or not isinstance(message[1], dict)
        ):
            raise ProtocolError(PROTOCOL_ERROR, "a message must be [action, {body}]")
        action, body = message
        session = self.session
        if self._events_stopped and action in (_EVENT, _PROPS):
            return
        if action == _EVENT:
            if session is None:
                raise ProtocolError(PROTOCOL_ERROR, "control event before register")
            target, name = _field(body, "target", int), _field(body, "name", str)
            turn = self._take_turn(session)
            self._spawn(dispatch.dispatch_event(session, target, name, body.get("data"), turn))
        elif action == _INVOKE:
            if session is None:
                raise ProtocolError(PROTOCOL_ERROR, "method result before register")
            try:
                session.handle_invoke_method_results(
                    _field(body, "control_id", int),
                    _field(body, "call_id", str),
                    body.get("result"),
                    body.get("error"),
                )
            except RuntimeError as error:  # the control is gone: nobody waits
                logger.debug("dropped a method result: %s", error)
        elif action == _PROPS:
            if session is None:
                raise ProtocolError(PROTOCOL_ERROR, "prop update before register")
            control_id, props = _field(body, "id", int), _field(body, "props", dict)
            if session.sync.in_turn():  # after the events that came before it
                turn = self._take_turn(session)
                self._spawn(dispatch.apply_props(session, control_id, props, turn))
                return
            try:
                if dispatch.find_control(session, control_id) is not None:
                    session.apply_patch(control_id, props)
            except Exception as error:
                raise ProtocolError(
                    INVALID_PAYLOAD, f"bad props for control {control_id}: {error}"
                ) from None
        elif action == _REGISTER:
            if session is not None:
                raise ProtocolError(PROTOCOL_ERROR, "register sent twice")
            await self._register(body)
        else:
            raise ProtocolError(PROTOCOL_ERROR, f"unknown action {action!r}")

    async def _register(self, body: dict[str, Any]) -> None:
        requested = body.get("session_id")
        page = body.get("page") or {}
        if not isinstance(page, dict) or not isinstance(requested, (str, type(None))):
            raise ProtocolError(PROTOCOL_ERROR, "register body has the wrong shape")
        mount, registry = self.mount, self.registry
        session: LoopSafeSession | None = None
        if requested and registry.relay is not None and not registry.holds(mount.name, requested):
            wire = await registry.relay.find_owner(relay_fields(mount, requested, self.client))
            if wire is not None:
                STATS.relayed += 1
                logger.info("session %s/%s lives in another worker: relayed", mount.name, requested)
                raise Relayed(wire)
        if requested and (registry.resumable or not registry.stopping):
            session = await registry.resume(mount.name, requested, self, self.client)
        if session is None and registry.stopping:
            # stopping: only a session held here may come back (its browser's
            # socket dropped during the drain); a new one starts elsewhere
            raise ProtocolError(SERVICE_RESTART, "service restart")
        oauth_session = (
            await oauth.take_session(mount, registry, self, self.client)
            if self.client.oauth_state
            else None
        )
        if oauth_session is not None:
            if session is not None and session is not oauth_session:
                # the sign-in came back to another session of this browser:
                # the one resumed first is let go, held for its timeout again
                registry.disconnect(mount.name, session, mount.options.session_timeout_seconds)
            session = oauth_session
        new = session is None
        if requested:
            if new:
                STATS.resume_failures += 1
            else:
                STATS.resumes += 1
        restored = None
        if session is None:
            STATS.registrations += 1
            _check_page(page, None)
            if registry.saved is not None and mount.on_session_save is not None:
                restored = await registry.saved.take(mount, self.client.owner)
            session = LoopSafeSession(self, self.executor, self.loop)
            registry.add(mount.name, session, self, self.client.owner)
        self.session = session
        session.handshake = self.client.handshake  # this connection's, also on resume
        set_context_page(session.page)
        original_route = session.page.route
        try:
            _check_page(page, session.page)
            session.apply_page_patch(page)
            if new:
                if restored is not None:
                    _restore(session, *restored)
                session.page.client_ip = self.client.ip
                session.page.client_user_agent = self.client.user_agent
                first_patch = session.get_page_patch()  # type: ignore[no-untyped-call]  # flet's
        except Exception as error:
            if new:  # main never ran: nothing to resume, do not keep it for the timeout
                self.session = None
                registry.evict((mount.name, session.id))
            if isinstance(error, ProtocolError):
                raise
            raise ProtocolError(INVALID_PAYLOAD, f"bad page in register: {error}") from None

        failure = ""
        if new and mount.before_main is not None:
            failure = await dispatch.run_before_main(mount.before_main, session)
        self.send_message(
            Message(
                MessageAction.REGISTER_CLIENT,
                RegisterClientResponseBody(
                    session_id=session.id,
                    page_patch=first_patch if new else session.page,
                    error=failure,
                ),
            )
        )
        if failure:
            session.error(failure)
            if new:  # main never ran: a refresh runs before_main again
                registry.evict((mount.name, session.id))
            return
        if new:
            self._spawn(self._start(session))
            return
        session.attach_connection(self)
        self._spawn(session.dispatch_connect_event())
        if session.page.route and session.page.route != original_route:
            self._spawn(
                trigger_page_event(session.page, "route_change", {"route": session.page.route})
            )
        if oauth_session is not None:
            self._spawn(oauth.complete(self, session))

    async def _start(self, session: LoopSafeSession) -> None:
        """A new session: on_session_start(page), then main(page)."""
        mount = self.mount
        entry = self.registry.sessions.get((mount.name, session.id))
        if entry is not None:
            entry.started = True  # on_session_end will hear of its end
        hook = mount.on_session_start
        if hook is None or await dispatch.run_session_start(hook, session):
            await dispatch.run_main(mount.main, session)

    @staticmethod
    def _take_turn(session: LoopSafeSession) -> Turn:
        try:
            return session.sync.take_turn()
        except TooManyEvents as error:
            raise ProtocolError(POLICY_VIOLATION, f"too many events: {error}") from None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- sending -------------------------------------------------------
    #
    # Everything that waits for this client counts against max_send_buffer:
    # frames in the outbox, the frame the server is writing (handed over, it
    # is the server's until its write to the socket returns, which waits
    # while the socket is full: one frame at a time), frames other threads
    # sent, and the messages the session's pubsub handlers have yet to turn
    # into frames (quart_flet.runtime.pubsub). Past the bound the connection closes
    # with 1008 and what waited is dropped; nothing more is built for it.

    @property
    def queued_bytes(self) -> int:
        """Bytes of frames not yet written to the client's socket."""
        return self._outbox_bytes + self._sending + self._crossing

    def _stopped(self) -> bool:
        return self._closed or self._close_code is not None

    def send_message(self, message: Message) -> None:
        if not self._stopped():  # no frame is built for a client we are leaving
            self.send_frame(encode_message(message))

    def send_frame(self, frame: bytes) -> None:
        if self._stopped():
            return
        if threading.get_ident() == self._loop_thread:
            self._enqueue(frame)
            return
        with self._crossing_lock:
            self._crossing += len(frame)
        self.loop.call_soon_threadsafe(self._arrive, frame)

    def _arrive(self, frame: bytes) -> None:
        """A frame another thread sent reaches the loop."""
        with self._crossing_lock:
            self._crossing -= len(frame)
        self._enqueue(frame)

    def _enqueue(self, frame: bytes) -> None:
        if self._stopped():
            return
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        outbox.append(frame)
        self._outbox_bytes += len(frame)
        waiting = self.queued_bytes + self._backlog()
        # one frame larger than the buffer still goes to a client that reads
        if waiting > self.mount.options.max_send_buffer and waiting > len(frame):
            self.overflow()
            return
        if self._sender is None and self._accepted:
            self._start_sender()

    def _backlog(self) -> int:
        """Bytes of pubsub messages waiting for this session's handlers."""
        session = self.session
        return self.hub.backlog(session.id) if session is not None else 0

    def overflow(self) -> None:
        """More than max_send_buffer waits for this client: drop it all and
        close with 1008 (loop thread; once)."""
        if self._stopped():
            return
        logger.warning("a Flet client stopped reading; disconnecting it")
        STATS.send_buffer_drops += 1
        self._outbox = None
        self._outbox_bytes = 0
        if self.session is not None:
            self.hub.drop_backlog(self.session.id)
        self.abort(POLICY_VIOLATION, "client is not reading its messages")

    def _start_sender(self) -> None:
        self._sender = self.loop.create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        """Send until the outbox is empty, then end (the next frame starts a
        new sender). Websocket.send() adds a sleep(0) and an accept() per
        frame; serve() accepted already."""
        (_, send), stats = self._queues(), STATS
        try:
            while self._outbox:
                frame = self._outbox.popleft()
                self._outbox_bytes -= len(frame)
                self._sending = len(frame)
                await send(frame)
                self._sending = 0
                stats.frames_out += 1
                stats.bytes_out += len(frame)
        finally:
            # no await between the last look at the outbox and this: a frame
            # queued from now on starts a sender of its own
            if self._sender is asyncio.current_task():
                self._sender = None
                if not self._outbox:
                    self._outbox = None

    # ---- flet Connection API -----------------------------------------------

    def send_data_channel_frame(self, channel_id: int, payload: bytes) -> None:
        self.send_frame(b"\x01" + channel_id.to_bytes(4, "little") + payload)

    def data_channel_for(self, channel_id: int) -> Any:
        channel = self._data_channels.get(channel_id)
        if channel is None:
            channel = self._data_channels[channel_id] = ProtocolMuxedDataChannel(channel_id, self)
        return channel

    def unregister_data_channel(self, channel_id: int) -> None:
        self._data_channels.pop(channel_id, None)

    def get_upload_url(self, file_name: str, expires: int) -> str:
        return uploads.upload_url(self.mount, file_name, expires)

    def oauth_authorize(self, attrs: dict[str, Any]) -> None:
        assert self.session is not None
        oauth.store_state(self.mount, self.registry, self.session, attrs)

    def dispose(self) -> None:
        self.session = None


async def serve_websocket(mount: FletMount, registry: FletRegistry) -> None:
    """The WebSocket block: serve the current ``websocket`` (of a route of the
    app's own or of the blueprint) as a session of ``mount``.

    The Origin is checked first (a 403 before accept); the handshake is copied
    while the websocket context exists (it is gone in pool threads). A request
    without a browser id gets one with the handshake's answer (:mod:`quart_flet.client.browserid`).
    """
    headers.check_websocket_origin(mount.options)
    if not registry.started:
        abort(json_error(503, NOT_STARTED))  # before accept: the handshake's answer
    base = path_for(mount.routes.index)
    scheme = "https" if websocket.scheme in ("wss", "https") else "http"
    ids, answer = websocket.cookies.getlist(browserid.COOKIE), None
    if not ids:  # an index of the app's own, or a client that skipped the page
        ids = [browserid.new_id()]
        if browserid.accepts_headers(websocket.scope):
            path = browserid.cookie_path(base, path_for(mount.routes.websocket))
            cookie = browserid.set_cookie_header(ids[0], path, secure=scheme == "https")
            answer = {"Set-Cookie": cookie}
    client = ClientInfo(
        handshake=Handshake.of_websocket(),
        page_url=f"{scheme}://{websocket.host}{base.rstrip('/')}",
        page_name=base.strip("/"),
        browsers=browserid.digests(ids),
    )
    if registry.stopping and not registry.waits_for(mount.name, client.browsers):
        # draining: no new sessions here, refused before the handshake completes
        # so a load balancer can try the instance replacing this one (nginx:
        # proxy_next_upstream http_503); a browser alone retries by itself
        abort(json_error(503, STOPPING))
    connection = FletConnection(mount, registry, current_websocket(), client)
    await connection.serve(answer)


# ---- sessions relayed between the workers of one server -------------------


def _restore(session: LoopSafeSession, route: str, store: dict[str, Any]) -> None:
    """What the browser's session before a restart kept (quart_flet.session.saved):
    its items in ``page.session.store``, its route unless the browser asks for
    another than the root."""
    for key, value in store.items():
        session.store.set(key, value)
    if route and session.page.route in ("", "/"):
        session.page.route = route
    logger.info("session %s starts with the state its browser's last session saved", session.id)


def relay_fields(mount: FletMount, session_id: str, client: ClientInfo) -> dict[str, Any]:
    """What the worker holding a session needs to serve the browser that asks
    for it: the session and the browser's real handshake, whose cookies and
    user the holding worker checks as it would its own."""
    return {"app": mount.name, "session_id": session_id, **client.as_fields()}


async def serve_relayed(
    registry: FletRegistry, fields: dict[str, Any], wire: relay.RelayWire
) -> bool:
    """Serve the browser a sibling worker relays, if this worker holds the
    session it asks for (False if not: the sibling asks the next one)."""
    mount = registry.mounts.get(str(fields.get("app")))
    session_id = fields.get("session_id")
    if (
        mount is None
        or not isinstance(session_id, str)
        or not registry.holds(mount.name, session_id)
    ):
        return False
    try:
        client = ClientInfo.from_fields(fields)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    await FletConnection(mount, registry, wire, client).serve()
    return True
