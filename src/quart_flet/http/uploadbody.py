"""The body of an upload PUT: streamed with backpressure (a
:class:`StreamingBody`; past ``HIGH_WATER`` unread bytes Hypercorn stops
reading the socket), and, after an answer sent before it ended, read to its
end within the ``LINGER_*`` bounds, so that a client still sending hears the
answer instead of a reset (over HTTP/2 with quart_flet.asgi.h2streams).

Why and how: docs/discussion/backpressure.md, "From a browser" and "An answer
before the body ends"; the bounds: docs/reference/limits.md, "Uploads".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar, cast

from quart import Quart
from quart.asgi import ASGIHTTPConnection

from quart_flet.compat.quart import BufferedBody, HTTPConnectionHooks

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
    from quart.typing import ResponseTypes
    from quart.wrappers import Request

logger = logging.getLogger("quart_flet")

#: Bytes a streaming upload may buffer before the server stops reading the socket.
HIGH_WATER = 1024 * 1024

#: After an early answer: the most bytes of the rest of the body read and thrown away,
LINGER_BYTES = 1024 * 1024 * 1024
#: for at most this many seconds,
LINGER_SECONDS = 30.0
#: and no longer than this many seconds without a byte.
LINGER_IDLE_SECONDS = 2.0


class StreamingBody(BufferedBody):
    """A request body without Quart's size limit that tells the receiver to
    pause while more than HIGH_WATER bytes wait to be read, and that can throw
    the rest away (:meth:`discard_rest`)."""

    def __init__(self, expected_content_length: int | None) -> None:
        super().__init__(expected_content_length, None)
        self.room = asyncio.Event()
        self.room.set()
        #: the client has sent all of it (the server read it to its end)
        self.received_all = False
        #: bytes thrown away by discard_rest
        self.discarded = 0
        self._whole = False
        self._discarding = False
        self._last_arrival = 0.0
        self._enough = asyncio.Event()  # all received, or LINGER_BYTES thrown away

    def append(self, data: bytes) -> None:
        if self._discarding:
            self.discarded += len(data)
            self._last_arrival = time.monotonic()
            if self.discarded >= LINGER_BYTES:
                self._enough.set()
            return
        super().append(data)
        if len(self.buffered) >= HIGH_WATER and not self._whole:
            self.room.clear()

    def set_complete(self) -> None:
        self.received_all = True
        self._enough.set()
        super().set_complete()

    async def __anext__(self) -> bytes:
        data = await super().__anext__()
        self.room.set()
        return data

    def __await__(self) -> Generator[Any, None, Any]:
        # someone (a before_request hook?) wants it whole: pausing would deadlock
        self._whole = True
        self.room.set()
        return super().__await__()

    async def discard_rest(self) -> None:
        """Read the rest of the body and throw it away, within the LINGER_* bounds."""
        self._discarding = True
        self.discarded += len(self.buffered)
        self.buffered.clear()
        self.room.set()
        self._last_arrival = time.monotonic()
        deadline = self._last_arrival + LINGER_SECONDS
        while not self._enough.is_set():
            wait = min(self._last_arrival + LINGER_IDLE_SECONDS, deadline) - time.monotonic()
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), wait)


class StreamingUploadConnection(HTTPConnectionHooks):
    """Quart's HTTP connection, except that PUTs to a Flet upload route get a
    :class:`StreamingBody`, read with backpressure, and an answer sent before
    the whole body came is followed by reading the rest (within the ``LINGER_*``
    bounds) before the response ends."""

    upload_paths: ClassVar[frozenset[str]] = frozenset()
    upload_body: StreamingBody | None = None

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self._tasks: list[asyncio.Task[Any]] = []
        try:
            await super().__call__(receive, send)
        except asyncio.CancelledError:
            # Quart's __call__ leaves its handler and receiver tasks running when
            # it is cancelled (Hypercorn at the end of its graceful timeout): an
            # upload would go on, and its answer fail, after the server dropped
            # the request. Cancel them, and wait for their clean-up.
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise

    def request_from_scope(self, send: ASGISendCallable) -> Request:
        request: Request = super().request_from_scope(send)
        if request.method == "PUT" and request.path in self.upload_paths:
            self.upload_body = StreamingBody(request.content_length)
            request.body = self.upload_body
        return request

    async def handle_request(self, request: Request, send: ASGISendCallable) -> None:
        self._watch()
        await super().handle_request(request, send)

    async def handle_messages(self, request: Request, receive: ASGIReceiveCallable) -> None:
        self._watch()
        body = self.upload_body
        if body is None:
            return await super().handle_messages(request, receive)
        while True:
            await body.room.wait()
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                return

    def _watch(self) -> None:
        task = asyncio.current_task()
        if task is not None and hasattr(self, "_tasks"):
            self._tasks.append(task)

    async def send_response(self, send: ASGISendCallable, response: ResponseTypes) -> None:
        body = self.upload_body
        if body is None or body.received_all:
            return await super().send_response(send, response)
        if self.scope["http_version"] in ("1.0", "1.1"):
            response.headers["Connection"] = "close"

        async def send_then_linger(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await body.discard_rest()
                if not body.received_all:
                    logger.info(
                        "upload answered early: %d bytes of the rest of its body read and "
                        "thrown away, and the client still sends: the response ends now",
                        body.discarded,
                    )
            await send(message)

        await super().send_response(send_then_linger, response)


def stream_path(app: Quart, path: str) -> None:
    """PUTs to ``path`` get a StreamingBody: the app's asgi_http_class becomes
    (a subclass of) StreamingUploadConnection."""
    current = app.asgi_http_class
    streaming: type[StreamingUploadConnection]
    if issubclass(current, StreamingUploadConnection):
        streaming = current
    elif issubclass(current, ASGIHTTPConnection):
        # a class of this app's own, so upload paths never leak to another app
        streaming = cast(
            type[StreamingUploadConnection],
            type("StreamingUploadConnection", (StreamingUploadConnection, current), {}),
        )
        app.asgi_http_class = streaming
    else:
        logger.warning(
            "quart-flet: app.asgi_http_class %r is not an ASGIHTTPConnection: uploads to %s "
            "are limited by MAX_CONTENT_LENGTH",
            current,
            path,
        )
        return
    streaming.upload_paths = streaming.upload_paths | {path}
