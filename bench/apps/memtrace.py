"""Where a server process's memory goes, by package, for bench.idle_scale.

With ``BENCH_TRACEMALLOC=<path prefix>`` in its environment, a bench app
answers SIGUSR1: the first one starts tracemalloc (tracing flet's imports
would take minutes), each one writes ``<prefix>.<pid>.<n>.json``: the bytes
allocated since tracing started and alive now, grouped by package two ways:

- ``innermost``: by the file of the frame that allocated (a dict made in
  asyncio's code counts as asyncio);
- ``owner``: by the innermost frame that is not the standard library (that
  dict counts as whoever called asyncio: Hypercorn, flet, quart_flet...).

Without the variable, importing this module does nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import sysconfig
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

ENV = "BENCH_TRACEMALLOC"
FRAMES = 30
LINES = 400  # the biggest (owner line, allocating line) pairs in each summary
_NOT_OWNERS = ("asyncio", "stdlib", "other")

#: the packages reported on their own; anything else is "other"
PACKAGES = (
    "flet_web",
    "flet",
    "quart_flet",
    "quart",
    "hypercorn",
    "wsproto",
    "h11",
    "h2",
    "msgpack",
    "uvicorn",
    "websockets",
    "starlette",
    "fastapi",
    "uvloop",
    "werkzeug",
    "anyio",
    "bench",
)

_STDLIB = sysconfig.get_paths()["stdlib"]
_count = 0


def package_of(filename: str) -> str:
    """The top-level package of a source file, or "app" (the bench's Flet app),
    "asyncio", "stdlib", "other"."""
    path = filename.replace("\\", "/")
    marker = "/site-packages/"
    if marker in path:
        top = path.split(marker, 1)[1].split("/", 1)[0].removesuffix(".py")
        return top if top in PACKAGES else "other"
    if "/examples/" in path or "/bench/apps/" in path:
        return "app"  # the Flet app's own main and handlers
    for name in ("quart_flet", "bench"):
        if f"/{name}/" in path:
            return name
    if path.startswith(_STDLIB):
        rest = path[len(_STDLIB) :].lstrip("/")
        return "asyncio" if rest.startswith("asyncio/") else "stdlib"
    return "other"  # <frozen ...>, <string> (dataclass __init__), C


def summary() -> dict[str, dict[str, int]]:
    snapshot = tracemalloc.take_snapshot()
    innermost: Counter[str] = Counter()
    owner: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for stat in snapshot.statistics("traceback"):
        # reversed: tracemalloc keeps the most recent frame last
        frames = list(reversed(stat.traceback))
        packages = [package_of(frame.filename) for frame in frames]
        innermost[packages[0]] += stat.size
        at = next((i for i, p in enumerate(packages) if p not in _NOT_OWNERS), 0)
        owner[packages[at]] += stat.size
        lines[f"{_short(frames[at])} <- {_short(frames[0])}"] += stat.size
    return {
        "innermost": dict(innermost),
        "owner": dict(owner),
        "lines": dict(lines.most_common(LINES)),
    }


def _short(frame: tracemalloc.Frame) -> str:
    parts = frame.filename.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}:{frame.lineno}"


def _dump(signum: int, frame: FrameType | None) -> None:
    global _count
    _count += 1
    prefix = os.environ[ENV]
    path = Path(f"{prefix}.{os.getpid()}.{_count}.json")
    tmp = path.with_suffix(".tmp")
    if tracemalloc.is_tracing():
        tmp.write_text(json.dumps(summary()))
    else:
        tracemalloc.start(FRAMES)
        tmp.write_text(json.dumps({"innermost": {}, "owner": {}, "lines": {}}))
    tmp.rename(path)  # the bench sees a whole file or none


def install() -> None:
    if not os.environ.get(ENV):
        return
    signal.signal(signal.SIGUSR1, _dump)
    print(f"memtrace: SIGUSR1 to {os.getpid()} traces ({sys.argv[0]})", flush=True)


install()
