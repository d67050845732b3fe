"""The fan-out bench's chat, shared by both hosts so they do the same work.

A text field, a button whose click sends the field's text with
``page.pubsub.send_all``, a status line and a log. Each session's pubsub
handler shows ``all:<text>`` in one of the ways apps do it (``UPDATES``):

- ``control``: sets the status line's value and calls ``status.update()``;
- ``page``: the same, then ``page.update()``;
- ``append``: appends a Text to the log and calls ``page.update()`` (the
  chat of Flet's tutorial);
- ``topic``: as ``control``, but one session in :data:`TOPIC_SHARE` (every
  fourth to open, in each process) subscribes, to a topic, and the click
  sends on that topic; a subscribed page says ``topic:yes`` from the start.

The handler is sync (the official host runs it on its thread pool, we on
ours) or async (a task on the loop on both). ``main_for(handler, update)``
is the page; ``sync_main``/``async_main`` are the ``append`` chat.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import flet as ft

__all__ = ["HANDLERS", "UPDATES", "async_main", "main_for", "sync_main"]

HANDLERS = ("sync", "async")
UPDATES = ("control", "page", "append", "topic")
#: one session in this many subscribes to the ``topic`` chat's topic
TOPIC_SHARE = 4
TOPIC = "news"
_opened = itertools.count()


def main_for(handler: str, update: str) -> Callable[[ft.Page], Awaitable[None]]:
    """The chat page whose pubsub handler is ``handler`` (sync|async) and
    shows a message the ``update`` way (control|page|append)."""
    if handler not in HANDLERS or update not in UPDATES:
        raise ValueError(f"no chat for handler {handler!r}, update {update!r}")

    async def main(page: ft.Page) -> None:
        page.title = "pubsub chat"
        text = ft.TextField(label="message", key="text")
        status = ft.Text("", key="status")
        log = ft.Column(key="log")

        def show(message: str) -> None:
            line = f"all:{message}"
            if update == "append":
                log.controls.append(ft.Text(line))
                page.update()
            else:
                status.value = line
                if update in ("control", "topic"):
                    status.update()
                else:
                    page.update()

        def on_message(message: str) -> None:
            show(message)

        async def on_message_async(message: str) -> None:
            show(message)

        def on_topic(topic: str, message: str) -> None:
            show(message)

        async def on_topic_async(topic: str, message: str) -> None:
            show(message)

        if update != "topic":
            page.pubsub.subscribe(on_message_async if handler == "async" else on_message)
        elif next(_opened) % TOPIC_SHARE == 0:
            page.pubsub.subscribe_topic(TOPIC, on_topic_async if handler == "async" else on_topic)
            status.value = "topic:yes"

        def send_all(e: ft.Event[ft.Button]) -> None:
            if update == "topic":
                page.pubsub.send_all_on_topic(TOPIC, text.value or "")
            else:
                page.pubsub.send_all(text.value or "")

        page.add(text, ft.Button("all", on_click=send_all), status, log)

    return main


sync_main = main_for("sync", "append")
async_main = main_for("async", "append")
