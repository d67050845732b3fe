"""A pubsub fan-out for the Redis outage test and bench (tests/backends/test_redis.py,
bench/redis_outage.py).

Every session subscribes with a sync handler that shows ``got:<message>``.
Each click on "send" sends ``m1``, ``m2``, ... (numbered per session) with
:func:`quart_flet.pubsub_hub`, then shows ``published:mN`` once every process
sharing Redis can get it, or ``failed:mN`` when the send's Publication says it
will not reach the other processes.

Run: FLET_REDIS_URL=redis://127.0.0.1:6379 FLET_SECRET_KEY=k hypercorn tests.apps.redis_fanout:app
"""

from __future__ import annotations

import asyncio

import flet as ft

from quart_flet import PubSubNotPublished, pubsub_hub, quart_app


async def main(page: ft.Page) -> None:
    log = ft.Column(key="log")
    sent = 0

    def on_message(message: str) -> None:  # sync: runs on the app's pool
        log.controls.append(ft.Text(f"got:{message}"))
        page.update()

    async def send(e: ft.Event[ft.Button]) -> None:
        nonlocal sent
        sent += 1
        message = f"m{sent}"
        publication = pubsub_hub(page).send_all(message)
        try:
            await asyncio.wrap_future(publication)
            outcome = "published"
        except PubSubNotPublished:
            outcome = "failed"
        log.controls.append(ft.Text(f"{outcome}:{message}"))
        page.update()

    page.pubsub.subscribe(on_message)
    page.add(ft.Button("send", on_click=send), log)


app = quart_app(main)
