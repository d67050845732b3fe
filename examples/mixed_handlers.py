"""Sync and async handlers side by side, as the Flet docs promise.

The sync handler blocks for 3 s in a thread of the app's pool; the async one
awaits for 3 s as a task on the loop. Neither stalls other users.

Run: hypercorn examples.mixed_handlers:app --bind 127.0.0.1:8000
"""

import asyncio
import time

import flet as ft

from quart_flet import quart_app


def main(page: ft.Page) -> None:
    def handler(e: ft.Event[ft.Button]) -> None:
        time.sleep(3)
        page.add(ft.Text("Handler clicked"))

    async def handler_async(e: ft.Event[ft.Button]) -> None:
        await asyncio.sleep(3)
        page.add(ft.Text("Async handler clicked"))

    page.add(
        ft.Button("Call handler", on_click=handler),
        ft.Button("Call async handler", on_click=handler_async),
    )


# max_threads bounds the pool (FLET_MAX_THREADS overrides it); when every
# thread is busy, further sync work waits in the queue: it is never dropped.
app = quart_app(main, max_threads=16)
