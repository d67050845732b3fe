"""A page whose async pubsub handler holds the loop for a moment (work of
its own, as a big page's diff would) before showing ``got:<message>``. A
send to a hundred such sessions keeps their process busy long enough to
see when the other processes start on it. The button sends ``ping`` to all.

Run: FLET_REDIS_URL=redis://127.0.0.1:6379 hypercorn tests.apps.busy_fanout:app
"""

from __future__ import annotations

import time

import flet as ft

from quart_flet import quart_app

#: seconds each handler holds the loop
WORK_SECONDS = 0.0015


async def main(page: ft.Page) -> None:
    status = ft.Text("", key="status")

    async def on_message(message: str) -> None:
        time.sleep(WORK_SECONDS)  # blocks the loop on purpose
        status.value = f"got:{message}"
        status.update()

    async def send(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all("ping")

    page.pubsub.subscribe(on_message)
    page.add(status, ft.Button("send", on_click=send))


app = quart_app(main)
