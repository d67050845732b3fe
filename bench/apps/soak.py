"""The soak bench's app, shared by both hosts so they do the same work
(bench/soak.py drives it).

One page: a counter (the FloatingActionButton), a text field and an "all"
button whose click sends the field's text to every session with
``page.pubsub.send_all`` (each session keeps the last few in a log), and an
"upload" button that shows a signed upload URL from ``page.get_upload_url``
(the client then PUTs a small file to it). The log is capped so a long-lived
session's tree does not grow: RSS growth then means the server kept
something, not that the page got bigger.

``stats()`` is what each host's ``/soak-stats`` route answers: the asyncio
tasks of the server's loop (``asyncio.all_tasks()``, the route's own task
included: a constant), Python threads, and flet ``Session`` objects alive
(counted with ``gc.get_objects()``, the same way on both hosts, every 10 s;
garbage not yet collected counts too unless SOAK_GC_COLLECT=1).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any

import flet as ft
from flet.messaging.session import Session

__all__ = ["LOG_KEEP", "SESSION_TIMEOUT", "main", "stats"]

#: messages a session's log keeps
LOG_KEEP = 5
#: seconds a disconnected session is held, on both hosts (SOAK_SESSION_TIMEOUT)
SESSION_TIMEOUT = int(os.environ.get("SOAK_SESSION_TIMEOUT", "30"))
#: SOAK_GC_COLLECT=1: a full collection before counting, to tell Sessions
#: still referenced from garbage not yet collected (it changes the run's RSS)
GC_COLLECT = os.environ.get("SOAK_GC_COLLECT", "") == "1"


async def main(page: ft.Page) -> None:
    page.title = "soak"
    counter = ft.Text("0", key="counter")
    text = ft.TextField(label="message", key="text")
    url = ft.Text("", key="url")
    log = ft.Column(key="log")
    uploads = 0

    async def increment(e: ft.Event[ft.FloatingActionButton]) -> None:
        counter.value = str(int(counter.value or "0") + 1)
        counter.update()

    def on_message(message: str) -> None:  # sync: each host runs it on its pool
        log.controls.append(ft.Text(f"all:{message}"))
        del log.controls[:-LOG_KEEP]
        page.update()

    def send_all(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all(text.value or "")

    def upload(e: ft.Event[ft.Button]) -> None:
        nonlocal uploads
        uploads += 1
        # a bounded set of names: the upload directory stays small
        url.value = page.get_upload_url(f"soak-{uploads % 4}-{page.session.id[:8]}.bin", 60)
        url.update()

    page.pubsub.subscribe(on_message)
    page.floating_action_button = ft.FloatingActionButton(icon=ft.Icons.ADD, on_click=increment)
    page.add(
        counter,
        text,
        ft.Button("all", key="all", on_click=send_all),
        ft.Button("upload", key="upload", on_click=upload),
        url,
        log,
    )


def stats() -> dict[str, Any]:
    """The server process's own counts (see the module docstring)."""
    if GC_COLLECT:
        gc.collect()
    return {
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "sessions": sum(1 for o in gc.get_objects() if isinstance(o, Session)),
    }
