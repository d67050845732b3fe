"""A small Flet chat over ``page.pubsub``, for the pubsub tests and benchmark.

Every session shows what it receives as ``all:<text>`` (global messages, a
sync handler on the pool) and ``room:<text>`` (the "room" topic, an async
handler). Type into the field, then press a button to send with one of
send_all, send_others, or send_all_on_topic to "room" or "lobby" (nobody
subscribes to "lobby"). With FLET_REDIS_URL set, all of it crosses processes.

Run: FLET_REDIS_URL=redis://127.0.0.1:6379 hypercorn tests.apps.chat:app
"""

from __future__ import annotations

import flet as ft

from quart_flet import quart_app


async def main(page: ft.Page) -> None:
    # async on purpose: flet indexes new controls only after sending them, so
    # a fast client could address a control a sync main (in a thread) has
    # sent but not yet indexed
    page.title = "pubsub chat"
    text = ft.TextField(label="message", key="text")
    log = ft.Column(key="log")

    def on_message(message: str) -> None:  # sync: runs on the app's pool
        log.controls.append(ft.Text(f"all:{message}"))
        page.update()

    async def on_room(topic: str, message: str) -> None:  # async: a task on the loop
        log.controls.append(ft.Text(f"{topic}:{message}"))
        page.update()

    page.pubsub.subscribe(on_message)
    page.pubsub.subscribe_topic("room", on_room)

    def send_all(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all(text.value or "")

    def send_others(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_others(text.value or "")

    async def send_room(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all_on_topic("room", text.value or "")

    async def send_lobby(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all_on_topic("lobby", text.value or "")

    page.add(
        text,
        ft.Button("all", on_click=send_all),
        ft.Button("others", on_click=send_others),
        ft.Button("room", on_click=send_room),
        ft.Button("lobby", on_click=send_lobby),
        log,
    )


app = quart_app(main)
