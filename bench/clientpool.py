"""A load client spread over several processes, which reports its own CPU.

One asyncio process tops out at one core: a benchmark whose client is that
process measures the client as soon as the server is faster than it. A
:class:`ClientPool` starts ``processes`` child processes, each with its own
event loop running for the pool's whole life (open sessions stay served
between commands), and runs one command in all of them at once:

    with ClientPool(4) as pool:
        opened = await pool.call("bench.loadclient:pool_open", port, 50)
        clicks = await pool.call("bench.loadclient:pool_click_for", 1.5)
        print(clicks.results, clicks.busiest_share)

A command is ``"module:function"``: an ``async def function(state, *args)``
where ``state`` is a dict the child keeps from one command to the next (its
sessions, say). Each child answers with the function's result and the CPU
time (user + system, all its threads) and wall time the command took, so every
figure comes with the client's own share. A figure whose busiest client
process was near a whole core (:data:`SATURATED`) is not a server figure:
:attr:`CallResult.saturated` says so and the benchmarks print that instead of
a ratio.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

#: a client process busier than this share of one core may be what limits a figure
SATURATED = 0.85


def _resolve(name: str) -> Any:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


async def _serve(conn: Connection, index: int) -> None:
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"index": index}
    while True:
        message = await loop.run_in_executor(None, conn.recv)
        if message is None:
            return
        name, args = message
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            result: Any = await _resolve(name)(state, *args)
            reply: tuple[Any, ...] = ("ok", result)
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises
            reply = ("error", traceback.format_exc())
        conn.send((*reply, time.process_time() - cpu, time.perf_counter() - wall))


def _child(conn: Connection, index: int) -> None:
    try:
        import uvloop

        uvloop.run(_serve(conn, index))
    except ImportError:
        asyncio.run(_serve(conn, index))
    finally:
        conn.close()


@dataclass
class CallResult:
    """One command's answers, one per client process, in process order."""

    results: list[Any]
    cpu_s: list[float]  # CPU each client process spent on the command
    wall_s: float  # from sending the command to the last answer

    @property
    def client_cpu_s(self) -> float:
        return sum(self.cpu_s)

    @property
    def busiest_share(self) -> float:
        """The busiest client process's CPU, as a share of one core."""
        return max(self.cpu_s) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def saturated(self) -> bool:
        return self.busiest_share >= SATURATED


class ClientPool:
    """``processes`` client processes; use as a context manager."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a ClientPool needs at least one process")
        self.size = processes
        self._conns: list[Connection] = []
        self._procs: list[Any] = []

    def __enter__(self) -> ClientPool:
        context = multiprocessing.get_context("spawn")  # no copy of the parent's loop
        for index in range(self.size):
            parent, child = context.Pipe()
            proc = context.Process(target=_child, args=(child, index), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()

    @property
    def pids(self) -> list[int]:
        return [int(proc.pid) for proc in self._procs]

    async def call(
        self, name: str, *args: Any, per_process: Sequence[Any] | None = None
    ) -> CallResult:
        """Run ``name(state, *args)`` in every process at once. With
        ``per_process``, process ``i`` gets ``per_process[i]`` as one more
        argument (its share of the sessions, say)."""
        started = time.perf_counter()
        for index, conn in enumerate(self._conns):
            extra = () if per_process is None else (per_process[index],)
            conn.send((name, (*args, *extra)))
        replies = await asyncio.gather(*(asyncio.to_thread(conn.recv) for conn in self._conns))
        wall = time.perf_counter() - started
        errors = [reply[1] for reply in replies if reply[0] == "error"]
        if errors:
            raise RuntimeError(f"{name} failed in a client process:\n{errors[0]}")
        return CallResult([r[1] for r in replies], [r[2] for r in replies], wall)


def split(total: int, parts: int) -> list[int]:
    """``total`` sessions as evenly as possible over ``parts`` processes."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def default_processes() -> int:
    """One client process per core, at least two: the server gets the rest."""
    return max(2, os.cpu_count() or 1)
