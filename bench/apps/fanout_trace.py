"""With ``BENCH_FANOUT_TRACE=1`` in its environment, a quart-flet bench app
prints, for each pubsub send, when its frames were queued for the client
and when the server had written them, counted from the send (ms): where a
fan-out's time goes, on the server's side of the socket. Without the
variable, importing this does nothing. With ``BENCH_FANOUT_PROFILE=1`` too,
the loop thread is profiled (cProfile) over each send's first 3 s and the
functions with the most time of their own printed."""

from __future__ import annotations

import os
import time
from typing import Any

ENV = "BENCH_FANOUT_TRACE"
PROFILE_ENV = "BENCH_FANOUT_PROFILE"
_profiles: dict[float, Any] = {}

_rounds: dict[float, dict[str, list[float]]] = {}
_current = [0.0]


def _report(sent: float) -> None:
    profile = _profiles.pop(sent, None)
    if profile is not None:
        import io
        import pstats

        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        print("fanout_trace profile:\n" + out.getvalue(), flush=True)
    stamps = _rounds.pop(sent, None)
    if not stamps:
        return
    parts = []
    for name in ("handled", "queued", "written"):
        values = sorted((t - sent) * 1e3 for t in stamps.get(name, ()))
        if values:
            parts.append(
                f"{name} n={len(values)} first={values[0]:.0f} "
                f"p50={values[len(values) // 2]:.0f} last={values[-1]:.0f}"
            )
    print("fanout_trace: " + "; ".join(parts), flush=True)


def _profile(sent: float) -> None:
    import cProfile

    if not _profiles:
        _profiles[sent] = profile = cProfile.Profile()
        profile.enable()


def _install() -> None:
    from quart_flet.runtime import pubsub
    from quart_flet.session import connection

    deliver = pubsub.FletPubSub.deliver

    def traced_deliver(self: Any, *args: Any) -> None:
        sent = _current[0] = time.monotonic()
        _rounds[sent] = {}
        self.loop.call_soon_threadsafe(self.loop.call_later, 3.0, _report, sent)
        if os.environ.get(PROFILE_ENV):
            self.loop.call_soon_threadsafe(_profile, sent)
        deliver(self, *args)

    enqueue = connection.FletConnection._enqueue

    def traced_enqueue(self: Any, frame: bytes) -> None:
        if b"all:" in frame and _current[0] in _rounds:
            _rounds[_current[0]].setdefault("queued", []).append(time.monotonic())
        enqueue(self, frame)

    send_outbox = connection.FletConnection._send_outbox

    async def traced_send_outbox(self: Any) -> None:
        await send_outbox(self)
        if _current[0] in _rounds:
            _rounds[_current[0]].setdefault("written", []).append(time.monotonic())

    pubsub.FletPubSub.deliver = traced_deliver  # type: ignore[method-assign]
    connection.FletConnection._enqueue = traced_enqueue  # type: ignore[method-assign]
    connection.FletConnection._send_outbox = traced_send_outbox  # type: ignore[method-assign]


if os.environ.get(ENV):
    _install()
