"""The Flet apps under test, shared by both hosts so they do the same work.

``main`` is examples/counter.py's counter (the official e2e anchor's too).
``blocking_main`` adds a button whose SYNC handler sleeps one second: the
official host runs it inline on the event loop, we run it on the thread pool.
"""

import time

import flet as ft

from examples.counter import main

__all__ = ["SLEEP_SECONDS", "blocking_main", "main"]

SLEEP_SECONDS = 1.0


async def blocking_main(page: ft.Page) -> None:
    page.title = "Flet counter"
    counter = ft.Text("0", size=40, key="counter")
    status = ft.Text("awake", key="status")

    async def increment(e: ft.Event[ft.FloatingActionButton]) -> None:
        counter.value = str(int(counter.value or "0") + 1)
        counter.update()

    def sleep(e: ft.Event[ft.Button]) -> None:  # sync on purpose
        time.sleep(SLEEP_SECONDS)
        status.value = "slept"
        status.update()

    page.floating_action_button = ft.FloatingActionButton(
        icon=ft.Icons.ADD, on_click=increment, tooltip="Increment"
    )
    page.add(
        ft.Text("Counter:"), counter, ft.Button("Sleep 1 s", key="sleep", on_click=sleep), status
    )
