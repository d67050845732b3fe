"""With ``BENCH_GCLOG=1`` in its environment, a bench app prints every full
(generation 2) garbage collection and how long it paused the process: with
thousands of sessions held, one full pass over their objects is long enough to
show in a click's p99. With ``BENCH_NOGC=1`` it turns the collector off, so
a profile charges no collection to the line that happened to allocate.
Without the variables, importing this does nothing."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

ENV = "BENCH_GCLOG"
_started = [0.0]


def _callback(phase: str, info: dict[str, Any]) -> None:
    if info.get("generation") != 2:
        return
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    pause = (time.perf_counter() - _started[0]) * 1e3
    print(
        f"gclog: full collection at {time.time():.3f}: {pause:.0f} ms, "
        f"{info.get('collected', 0)} collected",
        flush=True,
    )


if os.environ.get(ENV):
    gc.callbacks.append(_callback)


if os.environ.get("BENCH_NOGC"):
    gc.disable()
