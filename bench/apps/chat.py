"""The fan-out bench's chat, shared by both hosts so they do the same work.

The same page as tests/apps/chat.py's global chat: a text field, a button
whose click sends the field's text with ``page.pubsub.send_all``, and a log
where every session appends ``all:<text>`` for each message it receives. Its
pubsub handler is sync (``sync_main``: the official host runs it on its thread
pool, we on ours) or async (``async_main``: a task on the loop on both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import flet as ft

__all__ = ["async_main", "sync_main"]


def _chat(handler_is_async: bool) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        page.title = "pubsub chat"
        text = ft.TextField(label="message", key="text")
        log = ft.Column(key="log")

        def on_message(message: str) -> None:
            log.controls.append(ft.Text(f"all:{message}"))
            page.update()

        async def on_message_async(message: str) -> None:
            log.controls.append(ft.Text(f"all:{message}"))
            page.update()

        page.pubsub.subscribe(on_message_async if handler_is_async else on_message)

        def send_all(e: ft.Event[ft.Button]) -> None:
            page.pubsub.send_all(text.value or "")

        page.add(text, ft.Button("all", on_click=send_all), log)

    return main


sync_main = _chat(handler_is_async=False)
async_main = _chat(handler_is_async=True)
