"""Close Flet WebSockets as soon as the server is told to stop.

Hypercorn runs the app's shutdown (``after_serving``) only once every
connection has ended, and tells the app nothing before: open WebSockets hold
it for the whole graceful timeout, then get cancelled, which closes them with
1011 and logs asyncio tracebacks. So the registry chains a handler onto the
server's own SIGTERM/SIGINT handling that closes every Flet WebSocket with
1001 (going away; the client reconnects elsewhere) right away; the server's
handler still runs, as the signal still reaches the event loop's wakeup fd.

Only a signal the server already handles is chained: a default or ignored
disposition is left alone (tests, or Hypercorn workers stopped by their
parent through an event, which then rely on the graceful timeout).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name))


def on_terminate(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]
) -> Callable[[], None]:
    """Run ``callback`` on ``loop`` when a handled SIGTERM/SIGINT arrives;
    returns the function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous.get(signum)
        if callable(chained):
            chained(signum, frame)

    for signum in _SIGNALS:
        current = signal.getsignal(signum)
        if callable(current):  # the server handles it: chain, do not replace
            previous[signum] = current
            signal.signal(signum, handler)

    def undo() -> None:
        for signum, chained in previous.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, chained)

    return undo
