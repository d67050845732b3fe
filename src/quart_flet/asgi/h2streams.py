"""Hypercorn's HTTP/2 connection, kept alive when a client sends body data for
a stream that already has its whole answer (an early 413 of an upload, see
quart_flet.http.uploadbody). Hypercorn's ``H2Protocol._handle_events`` raises
a KeyError for such DATA (0.17 and 0.18; pgjones/hypercorn#329, unfixed
there), which kills the whole connection. With :func:`install` it is taken
as RFC 9113 section 8.1 has it; every other event goes to Hypercorn's own
code, one event at a time, so a stream that ends while earlier events of the
same read are handled is seen as ended.

This reads Hypercorn internals (pinned to <0.19 in pyproject; the names are
checked by tests/test_compat.py). Under another server it changes nothing.

Why and how: docs/discussion/backpressure.md, "The same over HTTP/2".
"""

from __future__ import annotations

import contextlib
from typing import Any

from quart_flet.compat.hypercorn import HandleEvents, h2_flush, wrap_h2_handle_events


def install() -> None:
    """Wrap ``H2Protocol._handle_events`` (once per process)."""
    try:
        import h2.errors
        import h2.events
        import h2.exceptions
    except ImportError:  # not served by Hypercorn
        return

    def answered_streams_kept(original: HandleEvents) -> HandleEvents:
        async def handle_events(self: Any, events: list[Any]) -> None:
            for event in events:
                if (
                    isinstance(event, h2.events.DataReceived)
                    and event.stream_id not in self.streams
                ):
                    self.connection.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                    if event.stream_id not in self.stream_buffers:  # its END_STREAM is out
                        with contextlib.suppress(h2.exceptions.ProtocolError):  # already closed
                            self.connection.reset_stream(
                                event.stream_id, h2.errors.ErrorCodes.NO_ERROR
                            )
                    await h2_flush(self)
                else:
                    await original(self, [event])

        return handle_events

    wrap_h2_handle_events(answered_streams_kept)
