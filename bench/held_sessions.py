"""What a held (disconnected) session costs, and that ``max_held_sessions``
bounds it: sessions of a page with N controls open through Quart's test
client, render, and leave; Python's allocations (tracemalloc) are read after
each batch, with a budget above the count (every session held) and with the
default budget.

Run: python -m bench.held_sessions [--sessions 700] [--controls 0,30,150]

One process, no server: the figure is the session's own (flet's page and
controls, quart-flet's entry), not Hypercorn's per connection, which a held
session no longer has. tracemalloc slows allocation: the 150-control row
takes about ten minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import tracemalloc
from typing import Any

import flet as ft
import msgpack
from quart import Quart

from quart_flet import flet_blueprint
from quart_flet.options import FletOptions

REGISTER, PATCH_CONTROL = 1, 2
REGISTER_FRAME = b"\x00" + msgpack.packb(
    [REGISTER, {"session_id": None, "page_name": "", "page": {"route": "/", "width": 800}}]
)
KiB = 1024


def page_of(controls: int) -> Any:
    """A main whose page has about ``controls`` controls (rows of three)."""

    def main(page: ft.Page) -> None:
        if controls == 0:  # the counter
            page.add(ft.Text("Counter:"), ft.Text("0"), ft.FloatingActionButton(icon=ft.Icons.ADD))
            return
        rows = [
            ft.Row([ft.Text(f"row {i}"), ft.TextField(value=f"{i}"), ft.IconButton(ft.Icons.ADD)])
            for i in range(controls // 3)
        ]
        page.add(ft.Column(rows))

    return main


async def visit(client: Any) -> None:
    async with client.websocket("/ws") as ws:
        await ws.send(REGISTER_FRAME)
        while True:  # until main's controls arrive: the first patch
            frame = await asyncio.wait_for(ws.receive(), 30)
            message = msgpack.unpackb(frame[1:], strict_map_key=False, ext_hook=lambda *_: None)
            if message[0] == PATCH_CONTROL:
                return


async def held_cost(controls: int, sessions: int, budget: int) -> tuple[int, int]:
    """(sessions held, bytes allocated by the visits) after 20 visits to warm
    up and ``sessions`` more."""
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(page_of(controls), max_held_sessions=budget))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for _ in range(20):  # warm-up: imports, caches, the pool
            await visit(client)
        await asyncio.sleep(0.2)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(sessions):
            await visit(client)
        await asyncio.sleep(0.5)  # end hooks and disconnect handlers finish
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        registry = app.extensions["quart_flet"]
        return len(registry.sessions), used


async def run(sessions: int, controls: list[int]) -> None:
    default = FletOptions().max_held_sessions
    print(f"{sessions} sessions open and leave; default max_held_sessions = {default}")
    print("| controls | KiB per held session | MiB, all held | held, default budget | MiB |")
    print("| --- | --- | --- | --- | --- |")
    for count in controls:
        held_all, used_all = await held_cost(count, sessions, sessions + 100)
        held_budget, used_budget = await held_cost(count, sessions, default)
        per = used_all / sessions / KiB
        print(
            f"| {count or 'counter'} | {per:.1f} | {used_all / KiB / KiB:.1f} "
            f"| {held_budget} | {used_budget / KiB / KiB:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=700)
    parser.add_argument("--controls", default="0,30,150")
    args = parser.parse_args()
    logging.getLogger("quart_flet").setLevel(logging.ERROR)  # the budget's warning, expected
    asyncio.run(run(args.sessions, [int(c) for c in args.controls.split(",")]))


if __name__ == "__main__":
    main()
